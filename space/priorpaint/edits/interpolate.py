"""Interpolation between two projected images: ``interpolate:OTHER.png@T``.

OTHER is projected with the session's model, split layer and selection geometry, then the
current state moves a fraction ``T`` (0..1) of the way to it, linearly in both latents::

    z_e = (1 − T)·z + T·z_other        h_e = (1 − T)·h + T·h_other

(``h`` is what ``G_F`` renders; ``z`` is kept consistent for generators whose later layers
read it.)  Selection geometry: an OTHER of the photo's size has the session's square cut
from it, exactly like the photo; an OTHER of any other size is taken to *be* the
selection's square (as it comes out of the layer box): a non-square image is
centre-cropped to a square, and it is resized to the model's resolution.

OTHER is projected with the session's own projection settings (steps, seed, losses,
masking; a JSON spec may override ``steps`` and ``seed``), and that projection is cached in
the session (keyed by its pixels and the settings), so sliding ``T`` re-renders at
preview speed.

Rendered by the ``warp`` composite (the kind declares it, so a ``detail`` render becomes it): the
photo's own pixels move to the face between the two and only the low band of the appearance between
them is added (:mod:`priorpaint.compositing.between`); compositing ``G(h_e) − G(h)`` in detail mode
cross-faded two faces' structures into a smudge with dark blotches. ``replace`` still shows the
interpolated render itself.
"""

from __future__ import annotations

import hashlib
import math
from typing import Optional

import numpy as np

from ..compositing.crop import resize_rgb
from ..errors import InputError
from ..images import load_photo
from ..projection.project import ProjectionConfig, project
from .registry import EditContext, EditState, PreviewCost, Strength, register_edit

#: the most projection steps a spec may ask for OTHER (as for the photo's own projection)
MAX_STEPS = 5000

def other_region(ctx: EditContext, other) -> np.ndarray:
    """The other image's pixels for the selection's square, at its own resolution (S, S, 3) uint8."""
    photo = load_photo(other, "interpolation image")
    if photo.size == ctx.crop.image_size:
        return ctx.crop.region_of(photo.rgb, pad="edge")
    h, w = photo.rgb.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    return np.ascontiguousarray(photo.rgb[y0:y0 + side, x0:x0 + side])


def other_square(ctx: EditContext, other) -> np.ndarray:
    """The other image's pixels for the selection's square, at model resolution (R, R, 3) uint8."""
    return resize_rgb(other_region(ctx, other), ctx.gen.resolution)


def other_points(ctx: EditContext, other) -> Optional[list]:
    """The other face's five landmarks in its square, as fractions of the square's side (5 × [x, y]),
    or None when the detector finds no face: what the render's ``between`` measure reads
    (:func:`priorpaint.measures.interpolation.between_report`; remembered in the session's memo)."""
    from ..measures.interpolation import square_points
    region = other_region(ctx, other)
    key = ("interpolate-points", hashlib.sha256(region.tobytes()).hexdigest())
    if key not in ctx.memo:
        pts = square_points(region)
        ctx.memo[key] = None if pts is None else [[round(float(x), 4), round(float(y), 4)] for x, y in pts]
    return ctx.memo[key]


def project_other(ctx: EditContext, other, steps: Optional[int] = None, seed: Optional[int] = None):
    """``(z, h)`` of the other image, projected like the photo (remembered in the session's memo).

    The photo's projection settings are reused (steps, seed, losses, masking, split);
    ``steps`` / ``seed`` override them.  The projection reports progress and stops on
    the edit's cancel token.
    """
    import dataclasses
    import torch
    pixels = other_square(ctx, other)
    cfg = ctx.projection_config or ProjectionConfig()
    changes = {"split": ctx.split}
    if steps is not None:
        changes["steps"] = int(steps)
    if seed is not None:
        changes["seed"] = int(seed)
    cfg = dataclasses.replace(cfg, **changes)
    key = ("interpolate", hashlib.sha256(pixels.tobytes()).hexdigest(), repr(cfg))
    hit = ctx.memo.get(key)
    if hit is not None:
        return hit["z"], hit["h"]
    target = torch.from_numpy(np.array(pixels)).permute(2, 0, 1).float().div(127.5).sub(1.0)[None].to(ctx.gen.device)
    p = project(ctx.gen, target, ctx.mask, cfg, ctx.progress, ctx.cancel)
    ctx.memo[key] = {"z": p.z, "h": p.h}
    return p.z, p.h


def parse_interpolate(args: str) -> dict:
    path, sep, t = args.rpartition("@")
    if not sep or not path.strip():
        raise InputError(f"interpolate edit must be interpolate:OTHER.png@T (T between 0 and 1), got interpolate:{args}")
    try:
        value = float(t)
    except ValueError:
        raise InputError(f"interpolate: T {t!r} is not a number (between 0 and 1)") from None
    return {"other": path.strip(), "t": value}


@register_edit("interpolate", parse_interpolate, preview=PreviewCost.SLOW, survives_reprojection=True,
               strength=Strength("t", 0.0, 1.0), file_fields=("other",), composite="warp",
               help="interpolate:OTHER.png@T — move a fraction T (0..1) toward OTHER projected with the same model "
                    "and selection (OTHER of the photo's size is cut like the photo; other sizes are the square itself)")
def apply_interpolate(ctx: EditContext, state: EditState, spec: dict) -> EditState:
    other = spec.get("other")
    if other is None or (isinstance(other, str) and not other.strip()):
        raise InputError("interpolate edit needs 'other' (an image)")
    try:
        t = float(spec.get("t", 0.5))
    except (TypeError, ValueError):
        raise InputError(f"interpolate: t {spec.get('t')!r} is not a number") from None
    if not math.isfinite(t) or not 0.0 <= t <= 1.0:
        raise InputError(f"interpolate: t must be between 0 and 1, got {spec.get('t')!r}")
    steps, seed = spec.get("steps"), spec.get("seed")
    for name, v in (("steps", steps), ("seed", seed)):
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise InputError(f"interpolate: {name} must be a non-negative integer, got {str(v)[:40]!r}")
    if steps is not None and steps > MAX_STEPS:
        raise InputError(f"interpolate: steps must be between 0 and {MAX_STEPS}, got {steps}")
    if seed is not None and seed > 2 ** 31 - 1:
        raise InputError(f"interpolate: seed must be between 0 and {2 ** 31 - 1}, got {seed}")
    z_o, h_o = project_other(ctx, other, steps=steps, seed=seed)
    spec["other_points"] = other_points(ctx, other)
    new = state.evolve()
    new.z = (1.0 - t) * state.z + t * z_o.to(state.z.device)
    new.h = (1.0 - t) * state.h + t * h_o.to(state.h.device)
    if not isinstance(other, str):
        spec["other"] = f"<{type(other).__name__}>"   # keep the report JSON-friendly
    return new
