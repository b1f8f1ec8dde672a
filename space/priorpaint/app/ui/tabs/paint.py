"""Concept paint: pick a concept, add or remove it where you paint over the selection's square."""

from __future__ import annotations

import gradio as gr

from ....errors import InputError
from ... import views
from ...endpoints import user_errors
from ..page import Page, editor_value, relay_editor, stroke_layer

KIND = "paint"
TITLE = "Paint"


def build(page: Page) -> None:
    page.concept = gr.Dropdown(choices=[], label="concept", allow_custom_value=True)
    page.paint_mode = gr.Radio(["add", "remove"], value="add", label="mode")
    page.paint_ed = gr.ImageEditor(label="paint where the concept goes (the selection's square)", type="numpy",
                                   image_mode="RGBA", format="png", transforms=(),
                                   brush=gr.Brush(colors=[("#ffffff", 0.6)], color_mode="fixed"),
                                   elem_id="pp-paint-editor")
    page.paint_add = gr.Button("Add the concept paint to the edit list", elem_id="pp-paint-add")
    page.region_editors.append(page.paint_ed)


def wire(page: Page, service) -> None:
    @user_errors
    def ui_paint_add(items, files, c, mode):
        layer = stroke_layer(editor_value(files))
        if not c:
            raise InputError("pick a concept first")
        if layer is None:
            raise InputError("paint where the concept goes first (Project fills the canvas with the selection)")
        spec = {"kind": KIND, "concept": c, "mode": mode, "mask": page.scratch.save(layer, "paint")}
        return page.list_outputs(*views.add(items, spec))
    relay_editor(page, page.paint_add, page.paint_ed, ui_paint_add, [page.concept, page.paint_mode])
