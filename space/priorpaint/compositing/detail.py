"""Detail-preserving compositing: the photo keeps its own detail, the generator gives the change.

The generator works at its own resolution ``R`` (64 px for the embedded model), the
selection's square is ``side`` pixels of the photo, usually several times more.  The
``replace`` composite (:func:`priorpaint.compositing.blend.composite`) pastes the
generator's square, upsampled: everything finer than the model's pixels is lost.  The
``detail`` composite here takes from the generator only what the edit *changes*:

1. **Motion.** Dense optical flow (OpenCV's Farnebäck, on structure-normalised gray images so
   that a change of light or colour is not read as motion) between the unedited rendering
   ``B = G′(z_h)`` (or ``G(z_h)``) and the edited one ``E = G′(z_h_e)``, both at model
   resolution, in both directions.  Flow under ``MIN_FLOW`` model pixels is set to zero
   (smoothly), and so is flow that does not *explain* the edited structure (the warp must
   remove a share of the mismatch that no motion leaves): appearance edits, whose structure
   is already in place, do not wobble the photo, whatever the estimator reads in flat or
   re-rendered parts.
2. **Warp.** The flow is upsampled to the photo's square (times ``side / R``) and the photo is
   warped along it (bicubic, only where the flow is not zero), so its detail moves with the
   content; ``B`` is warped alike at model resolution.
3. **Low band of the change.** ``Δ = E − warp(B)`` is what motion does not explain (light,
   colour, a changed shape's shading).  It is low-passed with a Gaussian of
   ``sigma = BAND * side / R`` photo pixels (formed at most ``LOW_BAND_LEVEL · R`` pixels wide,
   then resized linearly: a pyramid blur): the band split follows the model-to-photo scale,
   so the change carries nothing finer than the model can know, and the photo's band above
   it is kept.  ``detail = warp(photo) + low(Δ)``.
4. **Correspondence.** Where the flow is not forward–backward consistent, or the warped
   unedited rendering does not match the edited one in *structure* (new content: a painted
   object, a removed part; an occlusion) — judged over a neighbourhood of ``MISMATCH_SCALE``
   of the square and against the mismatch of this image's *unrelated* structure, so a
   re-rendered texture is not new content — the photo has nothing to give: the result fades
   smoothly (a blurred confidence map) to the generator's pixels, as ``replace`` would show.
5. **Blend.** ``photo + alpha · (inner − photo)`` with the inward-feathered edit mask of
   :func:`~priorpaint.compositing.blend.feather_mask`: wherever the mask is 0 the photo is
   copied bit for bit, and inside and outside the edge share the photo's grain (no seam).

Everything at the photo's resolution runs with OpenCV on float32, inside the edit mask's
bounding box only; what comes from the generator (the low band, the confidence, the
generated pixels) is formed at no more than ``LOW_BAND_LEVEL · R`` pixels.

An edit whose rendered change is zero (``E == B``, pixel for pixel) returns the photo's
square unchanged, bit for bit.  A grayscale photo's detail band stays gray (the warp and the
band split act alike on every channel).

**Selections smaller than the model** (``side <= R``): the photo then has no detail the model
lacks.  The change is resized *down* (area averaging) to the photo's scale and added without
a further blur (the band split would be below one photo pixel); flow, warp and the fade to
generated pixels work as above, at the photo's scale.  So ``detail`` stays a faithful
rendering of the edit on a small selection and still keeps what the edit leaves alone exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import cv2
import numpy as np

from .blend import blend_region, default_feather, feather_mask, resize_generated

#: Gaussian sigma of the band split, in model pixels (times side / R photo pixels)
BAND = 0.5
#: flow below this many model pixels is treated as no motion (smooth ramp up to 2x)
MIN_FLOW = 0.2
#: forward–backward error (model pixels): consistent up to the first, correspondence lost at the second
FB_CONSISTENT, FB_LOST = 0.5, 1.5
#: structure mismatch, as a share of the mismatch between *unrelated* structure of the same
#: image: the same structure up to the first, no correspondence from the second
STRUCTURE_SAME, STRUCTURE_LOST = 0.45, 0.95
#: the flow is used only where it explains the edited structure's change: not where the warp
#: removes less than the first share (15 %) of the mismatch that no motion leaves, fully where
#: it removes the second (40 %) (a mismatch under MOTION_FLOOR · U counts as that much: flat parts decide nothing)
MOTION_GAIN, MOTION_FLOOR = (0.15, 0.4), 0.1
#: the neighbourhood (a share of the square) over which structures are compared: a
#: coherent mismatch (new content, an occlusion) spans it, a re-rendered texture does not
MISMATCH_SCALE = 1 / 32
#: change (0..1, largest channel) under which a pixel's correspondence is never doubted
CHANGE_FLOOR = 0.06
#: the low band is blurred at most at this many times the model's resolution, then resized
#: (linear) to the photo's square: a pyramid blur, as exact as the blur at full size
LOW_BAND_LEVEL = 4

MODES = ("detail", "replace")


@dataclass
class DetailResult:
    region: np.ndarray                 # (side, side, 3) uint8: the composited square
    inner: np.ndarray                  # (side, side, 3) uint8: the layer's pixels (the result before the
                                       # mask blend; the photo's own outside the edit mask's bounding box)
    alpha: np.ndarray                  # (side, side) float32: the feathered edit mask
    flow: Optional[np.ndarray]         # (R, R, 2) float32: backward flow edited -> unedited, model px (None: no change)
    confidence: Optional[np.ndarray]   # (R, R) float32 in [0, 1]: where the photo's detail was kept
    info: Dict[str, object] = field(default_factory=dict)


def check_mode(mode: str) -> str:
    from ..errors import InputError
    if mode not in MODES:
        raise InputError(f"composite must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def _gray(img: np.ndarray) -> np.ndarray:
    img = img.astype(np.float32) / 255.0
    return (0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2]).astype(np.float32)


def _structure(gray: np.ndarray) -> np.ndarray:
    """Locally mean- and contrast-normalised luminance: invariant to light and colour shifts."""
    r = gray.shape[0]
    sig = max(1.0, r / 16.0)
    mean = cv2.GaussianBlur(gray, (0, 0), sig)
    hp = gray - mean
    var = cv2.GaussianBlur(hp * hp, (0, 0), sig)
    floor = max(float(hp.std()), 1e-3) * 0.5
    return (hp / np.sqrt(var + floor * floor)).astype(np.float32)


def _to_u8(n: np.ndarray) -> np.ndarray:
    return np.clip(np.round(128.0 + 48.0 * n), 0, 255).astype(np.uint8)


def _ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Smoothstep: 0 up to ``lo``, 1 from ``hi``, C1-smooth between."""
    t = np.clip((x - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def _flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Farnebäck flow f with a(x) ≈ b(x + f(x)), in pixels of the inputs."""
    r = a.shape[0]
    levels = max(1, min(4, int(np.log2(max(r, 8) / 8))))
    win = max(5, int(round(r / 8)) | 1)
    return cv2.calcOpticalFlowFarneback(a, b, None, pyr_scale=0.5, levels=levels, winsize=win,
                                        iterations=5, poly_n=5, poly_sigma=1.1, flags=0)


def _warp(img: np.ndarray, flow: np.ndarray, interp=cv2.INTER_LINEAR) -> np.ndarray:
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(img, gx + flow[..., 0], gy + flow[..., 1], interp, borderMode=cv2.BORDER_REFLECT_101)


def _mismatch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Local mean of ``|a − b|`` over :data:`MISMATCH_SCALE` of the square."""
    return cv2.GaussianBlur(np.abs(a - b), (0, 0), max(1.0, MISMATCH_SCALE * a.shape[0]))


def estimate_motion(base: np.ndarray, edited: np.ndarray) -> Tuple[np.ndarray, np.ndarray, Dict[str, float]]:
    """``(flow, confidence, info)`` at model resolution between the unedited and edited renderings.

    ``flow`` (R, R, 2) maps each edited pixel to where it was in the unedited one
    (``edited(x) ≈ base(x + flow(x))``); ``confidence`` (R, R) in [0, 1] says where that
    correspondence holds (or no real change happened there).

    Structure mismatches are measured in units of this image's own *unrelated* mismatch
    ``U`` (between its structure and the same structure shifted by a quarter of the square),
    so the thresholds mean the same on a busy and a flat picture.  The flow is kept only
    where it makes the warped unedited structure match the edited one better than no
    motion does (removing a :data:`MOTION_GAIN` share of the mismatch): a colour or light edit, whose structure is
    already in place, moves nothing, however the flow estimator reads it.  Correspondence is
    full up to :data:`STRUCTURE_SAME` · U of mismatch left after the warp (and forward–backward
    errors up to :data:`FB_CONSISTENT`) and lost from :data:`STRUCTURE_LOST` · U (or
    :data:`FB_LOST`); it is doubted only where the rendering really changed.
    """
    r = base.shape[0]
    gb, ge = _gray(base), _gray(edited)
    sb, se = _structure(gb), _structure(ge)
    unrelated = max(float(np.abs(sb - np.roll(sb, max(1, r // 4), axis=(0, 1))).mean()), 1e-3)
    ub, ue = _to_u8(sb), _to_u8(se)
    f_eb = _flow(ue, ub)              # edited -> base
    f_be = _flow(ub, ue)              # base -> edited
    mag = np.linalg.norm(f_eb, axis=2)
    gate = _ramp(mag, MIN_FLOW, 2.0 * MIN_FLOW)
    # motion only where it explains the edited structure better than standing still
    still = _mismatch(se, sb)
    gain = (still - _mismatch(se, _structure(_warp(gb, f_eb * gate[..., None])))) / np.maximum(still, MOTION_FLOOR * unrelated)
    use = _ramp(gain, *MOTION_GAIN)
    use = cv2.GaussianBlur(use, (0, 0), 1.0)
    gate = gate * np.where(use > 1e-3, use, 0.0)
    f_eb = (f_eb * gate[..., None]).astype(np.float32)
    # forward-backward: following f_eb then f_be should come back (where the flow is used)
    back = _warp(f_be, f_eb)
    fb_err = np.linalg.norm(f_eb + back * gate[..., None], axis=2)
    c_fb = 1.0 - _ramp(fb_err, FB_CONSISTENT, FB_LOST)
    # structure after the warp
    s_err = _mismatch(se, _structure(_warp(gb, f_eb)))
    c_s = 1.0 - _ramp(s_err, STRUCTURE_SAME * unrelated, STRUCTURE_LOST * unrelated)
    # only doubt where something really changed
    eb = edited.astype(np.float32) / 255.0
    bb = base.astype(np.float32) / 255.0
    change = np.minimum(np.abs(eb - _warp(bb, f_eb)).max(axis=2), np.abs(eb - bb).max(axis=2))
    change = cv2.GaussianBlur(change, (0, 0), 1.0)
    doubt = np.clip(change / CHANGE_FLOOR - 1.0, 0.0, 1.0)
    conf = 1.0 - doubt * (1.0 - c_fb * c_s)
    conf = np.clip(cv2.GaussianBlur(conf.astype(np.float32), (0, 0), 1.0), 0.0, 1.0)
    used = np.linalg.norm(f_eb, axis=2)
    info = {"flow_max_model_px": float(mag.max()), "flow_used_max_model_px": float(used.max()),
            "flow_mean_model_px": float(used.mean()), "confidence_mean": float(conf.mean())}
    return f_eb, conf.astype(np.float32), info


def _resize(img: np.ndarray, side: int, interp=None) -> np.ndarray:
    img = img.astype(np.float32, copy=False)
    if img.shape[0] == side:
        return img
    if interp is None:
        interp = cv2.INTER_CUBIC if side > img.shape[0] else cv2.INTER_AREA
    return cv2.resize(img, (side, side), interpolation=interp)


def band_sigma(side: int, resolution: int) -> float:
    """The band split's Gaussian sigma in photo pixels (0 when the photo is not finer than the model)."""
    scale = side / float(resolution)
    return BAND * scale if scale > 1.0 else 0.0


#: above this sigma (photo pixels), :func:`low_band` blurs a shrunk copy (a pyramid blur)
PYRAMID_SIGMA = 6.0


def low_band(img: np.ndarray, sigma: float) -> np.ndarray:
    """``img`` blurred by a Gaussian of ``sigma`` pixels (``img`` itself for sigma 0).

    A large sigma (over :data:`PYRAMID_SIGMA`; the photo metrics of a 36 MP selection ask
    for ~50 px) blurs a copy shrunk ``f = sigma // PYRAMID_SIGMA`` times by area averaging
    and enlarges the result linearly, with the blur reduced so the three filters together
    have the variance of the one asked for: the same low band (nothing finer than sigma is
    left in it) in ``1/f²`` of the time and memory of a full-size kernel of ``6·sigma`` taps.
    """
    if sigma <= 0:
        return img
    f = int(sigma // PYRAMID_SIGMA)
    if f < 2:
        return cv2.GaussianBlur(img, (0, 0), sigma)
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, int(round(w / f))), max(1, int(round(h / f)))), interpolation=cv2.INTER_AREA)
    # area shrink (box of f: variance f²/12) + linear enlargement (triangle of f: f²/6)
    s = float(np.sqrt(max((sigma / f) ** 2 - 0.25, 0.25)))
    small = cv2.GaussianBlur(small, (0, 0), s)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _mid_side(side: int, res: int) -> int:
    """The side the model-resolution contributions are formed at before the final linear resize."""
    return side if side <= res else min(side, LOW_BAND_LEVEL * res)


def upsampled_low_band(change: np.ndarray, side: int) -> np.ndarray:
    """The model-resolution ``change`` at the photo's square, low-passed at the band split.

    Equal to ``low_band(resize(change, side), band_sigma(side, R))`` (bicubic resize), but the
    blur runs at no more than :data:`LOW_BAND_LEVEL` times the model's resolution, where the
    band split is ``BAND · LOW_BAND_LEVEL`` pixels, and the blurred image (nothing finer than
    that left in it) is resized linearly to the square: a Gaussian-pyramid blur whose cost
    does not grow with the square's area.
    """
    res = change.shape[0]
    mid = _mid_side(side, res)
    low = low_band(_resize(change, mid), band_sigma(mid, res))
    return low if mid == side else cv2.resize(low, (side, side), interpolation=cv2.INTER_LINEAR)


def generator_part(change: np.ndarray, edited: np.ndarray, conf: Optional[np.ndarray],
                   side: int) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
    """``(low, shown, c)`` at the photo's square: what the generator contributes.

    ``inner = c · (warp(photo) + low) + (1 − c) · shown``: ``low`` is the low band of
    ``change``, ``shown`` the edited rendering as ``replace`` would show it, ``c`` the
    confidence (``shown`` and ``c`` are ``None`` where the confidence is 1 everywhere).  All
    three are smooth at the model's scale, so they are formed at :func:`_mid_side` and resized
    linearly to the square.
    """
    res = change.shape[0]
    mid = _mid_side(side, res)
    up = (lambda x: x) if mid == side else (lambda x: cv2.resize(x, (side, side), interpolation=cv2.INTER_LINEAR))
    low = up(low_band(_resize(change, mid), band_sigma(mid, res)))
    if conf is None or float(conf.min()) >= 1.0:
        return low, None, None
    c = up(_resize(conf, mid, cv2.INTER_LINEAR if mid > res else cv2.INTER_AREA))
    shown = up(_resize(edited, mid, cv2.INTER_LANCZOS4 if mid > res else cv2.INTER_AREA))
    return low, shown, c


def _bounds(mask: np.ndarray) -> Tuple[slice, slice]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


#: rows of the selection's box composited at a time (the float32 work is one strip's)
STRIP_ROWS = 256


def _rows(img: np.ndarray, side: int, y0: int, y1: int, cubic: bool = False) -> np.ndarray:
    """Rows ``y0:y1`` of ``img`` resized to ``(side, side)`` (linear, or bicubic), formed from
    the few rows of ``img`` they need: the columns by OpenCV's resize, the rows with its
    weights (pixel centres aligned, edges replicated); ``img`` itself at ``side``."""
    n = img.shape[0]
    if n == side:
        return img[y0:y1]
    fy = (np.arange(y0, y1, dtype=np.float64) + 0.5) * (n / float(side)) - 0.5
    lo = np.floor(fy).astype(np.int64)
    t = fy - lo
    if cubic:
        A = -0.75
        w = np.stack([((A * (t + 1) - 5 * A) * (t + 1) + 8 * A) * (t + 1) - 4 * A,
                      ((A + 2) * t - (A + 3)) * t * t + 1,
                      ((A + 2) * (1 - t) - (A + 3)) * (1 - t) * (1 - t) + 1], axis=1)
        w = np.concatenate([w, 1.0 - w.sum(axis=1, keepdims=True)], axis=1)
        taps = np.clip(lo[:, None] + np.arange(-1, 3)[None, :], 0, n - 1)
    else:
        t = np.where(lo < 0, 0.0, np.where(lo >= n - 1, 0.0, t))
        lo = np.clip(lo, 0, n - 1)
        w = np.stack([1.0 - t, t], axis=1)
        taps = np.stack([lo, np.minimum(lo + 1, n - 1)], axis=1)
    r0, r1 = int(taps.min()), int(taps.max()) + 1
    wide = cv2.resize(np.ascontiguousarray(img[r0:r1]), (side, r1 - r0),
                      interpolation=cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR)
    if wide.ndim < img.ndim:
        wide = wide.reshape((r1 - r0, side) + img.shape[2:])
    out = np.zeros((y1 - y0, side) + img.shape[2:], np.float32)
    shape = (-1,) + (1,) * (img.ndim - 1)
    for k in range(taps.shape[1]):
        out += wide[taps[:, k] - r0] * w[:, k].astype(np.float32).reshape(shape)
    return out


def _flow_reach(flow: np.ndarray, side: int, box: Tuple[slice, slice]):
    """The part ``(y0, y1, x0, x1)`` of ``box`` within reach of a non-zero flow vector (the
    bicubic upsampling of the flow reaches two model pixels), or ``None``."""
    res = flow.shape[0]
    scale = side / float(res)
    ys, xs = box
    my, mx = _bounds(np.any(flow != 0, axis=2))
    reach = 3
    y0, y1 = max(ys.start, int((my.start - reach) * scale)), min(ys.stop, int(np.ceil((my.stop + reach) * scale)))
    x0, x1 = max(xs.start, int((mx.start - reach) * scale)), min(xs.stop, int(np.ceil((mx.stop + reach) * scale)))
    return (y0, y1, x0, x1) if y0 < y1 and x0 < x1 else None


def _warp_rows(region: np.ndarray, flow: np.ndarray, reach, photo: np.ndarray, r0: int, r1: int,
               xs: slice) -> np.ndarray:
    """Rows ``r0:r1`` (columns ``xs``) of the photo warped bicubically along the upsampled
    ``flow`` where it reaches (:func:`_flow_reach`), a copy of ``photo`` (those rows, float32)
    elsewhere, reading only the source rows those rows need."""
    out = photo.copy()
    y0, y1, x0, x1 = reach
    a0, a1 = max(r0, y0), min(r1, y1)
    if a0 >= a1:
        return out
    side = region.shape[0]
    scale = side / float(flow.shape[0])
    up = _rows(flow, side, a0, a1, cubic=True)[:, x0:x1] * np.float32(scale)
    gx = np.arange(x0, x1, dtype=np.float32)[None, :] + up[..., 0]
    gy = np.arange(a0, a1, dtype=np.float32)[:, None] + up[..., 1]
    lo, hi = float(gy.min()), float(gy.max())
    s0 = max(0, int(np.floor(lo)) - 3)
    s1 = min(side, int(np.ceil(hi)) + 4)
    if lo < 2:             # reflected about the first row: those rows too
        s1 = min(side, max(s1, int(np.ceil(-lo)) + 4))
    if hi > side - 3:      # reflected about the last row
        s0 = max(0, min(s0, 2 * (side - 1) - int(np.ceil(hi)) - 4))
    src = region[s0:s1].astype(np.float32)
    gy -= np.float32(s0)
    out[a0 - r0:a1 - r0, x0 - xs.start:x1 - xs.start] = cv2.remap(
        src, gx, gy, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    return out


def _outside_copy(region: np.ndarray, ys: slice, xs: slice) -> np.ndarray:
    """A new array holding ``region``'s pixels outside the box ``(ys, xs)`` (the box's own are
    left for the caller to write): a full selection's box is the whole square, so nothing is
    copied twice."""
    out = np.empty_like(region)
    out[:ys.start] = region[:ys.start]
    out[ys.stop:] = region[ys.stop:]
    out[ys, :xs.start] = region[ys, :xs.start]
    out[ys, xs.stop:] = region[ys, xs.stop:]
    return out


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Round (half to even) and saturate to uint8 in one pass."""
    return cv2.add(x, 0, dtype=cv2.CV_8U)


def detail_composite(region: np.ndarray, base: np.ndarray, edited: np.ndarray, mask: np.ndarray,
                     feather: Optional[int] = None, motion: bool = True) -> DetailResult:
    """Composite an edit into the photo's square at the photo's resolution.

    ``region``: (side, side, 3) uint8, the photo's square; ``base`` / ``edited``: (R, R, 3)
    uint8, the generator's renderings of the unedited and edited state; ``mask``: (side,
    side) uint8 edit mask; ``feather``: the inward feather radius (default
    :func:`~priorpaint.compositing.blend.default_feather`); ``motion=False`` skips the flow
    (the change is then added as it is).  The photo-resolution work runs only inside the
    edit mask's bounding box: outside it the result and the layer are the photo's pixels.
    """
    side = region.shape[0]
    res = base.shape[0]
    if region.shape[:2] != (side, side) or mask.shape != (side, side):
        raise ValueError(f"region {region.shape} and mask {mask.shape} must be the same square")
    if base.shape != edited.shape:
        raise ValueError(f"unedited {base.shape} and edited {edited.shape} renderings differ in shape")
    radius = default_feather(side) if feather is None else int(feather)
    alpha = feather_mask(mask, radius)
    info: Dict[str, object] = {"mode": "detail", "scale": side / float(res),
                               "band_sigma_px": band_sigma(side, res), "feather_px": radius}
    if np.array_equal(base, edited) or not mask.any():
        info.update(flow_max_model_px=0.0, confidence_mean=1.0, motion=False)
        return DetailResult(region=region.copy(), inner=region.copy(), alpha=alpha, flow=None,
                            confidence=None, info=info)
    box = _bounds(mask > 0)
    b = base.astype(np.float32)
    e = edited.astype(np.float32)
    flow = conf = None
    moved = False
    if motion:
        flow, conf, minfo = estimate_motion(base, edited)
        info.update(minfo)
        moved = bool(np.any(flow != 0))
    info["motion"] = moved
    if moved:
        b = _warp(b, flow)
    # the generator's part at the model's scale (tiny); each strip of rows enlarges its own rows
    mid = _mid_side(side, res)
    low_mid = low_band(_resize(e - b, mid), band_sigma(mid, res))
    c_mid = shown_mid = None
    if conf is not None and float(conf.min()) < 1.0:
        c_mid = _resize(conf, mid, cv2.INTER_LINEAR if mid > res else cv2.INTER_AREA)
        shown_mid = _resize(e, mid, cv2.INTER_LANCZOS4 if mid > res else cv2.INTER_AREA)
    reach = _flow_reach(flow, side, box) if moved else None
    ys, xs = box
    out_region = _outside_copy(region, ys, xs)   # the box is filled strip by strip below
    inner_u8 = _outside_copy(region, ys, xs)
    for r0 in range(ys.start, ys.stop, STRIP_ROWS):
        # one strip of the box at a time: the float32 work is a strip's, never the square's
        r1 = min(ys.stop, r0 + STRIP_ROWS)
        photo = region[r0:r1, xs].astype(np.float32)
        inner = _warp_rows(region, flow, reach, photo, r0, r1, xs) if reach is not None else photo.copy()
        cv2.add(inner, np.ascontiguousarray(_rows(low_mid, side, r0, r1)[:, xs]), dst=inner)
        if c_mid is not None:  # fade to the generated pixels where the photo has no correspondence
            cb = np.ascontiguousarray(_rows(c_mid, side, r0, r1)[:, xs])
            inner = cv2.blendLinear(inner, np.ascontiguousarray(_rows(shown_mid, side, r0, r1)[:, xs]), cb, 1.0 - cb)
        a = np.ascontiguousarray(alpha[r0:r1, xs])
        out_box = _to_uint8(cv2.blendLinear(inner, photo, a, 1.0 - a))
        np.copyto(out_box, region[r0:r1, xs], where=(a == 0)[..., None])  # the photo, bit for bit, where the mask is 0
        out_region[r0:r1, xs] = out_box
        inner_u8[r0:r1, xs] = _to_uint8(inner)
    return DetailResult(region=out_region, inner=inner_u8, alpha=alpha, flow=flow, confidence=conf, info=info)


def composite_square(region: np.ndarray, base: np.ndarray, edited: np.ndarray, mask: np.ndarray,
                     radius: int, mode: str):
    """The photo's square with the edit composited in ``mode`` (``"detail"``: the photo's
    detail moved and the generator's change added; ``"replace"``: the generated pixels blended
    in): ``(result_region, layer_rgb, alpha, info)``."""
    if mode == "detail":
        d = detail_composite(region, base, edited, mask, radius)
        return d.region, d.inner, d.alpha, d.info
    alpha = feather_mask(mask, radius)
    layer_rgb = resize_generated(edited, region.shape[0])
    return blend_region(region, layer_rgb, alpha), layer_rgb, alpha, {"mode": mode}


def flow_image(flow: np.ndarray, side: Optional[int] = None, max_px: Optional[float] = None) -> np.ndarray:
    """An RGB picture of a flow field (hue = direction, brightness = length), for the grids."""
    mag, ang = cv2.cartToPolar(flow[..., 0].astype(np.float32), flow[..., 1].astype(np.float32))
    top = max_px or max(float(mag.max()), 1e-6)
    hsv = np.zeros(flow.shape[:2] + (3,), np.uint8)
    hsv[..., 0] = np.round(ang * 90.0 / np.pi).astype(np.uint8)
    hsv[..., 1] = 255
    hsv[..., 2] = np.clip(mag / top * 255.0, 0, 255).astype(np.uint8)
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if side and side != rgb.shape[0]:
        rgb = cv2.resize(rgb, (side, side), interpolation=cv2.INTER_NEAREST)
    return rgb
