"""The interpolation's composite: the photo's own pixels moved to the face *between* the two, plus the
low band of the appearance between them.

Interpolating the refined features ``h`` and compositing ``G(h_e) − G(h)`` in detail mode cross-fades
two faces' structures into a smudge with dark blotches (docs/method/measures.md), and the in-manifold
proxy ``G(z)`` → ``G(z_e)`` that the structural directions move along does not carry the geometry
of *this* pair: on the bench's five pairs its landmarks sit 0.15–0.6 eye distances from the photo's
and its motion misses the interpolation's by 0.4 eye distances (more than the motion itself). The
two fitted reconstructions ``R = G_F(h)`` and ``R_o = G_F(h_o)`` each render cleanly (they are fits,
not blends) and their landmarks sit within 0.03–0.06 eye distances of their photos'. So:

* **geometry**: the five face landmarks of ``R`` and ``R_o`` (:mod:`priorpaint.faces.mtcnn`); the
  between face's points ``m = (1 − t)·p + t·o``; a thin-plate spline through them
  (:func:`~priorpaint.compositing.warp.thin_plate_field`, zero on the square's border) moves the
  photo's own pixels from ``p`` to ``m``;
* **appearance**: both reconstructions moved onto ``m`` and the low band of ``t·(R_o → m − R → m)``
  added (light, skin tone, hair colour: nothing finer than the model knows, and nothing of the other
  face's structure, which is what cross-fading two detailed faces doubles).

Carried through :func:`~priorpaint.compositing.warp.warp_composite` (the edit mask, the inward
feather, bit-identical pixels outside). No face in a reconstruction: no motion, only the low band of
the appearance, and ``info["motion"] = "none"`` says so (the ``between`` measure then fails honestly).
Note: the bench's ``between`` measure reads the same detector (on the photos, not on the 64 px
reconstructions), so for the geometry only its artefact figures are independent of the method.
"""

from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np

from .blend import feather_mask
from .warp import min_jacobian, thin_plate_field, warp_composite, warp_model

#: the spline's smoothing (the diagonal of the thin-plate system), in model px²
SMOOTHING = 12.0
#: the share of the low-band appearance change between the two reconstructions that is added (the
#: whole of it drew the other's glasses as a dark ghost on the bench's astronaut)
APPEARANCE = 0.5
#: an extra blur (model px) of that change before its low band is taken: only the broad shading and
#: colour of the other face, not the blurred ghost of its features (0: the band split alone)
APPEARANCE_SIGMA = 2.0
#: the width (model px) over which the motion falls to zero inside the edit mask's feather
TAPER = 8.0
#: the face ellipse's half axes (across, down) in eye distances: where the appearance change is taken
FACE_AXES = (1.3, 1.7)
#: reconstructions are grown to this side for the landmark detector
DETECT_SIDE = 256
#: the least Jacobian determinant a field may have before its motion is halved (no fold)
MIN_JACOBIAN = 0.3


def _landmarks(img: np.ndarray) -> Optional[np.ndarray]:
    from ..faces.landmarks import square_landmarks
    return square_landmarks(img, min_face=DETECT_SIDE // 5, side=DETECT_SIDE)


def framed_field(src: np.ndarray, dst: np.ndarray, res: int) -> np.ndarray:
    """A backward field (R×R×2, model px) that takes the points ``src`` to ``dst``: the similarity
    (place, size, roll) that fits them best, applied to the whole square, composed with a thin-plate
    spline (zero on the square's border) for the rest: ``B(x) = C(x + r(x))``, ``B(src) = dst``. The
    head, hair and all move with the face; the spline alone, anchored at the border, would move the
    five landmarks and leave the head behind (a caricature)."""
    c, _ = cv2.estimateAffinePartial2D(np.asarray(dst, np.float64), np.asarray(src, np.float64))
    if c is None:
        return thin_plate_field(src, dst, res, SMOOTHING)
    c = np.vstack([c, [0.0, 0.0, 1.0]])       # src frame -> dst frame is its inverse
    inv = np.linalg.inv(c)[:2]
    here = np.asarray(dst, np.float64) @ c[:2, :2].T + c[:2, 2]   # dst in the src frame
    r = thin_plate_field(src, here, res, SMOOTHING).astype(np.float64)
    gy, gx = np.mgrid[0:res, 0:res].astype(np.float64)
    x = np.stack([gx, gy], -1) + r
    return (x @ inv[:, :2].T + inv[:, 2] - np.stack([gx, gy], -1)).astype(np.float32)


def between_fields(recon: np.ndarray, other: np.ndarray, t: float,
                   taper: Optional[np.ndarray] = None) -> Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(flow, flow_other)``: backward fields (R×R×2, model px) that move ``recon``'s and ``other``'s
    landmarks onto the points ``t`` of the way between them (``flow`` multiplied by ``taper``, R×R);
    ``None`` when either has no face. Third: the between points ``m``."""
    p, o = _landmarks(recon), _landmarks(other)
    if p is None or o is None:
        return None
    res = recon.shape[0]
    m = (1.0 - t) * p + t * o
    for _ in range(4):   # a fold would tear the photo: shorten the motion until the fields are one-to-one
        f, fo = framed_field(m, p, res), framed_field(m, o, res)
        if taper is not None:
            f = f * taper[..., None]
        if min(min_jacobian(f), min_jacobian(fo)) >= MIN_JACOBIAN:
            break
        m = 0.5 * (m + p)
    return f, fo, m


def face_weight(points: np.ndarray, res: int) -> np.ndarray:
    """(R, R) in [0, 1]: a soft ellipse over the face whose five landmarks are ``points`` (model px),
    :data:`FACE_AXES` eye distances across and down, centred on them. The appearance change is
    taken there only: the two photos' backgrounds differ too, and their difference would show the
    edit mask's box as a tinted rectangle."""
    eye = max(float(np.hypot(*(points[1] - points[0]))), 1.0)
    cx, cy = points.mean(axis=0)
    w = np.zeros((res, res), np.float32)
    cv2.ellipse(w, (int(round(cx)), int(round(cy - 0.15 * eye))),
                (int(round(FACE_AXES[0] * eye)), int(round(FACE_AXES[1] * eye))), 0, 0, 360, 1.0, -1)
    return np.clip(cv2.GaussianBlur(w, (0, 0), 0.3 * eye), 0.0, 1.0)


def mask_taper(mask: np.ndarray, feather: int, res: int) -> np.ndarray:
    """(R, R) in [0, 1]: 1 where the edit mask is whole (past its inward feather), falling to 0 over
    :data:`TAPER` model px before the feather begins. The motion is multiplied by it, so the feather
    blends the photo with the photo, never with a moved copy of itself (a doubled contour)."""
    alpha = cv2.resize(feather_mask(mask, int(feather)), (res, res), interpolation=cv2.INTER_AREA)
    whole = (alpha >= 0.99).astype(np.uint8)
    k = 2 * int(np.ceil(TAPER)) + 1
    inner = cv2.erode(whole, np.ones((k, k), np.uint8)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(inner, (0, 0), TAPER / 2.0), 0.0, 1.0) * whole


def between_composite(region: np.ndarray, recon: np.ndarray, other: np.ndarray, t: float,
                      mask: np.ndarray, feather: int):
    """The :class:`~priorpaint.compositing.warp.WarpResult` of an interpolation at ``t`` on the photo's
    square ``region`` (side×side×3 uint8), from the photo's reconstruction ``recon`` and the other
    image's ``other`` (R×R×3 uint8, the fitted renders ``G_F(h)`` and ``G_F(h_o)``); ``mask``: the
    square's edit mask; ``feather``: px."""
    res = recon.shape[0]
    fields = between_fields(recon, other, t, mask_taper(mask, feather, res)) if t > 0 else None
    if fields is None:
        flow = np.zeros((res, res, 2), np.float32)
        moved_o = other.astype(np.float32)
    else:
        flow, flow_o, m = fields
        moved_o = warp_model(other.astype(np.float32), flow_o)
    moved = warp_model(recon.astype(np.float32), flow)
    # ``edited − warp(base)`` in warp_composite is then exactly t·(R_o → m − R → m)
    change = np.float32(t) * (moved_o - moved)
    if fields is not None:
        change *= face_weight(m, res)[..., None]
    if APPEARANCE_SIGMA > 0:
        change = cv2.GaussianBlur(change, (0, 0), APPEARANCE_SIGMA)
    edited = moved + change
    w = warp_composite(region, recon, edited, flow, np.zeros((res, res), np.float32), mask, feather,
                       appearance=APPEARANCE)
    w.info.update(motion="landmarks" if fields is not None else "none", kind="interpolate")
    return w
