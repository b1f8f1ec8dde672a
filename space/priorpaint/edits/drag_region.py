"""Where a drag may move: the capsules around the handles' paths (the default movable region and
the render's edit mask), the handles grouped by nearness (each group optimises a latent of its own,
:mod:`priorpaint.edits.drag_optimise`), the thin-plate field that moves the photo (:func:`drag_field`) and where the render may paste generated
pixels (:func:`paste_bound`)."""

from __future__ import annotations

from typing import List, Optional

import numpy as np

#: without a mask the movable region is the capsule around each handle's path of this many times the
#: path's length (at least :data:`MIN_SPREAD` of the model's side): the rest of the face stays put
#: (DragGAN's unmasked drag moves the whole image; a photo edit should not)
SPREAD, MIN_SPREAD = 2.5, 0.08


#: a drag's render may paste generated pixels (where its proxy's features no longer match the photo's,
#: :func:`priorpaint.compositing.warp.new_content_along`) only within ``r1`` model px of each pair's path
#: ``p → t``: the motion-supervision patch swept from its handle to its target. That is where the drag
#: asked content to move, and where a move opens a gap (a lip dragged down leaves its old place, on the
#: path). Beyond it a mismatch is the proxy drifting: at ``lr`` 0.15 a dark spot grew in the cameraman's
#: sky 7–12 px from every path, and ``r1 + |t − p|`` still let a smudge under the held-out cameraman's
#: nose through, 3–6 px from the chin handle's path (docs/method/drag.md); there the photo's own warped
#: pixels are used. The bound falls from 1 to 0 over the last :data:`PASTE_EDGE` model px inside it.
PASTE_EDGE = 1.0


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



#: two handles share a latent when they are nearer than this many times the sum of their moves (the two
#: moves could meet: separate latents pulling apart or together would fold the field between them), or
#: nearer than :data:`GROUP_PATCH` × ``r1`` (their motion-supervision patches overlap)
GROUP_NEAR, GROUP_PATCH = 1.0, 2.0
#: the groups' weights on the split's grid: a softmax of ``−distance / radius`` over the groups at this
#: temperature (each cell mostly one group's, a soft seam between)
GROUP_TAU = 0.25
#: ``latents``: one per group of nearby handles (default), one per handle, or one for all (the paper's)
LATENTS = ("group", "each", "one")


def group_handles(handles: np.ndarray, targets: np.ndarray, r1: float = 3.0, latents: str = "group") -> np.ndarray:
    """(N,) int: each handle's group (0..G−1, in order of first handle); a group optimises one latent.
    ``"group"``: the connected components of "nearer than :data:`GROUP_NEAR` × the sum of the two
    moves, or than :data:`GROUP_PATCH` × ``r1``"; ``"each"``: a group per handle; ``"one"``: one group."""
    from ..errors import InputError
    if latents not in LATENTS:
        raise InputError(f"drag latents must be one of {', '.join(repr(v) for v in LATENTS)}, "
                         f"got {str(latents)[:20]!r}")
    p = np.asarray(handles, np.float64).reshape(-1, 2)
    n = len(p)
    if latents != "group":
        return np.arange(n) if latents == "each" else np.zeros(n, int)
    move = np.linalg.norm(np.asarray(targets, np.float64).reshape(-1, 2) - p, axis=1)
    near = np.linalg.norm(p[:, None] - p[None], axis=2) <= np.maximum(
        GROUP_NEAR * (move[:, None] + move[None]), GROUP_PATCH * float(r1))
    label = np.full(n, -1)
    g = 0
    for i in range(n):              # connected components, numbered by their first handle
        if label[i] >= 0:
            continue
        stack, label[i] = [i], g
        while stack:
            j = stack.pop()
            for k in np.flatnonzero(near[j] & (label < 0)):
                label[k] = g
                stack.append(k)
        g += 1
    return label


def group_weights(handles: np.ndarray, targets: np.ndarray, groups: np.ndarray, res: int, side: int) -> np.ndarray:
    """(G, side, side) float32 summing to 1 in each cell: how much of each group's change a cell of a
    ``side``×``side`` grid over the model's square takes (the split feature's grid): a softmax over
    the groups of ``−d_g /`` :data:`GROUP_TAU`, ``d_g`` the distance to the group's paths in capsule radii."""
    handles, targets = np.asarray(handles, np.float64), np.asarray(targets, np.float64)
    radii = spread_radii(handles, targets, res)
    d = np.stack([_segment_distance(res, handles[groups == g], targets[groups == g], radii[groups == g], side=side)
                  for g in range(int(groups.max()) + 1)])
    e = np.exp(-(d - d.min(0, keepdims=True)) / GROUP_TAU)
    return (e / e.sum(0, keepdims=True)).astype(np.float32)


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


def paste_radii(handles: np.ndarray, r1: float) -> np.ndarray:
    """(N,) model px: how far from each pair's path a drag may paste generated pixels: ``r1`` for every
    pair (the note above :data:`PASTE_EDGE`)."""
    return np.full(len(np.asarray(handles, np.float64).reshape(-1, 2)), float(r1))


def paste_bound(applied: List[dict], res: int) -> Optional[np.ndarray]:
    """(R, R) float32 in [0, 1]: where the applied drags' render may paste generated pixels: 1 up to
    :data:`PASTE_EDGE` inside each pair's ``paste_radii_model`` from its path ``handles_model →
    targets_model``, falling to 0 at that radius; the largest over the pairs; ``None`` without a drag."""
    margin = []
    for s in applied:
        if s.get("kind") != "drag" or s.get("handles_model") is None:
            continue
        h, t = np.asarray(s["handles_model"], np.float64), np.asarray(s["targets_model"], np.float64)
        for p, q, r in zip(h, t, np.asarray(s["paste_radii_model"], np.float64)):
            margin.append(r - _segment_distance(res, p[None], q[None], np.ones(1)))   # model px inside the radius
    if not margin:
        return None
    return np.clip(np.max(margin, axis=0) / PASTE_EDGE, 0.0, 1.0).astype(np.float32)
