"""The ``texture`` composite (concept paint, label-map edits): the generator decides *where* a part
appears and its low band; the part's *texture* comes from the photo's own pixels of that part.

The 64 px generator's "hair" is a dark blob: composited as new content (generated pixels with
grain) it reads as dirt, composited as a low-band change (``detail``) as a shadow.  Here:

1. **Where.** The edit records its label maps at the model's resolution (``part_map``: the
   segmentation head's classes of the photo's projection *before* and *after* the edit, see
   :func:`part_map`).  The *target* of class ``c`` is where the label became ``c``; its *source* is
   where the photo already shows ``c`` (outside every target).  Both are enlarged to the photo's
   square (the target's contour smoothly, by a linear resize thresholded at one half) and the
   target is kept inside the edit mask, eroded by :data:`EDGE_PX` so the seam never reaches it.
2. **Texture.** Image quilting (Efros & Freeman 2001) in CIE Lab: the target's bounding box is
   tiled, in raster order, with square blocks cut from the photo where the source covers the whole
   block; each block is the best of :data:`CANDIDATES` source positions (drawn among the nearest,
   so the hair keeps its local direction) by the squared difference over its overlap with the
   blocks already placed, and joins them along the overlap's **minimum-error cut** (a seam between
   two structures, never a cross-fade).  Blocks are :data:`BLOCK` of the square (halved down to
   :data:`MIN_BLOCK_PX` until the source holds one), so the work is bounded by the block count.
3. **Bands** (the edit's ``texture`` option, :data:`LOWS`).  ``source``: the quilt as it is (the
   photo's own part, colour included).  ``shaded``: the generator's broad shading (the detail
   composite below :data:`WIDE` band sigmas, its mean moved to the quilt's) under the quilt's colour
   and texture.  ``generated``: the quilt's high band (above the detail composite's band split) over
   the detail composite's low band (the photo's plus the generator's change).
4. **Seam to the rest.** The filled target replaces the detail composite under its own contour,
   softened by :data:`SEAM_SIGMA` px (an antialiased edge, not a fade); the rest of the edit mask is
   the detail composite; outside the mask the photo is copied bit for bit.

Where the photo shows none of the part (no source block), nothing is filled for that class:
``info["missing"]`` names it, and the kind measure says the part cannot be carried here.

Opt-in (``paint:...#texture=source``), not the default: on the bench's five photos the fill reads as
pasted patches (docs/method/measures.md, "Concept paint and label-map edit").
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from .colour import from_lab, to_lab
from .detail import band_sigma, detail_composite, low_band

#: the mode name an edit kind declares (:class:`priorpaint.edits.registry.EditKind.composite`)
MODE = "texture"
#: block side as a share of the square, and its least size (photo px)
BLOCK, MIN_BLOCK_PX = 1/8, 6
#: overlap between neighbouring blocks, a share of the block
OVERLAP = 0.25
#: source positions drawn per block, among the nearest NEAR_POOL times as many
CANDIDATES, NEAR_POOL = 40, 4
#: a block is drawn among the candidates within this factor of the best overlap error
TOLERANCE = 1.1
#: the most blocks filled per render (bounds the work on a huge square)
MAX_BLOCKS = 4096
#: the target is kept this many px (at least) inside the edit mask; its contour is softened by SEAM_SIGMA px
EDGE_PX, SEAM_SIGMA = 2, 0.8
#: the target's contour is smoothed by this Gaussian sigma (model px) before it is enlarged (no stair steps)
CONTOUR_SIGMA = 0.7
#: where the fill's bands come from (an edit's ``texture`` option): "source" (the photo's part as it is),
#: "shaded" (the generator's broad shading, the photo's part colour and texture), "generated" (the detail
#: composite's low band, the photo's part texture above the band split)
LOWS = ("source", "shaded", "generated")
LOW = "source"
#: "shaded": the band split of the fill, in band sigmas (the generator's shading below it, the photo's part above)
WIDE = 12.0


# -- the label maps an edit records ---------------------------------------------------------

def _runs(cls: np.ndarray) -> List[List[int]]:
    flat = cls.reshape(-1)
    edges = np.flatnonzero(np.diff(flat)) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [flat.size]])
    return [[int(s), int(e - s), int(flat[s])] for s, e in zip(starts, ends)]


def part_map(before: np.ndarray, after: np.ndarray, names: List[str]) -> dict:
    """JSON-friendly label maps of an edit: ``{"resolution": R, "classes": names, "before": runs,
    "after": runs}``, runs ``[start, length, class]`` over the R×R raster (row-major)."""
    before, after = np.asarray(before, np.int64), np.asarray(after, np.int64)
    return {"resolution": int(before.shape[-1]), "classes": list(names),
            "before": _runs(before), "after": _runs(after)}


def decode_part_map(pm: dict) -> Optional[Tuple[np.ndarray, np.ndarray, List[str]]]:
    """``(before, after, names)`` (R×R int) from :func:`part_map`'s dict, or None if malformed."""
    try:
        r = int(pm["resolution"])
        maps = []
        for key in ("before", "after"):
            out = np.full(r * r, -1, np.int64)
            for start, length, c in pm[key]:
                out[int(start):int(start) + int(length)] = int(c)
            maps.append(out.reshape(r, r))
        names = [str(n) for n in pm["classes"]]
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    if r < 1 or (maps[0] < 0).any() or (maps[1] < 0).any():
        return None
    return maps[0], maps[1], names


def check_low(value: object, what: str) -> str:
    """An edit's ``texture`` option, checked (one of :data:`LOWS`)."""
    from ..errors import InputError
    v = str(value).strip().lower()
    if v not in LOWS:
        raise InputError(f"{what} texture must be one of {', '.join(LOWS)}, got {str(value)[:40]!r}")
    return v


def declared(spec: dict) -> Optional[str]:
    """The composite a paint or label-map edit declares: :data:`MODE` when it asks for ``texture``."""
    return MODE if spec.get("texture") else None


def applied_part_map(applied: List[dict]) -> Tuple[Optional[dict], str]:
    """``(part_map, texture)`` of the last applied edit that asked for the texture composite."""
    for spec in reversed(applied or []):
        if isinstance(spec, dict) and isinstance(spec.get("part_map"), dict) and spec.get("texture"):
            return spec["part_map"], str(spec["texture"])
    return None, LOW


def targets(pm: dict, side: int, mask: Optional[np.ndarray] = None) -> Dict[int, Tuple[np.ndarray, np.ndarray]]:
    """Per class ``c`` that the edit made appear: ``(target, source)`` bool (side, side) maps (see the
    module docstring, step 1); classes with no target pixel at this size are left out."""
    dec = decode_part_map(pm)
    if dec is None:
        return {}
    before, after, _ = dec
    changed = before != after
    out = {}
    grown = np.zeros((side, side), bool)
    ups = {}
    for c in np.unique(after[changed]):
        t = cv2.GaussianBlur((changed & (after == c)).astype(np.float32), (0, 0), CONTOUR_SIGMA) if CONTOUR_SIGMA else \
            (changed & (after == c)).astype(np.float32)
        t = cv2.resize(t, (side, side), interpolation=cv2.INTER_LINEAR) > 0.5
        if mask is not None:
            inside = (mask > 0).astype(np.uint8)
            if EDGE_PX > 0:
                inside = cv2.erode(inside, np.ones((2 * EDGE_PX + 1,) * 2, np.uint8), borderType=cv2.BORDER_CONSTANT,
                                   borderValue=0)
            t &= inside > 0
        ups[int(c)] = t
        grown |= t
    for c, t in ups.items():
        if not t.any():
            continue
        src = cv2.resize(((before == c) & ~changed).astype(np.uint8), (side, side), interpolation=cv2.INTER_NEAREST) > 0
        out[c] = (t, src & ~grown)
    return out


# -- image quilting -------------------------------------------------------------------------

def _min_cut(err: np.ndarray) -> np.ndarray:
    """Bool mask (h, w) of the pixels right of the minimum-error vertical path through ``err``."""
    h, w = err.shape
    cost = err.astype(np.float64).copy()
    for y in range(1, h):
        prev = cost[y - 1]
        left = np.concatenate([[np.inf], prev[:-1]])
        right = np.concatenate([prev[1:], [np.inf]])
        cost[y] += np.minimum(np.minimum(left, prev), right)
    path = np.empty(h, np.int64)
    path[-1] = int(np.argmin(cost[-1]))
    for y in range(h - 2, -1, -1):
        x = path[y + 1]
        lo, hi = max(0, x - 1), min(w, x + 2)
        path[y] = lo + int(np.argmin(cost[y, lo:hi]))
    return np.arange(w)[None, :] >= path[:, None]


def quilt(image: np.ndarray, source: np.ndarray, target: np.ndarray, block: int,
          seed: int = 0) -> Tuple[Optional[np.ndarray], Dict[str, object]]:
    """``image`` (side, side, C float32) with the target's bounding box (grown by a block) tiled by
    blocks of ``image`` lying wholly in ``source`` (see the module docstring, step 2); None when the
    source holds no block even at :data:`MIN_BLOCK_PX`.  Returns ``(filled, info)``."""
    side = image.shape[0]
    b = int(block)
    valid = None
    while b >= MIN_BLOCK_PX:
        # top-left corners whose b×b block lies wholly in the source
        er = cv2.erode(source.astype(np.uint8), np.ones((b, b), np.uint8), anchor=(0, 0),
                       borderType=cv2.BORDER_CONSTANT, borderValue=0)
        er[side - b + 1:, :] = 0
        er[:, side - b + 1:] = 0
        valid = np.argwhere(er > 0)
        if len(valid):
            break
        b //= 2
    if valid is None or not len(valid):
        return None, {"block_px": 0, "blocks": 0}
    ov = max(1, int(round(OVERLAP * b)))
    step = b - ov
    ys, xs = np.nonzero(target)
    y0, y1 = max(0, ys.min() - ov), min(side, ys.max() + 1 + ov)
    x0, x1 = max(0, xs.min() - ov), min(side, xs.max() + 1 + ov)
    need = cv2.dilate(target.astype(np.uint8), np.ones((2 * ov + 1,) * 2, np.uint8)) > 0
    out = image.copy()
    filled = np.zeros((side, side), bool)
    rng = np.random.default_rng(seed)
    n = 0
    for by in range(y0, y1, step):
        for bx in range(x0, x1, step):
            ty, tx = min(by, side - b), min(bx, side - b)
            if not need[ty:ty + b, tx:tx + b].any():
                continue
            if n >= MAX_BLOCKS:
                break
            n += 1
            pool = valid[rng.choice(len(valid), size=min(len(valid), CANDIDATES * NEAR_POOL), replace=False)]
            d = np.abs(pool[:, 0] - ty) + np.abs(pool[:, 1] - tx)
            cand = pool[np.argsort(d, kind="stable")[:CANDIDATES]]
            have = filled[ty:ty + b, tx:tx + b]
            cur = out[ty:ty + b, tx:tx + b]
            if have.any():
                errs = np.array([float((((image[cy:cy + b, cx:cx + b] - cur) ** 2).sum(-1) * have).sum())
                                 for cy, cx in cand])
                ok = np.flatnonzero(errs <= errs.min() * TOLERANCE + 1e-6)
                cy, cx = cand[int(rng.choice(ok))]
            else:
                cy, cx = cand[0]
            patch = image[cy:cy + b, cx:cx + b]
            take = ~have
            if have.any():
                err = ((patch - cur) ** 2).sum(-1)
                take = np.ones((b, b), bool)
                if have[:, :ov].all():      # a block on the left: a vertical cut through the overlap
                    take[:, :ov] &= _min_cut(err[:, :ov])
                if have[:ov, :].all():      # a block above: a horizontal cut
                    take[:ov, :] &= _min_cut(err[:ov, :].T).T
                take |= ~have
            region = out[ty:ty + b, tx:tx + b]
            region[take] = patch[take]
            filled[ty:ty + b, tx:tx + b] = True
    return out, {"block_px": b, "blocks": n, "sources": int(len(valid))}


def texture_fill(region: np.ndarray, low_from: np.ndarray, pm: dict, mask: np.ndarray, resolution: int,
                 low: Optional[str] = None, seed: int = 0) -> Tuple[np.ndarray, np.ndarray, Dict[str, object]]:
    """``(filled, weight, info)``: the square (side, side, 3) float32 RGB with the targets of ``pm``
    filled by the photo's own part texture (``region``: the photo's square, uint8), and the fill's
    weight (0 outside the targets).  ``low_from`` (uint8) gives the low band where ``low`` is
    ``"generated"``."""
    low = LOW if low is None else low
    side = region.shape[0]
    lab = to_lab(region)
    out = to_lab(low_from)
    weight = np.zeros((side, side), np.float32)
    sigma = band_sigma(side, resolution)
    info: Dict[str, object] = {"filled": [], "missing": [], "block_px": 0, "blocks": 0}
    names = (decode_part_map(pm) or (None, None, []))[2]
    for i, (c, (tgt, src)) in enumerate(sorted(targets(pm, side, mask).items())):
        name = names[c] if c < len(names) else str(c)
        q, qi = quilt(lab, src, tgt, max(MIN_BLOCK_PX, int(round(BLOCK * side))), seed=seed + i)
        if q is None:
            info["missing"].append(name)
            continue
        if low == "shaded" and sigma > 0:
            wide = WIDE * sigma
            lo_d, lo_q = low_band(out, wide), low_band(q, wide)
            fill = lo_d - lo_d[tgt].mean(axis=0) + q[tgt].mean(axis=0) + (q - lo_q)
            fill = np.where(tgt[..., None], fill, out)
        elif low == "generated" and sigma > 0:
            fill = out + (q - low_band(q, sigma))
            fill = np.where(tgt[..., None], fill, out)
        else:
            fill = np.where(tgt[..., None], q, out)
        out = fill
        weight = np.maximum(weight, tgt.astype(np.float32))
        info["filled"].append(name)
        info["block_px"], info["blocks"] = max(int(info["block_px"]), qi["block_px"]), int(info["blocks"]) + qi["blocks"]
    if SEAM_SIGMA > 0 and weight.any():
        weight = cv2.GaussianBlur(weight, (0, 0), SEAM_SIGMA)
    weight *= (mask > 0)
    return from_lab(out), weight, info


def texture_composite(region: np.ndarray, base: np.ndarray, edited: np.ndarray, mask: np.ndarray,
                      feather: Optional[int], pm: Optional[dict], low: Optional[str] = None):
    """``(result_region, inner, alpha, info)`` as :func:`priorpaint.compositing.detail.composite_square`
    returns them: the detail composite, with the targets of ``pm`` (an applied edit's ``part_map``)
    filled by the photo's own texture of the part (module docstring)."""
    d = detail_composite(region, base, edited, mask, feather)
    info = dict(d.info, mode=MODE)
    if not pm or not mask.any():
        return d.region, d.inner, d.alpha, info
    filled, w, fi = texture_fill(region, d.region, pm, mask, base.shape[0], low=low)
    info.update({f"texture_{k}": v for k, v in fi.items()})
    if not w.any():
        return d.region, d.inner, d.alpha, info
    w3 = w[..., None]
    res = d.region.astype(np.float32) * (1 - w3) + filled * w3
    out = np.clip(np.round(res), 0, 255).astype(np.uint8)
    np.copyto(out, region, where=(mask == 0)[..., None])
    inner = d.inner.astype(np.float32) * (1 - w3) + filled * w3
    alpha = np.maximum(d.alpha, w).astype(np.float32)
    alpha = np.where(mask > 0, alpha, 0).astype(np.float32)
    return out, np.clip(np.round(inner), 0, 255).astype(np.uint8), alpha, info
