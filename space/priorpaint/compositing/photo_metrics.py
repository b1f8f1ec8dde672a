"""Quality figures at the photo's resolution, inside the selection's square.

The model-resolution figures (``psnr_projection``, ``psnr_adapted``, ``edit_fidelity``) say
how well the generator fits the crop *after it was shrunk to the model's size*; they cannot
see what compositing does to the photo's own detail.  These can:

``psnr_photo``
    PSNR (dB) of the result against the photo inside the selection, at the photo's
    resolution.  For a render without edits this is the **no-edit round trip**; a
    bit-identical result is reported as :data:`PSNR_IDENTICAL` (100 dB).
``detail_kept``
    High-frequency energy of the result over the photo's inside the edit mask: the mean
    absolute Laplacian of the luminance (3×3), result / photo.  1 = all the photo's fine
    detail survived; the upsampled generator square of ``replace`` gives ~0.2 on a 230 px face.
``effect_carried``
    Pearson correlation inside the edit mask between the low band of ``result − photo``
    (Gaussian, the band split of :func:`priorpaint.compositing.detail.band_sigma`; a large
    band is measured on block means, at ~6 samples per sigma) and the
    model-resolution change ``edited − unedited`` resized to the photo's square, blurred
    alike and weighted by the feathered edit mask (the change the user asked for, where they
    asked for it): does the result change the photo the way the generator's edit changes its
    own rendering?  ``None`` when the edit changes nothing.
``seam_grain``
    The grain step at the edge of the edit mask: ``|1 − HF(result) / HF(photo)|`` over the ring
    just inside the edge (where the feather blends; its width is twice the feather radius),
    HF = mean absolute Laplacian.  Outside the mask the result *is* the photo, so 0 means
    inside and outside share the photo's grain; the ``replace`` square's smooth pixels give
    ~0.5–0.8.
``ghost``
    For edits that move structure: where the unedited rendering has an edge that the edited
    rendering no longer has (strong old gradient, weak new one, at model resolution), how
    much of the photo's old edge the result still shows: mean gradient magnitude of the
    result over the photo's there, both blurred to the model's scale.  The edited
    rendering's own value (what the content itself keeps there) is ``ghost_reference``; a
    result that follows the edited content has ``ghost`` close to it, the naive residual
    ``photo + Δ`` keeps the old edges (``ghost`` near 1).  ``None`` when no edge vanished.
"""

from __future__ import annotations

from typing import Dict, Optional

import cv2
import numpy as np

from .blend import feather_mask
from .detail import PYRAMID_SIGMA, band_sigma, low_band

PSNR_IDENTICAL = 100.0
#: rows summed at a time (a large selection's figures never copy it whole to float64)
ROWS = 512
NAMES = ("psnr_photo", "detail_kept", "effect_carried", "seam_grain", "ghost", "ghost_reference")


def _luma(img: np.ndarray) -> np.ndarray:
    """The luminance (float32), formed in strips: no full-size three-channel float copy."""
    out = np.empty(img.shape[:2], np.float32)
    for r0 in range(0, img.shape[0], ROWS):   # one OpenCV pass per strip instead of five numpy ones
        out[r0:r0 + ROWS] = cv2.transform(img[r0:r0 + ROWS].astype(np.float32), _LUMA).reshape(out[r0:r0 + ROWS].shape)
    return out


_LUMA = np.array([[0.299, 0.587, 0.114]], np.float32)


def _resize(img: np.ndarray, side: int, interp=None) -> np.ndarray:
    img = img.astype(np.float32)
    if img.shape[0] == side:
        return img
    if interp is None:
        interp = cv2.INTER_CUBIC if side > img.shape[0] else cv2.INTER_AREA
    return cv2.resize(img, (side, side), interpolation=interp)


def _factor(sigma: float) -> int:
    """How many times a low band of ``sigma`` pixels may be shrunk and keep
    :data:`~priorpaint.compositing.detail.PYRAMID_SIGMA` samples per sigma."""
    return max(1, int(sigma // PYRAMID_SIGMA))


def _shrink(img: np.ndarray, f: int) -> np.ndarray:
    """Means of ``f``×``f`` blocks (float32; the last ``side % f`` rows and columns dropped),
    formed in strips: never a full-size float copy."""
    n = img.shape[0] // f
    out = np.empty((n, n) + img.shape[2:], np.float32)
    step = max(1, ROWS // f)
    for i0 in range(0, n, step):
        i1 = min(n, i0 + step)
        rows = img[i0 * f:i1 * f, :n * f].astype(np.float32)
        out[i0:i1] = cv2.resize(rows, (n, i1 - i0), interpolation=cv2.INTER_AREA).reshape((i1 - i0, n) + img.shape[2:])
    return out


def _shrunk_luma(img: np.ndarray, f: int) -> np.ndarray:
    """``_shrink(_luma(img), f)``, bit for bit, a strip at a time: no full-size luminance."""
    n = img.shape[0] // f
    out = np.empty((n, n), np.float32)
    step = max(1, ROWS // f)
    for i0 in range(0, n, step):
        i1 = min(n, i0 + step)
        out[i0:i1] = cv2.resize(_luma(img[i0 * f:i1 * f, :n * f]), (n, i1 - i0), interpolation=cv2.INTER_AREA)
    return out


def psnr_photo(result: np.ndarray, photo: np.ndarray, mask: np.ndarray) -> Optional[float]:
    """PSNR (dB, 8-bit peak) inside ``mask > 0``; :data:`PSNR_IDENTICAL` when bit-identical there.

    The squared error is OpenCV's masked ``NORM_L2SQR`` (exact for 8-bit images: integer sums
    well inside a double's 53 bits), with no copy of the selected pixels."""
    sel = mask if mask.dtype == np.uint8 else (mask > 0).astype(np.uint8)
    n = cv2.countNonZero(sel)
    if n == 0:
        return None
    if result.dtype != np.uint8 or photo.dtype != np.uint8:
        result, photo = result.astype(np.float64), photo.astype(np.float64)
    se = cv2.norm(np.ascontiguousarray(result), np.ascontiguousarray(photo), cv2.NORM_L2SQR,
                  mask=np.ascontiguousarray(sel))
    mse = se / (n * (result.shape[2] if result.ndim == 3 else 1))
    if mse == 0.0:
        return PSNR_IDENTICAL
    return float(min(PSNR_IDENTICAL, 10.0 * np.log10(255.0 ** 2 / mse)))


def high_frequency(img: np.ndarray) -> np.ndarray:
    """|Laplacian| of the luminance (3×3 kernel), float32."""
    return np.abs(cv2.Laplacian(_luma(img), cv2.CV_32F, ksize=3))


def _hf_strips(img: np.ndarray):
    """(first row, |Laplacian| of those rows) of ``img``, a strip at a time: each strip is
    formed with one row of its neighbours, so the rows equal :func:`high_frequency`'s."""
    h = img.shape[0]
    for r0 in range(0, h, ROWS):
        r1 = min(h, r0 + ROWS)
        a0, a1 = max(0, r0 - 1), min(h, r1 + 1)
        yield r0, high_frequency(img[a0:a1])[r0 - a0:r1 - a0]


def _hf_sum(img: np.ndarray, weight: np.ndarray) -> float:
    """Sum of ``high_frequency(img) · weight``: a boolean mask, or a uint8 mask weighting
    by ``mask / 255`` (formed a strip at a time)."""
    return _hf_sums(img, [weight])[0]


def _hf_sums(img: np.ndarray, weights) -> list:
    """:func:`_hf_sum` of ``img`` for each of ``weights``, from one pass of strips (the
    |Laplacian| of a 36 MP square costs about a second per pass)."""
    totals = [0.0] * len(weights)
    for r0, hf in _hf_strips(img):
        for i, weight in enumerate(weights):
            w = weight[r0:r0 + hf.shape[0]]
            totals[i] += float(hf[w].sum()) if w.dtype == bool else float((hf * (w.astype(np.float32) / 255.0)).sum())
    return totals


def _ratio(result_sum: float, photo_sum: float) -> Optional[float]:
    return None if photo_sum <= 0 else float(result_sum / photo_sum)


def detail_kept(result: np.ndarray, photo: np.ndarray, mask: np.ndarray) -> Optional[float]:
    """Mean |Laplacian| of the result over the photo's, weighted by the edit mask."""
    if not mask.any():
        return None
    hp = _hf_sum(photo, mask)
    if hp <= 0:
        return None
    return _ratio(_hf_sum(result, mask), hp)


def effect_carried(result: np.ndarray, photo: np.ndarray, base: np.ndarray, edited: np.ndarray,
                   mask: np.ndarray, feather: int = 0) -> Optional[float]:
    """Correlation inside the edit mask between low(result − photo) and the asked change,
    ``alpha · low(resize(edited − base))`` (``alpha``: the mask feathered as the composite does)."""
    side, res = photo.shape[0], base.shape[0]
    delta = edited.astype(np.float32) - base.astype(np.float32)
    if not np.any(delta):
        return None
    sigma = max(band_sigma(side, res), 1.0)
    f = _factor(sigma)
    if f > 1:   # both sides are low bands: measured on f×f block means, at sigma / f
        n = side // f
        sel = _shrink(mask, f) > 0
        want = low_band(_resize(delta, n), sigma / f)
        want *= feather_mask((_shrink(mask, f) + 0.5).astype(np.uint8), max(0, int(round(feather / f))))[..., None]
        got = low_band(_shrink(result, f) - _shrink(photo, f), sigma / f)
        return _correlation(got, want, sel)
    want = low_band(_resize(delta, side), sigma)
    want *= feather_mask(mask, int(feather))[..., None]
    got = low_band(cv2.subtract(result, photo, dtype=cv2.CV_32F), sigma)
    return _correlation(got, want, mask > 0)


def _correlation(got: np.ndarray, want: np.ndarray, sel: np.ndarray) -> Optional[float]:
    """Pearson correlation of ``got`` and ``want`` over ``sel``, summed in strips (float64)."""
    n = sa = sb = saa = sbb = sab = 0.0
    for r0 in range(0, sel.shape[0], ROWS):
        s = sel[r0:r0 + ROWS]
        a = got[r0:r0 + ROWS][s].astype(np.float64).ravel()
        b = want[r0:r0 + ROWS][s].astype(np.float64).ravel()
        n += a.size
        sa, sb = sa + a.sum(), sb + b.sum()
        saa, sbb, sab = saa + (a * a).sum(), sbb + (b * b).sum(), sab + (a * b).sum()
    if n == 0:
        return None
    va, vb = saa - sa * sa / n, sbb - sb * sb / n
    den = float(np.sqrt(max(va, 0.0) * max(vb, 0.0)))
    if den <= 1e-12:
        return None
    return float((sab - sa * sb / n) / den)


def seam_ring(mask: np.ndarray, feather: int) -> Optional[np.ndarray]:
    """The ring just inside the edit mask's edge (bool) where :func:`seam_grain` is measured;
    None when it has fewer than 16 pixels."""
    inside = cv2.threshold(mask, 0, 1, cv2.THRESH_BINARY)[1] if mask.dtype == np.uint8 else (mask > 0).astype(np.uint8)
    if not inside.any():
        return None
    padded = cv2.copyMakeBorder(inside, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)  # the square's border counts
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]   # as an edge only where the mask meets it
    ring = (inside > 0) & (dist <= 2 * max(int(feather), 1) + 1)
    del dist
    return ring if int(np.count_nonzero(ring)) >= 16 else None


def _seam(result_sum: float, photo_sum: float, count: int) -> Optional[float]:
    hp = photo_sum / count
    if hp <= 0:
        return None
    return float(abs(1.0 - (result_sum / count) / hp))


def seam_grain(result: np.ndarray, photo: np.ndarray, mask: np.ndarray, feather: int) -> Optional[float]:
    """``|1 − HF(result)/HF(photo)|`` on the ring just inside the edit mask's edge."""
    ring = seam_ring(mask, feather)
    if ring is None:
        return None
    return _seam(_hf_sum(result, ring), _hf_sum(photo, ring), int(np.count_nonzero(ring)))


def _grad(gray: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    return np.sqrt(gx * gx + gy * gy)


def ghost(result: np.ndarray, photo: np.ndarray, base: np.ndarray, edited: np.ndarray,
          mask: np.ndarray) -> Dict[str, Optional[float]]:
    """``{"ghost", "ghost_reference"}``: old edges the result keeps where the edit removed them."""
    side, res = photo.shape[0], base.shape[0]
    none = {"ghost": None, "ghost_reference": None}
    if not np.any(edited.astype(np.int16) - base.astype(np.int16)):
        return none
    gb, ge = _grad(_luma(base)), _grad(_luma(edited))
    m_small = _resize(mask, res, cv2.INTER_AREA) > 127
    if not m_small.any():
        return none
    strong = np.percentile(gb[m_small], 85)
    vanished = m_small & (gb >= max(strong, 8.0)) & (ge < 0.5 * gb)
    if vanished.sum() < 3:
        return none
    sigma = max(band_sigma(side, res), 1.0)
    f = _factor(sigma)   # edges of the low band: measured on f×f block means, at sigma / f
    n = side // f
    sel = _resize(vanished.astype(np.float32), n, cv2.INTER_NEAREST) > 0.5

    def luma(img):
        return _shrunk_luma(img, f) if f > 1 else _luma(img)
    g_res = _grad(low_band(luma(result), sigma / f))[sel].mean()
    g_photo = _grad(low_band(luma(photo), sigma / f))[sel].mean()
    if g_photo <= 1e-6:
        return none
    g_ref = _grad(low_band(_luma(_resize(edited, n)), sigma / f))[sel].mean()
    g_base = _grad(low_band(_luma(_resize(base, n)), sigma / f))[sel].mean()
    # the edited content's own edge strength there, relative to the old content's
    ref = float(g_ref / g_base) if g_base > 1e-6 else None
    return {"ghost": float(g_res / g_photo), "ghost_reference": ref}


def photo_metrics(result: np.ndarray, photo: np.ndarray, base: np.ndarray, edited: np.ndarray,
                  edit_mask: np.ndarray, selection: np.ndarray, feather: int) -> Dict[str, Optional[float]]:
    """Every figure of this module for one render of the square ``photo`` -> ``result``.

    ``base`` / ``edited``: the generator's unedited and edited renderings (R×R×3 uint8);
    ``edit_mask`` and ``selection``: square-region uint8 masks.
    """
    # detail_kept and seam_grain from one |Laplacian| pass over each image
    ring = seam_ring(edit_mask, feather) if edit_mask.any() else None
    weights = [edit_mask] + ([ring] if ring is not None else [])
    hp = _hf_sums(photo, weights) if edit_mask.any() else None
    hr = _hf_sums(result, weights) if hp is not None and hp[0] > 0 or ring is not None else None
    out: Dict[str, Optional[float]] = {
        "psnr_photo": psnr_photo(result, photo, selection),
        "detail_kept": _ratio(hr[0], hp[0]) if hr is not None else None,
        "effect_carried": effect_carried(result, photo, base, edited, edit_mask, feather),
        "seam_grain": _seam(hr[1], hp[1], int(np.count_nonzero(ring))) if ring is not None else None,
    }
    del ring
    out.update(ghost(result, photo, base, edited, edit_mask))
    return {k: (None if v is None else round(float(v), 4)) for k, v in out.items()}
