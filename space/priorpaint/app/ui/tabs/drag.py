"""Drag points: click a handle on the selection, then its target; arrows show the pairs; Add puts
the drag (photo pixels, at most 16 pairs, an optional painted movable region) on the edit list.

The picture is the projection's layer box at the photo's resolution, so a click's pixel is the
photo's pixel less the box's corner. A drag is a slow edit: the slider-driven live preview does
not run it; *Preview the drag* runs the tab's pairs once (warp composite, no G′) and, like Render,
shows the points moving as the optimisation runs: the handles' current positions (from the job's
progress reports, :data:`priorpaint.app.service.LIVE_KEYS`) over the photo's box warped along the
pairs tracked so far (:func:`live_frame`), which is what the warp composite makes of them."""

from __future__ import annotations

import functools
import os
from typing import List, Optional

import cv2
import numpy as np
from PIL import Image, ImageDraw

import gradio as gr

from ....edits.drag_optimise import DEFAULTS as DRAG_DEFAULTS
from ....errors import InputError
from ... import contract as C
from ... import views
from ...endpoints import client_key, stoppable, user_errors
from ..page import ENGINE, PRIVATE, Page, relay_editor, stroke_layer, editor_value

KIND = "drag"
TITLE = "Drag"
MAX_PAIRS = 16
EMPTY = {"pairs": [], "pending": None}
HINT = "Click a point to move (the handle), then where it should go (its target)."
#: the picture is enlarged to this many pixels on its long side (a small selection is hard to click)
SHOW = 420
#: the live picture's warp is solved on a grid of this many points a side, then enlarged (a few ms)
LIVE_GRID = 32


def scale_of(layer) -> float:
    """The picture's pixels per photo pixel: small layer boxes are enlarged to :data:`SHOW`."""
    return max(1.0, SHOW / float(max(int(layer[2]), int(layer[3]), 1)))


def build(page: Page) -> None:
    page.drag_img = gr.Image(label="click a handle, then its target (the selection at the photo's resolution)",
                             type="pil", format="png", interactive=False, elem_id="pp-drag-img", height=420)
    page.drag_pts = gr.State(dict(EMPTY))
    page.drag_md = gr.Markdown("Project a selection first; then " + HINT[0].lower() + HINT[1:],
                               elem_id="pp-drag-md")
    with gr.Row():
        page.drag_steps = gr.Slider(1, 300, value=DRAG_DEFAULTS["steps"], step=1, label="steps (at most; stops when every handle arrived)",
                                    elem_id="pp-drag-steps")
        page.drag_undo = gr.Button("Undo the last point", elem_id="pp-drag-undo", size="sm")
        page.drag_clear = gr.Button("Clear the points", elem_id="pp-drag-clear", size="sm")
    with gr.Row():
        page.drag_preview = gr.Button("Preview the drag (watch the points move)", elem_id="pp-drag-preview", size="sm")
    page.drag_live = gr.Markdown("", elem_id="pp-drag-live")
    with gr.Accordion("movable region (optional: paint where the photo may change)", open=False):
        page.drag_ed = gr.ImageEditor(label="paint the movable region (empty: around each drag)", type="numpy",
                                      image_mode="RGBA", format="png", transforms=(),
                                      brush=gr.Brush(colors=["#ff3366"], color_mode="fixed"),
                                      elem_id="pp-drag-editor")
    page.region_editors.append(page.drag_ed)
    page.drag_add = gr.Button("Add the drag to the edit list", elem_id="pp-drag-add")


@functools.lru_cache(maxsize=4)
def _box_pixels(photo: str, layer: tuple, stamp: float) -> np.ndarray:
    """The layer box of the photo file (read-only; ``stamp``: the file's mtime, so a new file is read
    again): a live preview draws it ten times a second, and decoding the photo each time cost more
    than the drawing."""
    bg = np.asarray(Image.open(photo).convert("RGB"))
    box = np.ascontiguousarray(views.box_crop(bg, list(layer)))
    box.setflags(write=False)
    return box


def _box_image(state: dict) -> Optional[Image.Image]:
    if not state or not state.get("photo") or not state.get("layer"):
        return None
    path = str(state["photo"])
    return Image.fromarray(_box_pixels(path, tuple(int(v) for v in state["layer"]), os.path.getmtime(path)), "RGB")


def _enlarged(im: Image.Image, layer, quick: bool = False) -> Image.Image:
    """``im`` enlarged by :func:`scale_of` (``quick``: bilinear, for the live frames)."""
    k = scale_of(layer)
    if k <= 1.0:
        return im
    return im.resize((round(im.width * k), round(im.height * k)), Image.BILINEAR if quick else Image.LANCZOS)


def _overlay(im: Image.Image, layer, pairs, pending=None, current=None) -> Image.Image:
    """``im`` (the enlarged layer box) with each pair as an arrow handle → target and a pending
    handle as a dot; with ``current`` (a handle's position now, one per pair) the arrow starts
    there, the handle's start is a ring and its path so far a thin line."""
    x0, y0 = layer[:2]
    k = scale_of(layer)
    d = ImageDraw.Draw(im)
    w = max(2, round(max(im.size) / 150))

    def at(x, y):       # a photo pixel's centre on the picture
        return (x - x0 + 0.5) * k, (y - y0 + 0.5) * k

    def dot(x, y, colour, fill=True):
        cx, cy = at(x, y)
        d.ellipse([cx - 2 * w, cy - 2 * w, cx + 2 * w, cy + 2 * w], fill=colour if fill else None,
                  outline=colour if not fill else "white", width=1 if fill else max(1, w // 2))
    for i, (hx, hy, tx, ty) in enumerate(pairs):
        sx, sy = (hx, hy) if current is None else current[i]
        if current is not None:
            d.line([*at(hx, hy), *at(sx, sy)], fill="#ffdd33", width=max(1, w // 2))
            dot(hx, hy, "#ffdd33", fill=False)
            dot(tx, ty, "#ff3366", fill=False)
        d.line([*at(sx, sy), *at(tx, ty)], fill="#ff3366", width=w)
        v = np.array([tx - sx, ty - sy], float)
        n = np.hypot(*v)
        if n > 0:
            u, p = v / n, np.array([-v[1], v[0]]) / n
            tip = np.array(at(tx, ty))
            head = [tuple(tip), tuple(tip - 4 * w * u + 2.5 * w * p), tuple(tip - 4 * w * u - 2.5 * w * p)]
            d.polygon(head, fill="#ff3366")
        dot(sx, sy, "#33dd66" if current is not None else "#ff3366")
    if pending:
        dot(*pending, "#33aaff")
    return im


def draw(state: dict, pts: dict) -> Optional[Image.Image]:
    """The layer box with each pair as an arrow handle → target and a pending handle as a dot."""
    im = _box_image(state)
    if im is None:
        return None
    return _overlay(_enlarged(im, state["layer"]), state["layer"], pts.get("pairs") or [], pts.get("pending"))


def starts_of(specs, targets) -> Optional[List[list]]:
    """The handles' start (photo pixels) of the drag in ``specs`` whose targets are ``targets`` (a live
    report's), or None (a saved drag replayed has no points in its spec)."""
    for sp in specs or []:
        pts = sp.get("points") if sp.get("kind") == KIND else None
        if pts and len(pts) == len(targets) and all(abs(p[2] - t[0]) <= 0.6 and abs(p[3] - t[1]) <= 0.6
                                                     for p, t in zip(pts, targets)):
            return [list(p[:2]) for p in pts]
    return None


def warped_box(box: np.ndarray, layer, starts, current) -> np.ndarray:
    """``box`` (the layer box, photo pixels) moved so each handle's start lands on its current
    position: the drag's thin-plate field (:func:`priorpaint.edits.drag.drag_field`, tapered to its
    movable capsules) solved on a :data:`LIVE_GRID` grid over the box, as the warp composite moves
    the photo along the tracked pairs."""
    from ....edits.drag import drag_field
    x0, y0, w, h = (int(v) for v in layer)
    side = max(w, h, 1)
    g = LIVE_GRID / float(side)

    def grid(p):
        return ((np.asarray(p, np.float64).reshape(-1, 2) - [x0, y0] + 0.5) * g - 0.5).tolist()
    flow = drag_field([{"kind": KIND, "tracked_model": grid(current), "handles_model": grid(starts)}], LIVE_GRID)
    if flow is None:
        return box
    big = cv2.resize(flow, (side, side), interpolation=cv2.INTER_LINEAR)[:h, :w] / g
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(np.ascontiguousarray(box), gx + big[..., 0], gy + big[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)


def live_frame(state: dict, starts, live: dict, photo=None) -> Optional[Image.Image]:
    """The picture while a drag runs: the layer box warped along the pairs tracked so far (or the
    box of ``photo``, a finished result), the path each handle took (yellow, from its ring), its
    current position (green) and the arrow still to go to its target."""
    im = _box_image(state) if photo is None else Image.fromarray(
        np.ascontiguousarray(views.box_crop(np.asarray(photo.convert("RGB")), state["layer"])), "RGB")
    if im is None:
        return None
    cur, tgt = live["handles"], live["targets"]
    if photo is None:
        im = Image.fromarray(warped_box(np.asarray(im), state["layer"], starts, cur), "RGB")
    pairs = [list(s) + list(t) for s, t in zip(starts, tgt)]
    return _overlay(_enlarged(im, state["layer"], quick=photo is None), state["layer"], pairs, current=cur)


def live_words(live: dict, final: bool = False) -> str:
    """One line: the step and each handle's current photo position and distance to its target."""
    pos = " · ".join(f"handle {i + 1} at ({x:.1f}, {y:.1f}), {np.hypot(tx - x, ty - y):.1f} px to go"
                     for i, ((x, y), (tx, ty)) in enumerate(zip(live["handles"], live["targets"])))
    head = f"**drag done** after {live.get('step', '?')} steps: " if final else f"**dragging**, step {live.get('step', 0)}: "
    return head + pos


def describe(pts: dict) -> str:
    pairs = pts.get("pairs") or []
    lines = [f"{i + 1}. ({hx:g}, {hy:g}) → ({tx:g}, {ty:g})" for i, (hx, hy, tx, ty) in enumerate(pairs)]
    head = (f"**{len(pairs)} pair{'s' if len(pairs) != 1 else ''}** (photo pixels). " if pairs else "") + \
        ("Now click the target of the blue handle." if pts.get("pending") else HINT)
    return head + ("\n\n" + "  \n".join(lines) if lines else "")


def click(state: dict, pts: dict, x: float, y: float) -> dict:
    """The points after a click at (x, y) of the picture (its pixels, :func:`scale_of` per photo pixel): a handle, or the pending
    handle's target. Errors say what is wrong in one line."""
    if not state or not state.get("layer"):
        raise InputError("project a selection first: the drag's points go on its picture")
    x0, y0, w, h = (int(v) for v in state["layer"])
    k = scale_of(state["layer"])
    x, y = x / k, y / k
    if not (0 <= x < w and 0 <= y < h):
        raise InputError(f"the click ({x:.0f}, {y:.0f}) is outside the selection's picture ({w}×{h} photo pixels)")
    p = [float(x0 + int(x)), float(y0 + int(y))]
    pts = {"pairs": [list(q) for q in pts.get("pairs") or []], "pending": pts.get("pending")}
    if pts["pending"] is None:
        if len(pts["pairs"]) >= MAX_PAIRS:
            raise InputError(f"a drag takes at most {MAX_PAIRS} handle/target pairs: add this one, or clear")
        pts["pending"] = p
        return pts
    if pts["pending"] == p:
        raise InputError("the target is the handle itself: click where the handle should go")
    pts["pairs"].append(pts["pending"] + p)
    pts["pending"] = None
    return pts


def undo(pts: dict) -> dict:
    if pts.get("pending"):
        return {"pairs": list(pts.get("pairs") or []), "pending": None}
    return {"pairs": list(pts.get("pairs") or [])[:-1], "pending": None}


def spec_of(pts: dict, steps, mask_path: Optional[str]) -> dict:
    pairs: List[list] = pts.get("pairs") or []
    if not pairs:
        raise InputError("click a handle, then its target, on the picture first")
    spec = {"kind": KIND, "points": [list(p) for p in pairs], "steps": int(steps)}
    if mask_path:
        spec["mask"] = mask_path
    return spec


def wire(page: Page, service) -> None:
    shown = [page.drag_img, page.drag_pts, page.drag_md]

    def ui_reset(state):
        return draw(state, EMPTY), dict(EMPTY), describe(EMPTY) if state and state.get("layer") else gr.skip()
    page.page_state.change(ui_reset, [page.page_state], shown, api_visibility=PRIVATE, show_progress="hidden")

    @user_errors
    def ui_click(state, pts, evt: gr.SelectData):
        x, y = evt.index[:2]
        pts = click(state, pts, float(x), float(y))
        return draw(state, pts), pts, describe(pts)
    page.drag_img.select(ui_click, [page.page_state, page.drag_pts], shown, api_visibility=PRIVATE,
                         show_progress="hidden")

    def ui_undo(state, pts):
        pts = undo(pts)
        return draw(state, pts), pts, describe(pts)
    page.drag_undo.click(ui_undo, [page.page_state, page.drag_pts], shown, api_visibility=PRIVATE,
                         show_progress="hidden")
    page.drag_clear.click(ui_reset, [page.page_state], shown, api_visibility=PRIVATE, show_progress="hidden")

    @user_errors
    def ui_add(items, files, pts, steps):
        layer = stroke_layer(editor_value(files))
        mask = None
        if layer is not None:
            alpha = np.asarray(layer)[..., 3]
            mask = page.scratch.save(Image.fromarray(np.where(alpha > 0, 255, 0).astype(np.uint8), "L"), "movable")
        spec = spec_of(pts, steps, mask)
        return page.list_outputs(*views.add(items, spec))
    relay_editor(page, page.drag_add, page.drag_ed, ui_add, [page.drag_pts, page.drag_steps])

    @stoppable
    def ui_preview(sid, state, pts, steps, request: gr.Request):
        """The tab's pairs dragged once (warp composite, no G′, the default movable region): the
        picture and the line follow the handles as the job reports them; Stop ends it."""
        if not sid or not state or not state.get("layer"):
            raise InputError("project a selection first")
        spec = spec_of(pts, steps, None)
        starts = [list(p[:2]) for p in spec["points"]]
        edits, files = C.file_refs([spec])
        req = C.EditRequest.parse(sid, edits, False, files, C.Composite.WARP.value, limits=service.limits)
        yield gr.skip(), "**dragging**: starting"
        last = None
        for step in service.edit(req, client_key(request)):
            if isinstance(step, C.Progress):
                live = step.extra if step.extra.get("handles") else None
                if live is None or live.get("step") == last:
                    yield gr.skip(), gr.skip()
                    continue
                last = live.get("step")
                yield live_frame(state, starts, live), live_words(live)
                continue
            applied = next((e for e in C.status(step).get("edits") or [] if e.get("kind") == KIND), {})
            final = {"handles": applied.get("tracked") or starts, "targets": [p[2:] for p in spec["points"]],
                     "step": applied.get("steps_run")}
            yield live_frame(state, starts, final, photo=step.photo), live_words(final, final=True) + \
                "  \n(the picture is the result: the photo's own pixels moved; Add puts the drag on the edit list)"
    evt = page.drag_preview.click(ui_preview, [page.session, page.page_state, page.drag_pts, page.drag_steps],
                                  [page.drag_img, page.drag_live], api_visibility=PRIVATE, concurrency_id=ENGINE,
                                  concurrency_limit=16, show_progress="hidden")
    page.render_events.append(evt)     # Stop cancels it as it cancels a render
