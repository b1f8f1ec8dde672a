"""The named API endpoints of ``docs/api.md``: Gradio adapters that only translate.

Each endpoint turns its positional Gradio inputs into a request of
:mod:`priorpaint.app.contract`, the ``gr.Request`` into a client key, calls
:class:`~priorpaint.app.service.Service`, and turns what it yields into the endpoint's
outputs: the status JSON (:func:`~priorpaint.app.contract.to_wire`; every intermediate one
has ``"done": false``, so plain-HTTP clients see ``event: generating``) and PNG images.
Engine errors (:class:`~priorpaint.errors.PriorpaintError`) become ``gr.Error`` with the same
one-line message, without server paths.

:func:`wire` adds the endpoints to a page as events on hidden components, so their inputs
and outputs are exactly the contract whatever the page looks like.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import re
from typing import Optional

import numpy as np
from PIL import Image

import gradio as gr

from ..errors import Cancelled, PriorpaintError
from . import contract as C
from .clients import client_key  # noqa: F401  (the UI and api read it here)
from .service import Service
from .verdict import VerdictRequest

log = logging.getLogger(__name__)

ENGINE = "engine"  # the concurrency group of the engine endpoints

_PATH = re.compile(r"(?<![\w.:/])(?:[A-Za-z]:)?[/\\](?:[^\s'\"/\\]+[/\\])+([^\s'\"/\\]*)")


def no_paths(text: str) -> str:
    """A message with every absolute path cut to its file name (errors never show server paths)."""
    return _PATH.sub(lambda m: m.group(1) or "<path>", text)


def one_line(text: str, limit: int = 500) -> str:
    text = no_paths(" ".join(str(text).split()))
    return text if len(text) <= limit else text[:limit] + "..."


@contextlib.contextmanager
def _as_gr_errors(name: str):
    try:
        yield
    except PriorpaintError as e:
        raise gr.Error(one_line(str(e)) or f"{name}: {type(e).__name__}", print_exception=False) from None
    except gr.Error:
        raise
    except RecursionError:
        raise gr.Error(f"{name}: the request is nested too deeply", print_exception=False) from None
    except Exception as e:
        log.exception("internal error in %s", name)
        raise gr.Error(f"internal error in {name} ({type(e).__name__}); the server log has the details",
                       print_exception=False) from None


def user_errors(fn):
    """Turn engine errors into ``gr.Error`` (the message reaches browser, gradio_client and HTTP)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            with _as_gr_errors(fn.__name__):
                yield from fn(*args, **kwargs)
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _as_gr_errors(fn.__name__):
            return fn(*args, **kwargs)
    return wrapper


def stoppable(fn):
    """:func:`user_errors` for a browser handler whose job the page's Stop cancels: a cancelled
    job ends the handler quietly, because Stop's own line already says so (a toast "job
    cancelled by the client" raced it whenever the job saw the cancel before Gradio cancelled
    the event).  API endpoints keep :func:`user_errors`: a script must learn it got no result."""
    if not inspect.isgeneratorfunction(fn):
        raise TypeError(f"stoppable wraps a generator handler, not {fn.__name__}")

    @functools.wraps(fn)
    def quiet(*args, **kwargs):
        try:
            yield from fn(*args, **kwargs)
        except Cancelled as e:
            log.info("%s ended: %s", fn.__name__, e)
    return user_errors(quiet)


def _image(arr) -> Optional[Image.Image]:
    """An RGB or RGBA PNG-able image of an array (None stays None)."""
    if arr is None:
        return None
    if isinstance(arr, Image.Image):
        return arr
    a = np.ascontiguousarray(arr)
    return Image.fromarray(a, "RGBA" if a.ndim == 3 and a.shape[2] == 4 else "RGB")


class Backend:
    """The endpoint functions over one :class:`Service` (built here from the same arguments
    when none is given).  Each returns or yields exactly the endpoint's outputs."""

    def __init__(self, model: Optional[str] = None, store=None, jobs=None, default_steps: Optional[int] = None,
                 max_steps: Optional[int] = None, device=None, limits=None, service: Optional[Service] = None):
        if service is None:
            kw = {} if default_steps is None else {"default_steps": default_steps}
            service = Service(model=model, store=store, jobs=jobs, max_steps=max_steps, device=device,
                              limits=limits, **kw)
        self.service = service

    # what the server's start and stop read
    @property
    def model(self):
        return self.service.model

    @property
    def store(self):
        return self.service.store

    @property
    def jobs(self):
        return self.service.jobs

    @property
    def limits(self):
        return self.service.limits

    @property
    def device(self):
        return self.service.device

    @property
    def default_steps(self) -> int:
        return self.service.default_steps

    def warm_up(self) -> dict:
        return self.service.warm_up()

    def stats(self) -> dict:
        return self.service.stats()

    # -- the endpoints ------------------------------------------------------------------------
    def models(self) -> str:
        return json.dumps(self.service.models())

    def capabilities(self) -> str:
        """JSON: the contract's version, the choices of ``init`` / ``composite``, the steps, and
        what each edit kind can do (preview cost, survives a projection, strength, file fields)."""
        return json.dumps(self.service.capabilities())

    def download(self, model: str = ""):
        """Generator: download (and verify) a manifest model's weights; status updates with
        ``bytes_done`` / ``bytes_total``, then the final status (``file``: the weights file's name, ``bytes``,
        ``already_present``).  The name is only looked up in the manifest."""
        for step in self.service.download(model):
            yield C.to_wire(step)

    def project(self, image, mask=None, box: str = "", model: str = "", steps=None, seed=0, adapt=False,
                align=True, eyes: str = "", init: str = "auto", request: gr.Request = None):
        """Generator: status updates, then (status, crop, reconstruction, adapted).

        ``align``: a face model whose manifest declares an alignment gets the rotated, scaled
        square its training data framed (at ``eyes`` ``"X1,Y1,X2,Y2"``, the eye centres in
        image pixels, else at the detected eyes); false: the plain box.  The status's
        ``layer`` is where every layer of the session goes, ``alignment`` the rotated square.
        ``init``: "auto" (the model's encoder when it has one matching its weights, else the
        multi-start search), "encoder" (hybrid) or "search"; the Gradio endpoint uses "auto"."""
        req = C.ProjectRequest.parse(image, mask, box, model, steps, seed, adapt, align, eyes, init,
                                     limits=self.limits)
        for step in self.service.project(req, client_key(request)):
            if isinstance(step, C.Progress):
                yield C.to_wire(step), None, None, None
            else:
                yield C.to_wire(step), _image(step.crop), _image(step.reconstruction), _image(step.adapted)

    def project_options(self, image, mask=None, box: str = "", model: str = "", steps=None, seed=0, adapt=False,
                        options: str = "", request: gr.Request = None):
        """``project`` with an options object (JSON): ``{"align": true|false, "eyes": "X1,Y1,X2,Y2",
        "init": "auto"|"encoder"|"search"}``, every key optional (``project`` itself keeps its
        seven inputs for the clients that send seven)."""
        opts = C.project_options(options, self.limits)
        yield from self.project(image, mask, box, model, steps, seed, adapt, request=request, **opts)

    def edit(self, session: str, edits: str = "[]", adapt: bool = False, files=None, composite: str = "detail",
             request: gr.Request = None):
        """Generator: status updates, then (status, result, layer, preview)."""
        req = C.EditRequest.parse(session, edits, adapt, files, composite, limits=self.limits)
        for step in self.service.edit(req, client_key(request)):
            if isinstance(step, C.Progress):
                yield C.to_wire(step), None, None, None
            else:
                step.report = C.refs_for_paths(step.report, files)   # no server path in a response
                yield C.to_wire(step), step.photo, _image(step.layer_image), _image(step.generated)

    def preview(self, session: str, edits: str = "[]", files=None, request: gr.Request = None) -> Image.Image:
        """The exact preview image (the direct Python call; the endpoint is :meth:`preview_frames`)."""
        return _image(self.service.preview(C.PreviewRequest.parse(session, edits, files, limits=self.limits),
                                           client=client_key(request)))

    def preview_frames(self, session: str, edits: str = "[]", files=None, request: gr.Request = None):
        """Generator, the ``preview`` endpoint: (PNG, flag JSON) for an approximate frame where the
        session can predict one, then for the exact frame (``{"approximate": false, ...}``), which is
        the endpoint's final output."""
        req = C.PreviewRequest.parse(session, edits, files, limits=self.limits)
        for image, flag in self.service.preview_frames(req, client=client_key(request)):
            yield _image(image), json.dumps(flag)

    def verdict(self, session: str, edits: str = "[]", options: str = "", request: gr.Request = None) -> str:
        """JSON ``{"structure": {...}, "verdict": {...}}`` of the fast edits on the live preview's
        square: ``verdict["carried"]`` false means the edit cannot be carried on this photo and
        ``verdict["message"]`` is the line to show.  ``options``: ``{"composite", "size"}``."""
        return json.dumps(self.service.verdict(VerdictRequest.parse(session, edits, options, limits=self.limits),
                                               client_key(request)))

    def cancel(self, ident: str, request: gr.Request = None) -> str:
        """Only the caller's own jobs (a request's client key); called without a request (the
        page's own stop button), the id's jobs."""
        return C.to_wire(self.service.cancel(ident, client_key(request) if request else None))

    def directions(self, model: str = "") -> str:
        return json.dumps(self.service.directions(model))

    def concepts(self, model: str = "", request: gr.Request = None) -> str:
        return json.dumps(self.service.concepts(model, client_key(request)))

    def segment(self, session: str, request: gr.Request = None):
        """Generator: status updates, then (status with legend, label map PNG at the layer box size)."""
        for step in self.service.segment(session, client_key(request)):
            if isinstance(step, C.Progress):
                yield C.to_wire(step), None
            else:
                yield C.to_wire(step), _image(step.labels)


def wire(backend: Backend) -> None:
    """Add the named API endpoints to the page being built (inside ``gr.Blocks``)."""
    with gr.Column(visible=False):
        a_image = gr.File(label="image", type="filepath")
        a_mask = gr.File(label="mask", type="filepath")
        a_box = gr.Textbox(label="box")
        a_model = gr.Textbox(label="model")
        a_steps = gr.Number(label="steps", precision=0, value=backend.default_steps)
        a_seed = gr.Number(label="seed", precision=0, value=0)
        a_adapt = gr.Checkbox(label="adapt", value=False)
        a_options = gr.Textbox(label="options", value="")
        a_session = gr.Textbox(label="session")
        a_edits = gr.Textbox(label="edits", value="[]")
        a_files = gr.File(label="files", file_count="multiple", type="filepath")
        a_composite = gr.Textbox(label="composite", value=C.Composite.DETAIL.value)
        a_id = gr.Textbox(label="id")
        o_status = gr.Textbox(label="status")
        o_json = gr.Textbox(label="json")
        o_crop = gr.Image(label="crop", format="png", type="pil")
        o_recon = gr.Image(label="reconstruction", format="png", type="pil")
        o_adapted = gr.Image(label="adapted", format="png", type="pil")
        o_result = gr.Image(label="result", format="png", type="pil", image_mode=None)
        o_layer = gr.Image(label="layer", format="png", type="pil", image_mode="RGBA")
        o_preview = gr.Image(label="preview", format="png", type="pil")
        o_frame = gr.Textbox(label="frame")
        o_labels = gr.Image(label="labels", format="png", type="pil")
        trigger = gr.Button(visible=False)

    b = backend
    trigger.click(user_errors(b.models), None, o_json, api_name="models", concurrency_limit=None)
    trigger.click(user_errors(b.capabilities), None, o_json, api_name="capabilities", concurrency_limit=None)
    trigger.click(user_errors(b.download), [a_model], o_status, api_name="download",
                  concurrency_id="download", concurrency_limit=2)
    trigger.click(user_errors(b.project), [a_image, a_mask, a_box, a_model, a_steps, a_seed, a_adapt],
                  [o_status, o_crop, o_recon, o_adapted], api_name="project",
                  concurrency_id=ENGINE, concurrency_limit=16)
    trigger.click(user_errors(b.project_options),
                  [a_image, a_mask, a_box, a_model, a_steps, a_seed, a_adapt, a_options],
                  [o_status, o_crop, o_recon, o_adapted], api_name="project_options",
                  concurrency_id=ENGINE, concurrency_limit=16)
    trigger.click(user_errors(b.edit), [a_session, a_edits, a_adapt, a_files, a_composite],
                  [o_status, o_result, o_layer, o_preview], api_name="edit",
                  concurrency_id=ENGINE, concurrency_limit=16)
    trigger.click(user_errors(b.preview_frames), [a_session, a_edits], [o_preview, o_frame], api_name="preview",
                  concurrency_id="preview", concurrency_limit=4)
    trigger.click(user_errors(b.verdict), [a_session, a_edits, a_options], o_json, api_name="verdict",
                  concurrency_id="preview", concurrency_limit=4)
    trigger.click(user_errors(b.cancel), [a_id], o_status, api_name="cancel", concurrency_limit=None)
    trigger.click(user_errors(b.directions), [a_model], o_json, api_name="directions", concurrency_limit=None)
    trigger.click(user_errors(b.concepts), [a_model], o_json, api_name="concepts", concurrency_limit=None)
    trigger.click(user_errors(b.segment), [a_session], [o_status, o_labels], api_name="segment",
                  concurrency_id=ENGINE, concurrency_limit=16)
