"""Faces as selections: OpenCV's bundled Haar cascade (offline, no weights to fetch).

``detect_faces(rgb)`` returns the frontal faces found, largest first, as ``(x, y, w, h)``
boxes in pixels of the photo.  The detector's box (eyebrows to mouth) is widened
:data:`FACE_SCALE` times about its centre, so the selection takes in the hair line and the
chin like the face crops the face models were trained on, and clipped to the photo.  The detector is OpenCV's ``haarcascade_frontalface_default.xml``
(shipped in ``cv2.data.haarcascades``), run on the histogram-equalised grey image; faces
smaller than 1/16 of the photo's shorter side (and 24 px) are ignored.
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np


CASCADE = "haarcascade_frontalface_default.xml"
#: how much the detector's box is widened about its centre
FACE_SCALE = 1.8


def _cascade():
    from ..compositing.align import cascade  # one loader (per thread) for every Haar cascade
    return cascade(CASCADE)


def detect_faces(rgb: np.ndarray) -> List[Tuple[int, int, int, int]]:
    """Frontal faces in an (H, W, 3) uint8 photo, largest first (ties: top-left first)."""
    import cv2
    grey = cv2.equalizeHist(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY))
    side = max(24, min(grey.shape) // 16)
    found = _cascade().detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(side, side))
    found = sorted((tuple(int(v) for v in b) for b in (found if len(found) else [])),
                   key=lambda b: (-b[2] * b[3], b[1], b[0]))
    return [widen(b, grey.shape[1], grey.shape[0]) for b in found]


def widen(box: Tuple[int, int, int, int], width: int, height: int,
          scale: float = FACE_SCALE) -> Tuple[int, int, int, int]:
    """``box`` widened ``scale`` times about its centre, clipped to a ``width`` x ``height`` photo."""
    x, y, w, h = box
    cx, cy = x + w / 2.0, y + h / 2.0
    x0, y0 = max(0, int(round(cx - w * scale / 2))), max(0, int(round(cy - h * scale / 2)))
    x1, y1 = min(width, int(round(cx + w * scale / 2))), min(height, int(round(cy + h * scale / 2)))
    return x0, y0, x1 - x0, y1 - y0
