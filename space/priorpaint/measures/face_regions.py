"""A content measure of a face region placed by the landmarks: did a cap appear?

A head-wear or hair edit adds content that a warp cannot make, and no landmark proxy (yaw, roll,
pitch) reads it. ``crown_lines`` reads the pixels of a region placed by the independent landmark
detector (:mod:`priorpaint.faces.mtcnn`, five landmarks), in a frame turned with the eye line:
``u`` along it, ``v`` towards the mouth, both in eye distances ``d`` from the eyes' middle. The
square is first brought to :data:`DETAIL_SIDE` and back (area down, cubic up), so the photo's own
fine texture (pores, hair strands, grain) does not count and a photo and the generator's 64 px
samples are read at the same scale.

``crown_lines``
    the region above the eyes (``u`` in ±1.3, ``v`` from −1.3 to −0.4: the forehead, the hairline
    and whatever sits on them): the mean of ``|∂L/∂v| − |∂L/∂u|`` (CIELAB lightness, per pixel of
    the 256 px square), i.e. how much more the region's contours run *along* the eye line than
    across it. A cap's brim, a headband and stripes add such contours; a bare forehead has few. On
    the embedded model's samples (16–24, seeds 0 and 1) headwear=+2 raises it by 0.10–0.25 (86–90 %
    of the faces), −2 lowers it by 0.04–0.10, warm_light and head_turn change it by under 0.07.
    :func:`priorpaint.measures.effect.attribute_change` reads its change against the photo moved
    along the result's own flow, so a pure warp reads none. Hair falling over
    the forehead raises it too (head_tilt=−2: +0.14–0.19), so it measures content over the forehead,
    which is what headwear's effect is; it is not a hat detector.

``None`` where no face is found or over 40 % of the region leaves the square (:data:`MIN_INSIDE`). (Bands beside the face,
for hair_frame, leave the generator's tightly framed 64 px samples, so no reference can be taken
there: hair_frame has no measure.)
"""

from __future__ import annotations

from typing import Dict, Optional

import cv2
import numpy as np

REGION_ATTRIBUTES = ("crown_lines",)
#: the least share of the region that must lie inside the square (a tight box cuts the forehead:
#: the bench's Hopper box keeps 79 % of it)
MIN_INSIDE = 0.6
#: the region above the eyes: half its width along the eye line, and how far above the eye line it
#: starts and ends (eye distances)
CROWN = (1.3, 1.3, 0.4)
#: the side the square is brought to before it is read (the embedded model's resolution)
DETAIL_SIDE = 64


def _frame(points: np.ndarray):
    """``(origin, right, down, d)``: the eyes' middle, the eye line's unit vector, its normal
    pointing to the mouth, and the eye distance."""
    eyes = points[:2].mean(axis=0)
    axis = points[1] - points[0]
    d = max(float(np.hypot(*axis)), 1e-6)
    right = axis / d
    down = np.array([-right[1], right[0]])
    if float((points[3:].mean(axis=0) - eyes) @ down) < 0:
        down = -down
    return eyes, right, down, d


def _coords(shape, points: np.ndarray):
    eyes, right, down, d = _frame(points)
    gy, gx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    px, py = gx - eyes[0], gy - eyes[1]
    return (px * right[0] + py * right[1]) / d, (px * down[0] + py * down[1]) / d, right, down


def _inside(u, v, u0, u1, v0, v1) -> np.ndarray:
    return (u >= u0) & (u <= u1) & (v >= v0) & (v <= v1)


def _lab(img: np.ndarray) -> np.ndarray:
    lab = cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] *= 100.0 / 255.0          # OpenCV's 8-bit Lab: L* scaled to 0..255, a* b* offset by 128
    lab[..., 1:] -= 128.0
    return lab


def region_attributes(img: np.ndarray, points: np.ndarray) -> Dict[str, Optional[float]]:
    """``{"crown_lines"}`` of an RGB uint8 square with its five landmarks (5×2, x y, in
    the square's pixels)."""
    h, w = img.shape[:2]
    small = cv2.resize(np.ascontiguousarray(img[..., :3]), (DETAIL_SIDE, DETAIL_SIDE), interpolation=cv2.INTER_AREA)
    lab = _lab(np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8))
    points = np.asarray(points, np.float64)
    u, v, right, down = _coords(img.shape, points)
    d2 = _frame(points)[3] ** 2
    out: Dict[str, Optional[float]] = {k: None for k in REGION_ATTRIBUTES}
    crown = _inside(u, v, -CROWN[0], CROWN[0], -CROWN[1], -CROWN[2])
    if crown.sum() >= max(16.0, MIN_INSIDE * 2 * CROWN[0] * (CROWN[1] - CROWN[2]) * d2):
        gx = cv2.Sobel(lab[..., 0], cv2.CV_32F, 1, 0, ksize=3) / 8.0
        gy = cv2.Sobel(lab[..., 0], cv2.CV_32F, 0, 1, ksize=3) / 8.0
        along_v = np.abs(gx * down[0] + gy * down[1])
        along_u = np.abs(gx * right[0] + gy * right[1])
        out["crown_lines"] = float((along_v - along_u)[crown].mean())
    return out
