"""The drag's frame: where the photo's points sit on the generator's proxy ``G_H(z)``, for
:mod:`priorpaint.edits.drag_optimise`.

The drag's features are the proxy's, whose face need not sit where the photo's does (Grace Hopper's
proxy has its mouth a few model px below hers, so a chin handle fell on the proxy's upper lip). With
``register`` the handles are mapped onto the proxy by an affine ``A`` (2×3, model px: photo point
``x`` ↦ proxy point ``A·x``), the drag runs there and its positions are mapped back:

* ``"ecc"`` (or ``True``): an ECC fit of the photo's reconstruction ``G_F(h)`` onto the proxy's
  render (:func:`priorpaint.compositing.warp.register_affine`), one affine for the whole face;
* ``"landmarks"``: the five MTCNN landmarks of the photo's own square (:func:`photo_landmarks`; of
  the reconstruction when the caller has none) and of the proxy's render, and an affine fitted to the
  five pairs by least squares weighted by their nearness to the handles (:func:`landmark_map`): local
  where the handles are (the proxy's face may also be longer or wider).

Where it does not fit (no face on either, a poor fit) the map is ``None``: the identity. Both are
off by default: each lost reach on the bench's photos (the landmark map puts Grace Hopper's chin
handle on the proxy's own chin, which, on the render's bottom rows, does not move either;
docs/method/drag.md, "Landmark registration").
"""

from __future__ import annotations

from typing import Optional

import numpy as np

#: the accepted ``register`` settings (``True`` is ``"ecc"``, the first one built)
REGISTER = (False, True, "ecc", "landmarks")
#: the landmark map's weights: ``exp(−d² / 2σ²)``, ``d`` a landmark's distance to the nearest handle,
#: ``σ`` this share of the model's resolution
LANDMARK_SIGMA = 0.2
#: the landmark map is refused (the identity) when its weighted RMS residual exceeds this (model px),
#: or when it scales by less than 0.5 or more than 2, or shifts a handle by more than a quarter of the model
LANDMARK_MAX_RESIDUAL = 2.5
#: a handle mapped this close to the proxy's edge (model px) cannot be dragged (its patch leaves the
#: render: on the held-out astronaut the proxy dissolved, docs/method/drag.md): the identity instead
LANDMARK_MARGIN = 3.0
#: a 64 px render's landmarks: the mean of the detector's reads at these sides (the render grown
#: bicubic); one read jitters ~1.5 px when the render moves one model px (docs/method/drag.md)
LANDMARK_SIDES = (192, 256, 320)


def render_landmarks(img: np.ndarray, device="cpu") -> Optional[np.ndarray]:
    """(5, 2) the landmarks of the square render ``img`` (its px): the mean of the reads at
    :data:`LANDMARK_SIDES`; ``None`` when fewer than two of them find a face."""
    from ..faces.landmarks import averaged_landmarks
    return averaged_landmarks(img, LANDMARK_SIDES, device=device)


def landmark_map(src: np.ndarray, dst: np.ndarray, handles: np.ndarray, res: int,
                 sigma: float = LANDMARK_SIGMA, max_residual: float = LANDMARK_MAX_RESIDUAL) -> Optional[np.ndarray]:
    """The affine ``A`` (2×3) with ``A·src ≈ dst`` (landmarks, model px), fitted by least squares
    with each pair weighted by ``exp(−d² / 2(σ·res)²)``, ``d`` its ``src`` landmark's distance to the
    nearest of ``handles``; ``None`` when the weighted RMS residual exceeds ``max_residual`` model px
    or the map is implausible (a singular value outside 0.5–2, a handle moved over ``res``/4 or to
    within :data:`LANDMARK_MARGIN` of the render's edge; the proxy's face may be much longer than the
    photo's: the held-out astronaut's is 1.65 times, its chin on the render's bottom row)."""
    src, dst = np.asarray(src, np.float64).reshape(-1, 2), np.asarray(dst, np.float64).reshape(-1, 2)
    handles = np.asarray(handles, np.float64).reshape(-1, 2)
    if len(src) != len(dst) or len(src) < 2 or not (np.isfinite(src).all() and np.isfinite(dst).all()):
        return None
    d = np.linalg.norm(src[:, None] - handles[None], axis=2).min(axis=1)
    w = np.exp(-0.5 * (d / (sigma * res)) ** 2) + 1e-6
    x = np.concatenate([src, np.ones((len(src), 1))], 1)
    sw = np.sqrt(w)[:, None]
    if np.linalg.matrix_rank(x * sw) < 3:   # the landmarks on one line: no affine
        return None
    m = np.linalg.lstsq(x * sw, dst * sw, rcond=None)[0].T                  # (2, 3): dst ≈ m · [src, 1]
    resid = np.linalg.norm(x @ m.T - dst, axis=1)
    rms = float(np.sqrt((w * resid ** 2).sum() / w.sum()))
    sv = np.linalg.svd(m[:, :2], compute_uv=False)
    moved = handles @ m[:, :2].T + m[:, 2]
    shift = np.abs(moved - handles).max()
    if rms > max_residual or sv.min() < 0.5 or sv.max() > 2.0 or shift > res / 4 \
            or moved.min() < LANDMARK_MARGIN or moved.max() > res - 1 - LANDMARK_MARGIN:
        return None
    return m


def photo_landmarks(region: np.ndarray, res: int, device="cpu") -> Optional[np.ndarray]:
    """(5, 2) the landmarks of the photo's square ``region`` in model px (``res``), or ``None``: read
    on the photo itself, sharp, where the 64 px reconstruction misplaces them (the held-out Grace
    Hopper's mouth corners were read on her jaw)."""
    from ..faces.landmarks import square_landmarks
    q = square_landmarks(region, interpolation="auto", device=device)
    return None if q is None else (q + 0.5) * (res / float(region.shape[0])) - 0.5


def proxy_frame(gen, z, h, split: str, interventions, proxy: np.ndarray, method="ecc", handles=None,
                device="cpu", photo_points=None) -> Optional[np.ndarray]:
    """The affine map (2×3, model px) from the photo's frame to the generator's proxy ``G_H(z)``
    (rendered as ``proxy``) by ``method`` (:data:`REGISTER`); ``None`` (the identity) where it does
    not fit, or where the photo's reconstruction is the proxy itself. ``photo_points``: the photo's
    own landmarks (:func:`photo_landmarks`), else they are read on its reconstruction ``G_F(h)``."""
    from ..compositing.blend import to_uint8
    from ..compositing.warp import register_affine
    recon = to_uint8(gen.forward_from(split, h, z=z, interventions=interventions))
    if np.array_equal(recon, proxy):
        return None
    if method == "landmarks":
        a = photo_points if photo_points is not None else render_landmarks(recon, device)
        b = render_landmarks(proxy, device)
        if a is None or b is None:
            return None
        return landmark_map(a, b, handles if handles is not None else a.mean(axis=0, keepdims=True), proxy.shape[0])
    return register_affine(recon, proxy)


def to_frame(frame, pts: np.ndarray) -> np.ndarray:
    """Photo-frame model px → the proxy's frame (``frame`` ``None``: the identity)."""
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    return pts if frame is None else pts @ np.asarray(frame, np.float64)[:, :2].T + np.asarray(frame, np.float64)[:, 2]


def from_frame(frame, pts: np.ndarray) -> np.ndarray:
    """The proxy's frame → the photo's (the inverse of :func:`to_frame`)."""
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    if frame is None:
        return pts
    a = np.asarray(frame, np.float64)
    return (pts - a[:, 2]) @ np.linalg.inv(a[:, :2]).T
