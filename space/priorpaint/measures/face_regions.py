"""Content measures of face regions placed by the landmarks: did a cap or framing hair appear?

A head-wear or hair edit adds content a warp cannot make, and no landmark proxy (yaw, roll, pitch)
reads it. These attributes read the pixels of regions placed by the independent landmark detector
(:mod:`priorpaint.faces.mtcnn`, five landmarks), with ``d`` the eye distance and the frame turned
with the eye line:

``crown_cover``
    the region above the eyes (from 0.5 ``d`` to 1.5 ``d`` above the eye line, 1.2 ``d`` either
    side of the eyes' middle: the forehead, the hairline and whatever sits on them): the share of
    its pixels whose colour is far from the face's own skin (CIELAB distance over
    :data:`SKIN_DISTANCE` from the median colour of the cheek region, between the eyes and the
    mouth). A bare forehead reads low, hair over it or a cap high.
``side_cover``
    the same share over two bands beside the face (1.1–1.9 ``d`` from the eyes' middle, from the eye
    line to the mouth): hair framing the face, or the background it hides.

Both are 0..1 and measured on the square resized to :data:`~priorpaint.measures.effect.FACE_SIDE`;
``None`` where no face is found.
"""

from __future__ import annotations

from typing import Dict, Optional

import cv2
import numpy as np

REGION_ATTRIBUTES = ("crown_cover", "side_cover")
#: CIELAB distance (L*, a*, b* in their usual units) from the skin's median beyond which a pixel is
#: not skin
SKIN_DISTANCE = 18.0


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


def _region(shape, points: np.ndarray, u0: float, u1: float, v0: float, v1: float) -> np.ndarray:
    """A boolean mask of the pixels whose frame coordinates (``u`` along the eye line, ``v`` towards
    the mouth, in eye distances from the eyes' middle) lie in ``[u0, u1] × [v0, v1]``."""
    eyes, right, down, d = _frame(points)
    gy, gx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    px, py = gx - eyes[0], gy - eyes[1]
    u = (px * right[0] + py * right[1]) / d
    v = (px * down[0] + py * down[1]) / d
    return (u >= u0) & (u <= u1) & (v >= v0) & (v <= v1)


def _cover(lab: np.ndarray, region: np.ndarray, skin: np.ndarray) -> Optional[float]:
    if region.sum() < 16:
        return None
    dist = np.linalg.norm(lab[region] - skin[None, :], axis=1)
    return float((dist > SKIN_DISTANCE).mean())


def region_attributes(img: np.ndarray, points: np.ndarray) -> Dict[str, Optional[float]]:
    """``{"crown_cover", "side_cover"}`` of an RGB uint8 image with its five landmarks (5×2, x y)."""
    lab = cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] *= 100.0 / 255.0          # OpenCV's 8-bit Lab: L* scaled to 0..255, a* b* offset by 128
    lab[..., 1:] -= 128.0
    points = np.asarray(points, np.float64)
    cheeks = _region(img.shape, points, -0.6, 0.6, 0.25, 0.75)
    if cheeks.sum() < 16:
        return {k: None for k in REGION_ATTRIBUTES}
    skin = np.median(lab[cheeks], axis=0)
    crown = _region(img.shape, points, -1.2, 1.2, -1.5, -0.5)
    sides = _region(img.shape, points, -1.9, -1.1, 0.0, 1.2) | _region(img.shape, points, 1.1, 1.9, 0.0, 1.2)
    return {"crown_cover": _cover(lab, crown, skin), "side_cover": _cover(lab, sides, skin)}
