"""Drag editing (DragGAN-style handles): ``drag:HX,HY>TX,TY[;HX,HY>TX,TY...][@MASK.png]``.

The user puts *handle* points on the photo and a *target* for each (photo pixels); the content
under each handle moves to its target. The method follows the DragGAN paper's facts (own code):

* **Features** ``F``: the generator's feature map at one layer after the split
  (:func:`feature_layer`: declared per architecture in :data:`FEATURE_LAYER`, or by a generator's
  own ``drag_feature_layer`` attribute), upsampled bilinearly to the model's resolution.
* **Motion supervision**: for each handle ``p`` with target ``t``, ``d = (t − p)/|t − p|`` and
  ``Σ_q |F(q + d) − sg(F(q))|₁`` over the disk of radius :data:`DEFAULTS` ``r1`` around ``p``
  (bilinear sampling, the right-hand side detached), plus ``λ·|(F − F0)·(1 − M)|₁`` for an optional
  movable-region mask ``M``: the features one pixel ahead are pulled onto the current ones, so the
  content moves one small step toward the target.
* **Optimisation**: Adam on the latent state (:mod:`priorpaint.edits.drag_space`: ``δz`` on the
  generator's proxy for the DCGAN, the first layers' ``w+`` for StyleGAN2). Without a mask the
  movable region is a capsule around each handle's path (:func:`movable_region`).
* **Point tracking**: after each step each handle moves to the nearest neighbour (L1) of its initial
  feature ``f0`` within the square of radius ``r2`` (half-pixel grid), then no further than the
  generator's render moved there (:data:`CONFIRM`, :mod:`priorpaint.compositing.drag_motion`).
* **Stopping**: every handle within :data:`STOP_PX` model px of its target, or ``steps``.  Each step
  checks ``ctx.cancel`` and reports ``ctx.progress`` with the handles' current photo positions.

The parts live in their own modules: the spec, its checks and the geometry in
:mod:`~priorpaint.edits.drag_spec`, the optimisation in :mod:`~priorpaint.edits.drag_optimise`, the
latent state in :mod:`~priorpaint.edits.drag_space`, the capsules and the field in
:mod:`~priorpaint.edits.drag_region`; this module is the edit (:func:`apply_drag`).

A render with a drag uses the ``warp`` composite: the photo's own pixels move along a thin-plate field
through the *confirmed* handles (:func:`drag_field`), so a tracker's jump cannot move the photo, and
generated pixels are pasted only near the handles' paths (:func:`~priorpaint.edits.drag_region.paste_bound`).
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from ..errors import InputError
from .drag_frame import REGISTER, photo_landmarks
from .drag_optimise import DEFAULTS, feature_layer, optimise   # noqa: F401 (the edit's method, one name)
from .drag_region import LATENTS, _segment_distance, drag_field, movable_region, paste_radii, spread_radii   # noqa: F401
from .drag_spec import (_check, _inside_selection, attach_save_vector, check_points, model_to_photo,  # noqa: F401
                        parse_drag, photo_to_model, replay_points, saved_drag, strength)
from .registry import EditContext, EditState, PreviewCost, register_edit

#: a drag that gets a handle less than this share of the way says so in a note
STUCK_SHARE = 0.5
#: the share of the generator's low-band appearance change a drag's render adds where the content is
#: matched: none — a drag moves content; on the embedded model the optimisation also shifts the
#: face's colours (Grace Hopper's cheeks went grey-blue), which the photo should not take
APPEARANCE = 0.0


def _save(ctx: EditContext, state: EditState, new: EditState, name: str, handles, targets, info, share,
          opts: dict) -> str:
    from ..store import model_key
    from .vectors import save_vector
    res = float(ctx.gen.resolution)
    square = np.concatenate([handles, targets], 1) + 0.5
    path = save_vector(model_key(ctx.gen), name, new.h - state.h,
                       {"split": ctx.split, "kind": "drag", "points_square": np.round(square / res, 5).tolist(),
                        "reach_model": [round(float(v), 3) for v in share], "steps": info["steps_run"],
                        # the settings the user chose (those not at their defaults): a replay drags as this did
                        "options": {k: v for k, v in opts.items() if v != DEFAULTS[k]}},
                       delta_z=new.z - state.z, namespace=ctx.vector_namespace)
    # the app's clients get the name only (never a server path); the CLI reports the file
    return name if ctx.vector_namespace is not None else str(path)



def _movable(ctx: EditContext, spec: dict) -> Tuple[Optional[np.ndarray], List[str]]:
    src = spec.get("mask")
    if src is None or (isinstance(src, str) and not src.strip()):
        return None, []
    from ..compositing.regions import mask_channel
    from ..images import read_image_array
    arr = read_image_array(src, "drag mask")
    region, _, notes = ctx.place(mask_channel(arr), "drag mask", nearest=False)
    if not isinstance(src, str):
        spec["mask"] = f"<{type(src).__name__}>"
    return region, notes


@register_edit("drag", parse_drag, check=_check, composite="warp", preview=PreviewCost.SLOW, file_fields=("mask",),
               help="drag:HX,HY>TX,TY[;...][@MASK.png] — move each handle point to its target (photo pixels, "
                    "at most 16 pairs); MASK: the movable region (optional); drag:NAME[=STRENGTH] replays a "
                    "drag saved with --save-vector NAME")
def apply_drag(ctx: EditContext, state: EditState, spec: dict) -> EditState:
    saved_opts = {}
    if spec.get("vector") is not None:
        meta = saved_drag(ctx.gen, spec, ctx.vector_namespace)
        spec["points"] = replay_points(ctx.crop, meta, strength(spec), ctx.gen.resolution)
        saved_opts = {k: v for k, v in (meta.get("options") or {}).items() if k in DEFAULTS}
    save = spec.get("save_vector")
    if save:
        from .vectors import check_name
        check_name(save)
    pts = np.asarray(check_points(spec.get("points")), np.float64)
    spec["points"] = pts.tolist()
    crop = ctx.crop
    _inside_selection(crop, pts[:, :2], "handle")
    _inside_selection(crop, pts[:, 2:], "target")
    # the spec's settings, else the saved drag's (it replays as it was made), else the defaults
    opts = {k: spec.get(k, saved_opts.get(k, v)) for k, v in DEFAULTS.items()}
    try:
        opts["steps"], opts["r2"] = int(opts["steps"]), int(opts["r2"])
        for k in ("lr", "r1", "lambda_mask", "lambda_target"):
            opts[k] = float(opts[k])
    except (TypeError, ValueError, OverflowError):
        raise InputError("drag: steps and r2 must be integers, lr, r1, lambda_mask, lambda_target numbers") from None
    if not 0 <= opts["steps"] <= 1000 or not 0 < opts["r1"] <= 16 or not 1 <= opts["r2"] <= 16 \
            or not all(0 <= opts[k] <= 10 for k in ("lr", "lambda_mask", "lambda_target")):
        raise InputError("drag: steps must be 0..1000, r1 in (0, 16], r2 in 1..16, lr, lambda_mask and "
                         "lambda_target in [0, 10]")
    if not isinstance(opts["escalate"], bool):
        raise InputError(f"drag escalate must be true or false, got {str(opts['escalate'])[:20]!r}")
    if not any(opts["register"] is v or (isinstance(v, str) and opts["register"] == v) for v in REGISTER):
        raise InputError(f"drag register must be false, true, 'ecc' or 'landmarks', got {str(opts['register'])[:20]!r}")
    if opts["latents"] not in LATENTS:
        raise InputError(f"drag latents must be one of {', '.join(repr(v) for v in LATENTS)}, "
                         f"got {str(opts['latents'])[:20]!r}")
    new = state.evolve()
    region, notes = _movable(ctx, spec)
    new.notes.extend(notes)
    handles, targets = photo_to_model(crop, pts[:, :2]), photo_to_model(crop, pts[:, 2:])
    res = ctx.gen.resolution
    if region is not None:
        if not region.any():
            raise InputError("the drag mask is empty: nothing may move")
        movable = crop.model_mask(ctx.gen.device, mask=region)
    else:
        movable = "capsule"   # each group of handles its own capsules (edits/drag_region.py)
        # the render may change the photo where the field is not yet zero (twice the capsule)
        near = _segment_distance(res, handles, targets, spread_radii(handles, targets, res), side=crop.square[2])
        region = np.where(near <= 2.2, 255, 0).astype(np.uint8)
    new.edit_mask = ctx.merged_mask(state, region)
    # the photo's own landmarks, read on its square (sharper than the reconstruction), for the landmark frame
    landmarks = photo_landmarks(crop.region, res, ctx.gen.device) if opts["register"] == "landmarks" else None
    z_e, h_e, tracked, info = optimise(ctx.gen, state.z, state.h, ctx.split, handles, targets, movable,
                                  state.interventions, cancel=ctx.cancel, progress=ctx.progress,
                                  to_photo=lambda q: model_to_photo(crop, q), photo_points=landmarks, **opts)
    new.z, new.h = z_e, h_e
    from ..compositing.drag_motion import confirmed_positions
    motion = info.pop("generator_motion")
    info.pop("group_z"), info.pop("row_z")
    confirmed = confirmed_positions(handles, tracked, motion)
    tracked = np.asarray(info.pop("tracker_model"), np.float64)   # where the feature tracker itself put them
    before = np.linalg.norm(targets - handles, axis=1)
    tracked_share = 1.0 - np.linalg.norm(targets - tracked, axis=1) / np.maximum(before, 1e-6)
    after = np.linalg.norm(targets - confirmed, axis=1)
    share = 1.0 - after / np.maximum(before, 1e-6)
    for i in np.flatnonzero(share < STUCK_SHARE):
        jump = (f"; the tracker put it {max(tracked_share[i], 0.0):.0%} of the way, the generator did not follow"
                if tracked_share[i] - share[i] > 0.1 else "")
        new.notes.append(f"drag handle {i + 1} could not move far: it got {max(share[i], 0.0):.0%} of the way "
                         f"({after[i]:.1f} of {before[i]:.1f} model px left after {info['steps_run']} steps{jump})")
    if save:
        spec["saved_vector"] = _save(ctx, state, new, save, handles, targets, info, share, opts)
    spec.update(handles_model=np.round(handles, 3).tolist(), targets_model=np.round(targets, 3).tolist(),
                tracked_model=np.round(tracked, 3).tolist(),
                confirmed_model=np.round(confirmed, 3).tolist(), generator_motion=np.round(motion, 3).tolist(),
                tracked=np.round(model_to_photo(crop, tracked), 1).tolist(),
                confirmed=np.round(model_to_photo(crop, confirmed), 1).tolist(),
                paste_radii_model=np.round(paste_radii(handles, opts["r1"]), 3).tolist(),
                reach_model=[round(float(s), 3) for s in share],
                reach_tracked=[round(float(s), 3) for s in tracked_share], **info)
    return new

