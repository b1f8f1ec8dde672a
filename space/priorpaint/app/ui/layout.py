"""The page's layout: the states every panel shares, the panels in their places, then each
panel's events.  The named API endpoints (:func:`priorpaint.app.endpoints.wire`) are separate
events on hidden components, so their inputs and outputs are exactly the contract whatever
the page looks like; the page's own events are private."""

from __future__ import annotations

import gradio as gr

from . import browser, editlist, models, preview, project, render, resume
from .page import PRIVATE, Page
from .tabs import TABS

INTRO = """# priorpaint — semantic photo editing with a GAN prior
Upload a photo, **paint over the region to edit** (or type a box `X,Y,W,H`) and **Project**; add edits from the
tabs to the **edit list**, watch the live preview, then **Render**: pixels outside the region stay exactly as they were.
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
    with gr.Row(equal_height=False, elem_id="pp-main"):
        with gr.Column(scale=5, elem_id="pp-work"):   # the photo, Project, the edit tabs
            project.build(page)
            with gr.Tabs():   # one tab per edit kind of this version
                for tab in TABS:
                    if page.has(tab.KIND):
                        with gr.Tab(tab.TITLE):
                            tab.build(page)
        with gr.Column(scale=4, elem_id="pp-side"):   # held in view: the preview, Render, the results
            preview.build(page)
            render.build_controls(page)
            editlist.build(page)
            render.build(page)
            preview.build_figures(page)
    resume.build(page)
    page.cheap_inputs = [page.direction_rows, *page.sliders]
    if page.has("vector"):
        page.cheap_inputs += [page.vec, page.vec_s]


def wire(page: Page, service) -> None:
    """Every panel's events (Project before Render: Stop cancels both)."""
    page.demo.load(None, None, None, js=browser.LOAD_JS, api_visibility=PRIVATE, queue=False)
    project.wire(page, service)
    preview.wire(page, service)
    editlist.wire(page, service)
    for tab in TABS:
        if page.has(tab.KIND):
            tab.wire(page, service)
    render.wire(page, service)
    models.wire(page, service)
    page.session.change(None, [page.session], None, js=browser.UNSAVED_JS, api_visibility=PRIVATE, queue=False)
    resume.wire(page, service)
