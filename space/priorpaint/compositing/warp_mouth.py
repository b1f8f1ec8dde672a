"""The ``mouth`` motion of the warp composite: an expression's small, local motion on the photo.

The head settings of :mod:`priorpaint.compositing.warp` move the photo along a spline through the
proxy's five landmarks, smoothed and capped for a head's motion, which smooths a smile away (two
mouth corners moving a few pixels). An expression direction declares ``"motion": "mouth"`` in its
manifest entry (:data:`priorpaint.warp_render.MOTIONS`, read there) and is moved here instead:

* the proxy's mouth-corner motion ``G(z) → G(z_e)`` is read *relative to its head* (the edited
  render's landmarks mapped onto the unedited one's by the similarity that aligns the eyes, so a
  head that also turns or grows does not move the mouth), in eye-distance units along and across
  the eye line;
* that motion is placed on the *photo's own* mouth corners (its landmarks, not the proxy's
  registration), each corner's motion capped at :data:`MOUTH_CAP` of the photo's mouth width;
* the field is a sum of Gaussian bumps, one per corner, of width :data:`MOUTH_SIGMA` mouth widths:
  the corners move, the mouth between stretches, and the motion falls off to nothing a mouth width
  away (eyes, nose, jaw line and the background do not move).

Nothing is generated: the photo's own lips and skin are moved.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

#: the most a mouth corner moves on the photo, in the photo's mouth widths
MOUTH_CAP = 0.35
#: width (standard deviation) of each corner's motion bump, in the photo's mouth widths
MOUTH_SIGMA = 0.4
#: the gain on the proxy's corner motion (1: the proxy's own motion, relative to the eyes); 1.5 was
#: chosen from the sweep in docs/method/editability.md (at 1 the detector reads 0.41 of the model's
#: smile on the held-out astronaut; at 2 the frontal faces read up to 1.77 and the mouth looks pulled)
MOUTH_GAIN = 1.5
#: side the renderings and the photo's square are detected at (the detector's own scale)
DETECT_SIDE = 256


def _landmarks(img: np.ndarray) -> Optional[np.ndarray]:
    """The five landmarks (5×2, in ``img``'s px) of its largest face, or None."""
    from ..faces.landmarks import square_landmarks
    return square_landmarks(img, interpolation="auto", side=DETECT_SIDE)


def _eye_frame(pts: np.ndarray) -> Tuple[np.ndarray, np.ndarray, float]:
    """``(right, down, eye_distance)``: the unit vectors along and across the eye line."""
    d = pts[1] - pts[0]
    e = max(float(np.hypot(*d)), 1e-6)
    right = d / e
    return right, np.array([-right[1], right[0]]), e


def corner_motion(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """(2, 2): each mouth corner's motion relative to the head, in eye distances along the eye line
    and across it (+ down), from the landmarks (5×2) of the unedited and the edited render."""
    before, after = np.asarray(before, np.float64), np.asarray(after, np.float64)
    # the similarity that maps the edited eyes onto the unedited ones removes the head's motion
    a = complex(*(after[1] - after[0]))
    b = complex(*(before[1] - before[0]))
    k = b / a if abs(a) > 1e-9 else 1.0
    ca, cb = complex(*after[:2].mean(axis=0)), complex(*before[:2].mean(axis=0))
    mapped = np.array([(complex(*p) - ca) * k + cb for p in after[3:5]])
    moved = np.stack([mapped.real, mapped.imag], 1) - before[3:5]
    right, down, e = _eye_frame(before)
    return np.stack([moved @ right, moved @ down], 1) / e


def mouth_field(photo_pts: np.ndarray, motion: np.ndarray, res: int, scale: float,
                cap: float = None, sigma: float = None, gain: float = None) -> np.ndarray:
    """The backward field (R×R×2, model px) that moves the photo's mouth corners by ``motion``
    (:func:`corner_motion`'s units) placed in the photo's eye frame. ``photo_pts``: the photo's
    landmarks in its square's px; ``scale``: square px per model px."""
    cap = MOUTH_CAP if cap is None else float(cap)
    sigma = MOUTH_SIGMA if sigma is None else float(sigma)
    gain = MOUTH_GAIN if gain is None else float(gain)
    pts = np.asarray(photo_pts, np.float64) / scale
    right, down, e = _eye_frame(pts)
    width = max(float(np.hypot(*(pts[4] - pts[3]))), 1e-6)
    gy, gx = np.mgrid[0:res, 0:res].astype(np.float64)
    field = np.zeros((res, res, 2), np.float64)
    s2 = 2.0 * (sigma * width) ** 2
    for corner, (u, v) in zip(pts[3:5], np.asarray(motion, np.float64) * gain):
        d = (u * right + v * down) * e
        n = float(np.hypot(*d))
        if n > cap * width:
            d *= cap * width / n
        at = corner + d                      # the edited corner shows the photo's corner
        w = np.exp(-((gx - at[0]) ** 2 + (gy - at[1]) ** 2) / s2)
        field -= w[..., None] * d[None, None, :]
    return field.astype(np.float32)


def mouth_correspondence(base: np.ndarray, edited: np.ndarray, region: np.ndarray):
    """``(flow, new_content, info)`` for :func:`~priorpaint.compositing.warp.warp_composite`: the
    proxies' (R×R×3 uint8) mouth-corner motion on the photo's square ``region``; ``None`` when the
    photo or either rendering shows no face."""
    res = base.shape[0]
    b, e = _landmarks(base), _landmarks(edited)
    photo = _landmarks(region)
    if b is None or e is None or photo is None:
        return None
    motion = corner_motion(b, e)
    flow = mouth_field(photo, motion, res, region.shape[0] / float(res))
    info: Dict[str, object] = {"mouth_motion": [[round(float(x), 3) for x in m] for m in motion]}
    return flow, np.zeros((res, res), np.float32), info
