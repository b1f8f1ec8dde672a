"""Where a drag may move: the capsules around the handles' paths (the default movable region and
the render's edit mask), the handles grouped by nearness (each group optimises a latent of its own,
:mod:`priorpaint.edits.drag_optimise`), and the thin-plate field that moves the photo (:func:`drag_field`)."""

from __future__ import annotations

from typing import List, Optional

import numpy as np

#: without a mask the movable region is the capsule around each handle's path of this many times the
#: path's length (at least :data:`MIN_SPREAD` of the model's side): the rest of the face stays put
#: (DragGAN's unmasked drag moves the whole image; a photo edit should not)
SPREAD, MIN_SPREAD = 2.5, 0.08


def _segment_distance(res: int, handles: np.ndarray, targets: np.ndarray, radii: np.ndarray,
                      side: Optional[int] = None) -> np.ndarray:
    """(R, R): the least ``distance to the path p→t / radius`` over the pairs, model px; on a
    ``side``×``side`` grid over the same square when given (the photo's square)."""
    n = side or res
    gy, gx = (np.mgrid[0:n, 0:n].astype(np.float64) + 0.5) * (res / float(n)) - 0.5
    best = np.full((n, n), np.inf)
    for p, t, r in zip(handles, targets, radii):
        v = t - p
        u = np.clip(((gx - p[0]) * v[0] + (gy - p[1]) * v[1]) / max(float(v @ v), 1e-9), 0.0, 1.0)
        d = np.hypot(gx - (p[0] + u * v[0]), gy - (p[1] + u * v[1])) / r
        best = np.minimum(best, d)
    return best


def spread_radii(handles: np.ndarray, targets: np.ndarray, res: int) -> np.ndarray:
    return np.maximum(SPREAD * np.linalg.norm(targets - handles, axis=1), MIN_SPREAD * res)


def movable_region(handles: np.ndarray, targets: np.ndarray, res: int) -> np.ndarray:
    """(R, R) float32 in {0, 1}: the default movable region (capsules around the handles' paths)."""
    return (_segment_distance(res, handles, targets, spread_radii(handles, targets, res)) <= 1.0).astype(np.float32)



def drag_field(applied: List[dict], res: int) -> Optional[np.ndarray]:
    """The backward field (R, R, 2) of the applied drags for the warp composite: a thin-plate spline
    from where each handle is in the edited content (the tracked position as far as the generator's
    own motion confirms it, ``confirmed_model``) to where it was, tapered to zero from the
    movable capsule (radius 1) to twice it, so the photo outside does not move; ``None`` without a drag."""
    from ..compositing.warp import thin_plate_field
    src, dst = [], []
    for s in applied:
        moved = s.get("confirmed_model", s.get("tracked_model"))
        if s.get("kind") == "drag" and moved is not None:
            src.extend(moved)
            dst.extend(s["handles_model"])
    if not src:
        return None
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    flow = thin_plate_field(src, dst, res)
    d = _segment_distance(res, dst, src, spread_radii(dst, src, res))
    x = np.clip(2.0 - d, 0.0, 1.0)
    taper = (x * x * (3.0 - 2.0 * x)).astype(np.float32)
    return flow * taper[..., None]
