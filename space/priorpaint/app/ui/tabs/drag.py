"""Drag points: click a handle on the selection, then its target; arrows show the pairs; Add puts
the drag (photo pixels, at most 16 pairs, an optional painted movable region) on the edit list.

The picture is the projection's layer box at the photo's resolution, so a click's pixel is the
photo's pixel less the box's corner. A drag is a slow edit: Render runs it (the live preview
does not)."""

from __future__ import annotations

from typing import List, Optional

import numpy as np
from PIL import Image, ImageDraw

import gradio as gr

from ....errors import InputError
from ... import views
from ...endpoints import user_errors
from ..page import PRIVATE, Page, relay_editor, stroke_layer, editor_value

KIND = "drag"
TITLE = "Drag"
MAX_PAIRS = 16
EMPTY = {"pairs": [], "pending": None}
HINT = "Click a point to move (the handle), then where it should go (its target)."
#: the picture is enlarged to this many pixels on its long side (a small selection is hard to click)
SHOW = 420


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
        page.drag_steps = gr.Slider(1, 300, value=60, step=1, label="steps (at most; stops when every handle arrived)",
                                    elem_id="pp-drag-steps")
        page.drag_undo = gr.Button("Undo the last point", elem_id="pp-drag-undo", size="sm")
        page.drag_clear = gr.Button("Clear the points", elem_id="pp-drag-clear", size="sm")
    with gr.Accordion("movable region (optional: paint where the photo may change)", open=False):
        page.drag_ed = gr.ImageEditor(label="paint the movable region (empty: around each drag)", type="numpy",
                                      image_mode="RGBA", format="png", transforms=(),
                                      brush=gr.Brush(colors=["#ff3366"], color_mode="fixed"),
                                      elem_id="pp-drag-editor")
    page.region_editors.append(page.drag_ed)
    page.drag_add = gr.Button("Add the drag to the edit list", elem_id="pp-drag-add")


def _box_image(state: dict) -> Optional[Image.Image]:
    if not state or not state.get("photo") or not state.get("layer"):
        return None
    bg = np.asarray(Image.open(state["photo"]).convert("RGB"))
    return Image.fromarray(np.ascontiguousarray(views.box_crop(bg, state["layer"])), "RGB")


def draw(state: dict, pts: dict) -> Optional[Image.Image]:
    """The layer box with each pair as an arrow handle → target and a pending handle as a dot."""
    im = _box_image(state)
    if im is None:
        return None
    x0, y0 = state["layer"][:2]
    k = scale_of(state["layer"])
    if k > 1.0:
        im = im.resize((round(im.width * k), round(im.height * k)), Image.LANCZOS)
    d = ImageDraw.Draw(im)
    w = max(2, round(max(im.size) / 150))

    def at(x, y):       # a photo pixel's centre on the picture
        return (x - x0 + 0.5) * k, (y - y0 + 0.5) * k

    def dot(x, y, colour):
        cx, cy = at(x, y)
        d.ellipse([cx - 2 * w, cy - 2 * w, cx + 2 * w, cy + 2 * w], fill=colour, outline="white")
    for hx, hy, tx, ty in pts.get("pairs") or []:
        d.line([*at(hx, hy), *at(tx, ty)], fill="#ff3366", width=w)
        v = np.array([tx - hx, ty - hy], float)
        n = np.hypot(*v)
        if n > 0:
            u, p = v / n, np.array([-v[1], v[0]]) / n
            tip = np.array(at(tx, ty))
            head = [tuple(tip), tuple(tip - 4 * w * u + 2.5 * w * p), tuple(tip - 4 * w * u - 2.5 * w * p)]
            d.polygon(head, fill="#ff3366")
        dot(hx, hy, "#ff3366")
    if pts.get("pending"):
        dot(*pts["pending"], "#33aaff")
    return im


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
