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

from typing import Optional

import cv2
import numpy as np

#: the renders are enlarged this many times (bicubic) before the optical flow
UPSCALE = 4


#: the drag's gate may read the flow on the renders' window around its handles, this many px either
#: side (``None``: the whole render). A 16 px window saves about a third of a 5-handle drag's step, but
#: on the bench's three-pair drags it confirmed less (worst pair per photo lower on 5 of 7; Grace
#: Hopper's right mouth corner 0.73 → −0.01: DIS's coarse levels lose the context), so the whole render
WINDOW: Optional[int] = None


def flow_at(before: np.ndarray, after: np.ndarray, pts: np.ndarray, upscale: int = UPSCALE,
            window: Optional[int] = None) -> np.ndarray:
    """(N, 2): the optical flow from ``before`` to ``after`` (H×W×3 uint8) at ``pts`` (N, 2; pixel
    coordinates of ``before``), in those pixels; a 5×5 median (of the enlarged images) at each point.
    With ``window`` the flow is computed on the points' bounding box grown by ``window`` px only."""
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    if window is not None and len(pts):
        H, W = before.shape[:2]
        x0, y0 = (max(int(np.floor(pts[:, k].min())) - window, 0) for k in (0, 1))
        x1, y1 = (min(int(np.ceil(pts[:, k].max())) + window + 1, n) for k, n in ((0, W), (1, H)))
        before, after, pts = before[y0:y1, x0:x1], after[y0:y1, x0:x1], pts - [x0, y0]

    def gray(im):
        g = cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_RGB2GRAY)
        return cv2.resize(g, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC) if upscale > 1 else g
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = dis.calc(gray(before), gray(after), None)
    h, w = flow.shape[:2]
    out = []
    for x, y in pts:
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
