"""Did an edit of another kind than a named direction work?  Measures that are not the edit's own
optimisation target, on the result at the photo's resolution.

``scribble`` (a colour scribble: the stroked region takes the stroke's colour and keeps the
photo's texture — a red cap, not a red bar), over the strokes (the applied spec's
``stroke_map``, at the model's resolution, enlarged to the square and eroded by
:data:`ERODE_SIGMAS` detail-band sigmas so the strokes' own edges do not count):

``texture_kept``
    how much of the photo's detail band the result keeps under the strokes:
    ``Σ HP(result)·HP(photo) / Σ HP(photo)²``, with the detail band of
    :mod:`priorpaint.measures.artefacts` taken in CIE Lab lightness (perceptual: the same folds
    seen at a new lightness count as kept; in RGB a white wall painted dark red would "lose" two
    thirds of its grey levels however it is done). 1 keeps the photo's texture as it was (more:
    amplified), 0 is a flat or an unrelated patch (an opaque bar). At least :data:`MIN_TEXTURE`.
``hue_distance``
    per stroke colour, the angle (degrees) in the CIE Lab chroma plane between the result's mean
    colour under the strokes and the stroke colour; the worst colour. At most :data:`MAX_HUE`.
    ``None`` for a gray stroke (no hue to match).
``colour_reached``
    per stroke colour, the share of the chroma distance from the photo's mean colour there to
    the stroke colour that the result closes (1 − |ab(result) − ab(stroke)| / |ab(photo) − ab(stroke)|);
    the worst colour. At least :data:`MIN_COLOUR`. ``None`` where the photo already has the
    stroke's colour.

``paint`` and ``segment`` (concept paint, label-map edit: the asked part appears where it was
painted), inside the painted region (the edit mask): ``changed_share``, the share of its pixels
whose colour changed by at least :data:`VISIBLE_DELTA_E` (CIE Lab ΔE), at least
:data:`MIN_CHANGED_SHARE`, and ``change_p95``: something visible happened there. And, from the
edit's ``part_map``, :func:`part_appeared`: the part's new region now reads as the photo's *own*
pixels of that part (mean Lab colour, detail-band energy, orientation coherence) and did not
before — a dark blob or a shadow has the colour but not the texture. Pixels, not the edit's own
target (the dissection units, the segmentation head); the artefact measures say whether it is a
blotch or a pasted patch.

``vector`` (a saved editing vector applied to another photo, when it was saved with its ``effect``):
:func:`priorpaint.measures.vectors.vector_carried` of the render's change against the saved effect
times the strength.

A scribble is recoloured in place (the ``colour`` composite moves no pixel), so the report does
not judge it by ``ghost`` (doubled contours of moved content): the flow that measure reads
between a photo and its recoloured self is the colour change, not motion (``in_place``). On a
grayscale photo the result stays gray, so the colour cannot show: the verdict says so.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from .artefacts import detail_band, detail_sigma
from .interpolation import MAX_BETWEEN, between_report
from .vectors import GRID, MIN_AGREEMENT, MIN_CARRIED, effect_map, vector_carried

#: the least share of the photo's detail band a scribble must keep under its strokes
MIN_TEXTURE = 0.6
#: the most a scribble's colour may miss its stroke's hue (degrees in Lab's chroma plane)
MAX_HUE = 30.0
#: the least share of the chroma distance to the stroke colour a scribble must close
MIN_COLOUR = 0.5
#: the strokes are eroded by this many detail-band sigmas before measuring
ERODE_SIGMAS = 2.0
#: a stroke colour with less Lab chroma than this is gray: no hue to match
GRAY_CHROMA = 8.0
#: model pixels a stroke colour must cover to be judged
MIN_PIXELS = 2


def decode_stroke_map(stroke_map: dict) -> Optional[tuple]:
    """``(on (R, R) bool, colour (R, R, 3) uint8)`` from a scribble's ``stroke_map``, or None."""
    try:
        r = int(stroke_map["resolution"])
        on = np.zeros(r * r, bool)
        rgb = np.zeros((r * r, 3), np.uint8)
        for start, length, *c in stroke_map["runs"]:
            on[start:start + length] = True
            rgb[start:start + length] = c
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    return on.reshape(r, r), rgb.reshape(r, r, 3)


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb, np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _hue_angle(a: np.ndarray, b: np.ndarray) -> float:
    cos = float(np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-6))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def scribble_worked(result: np.ndarray, photo: np.ndarray, stroke_map: dict, resolution: int,
                    mask: Optional[np.ndarray] = None) -> Dict[str, object]:
    """``{"texture_kept", "hue_distance", "colour_reached", "failed"}`` for a scribble's result
    (``result``, ``photo``: the square, H×W×3 uint8; ``mask``: the edit mask, strokes outside it
    are not judged). ``failed`` lists the measures past their limits."""
    decoded = decode_stroke_map(stroke_map)
    out: Dict[str, object] = {"texture_kept": None, "hue_distance": None, "colour_reached": None, "failed": []}
    if decoded is None:
        return out
    on, rgb = decoded
    side = result.shape[0]
    near = cv2.INTER_NEAREST
    on_sq = cv2.resize(on.astype(np.uint8), (side, side), interpolation=near) > 0
    col_sq = cv2.resize(rgb, (side, side), interpolation=near)
    sigma = detail_sigma(side, resolution)
    e = int(np.ceil(ERODE_SIGMAS * sigma))
    if e > 0:
        on_sq = cv2.erode(on_sq.astype(np.uint8), np.ones((2 * e + 1, 2 * e + 1), np.uint8)) > 0
    if mask is not None:
        on_sq &= mask > 0
    if on_sq.sum() < MIN_PIXELS * (side / float(resolution)) ** 2:
        return out
    lab_r, lab_p = _lab(result), _lab(photo)
    hp_r, hp_p = detail_band(lab_r[..., 0], sigma)[on_sq], detail_band(lab_p[..., 0], sigma)[on_sq]
    energy = float((hp_p.astype(np.float64) ** 2).sum())
    if energy > 0:
        out["texture_kept"] = round(float((hp_r.astype(np.float64) * hp_p).sum()) / energy, 4)
    hues: List[float] = []
    reached: List[float] = []
    colours = np.unique(col_sq[on_sq].reshape(-1, 3), axis=0)
    for c in colours:
        sel = on_sq & np.all(col_sq == c, axis=2)
        if sel.sum() < MIN_PIXELS * (side / float(resolution)) ** 2:
            continue
        ab_s = _lab(c[None, None].astype(np.float32))[0, 0, 1:]
        ab_r = lab_r[sel][:, 1:].mean(axis=0)
        ab_p = lab_p[sel][:, 1:].mean(axis=0)
        if np.linalg.norm(ab_s) >= GRAY_CHROMA:
            hues.append(_hue_angle(ab_r, ab_s))
        dist = float(np.linalg.norm(ab_p - ab_s))
        if dist >= GRAY_CHROMA:
            reached.append(1.0 - float(np.linalg.norm(ab_r - ab_s)) / dist)
    out["hue_distance"] = round(max(hues), 2) if hues else None
    out["colour_reached"] = round(min(reached), 4) if reached else None
    failed = []
    if out["texture_kept"] is not None and out["texture_kept"] < MIN_TEXTURE:
        failed.append("texture")
    if out["hue_distance"] is not None and out["hue_distance"] > MAX_HUE:
        failed.append("hue")
    if out["colour_reached"] is not None and out["colour_reached"] < MIN_COLOUR:
        failed.append("colour")
    out["failed"] = failed
    return out


#: a pixel counts as visibly changed from this CIE Lab colour difference (ΔE 1976)
VISIBLE_DELTA_E = 10.0
#: the least share of the painted region a concept paint or label-map edit must visibly change
MIN_CHANGED_SHARE = 0.25


def painted_change(result: np.ndarray, photo: np.ndarray, mask: np.ndarray) -> Dict[str, object]:
    """``{"changed_share", "change_p95", "failed"}`` of a painted edit (concept paint, label-map
    edit): inside the painted region (the edit mask), the share of pixels whose colour changed by
    at least :data:`VISIBLE_DELTA_E` (ΔE in CIE Lab) and the 95th percentile of that change. It
    says that something visible happened where it was painted, not which part it is; the
    artefact measures say whether it is a blotch."""
    sel = mask > 127
    out: Dict[str, object] = {"changed_share": None, "change_p95": None, "failed": []}
    if sel.sum() < 16:
        return out
    de = np.linalg.norm(_lab(result)[sel] - _lab(photo)[sel], axis=1)
    out["changed_share"] = round(float((de >= VISIBLE_DELTA_E).mean()), 4)
    out["change_p95"] = round(float(np.percentile(de, 95)), 2)
    if out["changed_share"] < MIN_CHANGED_SHARE:
        out["failed"] = ["visible"]
    return out


#: the part's colour: the least share of the Lab distance from the region before to the photo's own part
#: that the result must close (the region's mean colour)
MIN_PART_COLOUR = 0.5
#: the part's texture: the region's detail-band energy (Lab L std) and orientation coherence, as ratios of
#: the photo's own part, must lie within [PART_RATIO, 1 / PART_RATIO]
PART_RATIO = 0.6
#: the least pixels (at the measured square) of the target and of the photo's own part to judge
MIN_PART_PX = 64


def _coherence(L: np.ndarray, sigma: float) -> Tuple[np.ndarray, np.ndarray]:
    """The structure tensor's oriented and total energy per pixel (gradients at ``sigma / 2``,
    tensor averaged over ``2 · sigma``); their ratio over a region is its orientation coherence,
    weighted by gradient energy (0: isotropic or flat, 1: one direction), so flat pixels' noise
    does not decide it."""
    g = cv2.GaussianBlur(L, (0, 0), max(sigma / 2, 0.7))
    gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)
    s = max(2 * sigma, 1.5)
    jxx, jyy, jxy = (cv2.GaussianBlur(x, (0, 0), s) for x in (gx * gx, gy * gy, gx * gy))
    return np.sqrt((jxx - jyy) ** 2 + 4 * jxy ** 2), jxx + jyy


def _part_stats(lab: np.ndarray, band: np.ndarray, coh: Tuple[np.ndarray, np.ndarray], sel: np.ndarray) -> Dict[str, object]:
    return {"colour": lab[sel].mean(axis=0), "energy": float(band[sel].std()),
            "coherence": float(coh[0][sel].sum() / max(float(coh[1][sel].sum()), 1e-3))}


def _reads_as(stats: dict, ref: dict, start: Optional[dict]) -> Dict[str, object]:
    """The part fields of a region's ``stats`` against the photo's part ``ref`` (``start``: the region
    before, for the colour's share of the distance closed; None: the region before itself)."""
    colour = None
    if start is not None:
        dist = float(np.linalg.norm(start["colour"] - ref["colour"]))
        if dist >= GRAY_CHROMA:
            colour = 1.0 - float(np.linalg.norm(stats["colour"] - ref["colour"])) / dist
    energy = stats["energy"] / max(ref["energy"], 1e-3)
    coherence = stats["coherence"] / max(ref["coherence"], 1e-3)
    failed = []
    if colour is not None and colour < MIN_PART_COLOUR:
        failed.append("colour")
    if not PART_RATIO <= energy <= 1 / PART_RATIO:
        failed.append("texture")
    if not PART_RATIO <= coherence <= 1 / PART_RATIO:
        failed.append("orientation")
    return {"colour": colour, "energy": energy, "coherence": coherence, "failed": failed}


def part_appeared(result: np.ndarray, photo: np.ndarray, pm: Optional[dict], mask: np.ndarray,
                  resolution: int) -> Dict[str, object]:
    """Did the asked part appear where the edit put it?  ``pm``: the edit's ``part_map`` (the label
    maps before and after, at the model's resolution). The region is where the largest class the edit
    made appear now is (:func:`priorpaint.compositing.texture.targets`); it is compared with the
    photo's *own* pixels of that part (outside the edit mask), not with the segmentation head:

    ``part_colour``: the share of the Lab distance from the region before to the part's mean colour
    that the result closes (≥ :data:`MIN_PART_COLOUR`; None where the region already had its colour);
    ``part_texture``, ``part_orientation``: the region's detail-band energy and orientation coherence
    over the part's (within [:data:`PART_RATIO`, 1/PART_RATIO]). ``part_before``: the region read as
    the part before the edit (then nothing appeared). ``part_found``: False where the photo shows too
    little of the part to compare with (it cannot be carried here)."""
    from ..compositing.texture import decode_part_map, targets
    out: Dict[str, object] = {"part": None, "part_colour": None, "part_texture": None, "part_orientation": None,
                              "part_before": None, "part_found": None, "failed": []}
    dec = decode_part_map(pm) if isinstance(pm, dict) else None
    if dec is None:
        return out
    side = result.shape[0]
    tg = targets(pm, side, mask)
    if not tg:
        out["failed"] = ["part"]   # the edit put the part nowhere
        return out
    c, (tgt, _) = max(tg.items(), key=lambda kv: int(kv[1][0].sum()))
    before, _, names = dec
    out["part"] = names[c] if c < len(names) else str(c)
    sigma = detail_sigma(side, resolution)
    e = int(np.ceil(ERODE_SIGMAS * sigma))
    kernel = np.ones((2 * e + 1, 2 * e + 1), np.uint8)
    inner = cv2.erode(tgt.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    if inner.sum() >= MIN_PART_PX:
        tgt = inner
    own = cv2.resize((before == c).astype(np.uint8), (side, side), interpolation=cv2.INTER_NEAREST)
    own = cv2.erode(own, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    own &= mask == 0
    out["part_found"] = bool(own.sum() >= MIN_PART_PX)
    if tgt.sum() < MIN_PART_PX or not out["part_found"]:
        out["failed"], out["part_failed"] = ["part"], ["size"] if out["part_found"] else []
        return out
    lab_r, lab_p = _lab(result), _lab(photo)
    band_r, band_p = detail_band(lab_r[..., 0], sigma), detail_band(lab_p[..., 0], sigma)
    coh_r, coh_p = _coherence(lab_r[..., 0], sigma), _coherence(lab_p[..., 0], sigma)
    ref = _part_stats(lab_p, band_p, coh_p, own)
    was = _part_stats(lab_p, band_p, coh_p, tgt)
    now = _reads_as(_part_stats(lab_r, band_r, coh_r, tgt), ref, was)
    then = _reads_as(was, ref, None)
    out.update(part_colour=None if now["colour"] is None else round(now["colour"], 4),
               part_texture=round(now["energy"], 4), part_orientation=round(now["coherence"], 4),
               part_before=not then["failed"] and now["colour"] is None)
    if now["failed"] or out["part_before"]:
        out["failed"] = ["part"]
    out["part_failed"] = now["failed"]
    return out


def kind_report(applied: List[dict], result: np.ndarray, photo: np.ndarray, mask: np.ndarray,
                resolution: int) -> Optional[Dict[str, object]]:
    """The kind measures of a render of exactly one edit of a kind measured here (else None):
    ``{"kind": "scribble", ...the measures..., "failed": [...]}``."""
    if len(applied) != 1:
        return None
    spec = applied[0]
    if spec.get("kind") == "scribble" and isinstance(spec.get("stroke_map"), dict):
        gray = bool(np.array_equal(photo[..., 0], photo[..., 1]) and np.array_equal(photo[..., 1], photo[..., 2]))
        return {"kind": "scribble", "in_place": True, "gray_photo": gray,
                **scribble_worked(result, photo, spec["stroke_map"], resolution, mask)}
    if spec.get("kind") in ("paint", "segment") and not spec.get("noop"):
        out = {"kind": spec["kind"], **painted_change(result, photo, mask)}
        if isinstance(spec.get("part_map"), dict):
            part = part_appeared(result, photo, spec["part_map"], mask, resolution)
            out.update({k: v for k, v in part.items() if k != "failed"}, failed=out["failed"] + part["failed"])
        return out
    if spec.get("kind") == "interpolate" and "other_points" in spec and float(spec.get("t") or 0) > 0:
        return {"kind": "interpolate", **between_report(result, photo, spec["other_points"], float(spec["t"]))}
    if spec.get("kind") == "vector" and isinstance(spec.get("saved_effect"), list) and float(spec.get("strength") or 0):
        # judged where this render could change (its mask; a vector that reaches nowhere: everywhere,
        # it carries nothing): the saved effect times the strength
        where = cv2.resize((mask > 0).astype(np.float32), (GRID, GRID), interpolation=cv2.INTER_AREA)[..., None]
        if not where.any():
            where = np.ones_like(where)
        expected = np.asarray(spec["saved_effect"], np.float32) * np.float32(spec["strength"]) * where
        return {"kind": "vector", **vector_carried(expected, effect_map(result, photo))}
    return None


def _part_reason(kind: Dict[str, object]) -> str:
    """Why the asked part did not appear (the verdict's words for :func:`part_appeared`)."""
    part = kind.get("part") or "the asked part"
    if kind.get("part") is None:
        return "the edit put the asked part nowhere in the region"
    if kind.get("part_found") is False:
        return f"the photo shows too little {part} to take its look from"
    if kind.get("part_before"):
        return f"the region already read as {part}"
    words = {"colour": f"colour {kind.get('part_colour')} of the way to the photo's {part} (at least {MIN_PART_COLOUR})",
             "texture": f"texture energy {kind.get('part_texture')} of the photo's {part}",
             "size": "the region is too small to judge",
             "orientation": f"orientation coherence {kind.get('part_orientation')} of the photo's {part}"}
    return f"the region does not read as the photo's {part}: " + ", ".join(
        words[f] for f in kind.get("part_failed") or []) + f" (ratios within {PART_RATIO}–{1 / PART_RATIO:.2f})"


def preview_only(model_id: Optional[str], applied: List[dict]) -> Optional[str]:
    """Why the one named direction of a render is *preview only on this model* (its manifest's
    ``preview_only``: it works on the generator's samples, not on projected real photos), or None."""
    from ..edits.directions.named import load_named
    if len(applied) != 1 or applied[0].get("kind") != "direction" or not float(applied[0].get("strength") or 0):
        return None
    name = applied[0].get("name")
    for d in load_named(model_id).get("directions", []):
        if d.get("name") == name and d.get("preview_only"):
            return str(d["preview_only"])
    return None


def merge_preview_only(verdict: Dict[str, object], reason: Optional[str]) -> Dict[str, object]:
    """The verdict of a render of a preview-only direction: not carried, with the reason."""
    if not reason:
        return verdict
    out = dict(verdict, carried=False, preview_only=reason,
               failed=list(verdict.get("failed") or []) + ["preview_only"])
    msg = str(out.get("message") or "")
    head = "this edit cannot be carried here: "
    out["message"] = (msg + ", " if msg.startswith(head) else head) + "preview only on this model (" + reason + ")"
    return out


def _passed(kind: Dict[str, object]) -> str:
    """What a kind's own measure found when it passed (the verdict's words)."""
    k = kind.get("kind")
    if k == "interpolate":
        return f"the face is {kind.get('between')} eye distances from the one between the two"
    if k == "scribble":
        return f"the strokes' colour shows, texture kept {kind.get('texture_kept')} of the photo's"
    if k == "vector":
        return f"the vector carried {kind.get('carried')} of the effect it was saved with"
    if kind.get("part"):
        return f"the region now reads as the photo's {kind.get('part')}"
    return f"a visible change where it was painted ({kind.get('changed_share')} of the region)"


def merge_verdict(verdict: Dict[str, object], kind: Optional[Dict[str, object]]) -> Dict[str, object]:
    """The render's verdict with a kind's failed measures added (not carried, with the reason)."""
    if not kind:
        return verdict
    failed = list(kind.get("failed") or [])
    judged = any(kind.get(k) is not None
                 for k in ("texture_kept", "hue_distance", "colour_reached", "changed_share", "carried", "part",
                           "face_found"))
    if not judged:
        return verdict
    out = dict(verdict)
    if not failed:
        if out.get("carried") is None or out["carried"]:   # the kind's own measure passed: say which
            out.update(carried=True, message="carried: " + _passed(kind))
        return out
    out["failed"] = list(out.get("failed") or []) + failed
    out["carried"] = False
    why = {"texture": f"texture kept {kind.get('texture_kept')} of the photo's (at least {MIN_TEXTURE})",
           "hue": f"stroke hue missed by {kind.get('hue_distance')}° (at most {MAX_HUE:.0f}°)",
           "colour": (f"stroke colour reached {kind.get('colour_reached')} (at least {MIN_COLOUR})"
                      + ("; a grayscale photo keeps no colour" if kind.get("gray_photo") else "")),
           "visible": (f"no visible change where it was painted: {kind.get('changed_share')} of the region "
                       f"changed by ΔE ≥ {VISIBLE_DELTA_E:.0f} (at least {MIN_CHANGED_SHARE})"),
           "part": _part_reason(kind),
           "between": (f"the face is {kind.get('between')} eye distances from the one between the two "
                       f"(at most {MAX_BETWEEN})"),
           "face": "no face found in the photo, the other image or the result to place the one between",
           "carried": f"the vector carried {kind.get('carried')} of the effect it was saved with (at least {MIN_CARRIED})",
           "agreement": (f"the change here agrees {kind.get('agreement')} with the one it was saved with "
                         f"(at least {MIN_AGREEMENT})")}
    parts = [why[f] for f in failed]
    msg = str(out.get("message") or "")
    head = "this edit cannot be carried here: "
    out["message"] = (msg + ", " if msg.startswith(head) else head) + ", ".join(parts)
    return out
