"""Colour scribble: scribble colours over the selection's square; Render makes the image take them."""

from __future__ import annotations

import gradio as gr

from ....errors import InputError
from ... import views
from ...endpoints import user_errors
from ..page import Page, editor_value, relay_editor, stroke_layer

KIND = "scribble"
TITLE = "Scribble"


def build(page: Page) -> None:
    page.scr_ed = gr.ImageEditor(label="scribble colours (the selection's square)", type="numpy",
                                 image_mode="RGBA", format="png", transforms=(),
                                 brush=gr.Brush(color_mode="defaults"), elem_id="pp-scribble-editor")
    page.scr_add = gr.Button("Add the scribble to the edit list", elem_id="pp-scribble-add")
    page.region_editors.append(page.scr_ed)


def wire(page: Page, service) -> None:
    @user_errors
    def ui_scr_add(items, files):
        layer = stroke_layer(editor_value(files))
        if layer is None:
            raise InputError("scribble colours over the selection first")
        spec = {"kind": KIND, "strokes": page.scratch.save(layer, "strokes")}
        return page.list_outputs(*views.add(items, spec))
    relay_editor(page, page.scr_add, page.scr_ed, ui_scr_add, [])
