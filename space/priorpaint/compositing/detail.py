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
   (smoothly), so appearance edits do not wobble the photo.
2. **Warp.** The flow is upsampled to the photo's square (times ``side / R``) and the photo is
   warped along it (bicubic), so its detail moves with the content; ``B`` is warped alike at
   model resolution.
3. **Low band of the change.** ``Δ = E − warp(B)`` is what motion does not explain (light,
   colour, a changed shape's shading).  It is resized to the photo's square and blurred with
   a Gaussian of ``sigma = BAND * side / R`` photo pixels: the band split follows the
   model-to-photo scale, so the change carries nothing finer than the model can know, and the
   photo's band above it is kept.  ``detail = warp(photo) + low(Δ)``.
4. **Correspondence.** Where the flow is not forward–backward consistent, or the warped
   unedited rendering does not match the edited one in *structure* (new content: a painted
   object, a removed part; an occlusion), the photo has nothing to give: the result fades
   smoothly (a blurred confidence map) to the generator's pixels, as ``replace`` would show.
5. **Blend.** ``photo + alpha · (inner − photo)`` with the inward-feathered edit mask of
   :func:`~priorpaint.compositing.blend.feather_mask`: wherever the mask is 0 the photo is
   copied bit for bit, and inside and outside the edge share the photo's grain (no seam).

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

from .blend import default_feather, feather_mask, resize_generated

#: Gaussian sigma of the band split, in model pixels (times side / R photo pixels)
BAND = 0.5
#: flow below this many model pixels is treated as no motion (smooth ramp up to 2x)
MIN_FLOW = 0.2
#: forward–backward error (model pixels) at which correspondence is deemed lost
FB_TOLERANCE = 1.0
#: structure mismatch (normalised units, 0..~2) at which correspondence is deemed lost
STRUCTURE_TOLERANCE = 0.9
#: change (0..1, largest channel) under which a pixel's correspondence is never doubted
CHANGE_FLOOR = 0.06

MODES = ("detail", "replace")


@dataclass
class DetailResult:
    region: np.ndarray                 # (side, side, 3) uint8: the composited square
    inner: np.ndarray                  # (side, side, 3) uint8: the result before the mask blend (the layer's pixels)
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


def estimate_motion(base: np.ndarray, edited: np.ndarray) -> Tuple[np.ndarray, np.ndarray, Dict[str, float]]:
    """``(flow, confidence, info)`` at model resolution between the unedited and edited renderings.

    ``flow`` (R, R, 2) maps each edited pixel to where it was in the unedited one
    (``edited(x) ≈ base(x + flow(x))``); ``confidence`` (R, R) in [0, 1] says where that
    correspondence holds (forward–backward consistent and the same structure after the warp,
    or no real change there).
    """
    gb, ge = _gray(base), _gray(edited)
    sb, se = _structure(gb), _structure(ge)
    ub, ue = _to_u8(sb), _to_u8(se)
    f_eb = _flow(ue, ub)              # edited -> base
    f_be = _flow(ub, ue)              # base -> edited
    mag = np.linalg.norm(f_eb, axis=2)
    gate = np.clip((mag - MIN_FLOW) / MIN_FLOW, 0.0, 1.0)
    f_eb = (f_eb * gate[..., None]).astype(np.float32)
    # forward-backward: following f_eb then f_be should come back
    back = _warp(f_be, f_eb)
    fb_err = np.linalg.norm(f_eb + back * (gate[..., None] > 0), axis=2)
    c_fb = np.exp(-(fb_err / FB_TOLERANCE) ** 2)
    # structure after the warp
    s_err = cv2.GaussianBlur(np.abs(se - _warp(sb, f_eb)), (0, 0), 1.0)
    c_s = np.exp(-(s_err / STRUCTURE_TOLERANCE) ** 2)
    # only doubt where something really changed
    eb = edited.astype(np.float32) / 255.0
    bb = base.astype(np.float32) / 255.0
    change = np.minimum(np.abs(eb - _warp(bb, f_eb)).max(axis=2), np.abs(eb - bb).max(axis=2))
    change = cv2.GaussianBlur(change, (0, 0), 1.0)
    doubt = np.clip(change / CHANGE_FLOOR - 1.0, 0.0, 1.0)
    conf = 1.0 - doubt * (1.0 - c_fb * c_s)
    conf = np.clip(cv2.GaussianBlur(conf.astype(np.float32), (0, 0), 1.0), 0.0, 1.0)
    info = {"flow_max_model_px": float(mag.max()), "flow_mean_model_px": float((mag * gate).mean()),
            "confidence_mean": float(conf.mean())}
    return f_eb, conf.astype(np.float32), info


def _resize(img: np.ndarray, side: int) -> np.ndarray:
    if img.shape[0] == side:
        return img.astype(np.float32)
    interp = cv2.INTER_CUBIC if side > img.shape[0] else cv2.INTER_AREA
    return cv2.resize(img.astype(np.float32), (side, side), interpolation=interp)


def band_sigma(side: int, resolution: int) -> float:
    """The band split's Gaussian sigma in photo pixels (0 when the photo is not finer than the model)."""
    scale = side / float(resolution)
    return BAND * scale if scale > 1.0 else 0.0


def low_band(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigma) if sigma > 0 else img


def detail_composite(region: np.ndarray, base: np.ndarray, edited: np.ndarray, mask: np.ndarray,
                     feather: Optional[int] = None, motion: bool = True) -> DetailResult:
    """Composite an edit into the photo's square at the photo's resolution.

    ``region``: (side, side, 3) uint8, the photo's square; ``base`` / ``edited``: (R, R, 3)
    uint8, the generator's renderings of the unedited and edited state; ``mask``: (side,
    side) uint8 edit mask; ``feather``: the inward feather radius (default
    :func:`~priorpaint.compositing.blend.default_feather`); ``motion=False`` skips the flow
    (the change is then added as it is).
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
    photo = region.astype(np.float32)
    b = base.astype(np.float32)
    e = edited.astype(np.float32)
    flow = conf = None
    moved = False
    if motion:
        flow, conf, minfo = estimate_motion(base, edited)
        info.update(minfo)
        moved = float(np.abs(flow).max()) > 0.0
    info["motion"] = moved
    if moved:
        scale = side / float(res)
        flow_up = _resize(flow, side) * scale
        warped = _warp(photo, flow_up, cv2.INTER_CUBIC)
        b = _warp(b, flow)
    else:
        warped = photo
    sigma = band_sigma(side, res)
    change = low_band(_resize(e - b, side), sigma)
    inner = warped + change
    if conf is not None and float(conf.min()) < 1.0:
        c = _resize(conf, side)[..., None]
        generated = resize_generated(np.ascontiguousarray(edited), side).astype(np.float32)
        inner = c * inner + (1.0 - c) * generated
    a = alpha[..., None]
    out = photo + a * (inner - photo)
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    out = np.where(a > 0, out, region)
    inner_u8 = np.clip(np.round(inner), 0, 255).astype(np.uint8)
    return DetailResult(region=out, inner=inner_u8, alpha=alpha, flow=flow, confidence=conf, info=info)


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
