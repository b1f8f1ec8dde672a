"""The ``colour`` composite (colour scribbles): the photo takes the generator's colour change and
keeps its own texture — a red cap, not a red bar.

The ``detail`` composite fades to the generated pixels where the edited rendering shows new
structure; a stroke of flat colour reads as new structure there, so a scribble came out as an
opaque, blurred bar of the generator's pixels.  A colour scribble changes colour, not shape, so
here nothing is taken from the generator but the *low band of its colour change*, split into
lightness and chroma (CIE Lab):

1. ``Δ = Lab(E) − Lab(B)`` between the edited and the unedited rendering, low-passed at the band
   split of :mod:`priorpaint.compositing.detail` (formed at no more than ``LOW_BAND_LEVEL · R``
   pixels, then resized linearly to the photo's square).
2. Chroma: ``ab = ab(photo) + Δab`` — the stroke's colour, over the photo's own colour detail.
3. Lightness: the photo's lightness detail ``L − low(L)`` is kept over the new low band
   ``low(L) + ΔL``, amplified where the stroke brightens a dark part by
   ``g = clip((low(L) + ΔL + K) / (low(L) + K), 1, GAIN_MAX)``: a black cap painted red shows its
   folds in red rather than a flat patch (the texture that was there, at the new lightness).
4. Blend under the inward-feathered edit mask; where the mask is 0 the photo is copied bit for bit.

A grayscale photo's rendering is gray, so ``Δab`` is 0 and only the lightness changes.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import cv2
import numpy as np

from .blend import default_feather, feather_mask
from .detail import LOW_BAND_LEVEL, _rows, band_sigma, low_band

#: the mode name an edit kind declares (:class:`priorpaint.edits.registry.EditKind.composite`)
MODE = "colour"
#: lightness offset (Lab L units) of the detail gain, and the gain's ceiling
K, GAIN_MAX = 10.0, 3.0
#: the guided filter's window (a share of the square) and its regulariser (Lab L units squared)
GUIDE_RADIUS, GUIDE_EPS = 1 / 48, 64.0
#: rows of the selection's box composited at a time
STRIP_ROWS = 256


def to_lab(rgb_u8_or_float: np.ndarray) -> np.ndarray:
    """CIE Lab (float32) of RGB pixels on 0..255."""
    x = rgb_u8_or_float.astype(np.float32)
    return cv2.cvtColor(np.ascontiguousarray(x / 255.0), cv2.COLOR_RGB2Lab)


def from_lab(lab: np.ndarray) -> np.ndarray:
    """RGB on 0..255 (float32, unclipped) of CIE Lab pixels: :func:`to_lab`'s inverse."""
    return cv2.cvtColor(np.ascontiguousarray(lab, np.float32), cv2.COLOR_Lab2RGB) * 255.0


def _bounds(mask: np.ndarray) -> Tuple[slice, slice]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def guided(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter of each channel of ``src`` by the gray ``guide``: ``src`` made
    locally linear in the guide, so its transitions snap to the guide's edges."""
    k = (2 * radius + 1, 2 * radius + 1)
    box = lambda x: cv2.blur(x, k, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    mi = box(guide)
    var = box(guide * guide) - mi * mi
    out = np.empty_like(src)
    for c in range(src.shape[2]):
        p = src[..., c]
        mp = box(p)
        a = (box(guide * p) - mi * mp) / (var + eps)
        b = mp - a * mi
        out[..., c] = box(a) * guide + box(b)
    return out


def colour_change(base: np.ndarray, edited: np.ndarray, side: int, photo: Optional[np.ndarray] = None) -> np.ndarray:
    """``low(Lab(E) − Lab(B))`` formed at no more than ``LOW_BAND_LEVEL · R`` pixels (float32; each
    strip of the composite enlarges its own rows of it, linearly, to the photo's square); with the photo's
    square, guided by its lightness (:data:`GUIDE_RADIUS`, :data:`GUIDE_EPS`) so the change
    stops at the photo's own edges rather than bleeding over them."""
    res = base.shape[0]
    mid = side if side <= res else min(side, LOW_BAND_LEVEL * res)
    interp = cv2.INTER_CUBIC if mid > res else cv2.INTER_AREA
    up = [cv2.resize(x.astype(np.float32), (mid, mid), interpolation=interp) if mid != res else x.astype(np.float32)
          for x in (base, edited)]
    delta = to_lab(np.clip(up[1], 0, 255)) - to_lab(np.clip(up[0], 0, 255))
    delta = low_band(delta, band_sigma(mid, res))
    if photo is not None:
        small = cv2.resize(photo, (mid, mid), interpolation=cv2.INTER_AREA) if mid != side else photo
        guide = low_band(to_lab(small)[..., 0], band_sigma(mid, res))   # edges, not texture: Δ must not copy the grain
        delta = guided(guide, delta, max(2, int(round(GUIDE_RADIUS * mid))), GUIDE_EPS)
    return delta.astype(np.float32)


def colour_composite(region: np.ndarray, base: np.ndarray, edited: np.ndarray, mask: np.ndarray,
                     feather: Optional[int] = None):
    """``(result_region, inner, alpha, info)`` as :func:`priorpaint.compositing.detail.composite_square`
    returns them: ``region`` (side, side, 3) uint8 the photo's square, ``base`` / ``edited`` (R, R, 3)
    uint8 the renderings, ``mask`` (side, side) uint8 the edit mask."""
    side = region.shape[0]
    res = base.shape[0]
    radius = default_feather(side) if feather is None else int(feather)
    alpha = feather_mask(mask, radius)
    info: Dict[str, object] = {"mode": MODE, "scale": side / float(res), "band_sigma_px": band_sigma(side, res),
                               "feather_px": radius}
    if np.array_equal(base, edited) or not mask.any():
        return region.copy(), region.copy(), alpha, info
    delta = colour_change(base, edited, side, region)
    sigma = max(band_sigma(side, res), 1.0)
    ys, xs = _bounds(mask > 0)
    pad = int(np.ceil(3 * sigma))
    out = region.copy()
    inner_u8 = region.copy()
    gains = []
    for r0 in range(ys.start, ys.stop, STRIP_ROWS):
        r1 = min(ys.stop, r0 + STRIP_ROWS)
        p0, p1 = max(0, r0 - pad), min(side, r1 + pad)   # rows around the strip for the lightness blur
        lab = to_lab(region[p0:p1, xs])
        L = lab[..., 0]
        Llow = cv2.GaussianBlur(L, (0, 0), sigma)
        d = _rows(delta, side, p0, p1)[:, xs]
        gain = np.clip((Llow + d[..., 0] + K) / (Llow + K), 1.0, GAIN_MAX)
        new = np.empty_like(lab)
        new[..., 0] = Llow + d[..., 0] + gain * (L - Llow)
        new[..., 1:] = lab[..., 1:] + d[..., 1:]
        new[..., 0] = np.clip(new[..., 0], 0.0, 100.0)
        inner = from_lab(new)[r0 - p0:r1 - p0]
        photo = region[r0:r1, xs].astype(np.float32)
        a = np.ascontiguousarray(alpha[r0:r1, xs])
        gains.append(float(gain[r0 - p0:r1 - p0][a > 0].max()) if (a > 0).any() else 1.0)
        box = cv2.add(cv2.blendLinear(np.ascontiguousarray(inner), photo, a, 1.0 - a), 0, dtype=cv2.CV_8U)
        np.copyto(box, region[r0:r1, xs], where=(a == 0)[..., None])
        out[r0:r1, xs] = box
        inner_u8[r0:r1, xs] = cv2.add(np.ascontiguousarray(inner), 0, dtype=cv2.CV_8U)
    info["detail_gain_max"] = max(gains) if gains else 1.0
    return out, inner_u8, alpha, info
