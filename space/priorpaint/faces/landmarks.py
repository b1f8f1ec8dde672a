"""The five landmarks of the largest face on a square image (a render, or the photo's square).

The composites that move a face (:mod:`priorpaint.compositing.warp`, ``between``, ``warp_mouth``,
``warp_head``) read the landmarks the same way: the square resized to the detector's scale
(:data:`DETECT_SIDE`), the largest face found there, its points brought back to the square's px.
They differ only in the smallest face they accept and in how the square is resized.
"""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

#: side the square is resized to before detection (the detector's sweet spot)
DETECT_SIDE = 256
#: the smallest face (in :data:`DETECT_SIDE` px) accepted by default
MIN_FACE = 48
#: ``"cubic"``: always bicubic (a 64 px render grown to the detector's side); ``"auto"``: area
#: averaging when the square is larger than :data:`DETECT_SIDE` (a photo's square), else bicubic
INTERPOLATIONS = ("cubic", "auto")


def square_landmarks(img: np.ndarray, min_face: int = MIN_FACE, interpolation: str = "cubic",
                     side: int = DETECT_SIDE, device="cpu") -> Optional[np.ndarray]:
    """The five landmarks (5×2 float64, x then y, in ``img``'s px; the order of
    :data:`priorpaint.faces.mtcnn.LANDMARKS`) of the largest face in the square RGB uint8 ``img``,
    or None when there is none."""
    from .mtcnn import largest_face
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}")
    n = img.shape[0]
    interp = cv2.INTER_AREA if interpolation == "auto" and n > side else cv2.INTER_CUBIC
    small = cv2.resize(np.ascontiguousarray(img), (side, side), interpolation=interp)
    face = largest_face(small, device=device, min_face=min_face)
    return None if face is None else np.asarray(face.points, np.float64) * (n / float(side))


def scaled_face(img: np.ndarray, side: int = DETECT_SIDE, device="cpu"):
    """``(small, face)``: the RGB (or grayscale) uint8 ``img`` scaled so that its longer side is ``side``
    (area averaging when it shrinks, bicubic when it grows; its aspect kept) and the largest face
    found there at least ``side // 5`` px (:class:`priorpaint.faces.mtcnn.Face`, in ``small``'s px), or
    None. The measures read a result and the photo this way (``measures/effect.py``,
    ``measures/attributes.py``)."""
    from .mtcnn import largest_face
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = np.ascontiguousarray(img[..., :3])
    f = side / float(max(img.shape[:2]))
    interp = cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC
    small = cv2.resize(img, (max(1, round(img.shape[1] * f)), max(1, round(img.shape[0] * f))), interpolation=interp)
    return small, largest_face(small, device=device, min_face=side // 5)


def shifted(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``img`` moved by ``(dx, dy)`` px (bicubic, the border reflected)."""
    if not dx and not dy:
        return img
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def averaged_landmarks(img: np.ndarray, sides, shifts=((0.0, 0.0),), keep: float = 1.0,
                       device="cpu") -> Optional[np.ndarray]:
    """(5, 2) the landmarks of a small square render ``img`` (its px), steadier than one read: the
    reads of :func:`square_landmarks` at each side of ``sides`` on ``img`` moved by each of ``shifts``
    (px; the shift taken back off), averaged over the ``keep`` share of them nearest their median
    (1: all). One read of a 64 px render jitters about 1.5 px when the render moves by one pixel
    (docs/method/drag.md). None when fewer than half the reads find a face."""
    reads = []
    for side in sides:
        for dx, dy in shifts:
            q = square_landmarks(shifted(img, dx, dy), side=int(side), device=device)
            if q is not None:
                reads.append(q - np.array([dx, dy]))
    if 2 * len(reads) < len(sides) * len(shifts):
        return None
    reads = np.stack(reads)
    off = np.linalg.norm(reads - np.median(reads, axis=0), axis=2).mean(axis=1)
    return reads[off <= np.quantile(off, keep)].mean(axis=0)
