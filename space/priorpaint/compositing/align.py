"""Aligned faces: where a face model expects the eyes, and the similarity that puts them there.

FFHQ-style generators reproduce faces only as their training data framed them: the FFHQ
alignment (NVlabs/ffhq-dataset, ``recreate_aligned_images``) rotates each photo so the line
between the eyes is level and scales it so the eye distance is about a quarter of the image
side, centred a little below the eyes.  A manifest declares it as the eye positions in model
pixels (image-left eye first)::

    "alignment": {"eyes": [[385.96, 479.89], [637.81, 480.39]]}

The crop then maps the photo's two eyes there with a similarity (rotation, uniform scale,
translation), from two points the user gives or from OpenCV's bundled Haar cascades
(``haarcascade_frontalface_default.xml`` for the face, ``haarcascade_eye.xml`` for the eyes
inside it; offline, nothing to fetch).

A model whose layout is measured at five points (MTCNN's eyes, nose and mouth corners, the
order of :data:`priorpaint.faces.mtcnn.LANDMARKS`) declares them too, and may ask that the
square keep the whole selection (``"frame": "selection"``)::

    "alignment": {"eyes": [[22.1, 31.3], [42.3, 30.9]],
                  "points": [[22.1, 31.3], [42.3, 30.9], [32.1, 44.3], [23.6, 55.5], [41.0, 55.1]],
                  "frame": "selection"}

The photo's five points (MTCNN near the selection) then go to the model's by the least-squares
similarity (:func:`similarity_fit`); without them (given eyes, no MTCNN face) the eyes alone, as
above.  With ``"frame": "selection"`` the model's layout is shrunk about the canvas centre just
enough that the aligned square covers the selection's box (at most :data:`MAX_ZOOM` times): the
face sits where the model's faces sit, smaller, and every selected pixel stays under the edit.

Coordinates are continuous: pixel ``i`` covers ``[i, i + 1)``, so its centre is ``i + 0.5``
(what a pointer position in GIMP or a box centre ``x + w / 2`` means).  OpenCV's
``warpAffine`` indexes pixel centres at integers; :func:`cv_matrix` converts.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError, ModelError

Point = Tuple[float, float]
FACE_CASCADE = "haarcascade_frontalface_default.xml"
EYE_CASCADE = "haarcascade_eye.xml"
#: rotations (degrees) of the photo tried in turn when no face is found upright (the
#: frontal cascade finds faces tilted up to about 15 degrees)
SEARCH_ANGLES = (0.0, 20.0, -20.0, 40.0, -40.0)
#: the longest side (px) of the image the cascades search; larger selections are searched downscaled
DETECT_SIDE = 1024
NO_FACE_NOTE = "no face found for alignment: used the box unaligned"
#: how the aligned square is framed: the model's canvas at its own layout, or grown to keep the selection
FRAMES = ("model", "selection")
#: the most a ``"selection"`` frame shrinks the model's layout (the face at 1/MAX_ZOOM of its scale)
MAX_ZOOM = 3.0
_local = threading.local()


def cascade(name: str):
    """OpenCV's bundled Haar cascade ``name`` (one per thread: they are not thread-safe)."""
    cache = getattr(_local, "cascades", None)
    if cache is None:
        cache = _local.cascades = {}
    c = cache.get(name)
    if c is None:
        import cv2
        path = cv2.data.haarcascades + name
        c = cv2.CascadeClassifier(path)
        if c.empty():
            raise ModelError(f"OpenCV's detector {path} cannot be loaded")
        cache[name] = c
    return c


# -- what a model declares and what a user gives -----------------------------------------------

def check_alignment(raw, resolution: int) -> Tuple[Point, Point]:
    """A manifest's ``alignment`` (``{"eyes": [[x, y], [x, y]]}``, model pixels) -> the two eyes."""
    try:
        (x1, y1), (x2, y2) = ((float(a), float(b)) for a, b in raw["eyes"])
    except (TypeError, ValueError, KeyError):
        raise InputError(f"alignment must be {{\"eyes\": [[x, y], [x, y]]}} in model pixels, got {raw!r}") from None
    pts = (x1, y1, x2, y2)
    if not all(math.isfinite(v) and 0.0 <= v <= resolution for v in pts) or x2 <= x1:
        raise InputError(f"alignment eyes {[[x1, y1], [x2, y2]]} must lie in the {resolution}x{resolution} canvas, "
                         "image-left eye first")
    return (x1, y1), (x2, y2)


@dataclass(frozen=True)
class Layout:
    """A face model's declared layout (model pixels): the eyes, optionally all five points, and
    how the aligned square is framed (:data:`FRAMES`)."""
    eyes: Tuple[Point, Point]
    points: Optional[Tuple[Point, ...]] = None
    frame: str = "model"


def check_layout(raw, resolution: int) -> Layout:
    """A manifest's ``alignment`` -> :class:`Layout` (``eyes`` required; ``points``: five
    [x, y] in the order eyes, nose, mouth corners; ``frame``: one of :data:`FRAMES`)."""
    eyes = check_alignment(raw, resolution)
    points = None
    if raw.get("points") is not None:
        try:
            points = tuple((float(a), float(b)) for a, b in raw["points"])
        except (TypeError, ValueError):
            points = ()
        if len(points) != 5 or not all(math.isfinite(v) and 0.0 <= v <= resolution for p in points for v in p) \
                or points[1][0] <= points[0][0] or points[4][0] <= points[3][0]:
            raise InputError(f"alignment points must be five [x, y] in the {resolution}x{resolution} canvas (eyes, "
                             f"nose, mouth corners; image-left first), got {raw['points']!r}")
    frame = raw.get("frame", "model")
    if frame not in FRAMES:
        raise InputError(f"alignment frame must be one of {', '.join(FRAMES)}, got {frame!r}")
    return Layout(eyes=eyes, points=points, frame=frame)


def parse_eyes(text: str) -> Tuple[float, float, float, float]:
    """``"x1,y1,x2,y2"`` (photo pixels; commas or spaces) -> four floats, or a one-line error."""
    parts = str(text).replace(",", " ").split()
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        vals = []
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        raise InputError(f"eyes must be four numbers X1,Y1,X2,Y2 (the two eye centres in photo pixels), "
                         f"got {text!r}")
    _distinct(*vals)
    return tuple(vals)  # type: ignore[return-value]


def _distinct(x1: float, y1: float, x2: float, y2: float) -> None:
    if math.hypot(x2 - x1, y2 - y1) < 2.0:
        raise InputError(f"the two eyes {x1:g},{y1:g} and {x2:g},{y2:g} are the same point (less than 2 px apart)")


def check_eyes(eyes: Sequence[float], size: Tuple[int, int]) -> Tuple[Point, Point]:
    """Two user-given eye centres inside a ``size`` (W, H) photo, image-left eye first."""
    x1, y1, x2, y2 = (float(v) for v in eyes)
    W, H = size
    for x, y in ((x1, y1), (x2, y2)):
        if not (0.0 <= x <= W and 0.0 <= y <= H):
            raise InputError(f"eye {x:g},{y:g} lies outside the {W}x{H} image")
    _distinct(x1, y1, x2, y2)
    a, b = sorted(((x1, y1), (x2, y2)))
    return a, b


# -- the transform ---------------------------------------------------------------------------

def similarity(src: Sequence[Point], dst: Sequence[Point]) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, translation) taking ``src[i]`` to ``dst[i]``."""
    (p1, p2), (q1, q2) = [complex(*a) for a in src], [complex(*b) for b in dst]
    if abs(p2 - p1) == 0:
        raise InputError("the two eyes are the same point")
    a = (q2 - q1) / (p2 - p1)
    b = q1 - a * p1
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]], np.float64)


def similarity_fit(src, dst) -> np.ndarray:
    """The 2x3 similarity (no reflection) taking the points ``src`` (N >= 2) nearest to ``dst``
    in least squares (for two points: :func:`similarity`, exactly)."""
    p = np.asarray(src, np.float64).reshape(-1, 2) @ np.array([1.0, 1j])
    q = np.asarray(dst, np.float64).reshape(-1, 2) @ np.array([1.0, 1j])
    if p.size != q.size or p.size < 2:
        raise InputError(f"a similarity needs two or more point pairs, got {p.size} and {q.size}")
    dp, dq = p - p.mean(), q - q.mean()
    spread = float((np.abs(dp) ** 2).sum())
    if not math.isfinite(spread) or spread < 1e-12:
        raise InputError("the points to align are all the same point")
    a = complex((dq * dp.conj()).sum() / spread)
    b = complex(q.mean() - a * p.mean())
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]], np.float64)


def apply(m: np.ndarray, pts) -> np.ndarray:
    """``m`` (2x3) applied to points (N, 2)."""
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    return pts @ m[:, :2].T + m[:, 2]


def invert(m: np.ndarray) -> np.ndarray:
    import cv2
    return cv2.invertAffineTransform(np.asarray(m, np.float64))


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a ∘ b`` (first b, then a) of two 2x3 affine maps."""
    a3 = np.vstack([a, [0, 0, 1]])
    b3 = np.vstack([b, [0, 0, 1]])
    return (a3 @ b3)[:2]


def cv_matrix(m: np.ndarray) -> np.ndarray:
    """``m`` on continuous coordinates -> the same map on OpenCV's integer pixel centres."""
    half = np.array([0.5, 0.5])
    out = np.array(m, np.float64)
    out[:, 2] = m[:, :2] @ half + m[:, 2] - half
    return out


@dataclass
class Alignment:
    """Where the aligned square lies in the photo: ``to_photo`` maps square pixels (side x side,
    continuous coordinates) to photo pixels; ``eyes`` are the photo's eye centres used."""
    to_photo: np.ndarray          # (2, 3) float64
    side: int
    eyes: Tuple[Point, Point]
    source: str                   # "detected" or "given"
    face: Optional[Tuple[int, int, int, int]] = None   # the detected face box (photo pixels)
    #: the photo's five landmarks the fit used (photo pixels), or None (the eyes alone)
    points: Optional[Tuple[Point, ...]] = None
    #: how much the model's layout was shrunk so the square keeps the selection (1: its own framing)
    zoom: float = 1.0

    @property
    def angle(self) -> float:
        """The square's rotation in the photo, degrees (counter-clockwise as seen on screen)."""
        return -math.degrees(math.atan2(self.to_photo[1, 0], self.to_photo[0, 0]))

    @property
    def scale(self) -> float:
        """Photo pixels per square pixel."""
        return float(math.hypot(self.to_photo[0, 0], self.to_photo[1, 0]))

    def corners(self) -> np.ndarray:
        s = float(self.side)
        return apply(self.to_photo, [(0, 0), (s, 0), (s, s), (0, s)])

    def report(self) -> dict:
        return {"source": self.source, "eyes": [[round(v, 2) for v in e] for e in self.eyes],
                "angle_degrees": round(self.angle, 3), "side": self.side,
                "corners": [[round(float(v), 2) for v in c] for c in self.corners()],
                "fit": "five points" if self.points is not None else "eyes", "zoom": round(self.zoom, 3),
                **({"points": [[round(v, 2) for v in p] for p in self.points]} if self.points else {}),
                **({"face": list(self.face)} if self.face else {})}


def alignment_for(eyes: Tuple[Point, Point], model_eyes: Tuple[Point, Point], resolution: int,
                  source: str, face=None, max_side: Optional[int] = None, points=None, model_points=None,
                  keep=None, max_zoom: Optional[float] = None) -> Alignment:
    """The aligned square for photo ``eyes``: the model's canvas at (about) the photo's own scale
    (sampled more coarsely when that would exceed ``max_side`` pixels).

    ``points`` / ``model_points`` (five each): the least-squares similarity of all five instead of
    the eyes'.  ``keep`` (a photo box x, y, w, h): the model's layout is shrunk about the canvas
    centre until the square covers the box (at most ``max_zoom`` times, default :data:`MAX_ZOOM`)."""
    if points is not None and model_points is not None:
        to_model = similarity_fit(points, model_points)      # photo -> model pixels
    else:
        to_model, points = similarity(eyes, model_eyes), None
    zoom = 1.0
    if keep is not None:
        zoom = min(max(1.0, cover_zoom(to_model, keep, resolution)), float(MAX_ZOOM if max_zoom is None else max_zoom))
        c = resolution / 2.0
        shrink = np.array([[1 / zoom, 0, c * (1 - 1 / zoom)], [0, 1 / zoom, c * (1 - 1 / zoom)]], np.float64)
        to_model = compose(shrink, to_model)
    per_photo_px = math.hypot(to_model[0, 0], to_model[1, 0])
    side = max(8, int(round(resolution / per_photo_px)))
    if max_side is not None:
        side = min(side, max(int(max_side), resolution))
    square_to_model = np.array([[resolution / side, 0, 0], [0, resolution / side, 0]], np.float64)
    pts = None if points is None else tuple((float(x), float(y)) for x, y in np.asarray(points).reshape(-1, 2))
    return Alignment(to_photo=compose(invert(to_model), square_to_model), side=side, eyes=eyes,
                     source=source, face=face, points=pts, zoom=zoom)


def cover_zoom(to_model: np.ndarray, box, resolution: int) -> float:
    """How much the canvas must grow about its centre (``to_model``: photo -> model pixels) to
    hold the photo box ``(x, y, w, h)`` with half a model pixel to spare."""
    x, y, w, h = (float(v) for v in box)
    corners = apply(to_model, [(x, y), (x + w, y), (x + w, y + h), (x, y + h)])
    c = resolution / 2.0
    return float(np.abs(corners - c).max() + 0.5) / c


# -- warping between the photo and the square ----------------------------------------------------

def warp_to_square(arr: np.ndarray, al: Alignment, nearest: bool = False, edge: bool = False,
                   origin: Tuple[int, int] = (0, 0)) -> np.ndarray:
    """An image-sized array (or one whose top-left pixel is the photo's ``origin``) -> the aligned
    square (side x side); outside the array: its edge pixels (``edge``) or 0."""
    import cv2
    interp = cv2.INTER_NEAREST if nearest else (cv2.INTER_LINEAR if arr.ndim == 2 else cv2.INTER_CUBIC)
    border = cv2.BORDER_REPLICATE if edge else cv2.BORDER_CONSTANT
    src = np.ascontiguousarray(arr)
    to_arr = compose(np.array([[1.0, 0, -origin[0]], [0, 1.0, -origin[1]]]), al.to_photo)
    out = cv2.warpAffine(src, cv_matrix(to_arr), (al.side, al.side),
                         flags=interp | cv2.WARP_INVERSE_MAP, borderMode=border, borderValue=0)
    return out.reshape((al.side, al.side) + arr.shape[2:])


def warp_to_photo(arr: np.ndarray, al: Alignment, box, nearest: bool = False) -> np.ndarray:
    """A square array -> the photo's ``box`` (x, y, w, h); 0 where the square does not reach."""
    import cv2
    x, y, w, h = box
    to_square = compose(invert(al.to_photo), np.array([[1.0, 0, x], [0, 1.0, y]]))  # box px -> square px
    interp = cv2.INTER_NEAREST if nearest else (cv2.INTER_LINEAR if arr.ndim == 2 else cv2.INTER_CUBIC)
    src = np.ascontiguousarray(arr)
    out = cv2.warpAffine(src, cv_matrix(to_square), (int(w), int(h)),
                         flags=interp | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out.reshape((int(h), int(w)) + arr.shape[2:])


def bounding_box(al: Alignment, size: Tuple[int, int]) -> Tuple[int, int, int, int]:
    """The axis-aligned box of the aligned square in the photo, clipped to it: (x, y, w, h)."""
    c = al.corners()
    W, H = size
    x0, y0 = max(0, int(math.floor(c[:, 0].min()))), max(0, int(math.floor(c[:, 1].min())))
    x1, y1 = min(W, int(math.ceil(c[:, 0].max()))), min(H, int(math.ceil(c[:, 1].max())))
    return x0, y0, max(x1 - x0, 0), max(y1 - y0, 0)


# -- finding the eyes ------------------------------------------------------------------------------

def _eyes_in_face(grey: np.ndarray, face) -> Optional[Tuple[Point, Point]]:
    """The two eye centres in a face box of a grey image, from the eye cascade, or None."""
    x, y, w, h = (int(v) for v in face)
    roi = grey[y:y + int(h * 0.6), x:x + w]
    found = cascade(EYE_CASCADE).detectMultiScale(roi, scaleFactor=1.05, minNeighbors=3,
                                                  minSize=(max(6, w // 10),) * 2, maxSize=(max(8, w // 2),) * 2)
    if not len(found):
        return None
    centres = [(x + ex + ew / 2.0, y + ey + eh / 2.0) for ex, ey, ew, eh in found]
    # an eye sits at about 30 % / 70 % of the face box's width and 38 % of its height
    want = ((x + 0.3 * w, y + 0.38 * h), (x + 0.7 * w, y + 0.38 * h))
    left = [c for c in centres if c[0] < x + w / 2.0]
    right = [c for c in centres if c[0] >= x + w / 2.0]
    if not left or not right:
        return None
    pick = [min(side, key=lambda c, t=t: math.hypot(c[0] - t[0], c[1] - t[1])) for side, t in zip((left, right), want)]
    if math.hypot(pick[1][0] - pick[0][0], pick[1][1] - pick[0][1]) < 0.2 * w:
        return None
    return pick[0], pick[1]


def detect_eyes(rgb: np.ndarray, near: Tuple[int, int, int, int]) -> Tuple[Optional[Tuple[Point, Point]], Optional[tuple], List[str]]:
    """``(eyes, face box, notes)`` for the face nearest the centre of the box ``near``.

    Faces are searched with the frontal cascade in the box widened 2x (faster, and the
    selection names the face), on the histogram-equalised grey image, upright first, then on
    the photo rotated by each of :data:`SEARCH_ANGLES` about the box's centre (for tilted
    heads); the eyes are searched in the upper part of the face.  ``eyes`` is None (with a
    note) when no face with two eyes is found."""
    import cv2
    H, W = rgb.shape[:2]
    bx, by, bw, bh = near
    cx, cy = bx + bw / 2.0, by + bh / 2.0
    half = max(bw, bh)  # the box widened 2x about its centre
    x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
    x1, y1 = min(W, int(math.ceil(cx + half))), min(H, int(math.ceil(cy + half)))
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    f = min(1.0, DETECT_SIDE / float(max(grey.shape)))  # the cascades work on a bounded image
    if f < 1.0:
        grey = cv2.resize(grey, (max(1, int(round(grey.shape[1] * f))), max(1, int(round(grey.shape[0] * f)))),
                          interpolation=cv2.INTER_AREA)
    grey = cv2.equalizeHist(grey)
    gh, gw = grey.shape
    fx, fy = grey.shape[1] / float(x1 - x0), grey.shape[0] / float(y1 - y0)  # detection px per photo px
    min_side = max(24, int(min(bw, bh) * min(fx, fy)) // 4)
    sel = ((cx - x0) * fx, (cy - y0) * fy)  # the selection's centre in detection pixels: the rotations' centre
    faces_seen = False
    for angle in SEARCH_ANGLES:
        rot = cv2.getRotationMatrix2D((sel[0] - 0.5, sel[1] - 0.5), angle, 1.0)  # on cv pixel centres
        img = grey if angle == 0 else cv2.warpAffine(grey, rot, (gw, gh), flags=cv2.INTER_LINEAR,
                                                     borderMode=cv2.BORDER_REPLICATE)
        faces = cascade(FACE_CASCADE).detectMultiScale(img, scaleFactor=1.1, minNeighbors=5,
                                                       minSize=(min_side, min_side))
        if not len(faces):
            continue
        faces_seen = True
        back = cv_to_cont(cv2.invertAffineTransform(rot))

        def centre_dist(f):  # the face nearest the selection's centre, larger ones first on ties
            return math.hypot(f[0] + f[2] / 2.0 - sel[0], f[1] + f[3] / 2.0 - sel[1]) - 0.01 * f[2]

        for face in sorted(faces, key=centre_dist):
            eyes = _eyes_in_face(img, face)
            if eyes is None:
                continue
            to_photo = np.array([[1.0 / fx, 0, x0], [0, 1.0 / fy, y0]])
            pts = apply(to_photo, apply(back, eyes))
            qx, qy, qw, qh = (int(v) for v in face)
            fc = apply(to_photo, apply(back, [(qx + qw / 2.0, qy + qh / 2.0)]))[0]
            fw, fh = int(round(qw / fx)), int(round(qh / fy))
            a, b = sorted((tuple(float(v) for v in pts[0]), tuple(float(v) for v in pts[1])))
            return (a, b), (int(round(fc[0] - fw / 2.0)), int(round(fc[1] - fh / 2.0)), fw, fh), []
    why = "found a face but not both of its eyes" if faces_seen else "found no face"
    return None, None, [f"{NO_FACE_NOTE} (the detector {why} near the selection)"]


def detect_points(rgb: np.ndarray, near: Tuple[int, int, int, int], device="cpu",
                  side: int = 512) -> Tuple[Optional[np.ndarray], Optional[tuple]]:
    """``(points, face box)``: MTCNN's five landmarks (5x2, photo pixels; eyes, nose, mouth corners)
    of the face nearest the centre of the box ``near``, searched in the box widened 2x about its
    centre and scaled so its longer side is at most ``side``; ``(None, None)`` when none is found
    there at a quarter of the box's size or more."""
    import cv2
    from ..faces.mtcnn import detect_faces
    H, W = rgb.shape[:2]
    bx, by, bw, bh = near
    cx, cy = bx + bw / 2.0, by + bh / 2.0
    half = max(bw, bh)
    x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
    x1, y1 = min(W, int(math.ceil(cx + half))), min(H, int(math.ceil(cy + half)))
    sub = np.ascontiguousarray(rgb[y0:y1, x0:x1, :3])
    f = min(1.0, side / float(max(sub.shape[:2])))
    if f < 1.0:
        sub = cv2.resize(sub, (max(1, round(sub.shape[1] * f)), max(1, round(sub.shape[0] * f))),
                         interpolation=cv2.INTER_AREA)
    fx, fy = sub.shape[1] / float(x1 - x0), sub.shape[0] / float(y1 - y0)
    faces = detect_faces(sub, device=device, min_face=max(20, int(min(bw * fx, bh * fy) / 4)))
    if not faces:
        return None, None
    sel = ((cx - x0) * fx, (cy - y0) * fy)
    best = min(faces, key=lambda q: math.hypot((q.box[0] + q.box[2]) / 2 - sel[0], (q.box[1] + q.box[3]) / 2 - sel[1]))
    pts = np.asarray(best.points, np.float64) / np.array([fx, fy]) + np.array([x0, y0], np.float64)
    b = best.box
    box = (int(round(b[0] / fx + x0)), int(round(b[1] / fy + y0)),
           int(round((b[2] - b[0]) / fx)), int(round((b[3] - b[1]) / fy)))
    return pts, box


def cv_to_cont(m: np.ndarray) -> np.ndarray:
    """An OpenCV (integer pixel centre) 2x3 map -> the same map on continuous coordinates."""
    half = np.array([0.5, 0.5])
    out = np.array(m, np.float64)
    out[:, 2] = m[:, 2] + half - m[:, :2] @ half
    return out
