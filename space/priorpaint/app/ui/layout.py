"""The page's layout: the states every panel shares, the panels in their places, then each
panel's events.  The named API endpoints (:func:`priorpaint.app.endpoints.wire`) are separate
events on hidden components, so their inputs and outputs are exactly the contract whatever
the page looks like; the page's own events are private."""

from __future__ import annotations

import gradio as gr

from . import editlist, models, preview, project, render
from .page import Page
from .tabs import TABS

INTRO = """# priorpaint — semantic photo editing with a GAN prior
Upload a photo and **paint over the region to edit** (the brush is translucent; the eye icon under
*Layers* hides it) or type a box `X,Y,W,H`, then **Project**. Add edits from the tabs to the
**edit list** — Render applies exactly that list, in order — watch the live preview, then **Render**
to blend the result into the full-resolution photo: pixels outside the region stay exactly as they were.
"""

#: the model the page starts on when the server names none
DEFAULT_MODEL = "dcgan-digiface-64"


def new_page(service, available) -> Page:
    choices = service.model_choices()
    default_model = next((c[1] for c in choices if c[1] == (service.model or DEFAULT_MODEL)),
                         choices[0][1] if choices else None)
    brush = models.legend_brush(service, default_model) if "segment" in available else None
    return Page(available, choices, default_model, service.default_steps, legend_brush=brush)


def build(page: Page) -> None:
    """Every component, in page order (inside ``gr.Blocks``)."""
    page.session = gr.State("")
    page.direction_rows = gr.State([])   # [{name, description, min, max, default}] of the sliders
    page.page_state = gr.State({})       # photo path, input name, layer box and model of the projection
    page.edit_list = gr.State([])        # [{spec, label, range}]: what Render applies, in order
    page.history = gr.State([])          # the last renders: [{n, path, name, before, after, caption}]
    gr.Markdown(INTRO)
    with gr.Row():
        with gr.Column(scale=1):
            project.build(page)
        with gr.Column(scale=1):
            preview.build(page)
    with gr.Row():   # the edit list and Render: always visible
        with gr.Column(scale=1):
            editlist.build(page)
            render.build_controls(page)
        with gr.Column(scale=1):
            render.build(page)
    with gr.Tabs():   # one tab per edit kind of this version
        for tab in TABS:
            if page.has(tab.KIND):
                with gr.Tab(tab.TITLE):
                    tab.build(page)
    page.cheap_inputs = [page.direction_rows, *page.sliders]
    if page.has("vector"):
        page.cheap_inputs += [page.vec, page.vec_s]


def wire(page: Page, service) -> None:
    """Every panel's events (Project before Render: Stop cancels both)."""
    project.wire(page, service)
    preview.wire(page, service)
    editlist.wire(page, service)
    for tab in TABS:
        if page.has(tab.KIND):
            tab.wire(page, service)
    render.wire(page, service)
    models.wire(page, service)
