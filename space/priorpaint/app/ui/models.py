"""The model menu's line and button: a model that is not downloaded says so and downloads
with progress on request; and the concept and vector lists a model brings."""

from __future__ import annotations

import logging
from typing import Optional

import gradio as gr

from ...errors import PriorpaintError
from .. import contract as C
from ..endpoints import client_key, one_line
from .page import PRIVATE, Page

log = logging.getLogger(__name__)


def _mb(n) -> str:
    return f"{(n or 0) / 1e6:.1f} MB"


def present(service, model_id: str) -> Optional[bool]:
    row = service.model_row(model_id)
    return None if row is None else bool(row.get("present"))


def not_downloaded(model_id: str) -> str:
    return (f"model {model_id} is not downloaded on this server: click “Download the model” under the model "
            f"menu (or run `priorpaint download {model_id}` there)")


def model_status(service, model_id: Optional[str]) -> tuple:
    """(the line under the model menu, whether the Download button shows) for ``model_id``."""
    row = service.model_row(model_id) if model_id else None
    if row is None or row.get("present"):
        return "", False
    if not row.get("downloadable"):
        return (f"model **{model_id}**: its weights are not on this server ({row.get('source')}) and it has "
                "no Hub source to download"), False
    from ...models.manifest import get_entry
    hub = next((s for s in get_entry(model_id).sources if s.type == "hub"), None)
    size = f", {_mb(hub.size)}" if hub is not None and hub.size else ""
    where = f"the Hub repo {hub.repo_id} (file {hub.filename}{size})" if hub is not None else row.get("source")
    return (f"model **{model_id}** is not downloaded here: **Download the model** fetches it from {where} "
            f"and verifies its sha256 (or run `priorpaint download {model_id}` on the server)"), True


def download_line(status: dict) -> str:
    """The download's progress line: a bar, the bytes so far and the share."""
    done, total = status.get("bytes_done") or 0, status.get("bytes_total")
    if not total:
        return f"downloading **{status.get('model')}**: {_mb(done)} so far"
    return (f"downloading **{status.get('model')}**: <progress value=\"{done}\" max=\"{total}\"></progress> "
            f"{_mb(done)} of {_mb(total)} ({100 * done / total:.0f} %)")


def legend_brush(service, model_id: Optional[str]):
    """A brush in the label map's legend colours of ``model_id`` (None: the default brush)."""
    try:
        legend = service.concepts(model_id or "").get("legend") or {}
    except Exception as e:  # a model without parts: any colour
        log.info("no legend for %s: %s", model_id, e)
        legend = {}
    colours = ["#%02x%02x%02x" % tuple(int(v) for v in c[:3]) for c in legend.values()]
    return gr.Brush(colors=colours, default_color=colours[0], color_mode="fixed") if colours else None


def vector_names(service, model_id, request) -> Optional[list]:
    """The client's saved vectors of a model (None when it has none to list)."""
    try:
        d = service.concepts(model_id or "", client_key(request))
    except Exception as e:
        log.warning("no vectors for %s: %s", model_id, e)
        return None
    return [v["name"] if isinstance(v, dict) else str(v) for v in d.get("vectors", [])]


def build(page: Page) -> None:
    page.model_md = gr.Markdown("", elem_id="pp-model-status")
    page.model_dl = gr.Button("Download the model", visible=False, elem_id="pp-model-download", size="sm")


def wire(page: Page, service) -> None:
    ui_concepts, c_out = None, None
    if page.has("paint") or page.has("vector"):
        def ui_concepts(model_id, request: gr.Request):
            if model_id and present(service, model_id) is False:  # the line under the menu says so
                return gr.update(choices=[]), gr.update(choices=[]), ""
            try:
                d = service.concepts(model_id or "", client_key(request))
            except Exception as e:  # a model without concepts: the lists stay empty
                log.warning("no concepts for %s: %s", model_id, e)
                return gr.update(choices=[]), gr.update(choices=[]), ""
            names = [c["name"] if isinstance(c, dict) else str(c) for c in d.get("concepts", [])]
            vecs = [v["name"] if isinstance(v, dict) else str(v) for v in d.get("vectors", [])]
            return (gr.update(choices=names, value=names[0] if names else None),
                    gr.update(choices=vecs, value=vecs[0] if vecs else None), "")
        c_out = [page.state_or_sink("concept"), page.state_or_sink("vec"), page.notice]
        page.model.change(ui_concepts, [page.model], c_out, api_visibility=PRIVATE)
        page.demo.load(ui_concepts, [page.model], c_out, api_visibility=PRIVATE)

    def ui_model_status(model_id):
        text, show = model_status(service, model_id)
        return text, gr.update(visible=show, interactive=True)
    page.model.change(ui_model_status, [page.model], [page.model_md, page.model_dl], api_visibility=PRIVATE)
    page.demo.load(ui_model_status, [page.model], [page.model_md, page.model_dl], api_visibility=PRIVATE)

    def ui_download(model_id):
        if not model_id:
            raise gr.Error("pick a model first", print_exception=False)
        yield f"downloading **{model_id}**: starting", gr.update(interactive=False), gr.skip()
        try:
            for step in service.download(model_id):
                if isinstance(step, C.Progress):
                    yield download_line(C.status(step)), gr.skip(), gr.skip()
                    continue
                yield (f"model **{model_id}** downloaded and sha256-verified ({_mb(step.bytes)}"
                       + (", it was already here" if step.already_present else "") + "): Project uses it now",
                       gr.update(visible=False), gr.update(choices=service.model_choices(), value=model_id))
        except Exception as e:  # the line stays under the menu; the toast says it too
            line = one_line(str(e)) if isinstance(e, PriorpaintError) else \
                f"internal error in download ({type(e).__name__}); the server log has the details"
            if not isinstance(e, PriorpaintError):
                log.exception("download of %s", model_id)
            yield f"**download failed:** {line}", gr.update(interactive=True), gr.skip()
            raise gr.Error(line, print_exception=False) from None
    dl_evt = page.model_dl.click(ui_download, [page.model], [page.model_md, page.model_dl, page.model],
                                 api_visibility=PRIVATE, concurrency_id="download", concurrency_limit=2,
                                 show_progress="hidden")
    if ui_concepts is not None:
        dl_evt.success(ui_concepts, [page.model], c_out, api_visibility=PRIVATE)
