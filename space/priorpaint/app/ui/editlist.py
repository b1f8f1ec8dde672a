"""The edit list panel: what Render applies, in order, each with its strength; pick an entry
by its number to set its strength, move it or remove it."""

from __future__ import annotations

import gradio as gr

from .. import views
from ..endpoints import user_errors
from .page import PRIVATE, Page


def build(page: Page) -> None:
    gr.Markdown("### Edit list — Render applies exactly these, top to bottom")
    page.edits_df = gr.Dataframe(headers=["#", "edit", "strength", "preview"], value=[],
                                 datatype=["number", "str", "str", "str"], interactive=False,
                                 elem_id="pp-edits", wrap=True)
    with gr.Row():
        page.pick = gr.Number(value=1, precision=0, minimum=1, label="edit #", elem_id="pp-pick")
        page.new_strength = gr.Number(value=1.0, label="strength", elem_id="pp-strength")
        page.set_btn = gr.Button("Set strength", elem_id="pp-set-strength")
    with gr.Row():
        page.up_btn = gr.Button("↑ up", elem_id="pp-up", size="sm")
        page.down_btn = gr.Button("↓ down", elem_id="pp-down", size="sm")
        page.remove_btn = gr.Button("Remove", elem_id="pp-remove", size="sm")
        page.clear_btn = gr.Button("Clear", elem_id="pp-clear", size="sm")
    page.list_md = gr.Markdown("The list is empty: add edits from the tabs under the photo.", elem_id="pp-list-md")


def wire(page: Page, service) -> None:
    out = page.list_outputs
    page.set_btn.click(user_errors(lambda items, n, v: out(*views.set_strength(items, n, v))),
                       [page.edit_list, page.pick, page.new_strength], page.list_out, api_visibility=PRIVATE)
    page.up_btn.click(user_errors(lambda items, n: out(*views.move(items, n, -1))),
                      [page.edit_list, page.pick], page.list_out, api_visibility=PRIVATE)
    page.down_btn.click(user_errors(lambda items, n: out(*views.move(items, n, +1))),
                        [page.edit_list, page.pick], page.list_out, api_visibility=PRIVATE)
    page.remove_btn.click(user_errors(lambda items, n: out(*views.remove(items, n))),
                          [page.edit_list, page.pick], page.list_out, api_visibility=PRIVATE)
    page.clear_btn.click(lambda: out([], "the list is empty: Render shows the reconstruction alone"),
                         None, page.list_out, api_visibility=PRIVATE)
