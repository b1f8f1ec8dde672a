"""A reload resumes: the session id, the projection's state, the edit list and the render
history are kept in the browser (``gr.BrowserState``: the browser's localStorage, encrypted
with this server's secret); when the page loads again and the server still holds that session,
they come back, and the status says so.  When the server no longer holds it, the stored copy
is dropped and the status says that in plain words.

What comes back from the browser is not trusted: the session must be one the service holds for
this client (the server-issued client id, as every endpoint checks),
and every file the stored state names must be one of this page's own scratch files (any other
path is dropped, never opened).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np
from PIL import Image

import gradio as gr

from ...errors import InputError
from .. import contract as C
from .. import views
from ..endpoints import client_key
from . import project
from .page import PRIVATE, Page

STORAGE_KEY = "priorpaint-page"
MAX_KEPT_ITEMS = 64  # what a stored edit list may hold (the page's list is far shorter)


def _own(page: Page, path) -> Optional[str]:
    """``path`` when it is an existing file inside the page's scratch folder, else None."""
    if not isinstance(path, str) or not path or len(path) > 4096:
        return None
    try:
        p = Path(path).resolve()
        root = page.scratch.dir.resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    return str(p) if p.is_relative_to(root) and p.is_file() else None


def kept_items(page: Page, items) -> tuple:
    """(the stored edit list's entries whose files are all the page's own, how many were dropped)."""
    out: List[dict] = []
    dropped = 0
    for it in list(items or [])[:MAX_KEPT_ITEMS] if isinstance(items, list) else []:
        spec = it.get("spec") if isinstance(it, dict) else None
        if not isinstance(spec, dict) or not isinstance(it.get("label"), str):
            dropped += 1
            continue
        _, files = C.file_refs([spec])
        if all(_own(page, f) for f in files):
            out.append(it)
        else:
            dropped += 1
    return out, dropped


def kept_history(page: Page, hist) -> List[dict]:
    out = []
    for h in list(hist or [])[:views.HISTORY] if isinstance(hist, list) else []:
        if isinstance(h, dict) and all(_own(page, h.get(k)) for k in ("path", "before", "after")):
            out.append({k: h.get(k) for k in ("n", "path", "name", "before", "after", "caption")})
    return out


def build(page: Page) -> None:
    page.stored = gr.BrowserState({}, storage_key=STORAGE_KEY)


def restore(page: Page, service, sid: str, state: dict, items: List[dict], hist: List[dict], dropped: int) -> tuple:
    """The values of :func:`restore_outputs` for a resumed session."""
    rows, updates = project.slider_updates(service, page.sliders, state.get("model"))
    bg = np.asarray(Image.open(state["photo"]).convert("RGB"))
    try:
        crop = views.readable(Image.fromarray(views.box_crop(bg, state["layer"] or (0, 0, 0, 0))))
    except (InputError, TypeError, ValueError):
        crop = None
    gal = [(h["after"], h["caption"]) for h in hist]
    last = hist[0] if hist else None
    note = f" ({dropped} edit(s) holding files were dropped)" if dropped else ""
    status = (f"**Resumed** after the reload: your session on `{state.get('name') or 'the photo'}` with model "
              f"`{state.get('model', '')}`, {len(items)} edit(s) in the list{note} and {len(hist)} render(s) "
              "in the history. The photo editor is empty: upload the photo again only to select another region.")
    return (sid, state, items, views.table(items), f"the edit list of your session ({len(items)} edit(s))",
            hist, gal,
            (Image.open(last["before"]), Image.open(last["after"])) if last else gr.skip(),
            last["path"] if last else gr.skip(), last["path"] if last else gr.skip(),
            status, rows, crop, *updates)


def restore_outputs(page: Page) -> list:
    return [page.session, page.page_state, page.edit_list, page.edits_df, page.list_md, page.history, page.gallery,
            page.compare, page.download, page.result_img, page.status, page.direction_rows, page.crop_img,
            *page.sliders]


def wire(page: Page, service) -> None:
    """Save the page's states on every change; on load, resume the stored session when the
    server still holds it."""

    def ui_save(sid, state, items, hist):
        if not sid:
            return {}
        return {"session": sid, "state": state or {}, "items": items or [], "history": hist or []}

    saved = [page.session, page.page_state, page.edit_list, page.history]
    for st in saved:
        st.change(ui_save, saved, page.stored, api_visibility=PRIVATE, queue=False, show_progress="hidden")
    outputs = restore_outputs(page)

    def ui_resume(request: gr.Request, stored):
        skip = [gr.skip()] * (len(outputs) + 1)
        if not isinstance(stored, dict) or not stored.get("session"):
            return tuple(skip)
        sid = str(stored["session"])[:64]
        state = stored.get("state") if isinstance(stored.get("state"), dict) else {}
        photo = _own(page, state.get("photo"))
        if not service.holds(sid, client_key(request)) or photo is None:
            skip[-1] = {}
            skip[outputs.index(page.status)] = (
                "The page was reloaded, but the server no longer holds your last session (it expired or the "
                "server restarted): upload the photo and Project again.")
            return tuple(skip)
        layer = state.get("layer")
        if not (isinstance(layer, list) and len(layer) == 4 and all(isinstance(v, int) for v in layer)):
            layer = None
        state = {"photo": photo, "layer": layer, "name": str(state.get("name") or "")[:200],
                 "model": str(state.get("model") or "")[:200]}
        items, dropped = kept_items(page, stored.get("items"))
        hist = kept_history(page, stored.get("history"))
        return (*restore(page, service, sid, state, items, hist, dropped), gr.skip())

    page.demo.load(ui_resume, [page.stored], [*outputs, page.stored], api_visibility=PRIVATE)
