"""What the web page shows, without Gradio: readable previews, the selection's before/after,
the explicit edit list and the render history.

Everything here is plain values (numpy arrays, PIL images, dicts) so the page's logic is
tested without a browser; :mod:`priorpaint.app.ui` only wires it to components.

* Previews are shown at a readable size: model-resolution images (64 px for the embedded
  model) are enlarged to at least :data:`MIN_PREVIEW` px (nearest neighbour, so the model's
  pixels stay visible as they are); selection crops keep the photo's own resolution, and the
  live preview is such a crop of the photo-resolution (``detail``) composite.
* The edit list is the one thing Render applies: entries ``{"spec", "label"}`` in order.
  Only the kinds declared :attr:`~priorpaint.edits.registry.PreviewCost.LATENT` at their
  registration run in the live preview (a latent move, no optimisation).
* The history keeps the last :data:`HISTORY` renders of the session (the full photo on disk,
  the selection before/after crops) so the user can go back to one and download it.
"""

from __future__ import annotations

import copy
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from ..errors import InputError

from . import kinds as _kinds

MIN_PREVIEW = 256
HISTORY = 8


def _strength_field(kind) -> Optional[str]:
    """The field holding an edit's strength (None: the kind is applied as it is)."""
    s = _kinds.strength(kind)
    return None if s is None else s.field


# -- readable images ------------------------------------------------------------------------

def readable(img, min_size: int = MIN_PREVIEW) -> Optional[Image.Image]:
    """``img`` enlarged by a whole factor (nearest neighbour) until its short side is ≥ ``min_size``."""
    if img is None:
        return None
    im = img if isinstance(img, Image.Image) else Image.fromarray(np.ascontiguousarray(img))
    short = min(im.size)
    if short <= 0 or short >= min_size:
        return im
    f = -(-min_size // short)
    return im.resize((im.width * f, im.height * f), Image.NEAREST)


def box_crop(photo: np.ndarray, box: Sequence[int]) -> np.ndarray:
    """The ``(x, y, w, h)`` part of a photo array, clipped to it."""
    x, y, w, h = (int(v) for v in box)
    H, W = photo.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x1 <= x0 or y1 <= y0:
        raise InputError(f"box {x},{y},{w},{h} lies outside the {W}x{H} photo")
    return np.ascontiguousarray(photo[y0:y1, x0:x1])


def rgb(arr: np.ndarray) -> np.ndarray:
    """An RGB uint8 view of a grey, RGB or RGBA photo array (alpha dropped for display)."""
    a = np.asarray(arr)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    return np.ascontiguousarray(a[..., :3].astype(np.uint8, copy=False))


def compare_pair(before: np.ndarray, after: np.ndarray, box: Sequence[int]) -> Tuple[Image.Image, Image.Image]:
    """(photo, result) cut to the selection's layer box at the photo's resolution, readable size."""
    b = readable(Image.fromarray(rgb(box_crop(before, box))))
    a = readable(Image.fromarray(rgb(box_crop(after, box))))
    return b, a


def selection_outline(photo: np.ndarray, mask: np.ndarray, colour=(255, 51, 102)) -> np.ndarray:
    """The photo (RGB) with a 2-px outline of the selection mask drawn over it."""
    import cv2

    out = rgb(photo).copy()
    m = (np.asarray(mask) > 0).astype(np.uint8)
    if m.shape != out.shape[:2] or not m.any():
        return out
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    width = max(2, round(max(out.shape[:2]) / 400))
    cv2.drawContours(out, contours, -1, colour, width)
    return out


# -- the selection ---------------------------------------------------------------------------

_BOX_SPLIT = re.compile(r"[\s,;x×]+")


def parse_box_text(text: str) -> Optional[Tuple[int, int, int, int]]:
    """``X,Y,W,H`` (commas or spaces) as four integers, None when empty; a clear one-line error otherwise."""
    t = (text or "").strip()
    if not t:
        return None
    parts = [p for p in _BOX_SPLIT.split(t) if p]
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) != 4 or not all(np.isfinite(nums)):
        raise InputError(f"the box must be four numbers X,Y,W,H (left, top, width, height in px, "
                         f"e.g. 140,20,180,180), got {t[:40]!r}")
    return tuple(int(round(v)) for v in nums)  # type: ignore[return-value]


def selection_mask(alpha: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """The painted selection as a 0/255 mask: the brush is translucent, any painted pixel is selected."""
    if alpha is None:
        return None
    m = (np.asarray(alpha) > 0)
    return (m.astype(np.uint8) * 255) if m.any() else None


# -- the edit list ----------------------------------------------------------------------------

def _fmt(v: float) -> str:
    return f"{v:+.2f}" if v else "0"


def describe(spec: dict) -> str:
    kind = spec.get("kind", "?")
    if kind == "direction":
        return f"direction {spec.get('name')}"
    if kind == "vector":
        return f"vector {spec.get('name')}"
    if kind == "paint":
        return f"paint {spec.get('mode', 'add')} {spec.get('concept')}"
    if kind == "segment":
        return "label map" + (f" (save as vector {spec['save_vector']!r})" if spec.get("save_vector") else "")
    if kind == "scribble":
        return "colour scribble"
    if kind == "interpolate":
        return "interpolate toward the other photo"
    return kind


def clamp_strength(kind: str, value, lo: float = None, hi: float = None) -> Tuple[float, Optional[str]]:
    """(strength inside the kind's range, a note when it had to be clamped)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"the strength must be a number, got {value!r}") from None
    if not np.isfinite(v):
        raise InputError(f"the strength must be a finite number, got {value!r}")
    if lo is None or hi is None:
        s = _kinds.strength(kind)
        lo, hi = (s.lo, s.hi) if s is not None else (-3.0, 3.0)
    c = min(max(v, lo), hi)
    note = None if c == v else f"strength {v:g} is outside [{lo:g}, {hi:g}]: clamped to {c:g}"
    return c, note


def entry(spec: dict, ranges: Optional[Dict[str, Tuple[float, float]]] = None) -> Tuple[dict, Optional[str]]:
    """An edit-list entry for ``spec`` (its strength clamped to the range, with a note)."""
    spec = dict(spec)
    field = _strength_field(spec.get("kind"))
    note = None
    if field is not None:
        lo, hi = (ranges or {}).get(spec.get("name"), (None, None)) if spec.get("kind") == "direction" else (None, None)
        spec[field], note = clamp_strength(spec["kind"], spec.get(field, 0.0), lo, hi)
    return {"spec": spec, "label": describe(spec),
            "range": list((ranges or {}).get(spec.get("name"), ())) if spec.get("kind") == "direction" else []}, note


def add(items: List[dict], spec: dict, ranges=None) -> Tuple[List[dict], str]:
    """The list with ``spec`` appended (a direction or vector already listed is replaced in place)."""
    items = copy.deepcopy(items or [])
    new, note = entry(spec, ranges)
    s = new["spec"]
    for i, it in enumerate(items):
        o = it["spec"]
        if s.get("kind") in _kinds.live_kinds() and o.get("kind") == s.get("kind") and o.get("name") == s.get("name"):
            items[i] = new
            return items, f"updated #{i + 1} {new['label']}" + (f" ({note})" if note else "")
    items.append(new)
    return items, f"added #{len(items)} {new['label']}" + (f" ({note})" if note else "")


def _index(items: List[dict], n) -> int:
    try:
        i = int(n) - 1
    except (TypeError, ValueError):
        raise InputError(f"pick an edit by its number, got {n!r}") from None
    if not items:
        raise InputError("the edit list is empty: add an edit from one of the tabs")
    if not 0 <= i < len(items):
        raise InputError(f"there is no edit #{i + 1}: the list has {len(items)}")
    return i


def remove(items: List[dict], n) -> Tuple[List[dict], str]:
    items = copy.deepcopy(items or [])
    i = _index(items, n)
    gone = items.pop(i)
    return items, f"removed #{i + 1} {gone['label']}"


def move(items: List[dict], n, delta: int) -> Tuple[List[dict], str]:
    items = copy.deepcopy(items or [])
    i = _index(items, n)
    j = min(max(i + delta, 0), len(items) - 1)
    items.insert(j, items.pop(i))
    return items, f"moved {items[j]['label']} to #{j + 1}"


def set_strength(items: List[dict], n, value) -> Tuple[List[dict], str]:
    items = copy.deepcopy(items or [])
    i = _index(items, n)
    spec = items[i]["spec"]
    field = _strength_field(spec.get("kind"))
    if field is None:
        raise InputError(f"edit #{i + 1} ({items[i]['label']}) has no strength")
    lo, hi = items[i].get("range") or (None, None)
    spec[field], note = clamp_strength(spec["kind"], value, lo, hi)
    return items, f"#{i + 1} {items[i]['label']}: {field} {spec[field]:g}" + (f" ({note})" if note else "")


def strength_text(spec: dict) -> str:
    field = _strength_field(spec.get("kind"))
    return "—" if field is None else f"{field} {spec.get(field, 0):g}"


def table(items: List[dict]) -> List[list]:
    """Rows ``[#, edit, strength, preview]`` for the page."""
    live = _kinds.live_kinds()
    return [[i + 1, it["label"], strength_text(it["spec"]),
             "live" if it["spec"].get("kind") in live else "at Render"] for i, it in enumerate(items or [])]


def specs(items: List[dict]) -> List[dict]:
    return [dict(it["spec"]) for it in items or []]


def cheap(spec_list: List[dict]) -> Tuple[List[dict], List[str]]:
    """(the specs the live preview runs, the kinds it skips)."""
    live = _kinds.live_kinds()
    keep = [s for s in spec_list if s.get("kind") in live]
    skipped = [s.get("kind") for s in spec_list if s.get("kind") not in live]
    return keep, skipped


def preview_note(n_cheap: int, skipped: List[str]) -> str:
    text = f"live preview of the selection at the photo's resolution (G, no G′): {n_cheap} latent edit(s)"
    if skipped:
        text += f"; not previewed (they run at Render): {', '.join(dict.fromkeys(skipped))}"
    return text


def verdict_line(verdict: Optional[dict]) -> str:
    """The page's line for a verdict (:func:`priorpaint.measures.verdict.verdict`): a plain warning
    when the edit cannot be carried on this photo, a quiet note when it can, nothing when there is
    nothing to judge."""
    if not verdict or verdict.get("carried") is None:
        return ""
    msg = str(verdict.get("message") or "")
    if verdict["carried"] is False:
        return f"**⚠ {msg}** — Render would not show this edit as asked on this photo."
    return f"check: {msg}"


def unchanged_line(before: np.ndarray, after: np.ndarray, n_edits: int) -> str:
    """A plain sentence when a render left the photo exactly as it was ("" otherwise): a
    render that changes nothing must not read as a success."""
    if not (before.shape == after.shape and np.array_equal(before, after)):
        return ""
    if not n_edits:
        return "**Nothing changed: no edits are listed, so the result is your photo, pixel for pixel.**"
    return ("**Nothing changed: the result is identical to your photo.** The listed edits had no effect "
            "inside the selection (is the painted region empty or too thin at this zoom?).")


# -- the render history -------------------------------------------------------------------------

def kept_on_reprojection(items: List[dict]) -> Tuple[List[dict], int]:
    """(the entries a new projection keeps: the kinds that survive one, how many it dropped)."""
    keep = _kinds.surviving_kinds()
    kept = [it for it in items or [] if it["spec"].get("kind") in keep]
    return kept, len(items or []) - len(kept)


def push_history(history: List[dict], item: dict, keep: int = HISTORY) -> List[dict]:
    """The history with ``item`` first, at most ``keep`` long."""
    return ([item] + list(history or []))[:keep]


def download_name(original: Optional[str], n: int) -> str:
    """``<input stem>-priorpaint-<n>.png`` (a safe stem: letters, digits, ``-`` and ``_`` only)."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", (original or "photo").rsplit("/", 1)[-1].rsplit(".", 1)[0])[:60].strip("_")
    return f"{stem or 'photo'}-priorpaint-{int(n)}.png"
