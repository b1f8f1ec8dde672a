"""What the plug-in tells users, in plain words: how well the model reproduced a selection,
and what each model is good for (from the ``models`` listing's fields, never its notes for
developers)."""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

# How closely the model reproduced the selection, by the projection's PSNR (dB): the first
# band whose floor the figure reaches. The figures stay available as a tooltip.
FIT_BANDS = ((30.0, "very closely"), (25.0, "closely"), (20.0, "roughly"), (float("-inf"), "loosely"))

TF_SUFFIX = "-tf"      # a twin: the same network in NVIDIA's original file format

DEFAULT_MODEL_ADVICE = ("The built-in model draws 64 px faces: good for portraits, for appearance edits "
                        "(light, colour, expression, age) and small changes of shape; the photo keeps its "
                        "own fine detail. Larger models, once downloaded, draw sharper faces (256–1024 px) "
                        "and allow bigger changes, or other subjects (cars, cats, churches, horses).")


def fit_words(psnr: Any) -> Optional[str]:
    """How closely the model reproduced the selection, in words; None without a figure."""
    if not isinstance(psnr, (int, float)):
        return None
    return next(words for floor, words in FIT_BANDS if psnr >= floor)


def fit_sentence(psnr: Any) -> Optional[str]:
    """One line for the user after Project: how closely the model reproduced the selection,
    with the figure behind the words; None without a figure."""
    fit = fit_words(psnr)
    if fit is None:
        return None
    return f"the model reproduced your selection {fit} ({float(psnr):.1f} dB PSNR)"


def size_text(n: Any) -> Optional[str]:
    if not isinstance(n, (int, float)) or n <= 0:
        return None
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{max(1, round(n / 1e6))} MB"


def model_about(row: Dict[str, Any], rows: Sequence[Dict[str, Any]] = ()) -> str:
    """A model of the listing as a user reads it: what it draws, what it is good for, its
    download and its ``-tf`` twin."""
    mid = str(row.get("id", "?"))
    ids = {str(r.get("id")) for r in rows}
    domain, res = str(row.get("domain") or "images"), row.get("resolution")
    if row.get("default") and res == 64 and domain == "faces":
        parts = [DEFAULT_MODEL_ADVICE]
    else:
        arch = {"stylegan2": "StyleGAN2", "dcgan": "DCGAN"}.get(str(row.get("architecture")), row.get("architecture"))
        parts = [f"Draws {domain} at {res} px" + (f" ({arch})." if arch else ".")]
        if domain == "faces":
            parts.append("For portraits: select the face." + (" It finds the eyes and straightens the face "
                                                               "itself." if row.get("aligned") else ""))
        else:
            parts.append(f"For photos of {domain}.")
        if row.get("default"):
            parts.append("The backend's default.")
    if mid.endswith(TF_SUFFIX):
        parts.append(f"The same network as {mid[:-len(TF_SUFFIX)]}, in NVIDIA's original file format: "
                     "a smaller download, the same results. Pick either.")
    elif mid + TF_SUFFIX in ids:
        parts.append(f"{mid}{TF_SUFFIX} is the same network in NVIDIA's original file format (a smaller download).")
    size = size_text(row.get("download_bytes"))
    if not row.get("present", True):
        if row.get("downloadable"):
            parts.append("Not downloaded yet" + (f" ({size})" if size else "") + ": OK offers to download it.")
        else:
            parts.append("Its weights are not on the backend's computer and it has no download source.")
    return " ".join(parts)
