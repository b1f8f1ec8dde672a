"""A session's live previews: the selection (or the layer box) as the edit would make it, composited
from the photo's own pixels as :meth:`~priorpaint.session.EditSession.render` without G′ composites
it, at the preview's size.

The preview shows what Render will do: a structural edit (one whose render turns ``detail`` into
``warp``, :func:`priorpaint.edits.registry.structural_composite`) is previewed through the warp
composite (:mod:`priorpaint.warp_render`) on the preview's shrunk square, so the page and the GIMP
dialog never show a smear the render will not make.  Its cost is bounded by the preview's size plus
two proxy renders and a landmark fit at the model's resolution.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np


def composite_mode(state, mode: str) -> str:
    """The composite a preview of ``state`` in ``mode`` makes: the render's (a structural edit turns
    ``"detail"`` into its own: ``"warp"`` for a structural edit, ``"colour"`` for a scribble)."""
    from .compositing.warp import check_render_mode
    from .edits.registry import structural_composite

    check_render_mode(mode)
    if mode == "detail" and state is not None:
        return structural_composite(state.applied) or mode
    return mode


def _inputs(session, state, frame, mode: str):
    """(edited, base, mask) a preview composites: the warp composite renders its own proxies, so
    it needs no generator frame (``edited`` and ``base`` None)."""
    if mode == "warp":
        return None, None, session.edit_mask(state)
    return session.preview_inputs(state, frame)


def _square(session, region: np.ndarray, base, edited, state, mask: np.ndarray, radius: int, mode: str):
    from .compositing.detail import composite_square
    from .warp_render import warp_square

    if mode == "warp":
        return warp_square(session, state, region, mask, radius)
    if mode == "colour":      # a colour scribble, as the render composites it
        from .compositing.colour import colour_composite
        return colour_composite(region, base, edited, mask, radius)
    if mode == "texture":     # concept paint, a label-map edit: the photo's own part texture
        from .compositing.texture import applied_part_map, texture_composite
        return texture_composite(region, base, edited, mask, radius, *applied_part_map(state.applied if state else []))
    return composite_square(region, base, edited, mask, radius, mode)


def preview_region(session, state=None, mode: str = "detail", size: Optional[int] = None,
                   frame=None) -> np.ndarray:
    """See :meth:`priorpaint.session.EditSession.preview_region`."""
    return _preview_square(session, state, mode, size, frame)[0]


def _preview_square(session, state, mode: str, size: Optional[int], frame=None):
    """``(square, info)``: :func:`preview_region`'s square and its composite's ``info`` (the head
    motion's ``head_cut`` and angles, for the verdict)."""
    import cv2

    from .compositing.blend import default_feather

    mode = composite_mode(state, mode)
    with session.lock:
        edited, base, mask = _inputs(session, state, frame, mode)
        side = session.crop.square[2]
        n = int(size) if size is not None and side > int(size) else side
        key = ("preview-square", n)        # the photo's square (and selection) at that size
        if key not in session.cache:
            region = session.photo_square()
            sel = session.crop.region_mask
            if n != side:
                region = cv2.resize(region, (n, n), interpolation=cv2.INTER_AREA)
                sel = cv2.resize(sel, (n, n), interpolation=cv2.INTER_AREA)
            session.cache[key] = (region, sel)
        region, sel = session.cache[key]
        radius = default_feather(side)
        if n != side:
            mask = sel if mask is session.crop.region_mask else cv2.resize(mask, (n, n), interpolation=cv2.INTER_AREA)
            radius = max(1, int(round(radius * n / side)))
        out, *_, info = _square(session, region, base, edited, state, mask, radius, mode) if mask.any() \
            else (region, {})
    return np.ascontiguousarray(out), info


def preview_verdict(session, state=None, mode: str = "detail", size: int = 256) -> Dict[str, object]:
    """See :meth:`priorpaint.session.EditSession.preview_verdict`."""
    import cv2

    from .measures.report import structure_report

    state = state or session.initial_state()
    result, info = _preview_square(session, state, mode, size)
    with session.lock:
        region = session.cache.get(("preview-square", result.shape[0]), (session.photo_square(),))[0]
    mask = session.edit_mask(state)
    if mask.shape[0] != result.shape[0]:
        mask = cv2.resize(mask, (result.shape[0],) * 2, interpolation=cv2.INTER_AREA)
    structure, verdict = structure_report(session.gen, getattr(session.gen, "model_id", None), state.applied,
                                          result, region, mask, motion=info)
    return {"structure": structure, "verdict": verdict}


def preview_layer(session, state=None, mode: str = "detail", size: Optional[int] = None,
                  frame=None) -> np.ndarray:
    """See :meth:`priorpaint.session.EditSession.preview_layer`."""
    import cv2

    from .compositing.blend import default_feather, layer_pixels

    box = session.crop.layer_box
    if session.crop.alignment is None:
        sq = preview_region(session, state, mode, size, frame)
        f = sq.shape[0] / float(session.crop.square[2])
        rows, cols = box.within(session.crop.square)
        if f != 1.0:
            rows, cols = (slice(int(round(s_.start * f)), max(int(round(s_.stop * f)), int(round(s_.start * f)) + 1))
                          for s_ in (rows, cols))
        return np.ascontiguousarray(sq[rows, cols])
    mode = composite_mode(state, mode)
    with session.lock:
        edited, base, mask = _inputs(session, state, frame, mode)
        region = session.photo_square()          # the photo's rotated square, at full size
        here = session.photo.rgb[box.rows, box.cols]
        if mask.any():
            result, layer_rgb, alpha, _ = _square(session, region, base, edited, state, mask,
                                                  default_feather(region.shape[0]), mode)
            here = layer_pixels(session.photo, session.crop, result, layer_rgb, alpha,
                                base=region if mode != "replace" else None, mask=mask)[0]
    if size is not None and max(box.w, box.h) > int(size):
        f = int(size) / float(max(box.w, box.h))
        here = cv2.resize(here, (max(1, int(round(box.w * f))), max(1, int(round(box.h * f)))),
                          interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(here)
