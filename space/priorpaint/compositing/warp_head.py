"""The ``head`` motion of the warp composite: head edits as one rotation of a 3-D head fitted to the photo.

The head settings of :mod:`priorpaint.compositing.warp` move the photo along a spline through the
proxy's five landmarks. That carries a tilt but not a turn: moving the photo's nose a fifth of an
eye distance reads a yaw change of 0.04–0.07, a third of the model's own head_turn=2
(docs/method/editability.md, round 2). A direction that declares ``"motion": "head"`` in its
manifest entry, with the ``"axis"`` it rotates about (head_turn and profile: ``yaw``; head_tilt:
``pitch``, round 6), is moved here instead, alone or stacked with other head edits:

* **How much** the head rotates about each axis is the generator's: the proxy's own change of that
  axis's landmark proxy ``G(z) → G(z_e)`` (yaw or pitch), bounded relative to the model's own change
  at that strength (:data:`RATIO_BOUNDS`), so a proxy that barely moves, or moves the other way,
  still gets a share of the model's change in the model's sign, and one that over-reacts is held
  back.
* **How each photo pixel moves** is the photo's own head's: a head shape placed by the photo's
  eyes, nose and mouth (:func:`head_frame`) — an ellipsoid whose depth falls off as a cosine
  towards its outline, with the nose standing out as a bump — bowed about its own horizontal axis,
  then turned about its vertical axis (:data:`AXIS_BEHIND` behind the face), and projected back.
  Under a turn the near side widens, the far side narrows, the nose moves more than the eyes and
  the outline shifts; under a bow the nose moves down more than the eyes and mouth. The motion
  tapers to zero outside the head (:data:`TAPER`), so hair and background move little and nothing
  far from the head moves.
* The angles are those whose rotation moves the photo's own landmarks' proxies by the targets
  (:func:`head_angles`), each capped at :data:`MAX_ANGLE`; one composed field, which, if it would
  fold, is scaled down until its Jacobian stays above :data:`MIN_JACOBIAN`, and whose bow, if it
  would stretch the face down its length beyond :data:`MIN_BOW_SCALE`, is scaled down alone.

A pure warp of the photo's pixels (bicubic, in :func:`~priorpaint.compositing.warp.warp_composite`):
nothing is generated. No face on the photo or on either proxy: None (the caller falls back to the
landmark spline).
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import cv2
import numpy as np

from .warp import min_jacobian

#: the axes a head edit declares (``"axis"`` in its manifest entry), named by the landmark proxy each
#: moves (:class:`priorpaint.faces.mtcnn.Face`): a turn about the vertical axis, a bow about the horizontal
YAW, PITCH = "yaw", "pitch"
AXES = (YAW, PITCH)
#: the head's half axes (across, down) in the photo's eye distances, and its centre's place below
#: the eyes' midpoint (eye distances, along the face's down axis). Round 7: the depth falls off over
#: the whole head (ears and hair included), not the face alone (1.15 × 1.7): a head as narrow as the
#: face squashed the far cheek's outer band into a crease under a turn and stretched the near ear
HEAD_AXES = (1.4, 1.8)
HEAD_CENTRE_DOWN = 0.3
#: the head's depth at its centre (eye distances), and the nose's protrusion above that surface
HEAD_DEPTH = 1.0
NOSE_PROTRUSION = 0.55
#: the nose bump's width (standard deviation, eye distances; round 7: 0.35 sheared the nose's sides)
NOSE_SIGMA = 0.5
#: the rotation axis's depth behind the head's outline plane (eye distances): a turn also shifts the
#: head (round 7: 0, the outline stays in place; 0.3 slid the whole head and stretched the near side)
AXIS_BEHIND = 0.0
#: the motion is whole inside this normalised head radius and falls (smoothly) to 0 at the second
TAPER = (0.95, 1.35)
#: the largest rotation (radians) any request gets (round 7: 22°; at 25° the far cheek is squashed
#: about 2.8× even on the round-7 head, a visible fold line)
MAX_ANGLE = float(np.radians(22.0))
#: the proxy's yaw change is used between these shares of the model's own yaw change at that strength
RATIO_BOUNDS = (1.0, 1.25)
#: the detector reads another change than the head model's geometry: the angle is chosen for
#: target / DETECTOR_GAIN[axis] of geometric change (measured in docs/method/editability.md, rounds 5 and 6)
DETECTOR_GAIN = {YAW: 0.8, PITCH: 1.15}
#: the least Jacobian determinant the field may have (no fold); a field below it is tried again at
#: FOLD_SHRINK times its angle, at most FOLD_TRIES times (then no motion)
MIN_JACOBIAN = 0.3
#: the bow's stretch limit: over the head, the field's scale along the face's down axis (photo px shown
#: per result px, :func:`bow_scale`) stays within [MIN_BOW_SCALE, 1 / MIN_BOW_SCALE]; a bow beyond it
#: is tried again at FOLD_SHRINK times its pitch (the turn kept: it leaves that scale at 1; the last of
#: FOLD_TRIES is the turn alone). Round 9: where the box is tight, the edit mask's taper holds the hat
#: and chin still while the bow moves the face, and the face between stretches (at 16°: 0.30–0.50 on
#: Hopper's boxes, 0.54–0.78 on the astronaut's); 0.65 kept smear and unexplained in target on every
#: stack measured, 0.6 and 0.55 did not
MIN_BOW_SCALE = 0.65
FOLD_SHRINK = 0.85
FOLD_TRIES = 12
#: the taper under which a head pixel counts as held back by the selection (:func:`head_cut`)
CUT_TAPER = 0.9


def head_frame(pts: np.ndarray) -> Dict[str, np.ndarray]:
    """The head placed by five landmarks (5×2, any px): ``centre``, unit ``right`` (along the eye
    line) and ``down`` vectors, ``eye`` (eye distance), and the ``nose`` point."""
    pts = np.asarray(pts, np.float64)
    d = pts[1] - pts[0]
    eye = max(float(np.hypot(*d)), 1e-6)
    right = d / eye
    down = np.array([-right[1], right[0]])
    eyes, mouth = pts[:2].mean(axis=0), pts[3:5].mean(axis=0)
    mid = 0.5 * (eyes + mouth)
    # across: the midline of eyes and mouth; down: a fixed share of the eye distance below the eyes
    centre = eyes + right * float((mid - eyes) @ right) + down * HEAD_CENTRE_DOWN * eye
    return {"centre": centre, "right": right, "down": down, "eye": np.float64(eye), "nose": pts[2]}


def _local(frame, x: np.ndarray, y: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``(u, v)``: points in eye distances along the eye line and across it, from the head's centre."""
    dx, dy = x - frame["centre"][0], y - frame["centre"][1]
    r, d, e = frame["right"], frame["down"], frame["eye"]
    return (dx * r[0] + dy * r[1]) / e, (dx * d[0] + dy * d[1]) / e


def _depth_and_weight(frame, u: np.ndarray, v: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The head's depth (eye distances, from the rotation axis) and the motion's taper at (u, v)."""
    a, b = HEAD_AXES
    rho = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    surface = HEAD_DEPTH * np.cos(0.5 * np.pi * np.clip(rho, 0.0, 1.0))
    nu, nv = _local(frame, np.asarray(frame["nose"][0]), np.asarray(frame["nose"][1]))
    bump = NOSE_PROTRUSION * np.exp(-((u - nu) ** 2 + (v - nv) ** 2) / (2.0 * NOSE_SIGMA ** 2))
    lo, hi = TAPER
    t = np.clip((rho - lo) / (hi - lo), 0.0, 1.0)
    weight = 0.5 * (1.0 + np.cos(np.pi * t))
    return surface + bump + AXIS_BEHIND, weight


def forward_motion(frame, angle: float, x: np.ndarray, y: np.ndarray, pitch: float = 0.0) -> np.ndarray:
    """(…, 2) the forward motion (same px as the frame) of points (x, y) when the head bows by
    ``pitch`` radians about its own horizontal axis (the eye line's direction through the head's
    centre; +: the front moves along the face's down axis) and then turns by ``angle`` radians about
    its vertical axis (+: the face's front moves along the eye line's direction, image right for an
    upright face) — a nod's axis turns with the head — tapered outside the head. Orthographic: depth
    is dropped after the rotation."""
    u, v = _local(frame, x, y)
    depth, weight = _depth_and_weight(frame, u, v)
    dv = 0.0
    if pitch != 0.0:                                                # about the head's horizontal axis
        dv = v * (np.cos(pitch) - 1.0) + depth * np.sin(pitch)
        depth = depth * np.cos(pitch) - v * np.sin(pitch)
    du = u * (np.cos(angle) - 1.0) + depth * np.sin(angle)          # then about the vertical axis
    du, dv = du * weight * frame["eye"], dv * weight * frame["eye"]
    r, d = frame["right"], frame["down"]
    return np.stack([du * r[0] + dv * d[0], du * r[1] + dv * d[1]], axis=-1)


def _face(pts: np.ndarray):
    from ..faces.mtcnn import Face
    return Face(box=(0.0, 0.0, 0.0, 0.0), score=1.0, points=np.asarray(pts, np.float64))


def _yaw(pts: np.ndarray) -> float:
    """The yaw proxy of five landmarks (:attr:`priorpaint.faces.mtcnn.Face.yaw`, the measure's own)."""
    return _face(pts).yaw


def _pitch(pts: np.ndarray) -> float:
    """The pitch proxy of five landmarks (:attr:`priorpaint.faces.mtcnn.Face.pitch`, the measure's own)."""
    return _face(pts).pitch


PROXIES = {YAW: _yaw, PITCH: _pitch}


def geometric_change(pts: np.ndarray, axis: str, angle: float, pitch: float = 0.0) -> float:
    """The change of the ``axis`` proxy (:data:`AXES`, as :class:`priorpaint.faces.mtcnn.Face`
    reads it) of the landmarks ``pts`` themselves moved by the head model turned by ``angle`` and
    bowed by ``pitch`` (radians)."""
    pts = np.asarray(pts, np.float64)
    moved = pts + forward_motion(head_frame(pts), angle, pts[:, 0], pts[:, 1], pitch)
    return PROXIES[axis](moved) - PROXIES[axis](pts)


def geometric_yaw_change(pts: np.ndarray, angle: float, pitch: float = 0.0) -> float:
    """The yaw proxy's change of the landmarks moved by the head model (:func:`geometric_change`)."""
    return geometric_change(pts, YAW, angle, pitch)


def _bisect(change, goal: float) -> float:
    """The angle (radians, capped at :data:`MAX_ANGLE`) at which ``change(angle)`` reaches ``goal``
    (bisection: the change grows with the angle)."""
    if goal == 0.0:
        return 0.0
    sign = 1.0 if change(0.1) * goal > 0 else -1.0
    lo, hi = 0.0, MAX_ANGLE
    if abs(change(sign * hi)) <= abs(goal):
        return sign * hi
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if abs(change(sign * mid)) < abs(goal):
            lo = mid
        else:
            hi = mid
    return sign * 0.5 * (lo + hi)


def angle_for_yaw(pts: np.ndarray, target: float, pitch: float = 0.0) -> float:
    """The rotation (radians, capped at :data:`MAX_ANGLE`) whose head model, bowed by ``pitch``,
    moves the landmarks' yaw by ``target / DETECTOR_GAIN["yaw"]``."""
    return _bisect(lambda a: geometric_change(pts, YAW, a, pitch), float(target) / DETECTOR_GAIN[YAW])


def angle_for_pitch(pts: np.ndarray, target: float, yaw: float = 0.0) -> float:
    """The bow (radians, capped at :data:`MAX_ANGLE`) whose head model, turned by ``yaw``, moves the
    landmarks' pitch by ``target / DETECTOR_GAIN["pitch"]``."""
    return _bisect(lambda b: geometric_change(pts, PITCH, yaw, b), float(target) / DETECTOR_GAIN[PITCH])


def head_angles(pts: np.ndarray, goals: Dict[str, float]) -> Tuple[float, float]:
    """``(yaw, pitch)`` radians that move the landmarks' proxies by ``goals`` (per axis; a missing
    axis: 0). The two rotations barely move each other's proxy; each is solved with the other's
    angle held, twice."""
    yaw = pitch = 0.0
    for _ in range(2 if len(goals) > 1 else 1):
        if YAW in goals:
            yaw = angle_for_yaw(pts, goals[YAW], pitch)
        if PITCH in goals:
            pitch = angle_for_pitch(pts, goals[PITCH], yaw)
    return yaw, pitch


def head_field(photo_pts: np.ndarray, angle: float, res: int, scale: float,
               taper: Optional[np.ndarray] = None, iterations: int = 6, pitch: float = 0.0) -> np.ndarray:
    """The backward field (R×R×2, model px: the result's pixel x shows the photo's x + field(x))
    that turns the head placed by ``photo_pts`` (the photo's landmarks, its square's px) by
    ``angle`` radians and bows it by ``pitch`` (each clipped to ±:data:`MAX_ANGLE`; one composed
    rotation, :func:`forward_motion`). ``scale``: square px per model px; ``taper``: (R, R) in
    [0, 1] the field is multiplied by (the edit mask's, so that its feather blends the photo with
    itself, :func:`~priorpaint.compositing.between.mask_taper`). Both angles 0: exactly zero. A field
    that would fold is scaled down (both angles together) until it does not; a bow that would stretch
    the face down its length past :data:`MIN_BOW_SCALE` is scaled down alone."""
    return _head_field(photo_pts, angle, res, scale, taper, iterations, pitch)[0]


def head_mask(frame, res: int) -> np.ndarray:
    """(R, R) bool: the model pixels inside the head's outline (normalised radius ≤ 1)."""
    gy, gx = np.mgrid[0:res, 0:res].astype(np.float64)
    u, v = _local(frame, gx, gy)
    return (u / HEAD_AXES[0]) ** 2 + (v / HEAD_AXES[1]) ** 2 <= 1.0


def head_cut(frame, taper: np.ndarray) -> float:
    """The share of the head (its outline, :func:`head_mask`, counted past the square's edge too)
    whose motion the edit mask's ``taper`` ((R, R) in [0, 1], :func:`~priorpaint.compositing.between.mask_taper`)
    holds back by more than :data:`CUT_TAPER`'s complement: under the selection's feather ramp, or
    outside the selection or the square. 0: the whole head turns freely; 1: none of it does."""
    res = taper.shape[0]
    gy, gx = np.mgrid[-res:2 * res, -res:2 * res].astype(np.float64)   # the square and a square's width round it
    u, v = _local(frame, gx, gy)
    head = (u / HEAD_AXES[0]) ** 2 + (v / HEAD_AXES[1]) ** 2 <= 1.0
    if not head.any():
        return 0.0
    free = np.zeros(gx.shape, bool)
    free[res:2 * res, res:2 * res] = taper >= CUT_TAPER
    return float(1.0 - np.count_nonzero(head & free) / np.count_nonzero(head))


def bow_scale(field: np.ndarray, frame, head: np.ndarray) -> Tuple[float, float]:
    """``(least, largest)`` scale of the backward ``field`` along the face's down axis over ``head``
    (bool): ``1 + ∂f_d/∂d``, photo px shown per result px down the face (< 1: stretched, > 1:
    compressed; a turn leaves it at 1)."""
    d = frame["down"]
    along = field[..., 0] * d[0] + field[..., 1] * d[1]
    scale = 1.0 + d[0] * np.gradient(along, axis=1) + d[1] * np.gradient(along, axis=0)
    return float(scale[head].min()), float(scale[head].max())


def _head_field(photo_pts, angle, res, scale, taper=None, iterations=6, pitch=0.0):
    """:func:`head_field` and the ``(yaw, pitch)`` it applied (after the fold's and the bow's shrink)."""
    angle = float(np.clip(angle, -MAX_ANGLE, MAX_ANGLE))
    pitch = float(np.clip(pitch, -MAX_ANGLE, MAX_ANGLE))
    field = np.zeros((res, res, 2), np.float32)
    if angle == 0.0 and pitch == 0.0:
        return field, (0.0, 0.0)
    frame = head_frame(np.asarray(photo_pts, np.float64) / scale)
    head = head_mask(frame, res)
    gy, gx = np.mgrid[0:res, 0:res].astype(np.float32)
    for attempt in range(FOLD_TRIES):   # the angles shrink by FOLD_SHRINK until the field does not fold
        forward = forward_motion(frame, angle, gx.astype(np.float64), gy.astype(np.float64),
                                 pitch).astype(np.float32)
        back = np.zeros_like(forward)
        for _ in range(iterations):   # backward field f(x) = −D(x + f(x)), fixed point
            back = -cv2.remap(forward, gx + back[..., 0], gy + back[..., 1], cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        if taper is not None:
            back = back * taper[..., None].astype(np.float32)
        if min_jacobian(back) < MIN_JACOBIAN:   # a fold: both angles shrink
            angle *= FOLD_SHRINK
            pitch *= FOLD_SHRINK
            continue
        least, largest = bow_scale(back, frame, head) if pitch != 0.0 else (1.0, 1.0)
        if least >= MIN_BOW_SCALE and largest <= 1.0 / MIN_BOW_SCALE:
            return back, (angle, pitch)
        # the face stretched down its length: the bow alone shrinks (the last try: the turn alone)
        pitch = pitch * FOLD_SHRINK if attempt < FOLD_TRIES - 2 else 0.0
    return field, (0.0, 0.0)


def target_change(proxy_change: Optional[float], reference: Optional[float]) -> Optional[float]:
    """The proxy change to carry on one axis: the proxy's own change bounded to :data:`RATIO_BOUNDS`
    of the model's (``reference``), in the model's sign; the proxy's change alone without a
    reference; None when neither is known."""
    if reference is None or reference == 0.0:
        return proxy_change
    lo, hi = RATIO_BOUNDS
    ratio = 0.0 if proxy_change is None else float(proxy_change) / float(reference)
    return float(reference) * float(np.clip(ratio, lo, hi))


def head_correspondence(base: np.ndarray, edited: np.ndarray, region: np.ndarray, mask: np.ndarray,
                        feather: int, references: Dict[str, Optional[float]]):
    """``(flow, new_content, info)`` for :func:`~priorpaint.compositing.warp.warp_composite`: the
    photo's head (``region``, its square) turned and bowed by the proxies' (R×R×3 uint8) change of
    each axis in ``references`` (:data:`AXES` → the model's own change at the edits' strengths, or
    None), each bounded by its reference (:func:`target_change`) and composed into one rotation,
    tapered to zero before the feather of the square's edit ``mask`` (``feather`` px). An edited
    proxy the detector finds no face on (a face turned to a full profile) gets the model's own
    change at the lower bound. None when the photo or the unedited proxy shows no face, or neither
    the edited proxy nor a reference says how far to rotate on an axis."""
    from ..faces.landmarks import square_landmarks
    from .between import mask_taper
    res = base.shape[0]
    b, e = square_landmarks(base), square_landmarks(edited)
    photo = square_landmarks(region, interpolation="auto")
    if b is None or photo is None or not references:
        return None
    info: Dict[str, object] = {}
    goals: Dict[str, float] = {}
    for axis in AXES:
        if axis not in references:
            continue
        proxy = None if e is None else PROXIES[axis](e) - PROXIES[axis](b)
        goal = target_change(proxy, references[axis])
        if goal is None:
            return None
        goals[axis] = goal
        info[f"proxy_{axis}_change"] = None if proxy is None else round(proxy, 4)
        info[f"target_{axis}_change"] = round(goal, 4)
    yaw0, pitch0 = head_angles(photo, goals)
    scale, taper = region.shape[0] / float(res), mask_taper(mask, feather, res)
    flow, (yaw, pitch) = _head_field(photo, yaw0, res, scale, taper, pitch=pitch0)   # after the fold's shrink
    # how much of the head the selection's edge holds still (a tight box: the taper crosses the face)
    info["head_cut"] = round(head_cut(head_frame(np.asarray(photo, np.float64) / scale), taper), 4)
    for axis, key, asked, applied in ((YAW, "head_angle_deg", yaw0, yaw), (PITCH, "head_pitch_deg", pitch0, pitch)):
        if axis in goals:
            info[key] = round(float(np.degrees(applied)), 2)
            info[key.replace("_deg", "_asked_deg")] = round(float(np.degrees(np.clip(asked, -MAX_ANGLE, MAX_ANGLE))), 2)
    return flow, np.zeros((res, res), np.float32), info
