"""Render: exactly the listed edits through G′ and the chosen composite; the selection before
and after, the full-resolution download, the render history, and *Stop*."""

from __future__ import annotations

import numpy as np
from PIL import Image

import gradio as gr

from ...errors import InputError
from .. import contract as C
from .. import views
from ..endpoints import client_key, stoppable
from . import models
from .page import ENGINE, PRIVATE, Page
from .tabs import drag as drag_tab


def build_controls(page: Page) -> None:
    """The Render button and the compositing choice (under the edit list)."""
    with gr.Row():
        page.render_btn = gr.Button("Render", variant="primary", elem_id="pp-render")
        page.composite = gr.Radio([m.value for m in C.Composite], value=C.Composite.DETAIL.value, label="compositing",
                                  info="detail keeps the photo's fine detail (a pose edit moves the photo's own pixels instead); "
                                       "replace pastes the generator's pixels; warp moves the photo's pixels along the edit's motion",
                                  elem_id="pp-composite")
    page.render_md = gr.Markdown("", elem_id="pp-render-md")


def build(page: Page) -> None:
    """The results column: before/after, download, the full photo, the history."""
    page.compare = gr.ImageSlider(label="before ↔ after (the selection at the photo's resolution)",
                                  type="pil", format="png", interactive=False, elem_id="pp-compare")
    page.download = gr.File(label="download the full-resolution PNG", interactive=False, elem_id="pp-download")
    page.result_img = gr.Image(label="the full photo", format="png", interactive=False, elem_id="pp-result",
                               height=300)
    page.gallery = gr.Gallery(label="render history (click one to go back to it)", columns=4, height=220,
                              fit_columns=False, allow_preview=False, elem_id="pp-history")


def stage_words(step) -> str:
    """A render's progress line: a stage at 100 % is followed by the composite into the full-size
    photo, which reports nothing of its own (seconds on a 12 MP photo), so the line says it."""
    if step.fraction >= 1.0 and step.stage not in ("starting", "waiting for a free slot"):
        return f"{step.stage} done; compositing into the full-size photo"
    return step.stage


def render_message(d: dict) -> str:
    """The line under Render for a finished render's status object."""
    pa, pp, dk = d.get("psnr_adapted"), d.get("psnr_photo"), d.get("detail_kept")
    kept = "—" if dk is None else f"{dk:.2f}" + (" (above 1: more fine detail than the photo)" if dk > 1.005 else
                                                   " (below 1: less fine detail than the photo)" if dk < 0.995 else "")
    msg = (f"changed outside the mask: **{d.get('changed_outside_mask')}** px · "
           + (f"{d.get('composite')} composite: how close to your photo inside the selection "
              f"{'—' if pp is None else f'{pp:.1f} dB'} (PSNR), detail kept {kept} · "
              if d.get("composite") else "")
           + (f"fitted generator G′ {pa:.2f} dB · " if pa is not None else "")
           + f"{(d.get('seconds') or {}).get('total', 0):.1f} s  \n"
           f"edits: {', '.join(e.get('kind', '?') for e in d.get('edits') or []) or 'none'}")
    notes = d.get("notes") or []
    if notes:
        msg += "  \n" + "  \n".join(f"note: {x}" for x in notes)
    return msg


def wire(page: Page, service) -> None:
    scratch = page.scratch

    def vector_update(model_id, request):
        if not page.has("vector"):
            return gr.skip()
        names = models.vector_names(service, model_id, request)
        return gr.skip() if names is None else gr.update(choices=names)

    @stoppable
    def ui_render(sid, items, adapt_v, comp, state, hist, request: gr.Request, progress=gr.Progress()):
        if not sid:
            raise InputError("project a selection first")
        progress(0.0, desc="starting")
        spec_list = views.specs(items)
        edits, files = C.file_refs(spec_list)
        req = C.EditRequest.parse(sid, edits, adapt_v, files, comp, limits=service.limits)
        starts, last = {}, None      # a drag's handles where it began (by its targets), the last step drawn
        for step in service.edit(req, client_key(request)):
            if isinstance(step, C.Progress):
                progress(step.fraction, desc=stage_words(step))
                out = [gr.skip()] * len(outputs)
                live = step.extra if step.extra.get("handles") and state and state.get("layer") else None
                if live is not None and (live.get("step"), live["targets"]) != last:
                    last = (live.get("step"), live["targets"])
                    key = str(live["targets"])
                    if key not in starts:
                        starts[key] = drag_tab.starts_of(spec_list, live["targets"]) or live["handles"]
                    out[3] = drag_tab.live_frame(state, starts[key], live)      # the preview: the points moving
                    out[7] = drag_tab.live_words(live)
                yield tuple(out)
                continue
            progress(1.0, desc="saving the full-resolution PNG and the before/after")
            d = C.status(step)
            result = step.photo
            n = (hist[0]["n"] + 1) if hist else 1
            name = views.download_name((state or {}).get("name"), n)
            path = scratch.save(result, "result", name=name)
            before_arr = np.asarray(Image.open(state["photo"])) if state.get("photo") else np.asarray(result)
            before, after = views.compare_pair(before_arr, np.asarray(result), step.layer.tuple())
            caption = f"#{n}: " + (", ".join(it["label"] for it in items or []) or "no edits")
            hist = views.push_history(hist, {"n": n, "path": path, "name": name, "caption": caption,
                                             "before": scratch.save(before, "before"),
                                             "after": scratch.save(after, "after")})
            saved = any(s.get("save_vector") for s in spec_list)
            gal = [(h["after"], h["caption"]) for h in hist]
            msg = render_message(d)
            extra = [x for x in (views.unchanged_line(before_arr, np.asarray(result), len(spec_list)),
                                 views.verdict_line(d.get("verdict"))) if x]
            if extra:
                msg = "  \n".join(extra) + "  \n" + msg
            yield ((before, after), path, msg, after, hist, gal,
                   vector_update(state.get("model"), request) if saved else gr.skip(),
                   f"preview: the last render's selection at the photo's resolution ({len(spec_list)} edit(s), "
                   f"{d.get('composite') or 'replace'} composite{', G′' if adapt_v else ''})",
                   result)

    outputs = [page.compare, page.download, page.render_md, page.preview_img, page.history, page.gallery,
               page.state_or_sink("vec"), page.preview_md, page.result_img]
    render_evt = page.render_btn.click(ui_render, [page.session, page.edit_list, page.adapt, page.composite,
                                                   page.page_state, page.history],
                                       outputs, api_visibility=PRIVATE, concurrency_id=ENGINE,
                                       concurrency_limit=16, show_progress_on=[page.render_md])
    page.render_events.append(render_evt)

    def ui_history(hist, evt: gr.SelectData):
        h = (hist or [])[evt.index]
        return ((Image.open(h["before"]), Image.open(h["after"])), h["path"],
                f"showing render {h['caption']}", h["path"])
    page.gallery.select(ui_history, [page.history], [page.compare, page.download, page.render_md, page.result_img],
                        api_visibility=PRIVATE)

    def ui_stop(sid):
        hit = service.cancel(sid) if sid else None
        said = "**cancelled**" + (" (the running job stops within one step)" if hit and hit.cancelled else "")
        # the previous render's figures must not read as this one's
        return said, "**Render cancelled**: no new result; the images below are from the previous render, if any."
    page.stop_btn.click(ui_stop, [page.session], [page.notice, page.render_md],
                        cancels=[*page.project_events, *page.render_events], api_visibility=PRIVATE)
