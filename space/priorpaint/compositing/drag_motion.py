"""The generator's confirmed motion for a drag: dense optical flow between two renders read at
points, and the tracked positions capped by it, so a tracker's jump cannot move the photo.

The drag's tracker (nearest neighbour in a coarse feature map) can jump within its search square
while the generator's render did not move; the photo's field must follow what the generator did.
:func:`flow_at` measures it the way the bench's independent reach does (OpenCV DIS on the two
renders, a 5×5 median at each point, on images enlarged :data:`UPSCALE`× so a sub-pixel move of a
64 px model is seen); :func:`confirmed_positions` keeps of each tracked shift only the part the
generator's flow confirms.
"""

from __future__ import annotations

import cv2
import numpy as np

#: the renders are enlarged this many times (bicubic) before the optical flow
UPSCALE = 4


def flow_at(before: np.ndarray, after: np.ndarray, pts: np.ndarray, upscale: int = UPSCALE) -> np.ndarray:
    """(N, 2): the optical flow from ``before`` to ``after`` (H×W×3 uint8) at ``pts`` (N, 2; pixel
    coordinates of ``before``), in those pixels; a 5×5 median (of the enlarged images) at each point."""
    def gray(im):
        g = cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_RGB2GRAY)
        return cv2.resize(g, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC) if upscale > 1 else g
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = dis.calc(gray(before), gray(after), None)
    h, w = flow.shape[:2]
    out = []
    for x, y in np.asarray(pts, np.float64).reshape(-1, 2):
        xi = int(np.clip(round((x + 0.5) * upscale - 0.5), 0, w - 1))
        yi = int(np.clip(round((y + 0.5) * upscale - 0.5), 0, h - 1))
        patch = flow[max(yi - 2, 0):yi + 3, max(xi - 2, 0):xi + 3].reshape(-1, 2)
        out.append(np.median(patch, axis=0) / float(upscale))
    return np.asarray(out, np.float64).reshape(-1, 2)


def confirmed_positions(handles: np.ndarray, tracked: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """(N, 2): each handle moved along its tracked shift ``s`` only as far as the generator's own
    motion ``m`` goes that way: ``p + s·clip(m·s / |s|², 0, 1)`` (a jump with no motion: the handle)."""
    p, q, m = (np.asarray(a, np.float64).reshape(-1, 2) for a in (handles, tracked, motion))
    s = q - p
    n2 = (s * s).sum(1)
    share = np.where(n2 > 1e-12, np.clip((m * s).sum(1) / np.maximum(n2, 1e-12), 0.0, 1.0), 0.0)
    return p + s * share[:, None]
