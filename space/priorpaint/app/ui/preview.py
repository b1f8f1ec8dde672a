"""The results of a projection and the live preview: the crop, ``G(z_h)``, ``G′`` and the
selection at the photo's resolution with the cheap edits (the kinds declared
``PreviewCost.LATENT``) composited as Render would, through G; it says which listed edits it
leaves to Render."""

from __future__ import annotations

from typing import List

from PIL import Image

import gradio as gr

from .. import contract as C
from .. import views
from ..endpoints import client_key, user_errors
from ..verdict import VerdictRequest
from .page import PRIVATE, Page

PSNR_HELP = ("**What the figures mean.** PSNR: how close each image is to your photo inside the selection "
             "(dB, higher is closer; above ~25 dB looks alike). *the model alone* (G(z)): the best latent code; "
             "*refined* (G(z_h)): after refining the split-layer feature; *fitted to this photo* (G′): the "
             "generator fitted to this photo, which Render uses when *fit G′* is on. In a render, *detail kept* "
             "compares the fine detail of the result with the photo's: 1 keeps it as it was, above 1 the result "
             "holds more fine detail than the photo (sharper, or the generator's own texture), below 1 less.")


def build(page: Page) -> None:
    """The live preview and its line (the top of the page's side column)."""
    page.preview_img = gr.Image(label="live preview (the selection at the photo's resolution, G without G′)",
                                format="png", interactive=False, elem_id="pp-preview", height=280)
    page.preview_md = gr.Markdown("", elem_id="pp-preview-md")


def build_figures(page: Page) -> None:
    """The projection's images and figures, folded away until asked for."""
    with gr.Accordion("details: the projection's images and figures", open=False, elem_id="pp-figures"):
        page.figures_md = gr.Markdown("", elem_id="pp-figures-md")
        with gr.Row():
            page.crop_img = gr.Image(label="your selection (photo resolution)", format="png", interactive=False,
                                     elem_id="pp-crop", height=300)
            page.recon_img = gr.Image(label="the model's reconstruction, G(z_h)", format="png", interactive=False,
                                      elem_id="pp-recon", height=300)
        page.adapted_img = gr.Image(label="fitted to this photo, G′", format="png", interactive=False,
                                    elem_id="pp-adapted", height=300)
        gr.Markdown(PSNR_HELP, elem_id="pp-psnr-help")


def slider_specs(rows, values) -> List[dict]:
    return [{"kind": "direction", "name": r["name"], "strength": float(v)} for r, v in zip(rows or [], values) if v]


def wire(page: Page, service) -> None:
    sliders = page.sliders

    def staged_cheap(values) -> List[dict]:
        """The cheap edits the tabs show right now (direction sliders, the vector strength)."""
        rows, rest = values[0], values[1:]
        out = slider_specs(rows, rest[:len(sliders)])
        if page.has("vector"):
            n, s = rest[len(sliders):len(sliders) + 2]
            if n and s:
                out.append({"kind": "vector", "name": n, "strength": float(s)})
        return out

    def composite_preview(sid, spec_list, client: str) -> Image.Image:
        """The selection at the photo's resolution with the edits composited (``detail``,
        through G: no G′ fit), as Render would blend it; bounded like the API's preview; only the
        asking client's own session (another's reads as unknown, as on the API)."""
        edits, files = C.file_refs(spec_list)
        req = C.PreviewRequest(session=sid, edits=tuple(C.parse_edit_list(edits, files, service.limits)),
                               composite=C.Composite.DETAIL)
        return views.readable(Image.fromarray(views.rgb(service.preview(req, slow_ok=True, client=client))))

    def verdict_of(sid, spec_list, client: str) -> str:
        """Whether the previewed edits can be carried on this photo (the ``verdict`` endpoint's
        call), as the line shown beside the preview."""
        edits, files = C.file_refs(spec_list)
        req = VerdictRequest(session=sid, edits=tuple(C.parse_edit_list(edits, files, service.limits)),
                               composite=C.Composite.DETAIL)
        return views.verdict_line(service.verdict(req, client=client, slow_ok=True).get("verdict"))

    def previewed(items, values, extra=None):
        """(the edits the live preview shows, its note): the tab's staged cheap edits win over the
        listed ones of the same name; listed kinds that are not cheap are left to Render."""
        staged = staged_cheap(values)
        listed = views.specs(items)
        names = {(s["kind"], s["name"]) for s in staged}
        listed = [s for s in listed if (s.get("kind"), s.get("name")) not in names]  # the tab's value wins
        run, skipped = views.cheap(listed)
        run = run + staged + (extra or [])
        note = views.preview_note(len(run), skipped)
        if extra:
            note += " (with the interpolation being set)"
        return run, note

    @user_errors
    def ui_preview(request: gr.Request, sid, items, *values, extra=None):
        if not sid:
            return gr.skip(), gr.skip()
        run, note = previewed(items, values, extra)
        return composite_preview(sid, run, client_key(request)), note

    @user_errors
    def ui_verdict(request: gr.Request, sid, items, *values, extra=None):
        """The note again with the verdict's line: measured after the image is shown, so the
        preview itself never waits for the measures."""
        if not sid:
            return gr.skip()
        run, note = previewed(items, values, extra)
        line = verdict_of(sid, run, client_key(request)) if run else ""
        return note + (f"  \n{line}" if line else "")

    kw = dict(api_visibility=PRIVATE, trigger_mode="always_last", concurrency_id="preview",
              concurrency_limit=4, show_progress="minimal")
    kw_verdict = dict(api_visibility=PRIVATE, concurrency_id="verdict", concurrency_limit=2, show_progress="hidden")
    inputs = [page.session, page.edit_list, *page.cheap_inputs]
    outputs = [page.preview_img, page.preview_md]
    for s in sliders:
        s.change(ui_preview, inputs, outputs, **kw).then(ui_verdict, inputs, [page.preview_md], **kw_verdict)
    if page.has("vector"):
        page.vec_s.change(ui_preview, inputs, outputs, **kw).then(ui_verdict, inputs, [page.preview_md],
                                                                  **kw_verdict)
    if page.has("interpolate"):
        @user_errors
        def ui_preview_t(request: gr.Request, sid, items, o, tv, *values):
            extra = [{"kind": "interpolate", "other": o, "t": float(tv)}] if o else []
            return ui_preview(request, sid, items, *values, extra=extra)

        @user_errors
        def ui_verdict_t(request: gr.Request, sid, items, o, tv, *values):
            """Whether the interpolation can be carried (the face between the two; a face in both)."""
            extra = [{"kind": "interpolate", "other": o, "t": float(tv)}] if o else []
            return ui_verdict(request, sid, items, *values, extra=extra)
        inputs_t = [page.session, page.edit_list, page.other, page.t, *page.cheap_inputs]
        page.t.release(ui_preview_t, inputs_t, outputs, **kw).then(ui_verdict_t, inputs_t, [page.preview_md],
                                                                    **kw_verdict)
