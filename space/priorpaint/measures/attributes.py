"""Portrait attributes a face shows, measured apart from the method: what the portrait sliders
(smile, mouth, beard, eyes, glasses, age) are found with and judged by.

The face is found by the independent landmark detector (:mod:`priorpaint.faces.mtcnn`) and put
into a *canonical frame* by the similarity that maps its eyes to :data:`EYES` (eye distance
:data:`EYE_DISTANCE` px on a :data:`CANVAS` px square). Every region below is a box in that frame,
anchored on the landmarks, so an attribute does not move when the head moves or the photo is larger.
Lightness is CIE L* / 100 (0..1). With ``e`` the eye distance and the mouth line through the two
mouth corners:

``mouth_width``   mouth-corner distance / eye distance (a smile and a laugh widen it);
``mouth_open``    the cheeks' lightness minus the darkest quarter of the mouth box (the box between
                  the corners, ±0.18 e about the mouth line): an open mouth is a dark hole;
``smile``         how far the lips' middle sags below the corners, / e: the darkest row of the
                  mouth's middle third minus the corners' mean row (a smile lifts the corners);
``beard``         the cheeks' lightness minus the chin's (below the mouth, 0.25–0.7 e): a beard
                  darkens the chin and jaw, not the cheeks;
``eyes_open``     the lightness spread (standard deviation) in the two eye boxes (±0.28 e wide,
                  ±0.12 e high): open eyes show white and iris, closed ones a flat lid;
``glasses``       the mean vertical-gradient magnitude along the bands just above and below the
                  eyes plus the bridge's darkness against the forehead (a frame is a dark edge there);
``age``           fine-texture energy (the absolute Laplacian of a 1.5 px-blurred lightness) on the
                  cheeks and forehead, over their mean lightness: wrinkles and stubble raise it.

:func:`portrait_attributes` measures all of them at once (one detection); ``None`` when no face is
found. The values are relative measures, compared before and after an edit of the same face.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import cv2
import numpy as np

#: the attributes, each with what it measures (declared once; the docs and the manifest name them)
PORTRAIT_ATTRIBUTES: Dict[str, str] = {
    "mouth_width": "mouth-corner distance over eye distance",
    "mouth_open": "cheek lightness minus the mouth box's darkest quarter",
    "smile": "the lips' middle below the mouth corners, over eye distance",
    "beard": "cheek lightness minus chin lightness",
    "eyes_open": "lightness spread in the eye boxes",
    "glasses": "edge energy above and below the eyes plus bridge darkness",
    "age": "fine-texture energy on cheeks and forehead",
}
CANVAS = 128
EYE_DISTANCE = 40.0
EYES = ((44.0, 48.0), (84.0, 48.0))
#: faces are detected on a square grown or shrunk to this side (as :mod:`.effect` does)
DETECT_SIDE = 256


def _canonical(img: np.ndarray, points: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(lightness on the canonical canvas, the five landmarks in canvas coordinates)."""
    src = points[:2].astype(np.float64)
    dst = np.array(EYES, np.float64)
    # similarity from two point pairs, as complex numbers: w = a·z + b
    zs, zd = src[:, 0] + 1j * src[:, 1], dst[:, 0] + 1j * dst[:, 1]
    a = (zd[1] - zd[0]) / (zs[1] - zs[0])
    b = zd[0] - a * zs[0]
    m = np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])
    lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB)
    light = lab[..., 0].astype(np.float32) / 255.0
    canvas = cv2.warpAffine(light, m, (CANVAS, CANVAS), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    pts = points @ m[:, :2].T + m[:, 2]
    return canvas, pts


def _box(a: np.ndarray, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    h, w = a.shape
    xs = slice(int(np.clip(round(min(x0, x1)), 0, w - 1)), int(np.clip(round(max(x0, x1)), 1, w)))
    ys = slice(int(np.clip(round(min(y0, y1)), 0, h - 1)), int(np.clip(round(max(y0, y1)), 1, h)))
    out = a[ys, xs]
    return out if out.size else a[:1, :1]


def measure_canonical(light: np.ndarray, pts: np.ndarray) -> Dict[str, float]:
    """Every attribute of :data:`PORTRAIT_ATTRIBUTES` from a canonical lightness canvas and its
    landmarks (eyes, nose, mouth corners)."""
    e = EYE_DISTANCE
    (lx, ly), (rx, ry) = pts[0], pts[1]
    nx, ny = pts[2]
    ml, mr = pts[3], pts[4]
    my = 0.5 * (ml[1] + mr[1])
    mw = max(float(np.hypot(*(mr - ml))), 1.0)
    cheeks = np.concatenate([_box(light, lx - 0.25 * e, lx + 0.1 * e, ny - 0.15 * e, ny + 0.1 * e).ravel(),
                             _box(light, rx - 0.1 * e, rx + 0.25 * e, ny - 0.15 * e, ny + 0.1 * e).ravel()])
    cheek = float(np.mean(cheeks))
    mouth = _box(light, ml[0] + 0.1 * mw, mr[0] - 0.1 * mw, my - 0.18 * e, my + 0.18 * e)
    dark = np.sort(mouth.ravel())[: max(1, mouth.size // 4)]
    mid = _box(light, ml[0] + mw / 3, mr[0] - mw / 3, my - 0.3 * e, my + 0.3 * e)
    y_dark = float(np.argmin(mid.mean(axis=1))) + max(0, round(my - 0.3 * e))
    chin = _box(light, ml[0], mr[0], my + 0.25 * e, my + 0.7 * e)
    eyes = [_box(light, x - 0.28 * e, x + 0.28 * e, y - 0.12 * e, y + 0.12 * e) for x, y in ((lx, ly), (rx, ry))]
    gy = np.abs(cv2.Sobel(light, cv2.CV_32F, 0, 1, ksize=3)) / 8.0
    eye_y = 0.5 * (ly + ry)
    bands = [_box(gy, lx - 0.35 * e, rx + 0.35 * e, eye_y - 0.35 * e, eye_y - 0.15 * e),
             _box(gy, lx - 0.35 * e, rx + 0.35 * e, eye_y + 0.15 * e, eye_y + 0.35 * e)]
    bridge = float(np.mean(_box(light, lx + 0.35 * e, rx - 0.35 * e, eye_y - 0.1 * e, eye_y + 0.05 * e)))
    forehead_box = (lx, rx, eye_y - 0.75 * e, eye_y - 0.4 * e)
    forehead = float(np.mean(_box(light, *forehead_box)))
    lap = np.abs(cv2.Laplacian(cv2.GaussianBlur(light, (0, 0), 1.5), cv2.CV_32F))
    skin = [_box(lap, lx - 0.25 * e, lx + 0.1 * e, ny - 0.15 * e, ny + 0.1 * e),
            _box(lap, rx - 0.1 * e, rx + 0.25 * e, ny - 0.15 * e, ny + 0.1 * e), _box(lap, *forehead_box)]
    skin_light = max(0.5 * (cheek + forehead), 0.05)
    return {
        "mouth_width": mw / e,
        "mouth_open": cheek - float(np.mean(dark)),
        "smile": (y_dark - my) / e,
        "beard": cheek - float(np.mean(chin)),
        "eyes_open": float(np.mean([np.std(b) for b in eyes])),
        "glasses": float(np.mean([np.mean(b) for b in bands])) + (forehead - bridge),
        "age": float(np.mean([np.mean(s) for s in skin])) / skin_light,
    }


def portrait_attributes(img: np.ndarray, device="cpu", pose: bool = False) -> Optional[Dict[str, float]]:
    """Every portrait attribute of the largest face in an RGB (or grayscale) uint8 image, or None
    when no face is found; with ``pose``, also the face's ``yaw``, ``pitch`` and ``roll`` proxies
    (:class:`priorpaint.faces.mtcnn.Face`) from the same detection."""
    from ..faces.landmarks import scaled_face
    small, face = scaled_face(img, side=DETECT_SIDE, device=device)
    if face is None:
        return None
    light, pts = _canonical(small, face.points)
    out = measure_canonical(light, pts)
    if pose:
        out.update(yaw=face.yaw, pitch=face.pitch, roll=face.roll)
    return out


def portrait_attribute(img: np.ndarray, name: str) -> Optional[float]:
    """One attribute of :data:`PORTRAIT_ATTRIBUTES` (None: no face found)."""
    if name not in PORTRAIT_ATTRIBUTES:
        raise KeyError(name)
    found = portrait_attributes(img)
    return None if found is None else found[name]
