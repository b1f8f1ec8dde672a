"""Directions: one slider per named direction of the model (the live preview follows them);
*Add* puts the non-zero sliders on the edit list."""

from __future__ import annotations

import gradio as gr

from ....errors import InputError
from ... import views
from ...endpoints import user_errors
from ..page import PRIVATE, Page
from ..preview import slider_specs
from ..project import MAX_DIRECTION_SLIDERS

KIND = "direction"
TITLE = "Directions"


def build(page: Page) -> None:
    gr.Markdown("Move a slider: the preview updates live. **Add** puts the non-zero sliders on the edit list.")
    strength = page.available[KIND].strength
    for i in range(MAX_DIRECTION_SLIDERS):
        page.sliders.append(gr.Slider(strength.lo, strength.hi, value=0, step=0.1, label=f"direction {i}",
                                      visible=False, elem_id=f"pp-dir-{i}"))
    with gr.Row():
        page.dir_add = gr.Button("Add the directions to the edit list", elem_id="pp-dir-add")
        page.dir_reset = gr.Button("Reset the sliders", elem_id="pp-dir-reset")


def ranges(rows):
    """{direction name: (min, max)} of the listed directions."""
    return {r["name"]: (float(r.get("min", -3)), float(r.get("max", 3))) for r in rows or []}


def wire(page: Page, service) -> None:
    sliders = page.sliders

    @user_errors
    def ui_dir_add(items, rows, *values):
        new = slider_specs(rows, values)
        if not new:
            raise InputError("every direction slider is at 0: move one first")
        msgs = []
        for spec in new:
            items, m = views.add(items, spec, ranges(rows))
            msgs.append(m)
        return page.list_outputs(items, "; ".join(msgs))
    page.dir_add.click(ui_dir_add, [page.edit_list, page.direction_rows, *sliders], page.list_out,
                       api_visibility=PRIVATE)

    def ui_dir_reset(rows):
        return [gr.update(value=(rows[i].get("default", 0) if i < len(rows or []) else 0))
                for i in range(len(sliders))]
    # Changing the values fires the sliders' change events: the preview refreshes.
    page.dir_reset.click(ui_dir_reset, [page.direction_rows], sliders, api_visibility=PRIVATE)
