"""Did an interpolation work: a face *between* the two, without blotches?

Both measured on the selection's square at the photo's resolution, with the other face's square
(the square the ``interpolate`` edit projects) resized to the same side (the bench,
:func:`interpolation_worked`); a render's report reads ``between`` alone
(:func:`between_report`: the edit keeps the other face's landmarks, not its pixels):

``between``
    the independent landmark detector (:mod:`priorpaint.faces.mtcnn`, five landmarks) on the
    photo, the other face and the result; the mean distance of the result's landmarks from the
    points a fraction ``t`` of the way from the photo's to the other's, over the mean eye
    distance. 0: the landmarks sit where an interpolation at ``t`` puts them; an end point (no
    interpolation) reads ``t`` times the two faces' landmark distance. At most :data:`MAX_BETWEEN`.
    ``None`` when a face is missing in one of the three (``face_found`` false).
``blotch``
    the share of the mask's pixels whose low-band lightness (CIE Lab L blurred at ``side / 32``)
    is darker by at least :data:`BLOTCH_L` than both faces anywhere within ``side /`` :data:`BLOTCH_REACH` of it —
    the other face first moved onto the photo's by the similarity transform of their landmarks,
    so that eyes, brows and mouths line up: dark patches that neither face has.
    At most :data:`MAX_BLOTCH`.
"""

from __future__ import annotations

from typing import Dict, Optional

import cv2
import numpy as np

#: the most the landmarks may miss the interpolated points, in eye distances
MAX_BETWEEN = 0.12
#: how much darker than both faces (Lab L units) a low-band pixel must be to count as a blotch
BLOTCH_L = 10.0
#: the largest share of blotch pixels a clean interpolation may have
MAX_BLOTCH = 0.015
#: the neighbourhood (side / this) over which either face may explain a dark pixel
BLOTCH_REACH = 32.0
#: faces are detected on the square resized to this side
FACE_SIDE = 256


def square_points(img: np.ndarray) -> Optional[np.ndarray]:
    """The five landmarks of the largest face in a square image, as fractions of its side (5×2), or None."""
    from ..faces.landmarks import square_landmarks
    pts = square_landmarks(img, min_face=FACE_SIDE // 5, interpolation="auto", side=FACE_SIDE)
    return None if pts is None else pts / float(img.shape[0])


def _points(img: np.ndarray) -> Optional[np.ndarray]:
    """The landmarks in the detector's frame (:data:`FACE_SIDE` px), where the bench compares squares."""
    pts = square_points(img)
    return None if pts is None else pts * FACE_SIDE


def between_distance(p0: np.ndarray, p1: np.ndarray, pr: np.ndarray, t: float) -> float:
    """How far the result's landmarks ``pr`` sit from the points ``t`` of the way from the photo's ``p0``
    to the other's ``p1`` (any one frame), in the two faces' mean eye distance."""
    target = (1.0 - t) * p0 + t * p1
    eye = 0.5 * (np.hypot(*(p0[1] - p0[0])) + np.hypot(*(p1[1] - p1[0])))
    return round(float(np.linalg.norm(pr - target, axis=1).mean() / max(eye, 1e-6)), 4)


def between_report(result: np.ndarray, photo: np.ndarray, other_points, t: float) -> Dict[str, object]:
    """The render's own ``between`` (its report has the other face's landmarks, ``other_points`` as
    fractions of the square, not its pixels, so no ``blotch`` here: the artefact measures stand for it):
    ``{"between", "face_found", "failed"}``."""
    p0, pr = square_points(photo), square_points(result)
    if other_points is None or p0 is None or pr is None:
        return {"between": None, "face_found": False, "failed": ["face"]}
    d = between_distance(p0, np.asarray(other_points, np.float64), pr, float(t))
    return {"between": d, "face_found": True, "failed": ["between"] if d > MAX_BETWEEN else []}


def _low_lightness(img: np.ndarray, sigma: float) -> np.ndarray:
    lab = cv2.cvtColor(np.ascontiguousarray(img, np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    return cv2.GaussianBlur(lab[..., 0], (0, 0), sigma)


def interpolation_worked(result: np.ndarray, photo: np.ndarray, other: np.ndarray, t: float,
                         mask: Optional[np.ndarray] = None) -> Dict[str, object]:
    """``{"between", "blotch", "face_found", "failed"}`` (squares H×W×3 uint8; ``other`` is resized
    to the photo's square)."""
    side = photo.shape[0]
    if other.shape[:2] != photo.shape[:2]:
        other = cv2.resize(other, (side, side), interpolation=cv2.INTER_AREA if other.shape[0] > side else cv2.INTER_CUBIC)
    sel = np.ones(photo.shape[:2], bool) if mask is None else mask > 127
    out: Dict[str, object] = {"between": None, "blotch": None, "face_found": False, "failed": []}
    pts = [_points(x) for x in (photo, other, result)]
    if all(p is not None for p in pts):
        out["between"] = between_distance(*pts, t)
        out["face_found"] = True
    if out["face_found"]:   # the other face onto the photo's, so their features line up
        m, _ = cv2.estimateAffinePartial2D(pts[1] * (side / FACE_SIDE), pts[0] * (side / FACE_SIDE))
        if m is not None:
            other = cv2.warpAffine(other, m, (side, side), borderMode=cv2.BORDER_REPLICATE)
    sigma = max(1.0, side / 32.0)
    lr, lp, lo = (_low_lightness(x, sigma) for x in (result, photo, other))
    r = max(1, int(round(side / BLOTCH_REACH)))
    darkest = cv2.erode(np.minimum(lp, lo), np.ones((2 * r + 1, 2 * r + 1), np.uint8))
    dark = (darkest - lr) >= BLOTCH_L
    out["blotch"] = round(float(dark[sel].mean()), 4) if sel.any() else None
    failed = []
    if not out["face_found"]:
        failed.append("face")
    elif out["between"] > MAX_BETWEEN:
        failed.append("between")
    if out["blotch"] is not None and out["blotch"] > MAX_BLOTCH:
        failed.append("blotch")
    out["failed"] = failed
    return out
