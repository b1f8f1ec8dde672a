"""The drag edit's spec and geometry: ``drag:HX,HY>TX,TY[;...][@MASK.png]`` or ``drag:NAME[=STRENGTH]``
parsed and checked (bad input is a one-line error), a saved drag's pairs replayed through another
photo's crop, and the mapping between photo pixels and the model's square (:mod:`priorpaint.edits.drag`)."""

from __future__ import annotations

import math
import re
from typing import List, Optional

import numpy as np

from ..errors import InputError

#: at most this many handle/target pairs per drag
MAX_PAIRS = 16


def _num(text: str, what: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise InputError(f"drag: {what} {text.strip()[:20]!r} is not a number") from None
    if not math.isfinite(v):
        raise InputError(f"drag: {what} is {text.strip()[:20]}; coordinates must be finite numbers")
    return v


def check_points(points) -> List[List[float]]:
    """``[[hx, hy, tx, ty], ...]`` checked: 1..16 pairs of finite numbers, no handle on its target."""
    if not isinstance(points, (list, tuple)) or not points:
        raise InputError("drag needs 'points': a list of [hx, hy, tx, ty] (photo pixels)")
    if len(points) > MAX_PAIRS:
        raise InputError(f"drag takes at most {MAX_PAIRS} handle/target pairs, got {len(points)}")
    out = []
    for i, p in enumerate(points):
        if not isinstance(p, (list, tuple)) or len(p) != 4:
            raise InputError(f"drag pair {i + 1} must be [hx, hy, tx, ty], got {str(p)[:40]!r}")
        vals = [_num(str(v), f"pair {i + 1} coordinate") if not isinstance(v, (int, float)) or isinstance(v, bool)
                else float(v) for v in p]
        if any(not math.isfinite(v) for v in vals):
            raise InputError(f"drag pair {i + 1} has a coordinate that is not a finite number: {p}")
        if vals[0] == vals[2] and vals[1] == vals[3]:
            raise InputError(f"drag pair {i + 1}: the handle ({vals[0]:g}, {vals[1]:g}) is its own target; "
                             "nothing would move")
        out.append(vals)
    return out


def parse_drag(args: str) -> dict:
    text = args.strip()
    usage = "drag edit is drag:HX,HY>TX,TY[;HX,HY>TX,TY...][@MASK.png] in photo pixels, or drag:NAME[=STRENGTH]"
    body, _, mask = text.partition("@")
    if not body.strip():
        raise InputError(usage)
    saved = _SAVED.match(body.strip())
    if saved:                                    # a saved drag (``--save-vector``), replayed on this photo
        spec = {"vector": saved.group(1)}
        if saved.group(2) is not None:
            spec["strength"] = _num(saved.group(2), "strength")
    else:
        points = []
        for part in body.split(";"):
            if not part.strip():
                continue
            h, sep, t = part.partition(">")
            hs, ts = h.split(","), t.split(",")
            if not sep or len(hs) != 2 or len(ts) != 2:
                raise InputError(f"{usage}; got {part.strip()[:40]!r}")
            points.append([_num(v, "coordinate") for v in hs + ts])
        spec = {"points": check_points(points)}
    if mask.strip():
        spec["mask"] = mask.strip()
    return spec


def _check(gen, spec: dict) -> None:
    if spec.get("vector") is not None:
        strength(spec)
        if gen is not None:
            saved_drag(gen, spec, None)
        return
    spec["points"] = check_points(spec.get("points"))



# -- a saved drag: the pairs relative to the selection's (aligned) square ------------------
#: ``drag:NAME[=STRENGTH]``: a name as vector names are (see :func:`priorpaint.edits.vectors.check_name`)
_SAVED = re.compile(r"^([A-Za-z][A-Za-z0-9._-]{0,63})\s*(?:=\s*(\S+))?$")
#: a saved drag's strength scales each handle's move; at most this much either way
MAX_STRENGTH = 3.0


def strength(spec: dict) -> float:
    try:
        s = float(spec.get("strength", 1.0))
    except (TypeError, ValueError):
        raise InputError(f"drag strength must be a number, got {str(spec.get('strength'))[:20]!r}") from None
    if not math.isfinite(s) or s == 0.0 or abs(s) > MAX_STRENGTH:
        raise InputError(f"drag strength must be a non-zero number in [-{MAX_STRENGTH:g}, {MAX_STRENGTH:g}], got {s:g}")
    return s


def saved_drag(gen, spec: dict, namespace: Optional[str]) -> dict:
    """The metadata of the saved drag ``spec["vector"]``; an unknown name lists the saved vectors, a
    vector that is not a drag says how to apply it."""
    from ..store import model_key
    from .vectors import load_vector
    name = str(spec.get("vector"))
    _, meta = load_vector(model_key(gen), name, namespace)
    if meta.get("kind") != "drag" or not meta.get("points_square"):
        raise InputError(f"vector {name!r} is not a saved drag (it is a {meta.get('kind', 'latent')} edit's): "
                         f"apply it with vector:{name}")
    return meta


def replay_points(crop, meta: dict, s: float, res: int) -> List[List[float]]:
    """A saved drag's pairs on this photo: stored as fractions of the (aligned) square, mapped through
    this crop; ``s`` scales each move (the handle stays)."""
    sq = np.asarray(meta["points_square"], np.float64).reshape(-1, 4)
    h = model_to_photo(crop, sq[:, :2] * res - 0.5)
    t = model_to_photo(crop, sq[:, 2:] * res - 0.5)
    return np.round(np.concatenate([h, h + s * (t - h)], 1), 2).tolist()



def attach_save_vector(edits: List[str], name: str) -> List[str]:
    """The CLI's ``--save-vector NAME`` on a drag: ``save_vector`` set on the last drag edit."""
    import json
    from .vectors import check_name
    check_name(name)
    out = list(edits)
    for i in range(len(out) - 1, -1, -1):
        text = out[i].strip()
        if text.startswith("drag:") or (text.startswith("{") and '"drag"' in text):
            from .registry import parse_spec
            spec = parse_spec(text)
            spec["save_vector"] = name
            out[i] = json.dumps(spec)
            return out
    raise InputError("--save-vector needs a segment or drag edit to save")


# -- geometry: photo pixels <-> model pixels ---------------------------------------------
def photo_to_model(crop, pts: np.ndarray) -> np.ndarray:
    """Photo pixel coordinates (N, 2) -> model pixel coordinates (pixel centres map to centres)."""
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    side = crop.square[2]
    if crop.alignment is not None:
        from ..compositing import align as al_
        sq = al_.apply(al_.invert(crop.alignment.to_photo), pts + 0.5)
    else:
        sq = pts + 0.5 - np.array(crop.square[:2], np.float64)
    return sq * (crop.resolution / float(side)) - 0.5


def model_to_photo(crop, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    sq = (pts + 0.5) * (crop.square[2] / float(crop.resolution))
    if crop.alignment is not None:
        from ..compositing import align as al_
        return al_.apply(crop.alignment.to_photo, sq) - 0.5
    return sq + np.array(crop.square[:2], np.float64) - 0.5


def _inside_selection(crop, pts: np.ndarray, what: str) -> None:
    W, H = crop.image_size
    side = crop.square[2]
    for i, (x, y) in enumerate(pts):
        if not (0 <= x <= W - 1 and 0 <= y <= H - 1):
            raise InputError(f"drag {what} {i + 1} ({x:g}, {y:g}) is outside the photo ({W}x{H})")
    sq = (photo_to_model(crop, pts) + 0.5) * (side / float(crop.resolution))
    for i, (x, y) in enumerate(sq):
        xi, yi = int(np.floor(x)), int(np.floor(y))
        if not (0 <= xi < side and 0 <= yi < side) or crop.region_mask[yi, xi] == 0:
            raise InputError(f"drag {what} {i + 1} ({pts[i][0]:g}, {pts[i][1]:g}) is outside the selection")

