"""The ``warp`` composite of a session's edit: the photo's own pixels moved along the edit's motion.

A structural edit (a drag, or a named direction whose manifest declares ``"composite": "warp"``:
head_turn, head_tilt, profile on the embedded model) is rendered here instead of by the detail
composite, which would cross-fade the moved content into smears and doubled rims
(docs/method/editability.md).  The motion is that of the in-manifold proxy ``G(z)`` → ``G(z_e)``
(:data:`~priorpaint.compositing.warp.MOTION`: its landmarks' capped spline by default, carried onto
the photo's features by :func:`~priorpaint.compositing.warp.register_affine`), or a drag's own field.
A direction that declares a motion moves by it instead: an expression's mouth
(:mod:`~priorpaint.compositing.warp_mouth`), or the head (:mod:`~priorpaint.compositing.warp_head`):
head_turn, profile and head_tilt each name the ``"axis"`` they rotate the photo's own head about, and a
stack of them (head_turn + head_tilt) moves as one head, turned and bowed (:func:`declared_motion`,
:func:`head_reference`).
An interpolation (the kind declares ``warp``) moves the photo to the face between the two fitted
renders instead (:mod:`priorpaint.compositing.between`): the proxy ``G(z)`` does not carry that
pair's geometry.

**Stacked edits.** Appearance directions applied with a structural one (``head_turn`` +
``exposure``) are not moved by the warp (a pure warp adds no light): the photo is warped first,
along the structural edits' motion alone, then the appearance edits alone are re-applied to the
projection and the low band of their change ``G(z_h_a) − G(z_h)`` is added to the warped square (not the detail composite itself: its RGB flow
moves pixels even for a colour-only edit, which would move the photo a second time).
:func:`priorpaint.edits.registry.structural_composite` routes to ``warp`` only when every other
applied edit is such a latent move, so the re-application is cheap and needs no file.

Used by :meth:`priorpaint.session.EditSession.render` and by its previews (at the preview's size).
"""

from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

from .compositing.blend import gray_rgb, to_uint8
from .edits.registry import applied_composite

MOUTH, HEAD = "mouth", "head"
#: the motions a direction may declare (``"motion"`` in its manifest entry): an expression's
#: (:mod:`~priorpaint.compositing.warp_mouth`) and a head turn's (:mod:`~priorpaint.compositing.warp_head`)
MOTIONS = (MOUTH, HEAD)


def split_specs(applied: List[dict]):
    """``(structural, appearance)``: the applied edits that move (a structural composite of their own)
    and those a warp does not carry, as specs to apply again (their bookkeeping fields dropped)."""
    out = ([], [])
    for spec in applied:
        out[not applied_composite(spec)].append(
            {k: v for k, v in spec.items() if k not in ("seconds", "applied_strength", "composite")})
    return out


def interpolation_pair(session, state, moving: List[dict]):
    """``(recon, other, t)`` when the moving edits are exactly one interpolation: the fitted renders
    of the photo (``G_F(h)``) and of the other image (``G_F(h_o)``, its latent read back from the
    interpolated state) as R×R×3 uint8, for :mod:`priorpaint.compositing.between`; else None."""
    if len(moving) != 1 or moving[0].get("kind") != "interpolate":
        return None
    t = float(moving[0].get("t", 0.5))
    if t <= 0:
        return None
    import torch
    p = session.require_projection()
    z_o, h_o = (state.z - (1.0 - t) * p.z) / t, (state.h - (1.0 - t) * p.h) / t
    with torch.no_grad():
        recon = to_uint8(session.gen.forward_from(p.split, p.h, z=p.z))
        other = to_uint8(session.gen.forward_from(p.split, h_o, z=z_o))
    if session.photo.gray:
        recon, other = gray_rgb(recon), gray_rgb(other)
    return recon, other, t


def warp_square(session, state, region: np.ndarray, mask: np.ndarray, radius: int):
    """``(result_region, layer_rgb, alpha, info)`` of the warp composite of ``state`` on ``region``
    (the photo's square at any size: the render's, or a preview's shrunk one) under ``mask``."""
    from .compositing import warp
    from .compositing.warp_head import head_correspondence
    from .compositing.warp_mouth import mouth_correspondence
    from .edits.drag import APPEARANCE as DRAG_APPEARANCE, drag_field

    p = session.require_projection()
    moving, stacked = split_specs(state.applied)
    if stacked and moving and not any(spec.get("kind") == "drag" for spec in state.applied):
        # the motion is the structural edits' alone (an appearance direction also drifts the proxy's
        # face on this model, which would move the photo); the appearance comes back as a low band
        state = session.apply(moving)
    else:
        stacked = []
    pair = interpolation_pair(session, state, moving)
    if pair is not None:   # an interpolation: the photo moved to the face between (compositing/between.py)
        from .compositing.between import between_composite
        w = between_composite(region, *pair, mask, radius)
        return _with_stacked(session, stacked, region, w)
    z_proxy = None
    if warp.PROXY_STEPS > 0:   # a proxy refined towards the photo, once per projection
        from .projection.proxy import refine_proxy_z
        key = ("proxy_z", warp.PROXY_STEPS)
        if key not in session.cache:
            session.cache[key] = refine_proxy_z(session.gen, p.z, session.target, steps=warp.PROXY_STEPS)
        z_proxy = session.cache[key]
    xb, xe, fb, fe = warp.proxy_renders(session.gen, p.split, p.z, p.h, state.z, state.h, state.interventions,
                                        z_proxy=z_proxy)
    b, e = to_uint8(xb), to_uint8(xe)
    res = b.shape[0]
    dragged = drag_field(state.applied, res)
    # a declared motion (no face: the head's spline): an expression's mouth corners on the photo's
    # mouth, or a head turn and/or bow as the photo's own head rotated by the proxy's bounded change
    declared = declared_motion(session, moving) if dragged is None else None
    m = None
    if declared == MOUTH:
        m = mouth_correspondence(b, e, region)
    elif declared == HEAD and warp.HEAD_MOTION:
        m = head_correspondence(b, e, region, mask, radius, head_reference(session, moving))
    found = warp.landmark_correspondence(b, e) if warp.MOTION == "landmarks" and dragged is None \
        and m is None else None
    gray = session.photo.gray
    if gray:
        b, e = gray_rgb(b), gray_rgb(e)
    appearance, extra = None, {}
    if dragged is not None:   # a drag: the photo moves along the field through its tracked handles
        flow, motion, appearance = dragged, "drag", DRAG_APPEARANCE
        new = warp.new_content_along(fb, fe, flow, res, off=any(s.get("escalated") for s in state.applied))
        from .edits.drag_region import paste_bound   # generated pixels only near the handles' paths
        new = new * paste_bound(state.applied, res)
    elif m is not None:
        (flow, new, extra), motion = m, declared
    else:
        if found is not None:
            (flow, new), motion = found, "landmarks"
        elif warp.MOTION == "matches":
            (flow, new, extra), motion = warp.match_correspondence(fb, fe, res), "matches"
        else:
            flow, new, motion = *warp.correspondence_from_features(fb, fe, res)[:2], "features"
        if warp.REGISTER:   # the proxy's motion onto the photo's own features
            a = warp.register_affine(region, b)
            extra["registered"] = a is not None
            if a is not None:
                flow, new, b, e = warp.to_photo_frame(a, flow, new, b, e)
        if warp.NEW_FROM_CHANGE is not None:   # generated pixels where the motion leaves a change unexplained
            new = np.maximum(new, warp.unexplained_change(b, e, flow))
            if warp.NEW_REGION == "crown":
                new = new * crown_region(region, res)
    w = warp.warp_composite(region, b, e, flow, new, mask, radius, appearance=appearance)
    w.info.update(motion=motion, **extra)
    return _with_stacked(session, stacked, region, w)


def _entries(session) -> dict:
    from .edits.directions.named import load_named
    return {d.get("name"): d for d in load_named(session.model_id).get("directions", [])}


def head_axis(entry: dict) -> Optional[str]:
    """The axis a head edit rotates the head about (``"axis"`` in its manifest entry, one of
    :data:`~priorpaint.compositing.warp_head.AXES`), or None for an edit that is no head edit."""
    from .compositing.warp_head import AXES
    axis = entry.get("axis")
    if axis is None and entry.get("motion") == HEAD:
        from .errors import ModelError
        raise ModelError(f"directions manifest: {entry.get('name')!r} declares the head motion but no axis "
                         f"(one of {', '.join(AXES)})")
    if axis is not None and axis not in AXES:
        from .errors import ModelError
        raise ModelError(f"directions manifest: axis must be one of {', '.join(AXES)}, got {axis!r}")
    return axis


def declared_motion(session, moving: List[dict]) -> Optional[str]:
    """The motion the moving edits declare (``"motion"`` in a named direction's manifest entry, one of
    :data:`MOTIONS`): when every one of them declares the same, that one (a stack of head edits,
    head_turn + head_tilt, moves as one head: each declares its ``"axis"``, :func:`head_axis`); else
    None (the head settings of :mod:`priorpaint.compositing.warp`)."""
    if not moving or any(spec.get("kind") != "direction" for spec in moving):
        return None
    entries = _entries(session)
    mine = [entries.get(spec.get("name"), {}) for spec in moving]
    found = {e.get("motion") for e in mine}
    bad = found - set(MOTIONS) - {None}
    if bad:
        from .errors import ModelError
        raise ModelError(f"directions manifest: motion must be one of {', '.join(MOTIONS)}, got {sorted(bad)[0]!r}")
    if found == {HEAD}:
        for e in mine:
            head_axis(e)   # a head edit names its axis (a clear error for a manifest that does not)
    return found.pop() if len(found) == 1 else None


def head_reference(session, moving: List[dict]) -> Dict[str, Optional[float]]:
    """Per head axis the moving directions rotate about (their manifest ``"axis"``): the model's own
    change of that axis's proxy. One head edit: its median change on the generator's samples at
    strength ±2 (:func:`~priorpaint.measures.effect.reference_change`, cached; the same figure the
    render's effect ratio reads), scaled to its strength. A stack of head edits (two or more that
    move): the change of each axis's proxy on the same samples with the whole stack applied at ±2
    in its strengths' signs (:func:`~priorpaint.measures.effect.stack_reference`, cached; at ±2 the
    figure the stack's verdict reads), scaled by the mean of its directions' strengths over 2 on that
    axis: the generator's own turn and bow do not add up (turned too, its pitch reads about 0.03 lower:
    less bow at +2, more at −2). An axis's figure is None when any of its directions has none, or it is
    too small to bound a proxy by (then the proxy's own change is used)."""
    from .measures.effect import MIN_REFERENCE, stack_reference
    entries = _entries(session)
    totals: Dict[str, Optional[float]] = {}
    stack = []
    for spec in moving:
        axis = head_axis(entries.get(spec.get("name"), {}))
        if axis is None:
            continue
        totals.setdefault(axis, 0.0)
        strength = float(spec.get("strength", 0.0))
        if strength != 0.0:
            stack.append((spec.get("name"), strength, axis))
    if stack:   # at ±2 (the signs of the strengths), scaled per axis; one edit: its reference_change
        refs = stack_reference(session.gen, [(n, 2.0 if s > 0 else -2.0) for n, s, _ in stack], session.model_id,
                               also=[a for _, _, a in stack])
        for axis in {a for _, _, a in stack}:
            scale = float(np.mean([abs(s) / 2.0 for _, s, a in stack if a == axis]))
            totals[axis] = None if refs.get(axis) is None else refs[axis] * scale
    return {a: (t if t is not None and abs(t) >= MIN_REFERENCE[a] else None) for a, t in totals.items()}


def _with_stacked(session, stacked: List[dict], region: np.ndarray, w):
    """``warp_square``'s answer from a warp result, with the stacked appearance edits' low band added."""
    from .compositing.blend import blend_region
    from .compositing.detail import upsampled_low_band
    out, inner, alpha = w.region, w.inner, w.alpha
    if stacked:   # the appearance edits' own change, its low band on the moved photo
        edited, base = to_uint8(session.generate(session.apply(stacked))), to_uint8(session.generate(None))
        if session.photo.gray:
            edited, base = gray_rgb(edited), gray_rgb(base)
        low = upsampled_low_band(edited.astype(np.float32) - base.astype(np.float32), region.shape[0])
        inner = np.clip(np.round(inner.astype(np.float32) + low), 0, 255).astype(np.uint8)
        out = blend_region(region, inner, alpha)
        w.info["appearance_edits"] = [s.get("name", s["kind"]) for s in stacked]
    return out, inner, alpha, w.info


def crown_region(region: np.ndarray, res: int) -> np.ndarray:
    """(R, R) float32: 1 in the region above the photo's eyes where a cap goes (the landmarks of the
    photo's square, :data:`~priorpaint.compositing.warp.NEW_REGION`), 0 elsewhere; all 0 without a face."""
    from .faces.landmarks import square_landmarks
    pts = square_landmarks(region, interpolation="auto")
    out = np.zeros((res, res), np.float32)
    if pts is None:
        return out
    pts = pts * (res / float(region.shape[0]))
    eyes = pts[:2].mean(axis=0)
    d = max(float(np.linalg.norm(pts[1] - pts[0])), 1e-6)
    right = (pts[1] - pts[0]) / d
    down = np.array([-right[1], right[0]])
    gy, gx = np.mgrid[0:res, 0:res].astype(np.float64)
    u = ((gx - eyes[0]) * right[0] + (gy - eyes[1]) * right[1]) / d
    v = ((gx - eyes[0]) * down[0] + (gy - eyes[1]) * down[1]) / d
    out[(np.abs(u) <= 1.4) & (v >= -2.0) & (v <= -0.3)] = 1.0
    return out
