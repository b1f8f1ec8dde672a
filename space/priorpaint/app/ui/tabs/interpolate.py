"""Interpolate: move toward another photo of the same region by a fraction ``t``."""

from __future__ import annotations

import gradio as gr

from ....errors import InputError
from ... import views
from ...endpoints import user_errors
from ..page import PRIVATE, Page

KIND = "interpolate"
TITLE = "Interpolate"


def build(page: Page) -> None:
    strength = page.available[KIND].strength
    gr.Markdown("Blend your selection toward **the same region of another photo**: from a photo of the same "
                "size, the same box as your selection is cut (so the subject should be in the same spot); any "
                "other image is taken to be that region itself (centre-cropped to a square).",
                elem_id="pp-interp-help")
    page.other = gr.Image(label="other photo (the same box is taken from it)", type="filepath", format="png",
                          elem_id="pp-other")
    page.t = gr.Slider(strength.lo, strength.hi, value=0.5, step=0.05, label=strength.field,
                       info="0 = your photo, 1 = the other one; release to preview (the first preview "
                            "projects the other photo)", elem_id="pp-t")
    page.interp_add = gr.Button("Add the interpolation to the edit list", elem_id="pp-interp-add")


def wire(page: Page, service) -> None:
    field = page.available[KIND].strength.field

    @user_errors
    def ui_interp_add(items, o, tv):
        if not o:
            raise InputError("upload the other photo first")
        return page.list_outputs(*views.add(items, {"kind": KIND, "other": o, field: float(tv)}))
    page.interp_add.click(ui_interp_add, [page.edit_list, page.other, page.t], page.list_out,
                          api_visibility=PRIVATE)
