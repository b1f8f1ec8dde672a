"""Editing vectors: a saved vector (from the label map tab) times a strength; the live
preview follows the strength."""

from __future__ import annotations

import gradio as gr

from ....errors import InputError
from ... import views
from ...endpoints import user_errors
from ..page import PRIVATE, Page

KIND = "vector"
TITLE = "Vectors"


def build(page: Page) -> None:
    strength = page.available[KIND].strength
    gr.Markdown("**How to make a vector:** in the *Label map* tab, get the label map, paint the change you "
                "want (e.g. more hair), type a name under *save as editing vector*, add it to the list and "
                "**Render**; the vector is saved then and appears here, to apply at any strength to other "
                "photos.", elem_id="pp-vector-help")
    page.vec = gr.Dropdown(choices=[], label="vector", allow_custom_value=True, elem_id="pp-vector")
    page.vec_s = gr.Slider(strength.lo, strength.hi, value=0, step=0.1, label=strength.field,
                           info="the preview updates live", elem_id="pp-vector-strength")
    page.vec_add = gr.Button("Add the vector to the edit list", elem_id="pp-vector-add")


def wire(page: Page, service) -> None:
    field = page.available[KIND].strength.field

    @user_errors
    def ui_vec_add(items, n, s):
        if not n:
            raise InputError("pick a saved vector first (save one from the label map tab)")
        if not s:
            raise InputError("the vector strength is 0: set one first")
        return page.list_outputs(*views.add(items, {"kind": KIND, "name": n, field: float(s)}))
    page.vec_add.click(ui_vec_add, [page.edit_list, page.vec, page.vec_s], page.list_out, api_visibility=PRIVATE)
