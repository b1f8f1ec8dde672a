"""The app's endpoint functions (the API contract of ``docs/api.md``), without any layout.

:class:`Backend` owns the session store and the job registry.  Its long endpoints
(``project``, ``edit``, ``segment``) are generator functions: they yield intermediate
outputs whose first element is a status JSON string ``{"done": false, "stage", "fraction",
"job"}`` (so plain-HTTP clients see ``event: generating``), run the engine in a worker
thread (:func:`~priorpaint.app.sessions.run_job`) and finish with ``"done": true`` plus
the results.  Engine errors (:class:`~priorpaint.errors.PriorpaintError`) become
``gr.Error`` with the same one-line message.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import math
import re
import time
from pathlib import Path
from typing import Any, List, Optional, Sequence

import numpy as np
from PIL import Image

import gradio as gr

from ..errors import InputError, PriorpaintError
from .limits import Limits
from .sessions import JobRegistry, SessionStore, run_job
from . import kinds

log = logging.getLogger(__name__)

MAX_STEPS = 5000


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


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else ""


def file_path(value: Any, what: str, required: bool = True) -> Optional[str]:
    """The server path of a Gradio file value (a path string, a FileData dict or object)."""
    if value is None or value == "" or value == []:
        if required:
            raise InputError(f"no {what} given: upload one")
        return None
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise InputError(f"{what} must be one file, got {len(value)}")
        value = value[0]
    if isinstance(value, dict):
        value = value.get("path") or value.get("name")
    else:
        value = getattr(value, "path", None) or getattr(value, "name", None) or value
    if not isinstance(value, (str, Path)) or not str(value):
        raise InputError(f"{what} is not a file")
    return str(value)


def _num(value, what: str, lo: float, hi: float, integer: bool = True):
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
    if isinstance(value, bool):
        raise InputError(f"{what} must be a number, got {shown}")
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{what} must be a number, got {shown}") from None
    if not math.isfinite(v) or v < lo or v > hi:
        a, b = (int(lo), int(hi)) if integer else (f"{lo:g}", f"{hi:g}")
        raise InputError(f"{what} must be between {a} and {b}, got {shown}")
    if integer:
        if v != int(v):
            raise InputError(f"{what} must be a whole number, got {value!r}")
        return int(v)
    return v


def _json(d: dict) -> str:
    return json.dumps(d, default=_jsonable, allow_nan=False)


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (np.ndarray,)):
        return v.tolist()
    if isinstance(v, Path):
        return str(v)
    return str(v)


def _clean(v):
    """Metrics for JSON: NaN/inf become null, tuples lists, numpy scalars numbers."""
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return v if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (str, int, bool)) or v is None:
        return v
    return str(v)


def _rgb_image(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(arr), "RGBA" if arr.ndim == 3 and arr.shape[2] == 4 else "RGB")


#: image-valued fields of edit specs: over the API they must be "file:N" references, so a
#: client can only use files it uploaded, never read other files on the server
IMAGE_FIELDS = ("strokes", "other", "mask", "labels", "legend")


def resolve_files(specs: List[dict], files: Sequence) -> List[dict]:
    """Replace ``"file:N"`` references in edit specs by the server path of ``files[N]``."""
    paths = [file_path(f, f"file {i}") for i, f in enumerate(files or [])]
    out = []
    for spec in specs:
        spec = dict(spec)
        for k, v in list(spec.items()):
            if k in IMAGE_FIELDS and isinstance(v, str) and not v.startswith("file:"):
                raise InputError(f"edit {spec.get('kind')!r}: {k} must be a reference \"file:N\" to the N-th "
                                 f"file sent with the edits, got {str(v)[:60]!r}")
            if k == "legend" and isinstance(v, dict):
                continue   # a legend may also be given inline, {name: [r, g, b]} (checked by the edit)
            if k in IMAGE_FIELDS and v is not None and not isinstance(v, str):
                raise InputError(f"edit {spec.get('kind')!r}: {k} must be a reference \"file:N\", "
                                 f"got a {type(v).__name__}")
            if isinstance(v, str) and v.startswith("file:"):
                index = Limits.file_index(v[5:], len(paths))
                if index is None:
                    raise InputError(f"edit {spec.get('kind')!r}: {k} refers to {v[:40]!r} but "
                                     f"{len(paths)} file(s) were sent with the edits (file:0 ... file:N)")
                spec[k] = paths[index]
        out.append(spec)
    return out


def refs_for_paths(value: Any, files: Sequence) -> Any:
    """``value`` (a status: dicts, lists, strings) with each server path of ``files[N]`` given
    back as the client's own ``"file:N"`` (an applied edit echoes its resolved spec)."""
    paths = {}
    for i, f in enumerate(files or []):
        try:
            paths[file_path(f, f"file {i}")] = f"file:{i}"
        except InputError:
            continue
    if not paths:
        return value
    if isinstance(value, dict):
        return {k: refs_for_paths(v, files) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [refs_for_paths(v, files) for v in value]
    return paths.get(value, value) if isinstance(value, str) else value


def parse_edit_list(edits: Any, files: Sequence = (), limits: Optional[Limits] = None) -> List[dict]:
    """Edit specs from the API's JSON string (or a list), within the limits, with file references resolved."""
    from ..edits.registry import parse_specs

    limits = limits or Limits()
    raw = limits.edits_json(edits)
    for i, spec in enumerate(raw):
        if isinstance(spec, str) and len(spec) > limits.max_text_chars * 4:
            raise InputError(f"edit {i} is {len(spec)} characters; the limit is {limits.max_text_chars * 4}")
    specs = parse_specs(raw)
    limits.spec_steps(specs)
    out = resolve_files(specs, files)
    for spec in out:
        for k in IMAGE_FIELDS:
            if isinstance(spec.get(k), str) and k != "legend":
                limits.image_pixels(spec[k], f"edit {spec.get('kind')!r}: {k}")
    return out


def client_key(request) -> str:
    """Who a request comes from, for the per-client bounds: the peer address, and on a loopback
    peer also Gradio's session hash (one per gradio_client ``Client``, per browser tab, or the
    ``session_hash`` a plain-HTTP client sends; without one each plain-HTTP call is its own)."""
    if request is None:
        return ""
    try:
        host = request.client.host or ""
    except Exception:
        host = ""
    sh = str(getattr(request, "session_hash", "") or "")[:64]
    import ipaddress
    try:
        loop = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loop = host in ("", "localhost", "testclient")
    return f"{host}|{sh}" if loop else host


def namespace_of(client: str) -> str:
    """The client's own editing-vector namespace (16 hex digits, keyed by the cache's secret)."""
    from ..store import client_namespace
    return client_namespace(client)


def composite_mode(value) -> str:
    """The ``composite`` option of ``edit``: ``"detail"`` (default, also for ``""``/null) or ``"replace"``."""
    from ..compositing.detail import check_mode
    if value is None or (isinstance(value, str) and not value.strip()):
        return "detail"
    if not isinstance(value, str):
        raise InputError(f"composite must be one of detail, replace, got {value!r}")
    return check_mode(value.strip())


PREVIEW_MAX_SIZE = 1024


def preview_options(edits: Any, limits: Limits):
    """``preview``'s ``edits``: a JSON list of specs (as ``edit`` takes; the model-resolution
    rendering) or an object ``{"edits": [...], "composite": "detail"|"replace", "size": N}``
    asking for the selection's layer box composited at the photo's resolution, at most ``size``
    pixels a side (default and limit ``PREVIEW_MAX_SIZE``).  Returns (edits, mode or None, size)."""
    raw = limits.edits_json(edits)   # the length and depth bounds, before anything else
    if not (len(raw) == 1 and isinstance(raw[0], dict) and "edits" in raw[0] and "kind" not in raw[0]):
        return raw, None, None
    opts = raw[0]
    unknown = sorted(set(opts) - {"edits", "composite", "size"})
    if unknown:
        raise InputError(f"preview options are edits, composite and size; unknown: {', '.join(unknown)}")
    mode = composite_mode(opts.get("composite"))
    size = opts.get("size")
    size = PREVIEW_MAX_SIZE if size in (None, "") else _num(size, "preview size", 16, PREVIEW_MAX_SIZE)
    return opts["edits"], mode, size


PROJECT_OPTIONS = ("align", "eyes", "init")


def project_options(options: Any, limits: Limits) -> dict:
    """``project_options``'s JSON object -> keyword arguments of :meth:`Backend.project`."""
    text = limits.text(options, "options")
    if not text:
        return {}
    try:
        opts = json.loads(text)
    except ValueError:
        raise InputError(f"options must be a JSON object such as {{\"align\": false}}, got {text[:60]!r}") from None
    if not isinstance(opts, dict):
        raise InputError(f"options must be a JSON object such as {{\"align\": false}}, got a {type(opts).__name__}")
    unknown = sorted(set(opts) - set(PROJECT_OPTIONS))
    if unknown:
        raise InputError(f"projection options are {', '.join(PROJECT_OPTIONS)}; unknown: {', '.join(map(str, unknown))[:80]}")
    return dict(opts)


def _box_dict(box) -> dict:
    """A layer box ``(x, y, w, h)`` as the API's ``{"x", "y", "w", "h"}``."""
    x, y, w, h = (int(v) for v in box)
    return {"x": x, "y": y, "w": w, "h": h}


def render(session, state, adapt: bool, progress=None, cancel=None, composite: str = "detail"):
    """``session.render`` through G′ (``adapt``) or G, composited in ``composite`` mode."""
    return session.render(state, adapt=bool(adapt), progress=progress, cancel=cancel, composite=composite)


class Backend:
    """Endpoint functions bound to one session store, job registry and default model."""

    def __init__(self, model: Optional[str] = None, store: Optional[SessionStore] = None,
                 jobs: Optional[JobRegistry] = None, default_steps: int = 300, max_steps: Optional[int] = None,
                 device=None, limits: Optional[Limits] = None):
        self.model = model or None
        self.limits = limits or Limits()
        if max_steps is not None:
            self.limits.max_steps = int(max_steps)
        # `is None`, not `or`: an empty store has a length of 0 and is falsy
        self.store = store if store is not None else SessionStore()
        self.jobs = jobs if jobs is not None else JobRegistry()
        self.default_steps = int(default_steps)
        self.max_steps = self.limits.max_steps
        self.device = device

    def warm_up(self) -> dict:
        """Load the default model and its encoder and run a 2-step projection of a blank
        image, so that the first request pays neither for reading weights nor for torch's
        first-call costs (its first optimiser imports the compiler stack, ~1.5 s on a 2-core
        CPU; the first convolutions build their kernels).  A model whose weights are not on
        this machine is left alone (nothing is downloaded).  Returns what was done."""
        from ..errors import ModelError
        from ..models.registry import load_generator
        from ..projection.project import ProjectionConfig, project

        t0 = time.perf_counter()
        try:
            gen = load_generator(self.model, device=self.device)
        except ModelError as e:
            return {"model": self.model, "skipped": str(e).splitlines()[0]}
        import torch
        blank = torch.zeros(1, 3, gen.resolution, gen.resolution, device=gen.device)
        p = project(gen, blank, config=ProjectionConfig(steps=2, seed=0))
        return {"model": getattr(gen, "model_id", None), "device": str(gen.device), "init": p.init,
                "seconds": round(time.perf_counter() - t0, 3)}

    # -- models ------------------------------------------------------------------------
    def models(self) -> str:
        from ..models.listing import list_models
        return json.dumps(list_models(kind="generator", default=self.model))

    def download(self, model: str = ""):
        """Generator: download (and verify) a manifest model's weights; status updates with
        ``bytes_done`` / ``bytes_total``, then the final status (``path``, ``bytes``,
        ``already_present``).  The name is only looked up in the manifest."""
        import queue
        import threading

        from ..models.download import download_entry
        from ..models.manifest import load_manifest

        model_id = (model or "").strip()
        entries = load_manifest()
        if model_id not in entries:
            raise InputError(f"unknown model {model_id!r}; known models: {', '.join(sorted(entries))}")
        q: "queue.Queue" = queue.Queue()

        def target():
            try:
                q.put(("result", download_entry(entries[model_id], progress=lambda d, t: q.put(("progress", d, t)))))
            except BaseException as e:  # handed to the consumer
                q.put(("error", e))

        threading.Thread(target=target, name=f"priorpaint-download-{model_id}", daemon=True).start()
        status = {"done": False, "stage": "download", "fraction": 0.0, "model": model_id,
                  "bytes_done": 0, "bytes_total": None}
        yield _json(status)
        last = time.monotonic()
        while True:
            try:
                item = q.get(timeout=1.0)
            except queue.Empty:
                yield _json(status)  # a heartbeat: a closed client is noticed
                continue
            if item[0] == "error":
                raise item[1]
            if item[0] == "result":
                r = item[1]
                yield _json({"done": True, "stage": "done", "fraction": 1.0, "model": model_id, "present": True,
                             "file": Path(r.path).name, "bytes": r.bytes, "already_present": r.already_present})
                return
            status["bytes_done"], status["bytes_total"] = item[1], item[2]
            status["fraction"] = min(1.0, item[1] / item[2]) if item[2] else 0.0
            if time.monotonic() - last >= 0.2:
                last = time.monotonic()
                yield _json(status)

    def model_choices(self) -> List[tuple]:
        rows = json.loads(self.models())
        return [(f"{r['id']} ({r['resolution']}px" + (f" {r['domain']}" if r.get("domain") else "")
                 + ("" if r["present"] else ", not downloaded") + ")", r["id"]) for r in rows]

    def _model(self, model: Optional[str]) -> Optional[str]:
        """The model id of a request: one of the manifest's ids (a name never becomes a path)."""
        m = self.limits.text(model, "model")
        if not m:
            return self.model
        from ..models.manifest import get_entry
        get_entry(m)  # unknown ids are refused, listing the known ones
        return m

    def _session(self, session, client: str = ""):
        sid = self.limits.text(session, "session")
        s = self.store.get(sid)
        return s

    # -- project -----------------------------------------------------------------------
    def project(self, image, mask=None, box: str = "", model: str = "", steps=None, seed=0, adapt=False,
                align=True, eyes: str = "", init: str = "auto", request: gr.Request = None):
        """Generator: status updates, then (status, crop, reconstruction, adapted).

        ``align``: a face model whose manifest declares an alignment gets the rotated, scaled
        square its training data framed (at ``eyes`` ``"X1,Y1,X2,Y2"``, the eye centres in
        image pixels, else at the detected eyes); false: the plain box.  The status's
        ``layer`` is where every layer of the session goes, ``alignment`` the rotated square.
        ``init``: "auto" (the model's encoder when it has one matching its weights, else the
        multi-start search), "encoder" (hybrid) or "search"; the Gradio endpoint uses "auto"."""
        from ..compositing.align import parse_eyes
        from ..compositing.crop import parse_box
        from ..projection.project import ProjectionConfig
        from ..session import EditSession

        L = self.limits
        client = client_key(request)
        path = file_path(image, "image")
        mask_path = file_path(mask, "mask", required=False)
        box_text = L.text(box, "box")
        if bool(mask_path) == bool(box_text):
            raise InputError("give exactly one of a mask or a box (\"X,Y,W,H\") for the selection")
        box_t = parse_box(box_text) if box_text else None
        if box_t is not None and any(abs(v) > 10 ** 6 for v in box_t):
            raise InputError(f"box {box_text!r} is far outside any image (values must be under 1000000)")
        steps = self.default_steps if steps is None or steps == "" else L.steps(steps)
        seed = _num(seed if seed not in (None, "") else 0, "seed", 0, 2 ** 31 - 1)
        model_id = self._model(model)
        explicit = bool(L.text(model, "model"))
        L.image_pixels(path, "image")
        L.image_pixels(mask_path, "mask")
        adapt = _flag(adapt, "adapt")
        align = True if align in (None, "") else _flag(align, "align")
        eyes_text = L.text(eyes, "eyes")
        eyes_t = parse_eyes(eyes_text) if eyes_text else None
        init = L.text(init, "init") or "auto"
        if init not in ("auto", "encoder", "search"):
            raise InputError(f"init must be auto, encoder or search, got {init!r}")
        L.project_work(path, adapt)  # issue 28: refused before any work when over --max-work-mb

        job = self.jobs.new("project", client=client)

        def work(progress, cancel):
            t0 = time.perf_counter()
            s = EditSession.open(path, box=box_t, mask=mask_path, model=model_id, device=self.device,
                                 allow_download=explicit, align=align, eyes=eyes_t)
            job.session_id = None  # the id is handed out only with the result
            proj = s.project(ProjectionConfig(steps=steps, seed=seed, init=init), progress, cancel)
            from ..compositing.blend import to_uint8
            recon = to_uint8(s.generate())
            adapted, psnr_adapted, notes = None, None, []
            if adapt:
                r = render(s, None, True, progress, cancel)
                adapted = r.generated
                psnr_adapted = r.metrics.get("psnr_adapted")
                notes = [n for n in r.metrics.get("notes", []) if n not in s.crop.notes]
            crop = np.asarray(Image.fromarray(s.crop.region, "RGB").resize(
                (s.gen.resolution, s.gen.resolution), Image.LANCZOS, reducing_gap=None))
            seconds = dict(s.seconds)
            seconds.update({k: v for k, v in proj.seconds.items()})
            seconds["total"] = time.perf_counter() - t0
            return s, proj, crop, recon, adapted, psnr_adapted, notes, seconds

        for item in run_job(self.jobs, job, work):
            if "result" not in item:
                yield _json(item), None, None, None
                continue
            s, proj, crop, recon, adapted, psnr_adapted, notes, seconds = item["result"]
            s.vector_namespace = namespace_of(client)
            sid = self.store.put(s, client)
            status = {
                "done": True, "stage": "done", "fraction": 1.0, "job": job.id,
                "session": sid, "model": s.model_id, "psnr_z": proj.psnr_z,
                "psnr_projection": proj.psnr, "psnr_adapted": psnr_adapted,
                "box": list(s.crop.box), "square": list(s.crop.square), "layer": _box_dict(s.crop.layer_box),
                "alignment": s.crop.alignment.report() if s.crop.alignment is not None else None,
                "resolution": s.gen.resolution, "steps": steps,
                "perceptual_loss": proj.perceptual_used,
                "projection_init": proj.init, "encoder": proj.encoder, "psnr_encoder": proj.psnr_encoder,
                "notes": list(s.crop.notes) + list(proj.notes) + notes, "seconds": seconds,
            }
            yield (_json(_clean(status)), _rgb_image(crop), _rgb_image(recon),
                   None if adapted is None else _rgb_image(adapted))

    def project_options(self, image, mask=None, box: str = "", model: str = "", steps=None, seed=0, adapt=False,
                        options: str = "", request: gr.Request = None):
        """``project`` with an options object (JSON): ``{"align": true|false, "eyes": "X1,Y1,X2,Y2",
        "init": "auto"|"encoder"|"search"}``, every key optional (``project`` itself keeps its
        seven inputs for the clients that send seven)."""
        opts = project_options(options, self.limits)
        yield from self.project(image, mask, box, model, steps, seed, adapt, request=request, **opts)

    # -- edit --------------------------------------------------------------------------
    def edit(self, session: str, edits: str = "[]", adapt: bool = False, files=None, composite: str = "detail",
             request: gr.Request = None):
        """Generator: status updates, then (status, result, layer, preview)."""
        mode = composite_mode(composite)
        specs = parse_edit_list(edits, files or [], self.limits)  # refuse a bad spec before any work
        s = self._session(session)
        s.require_projection()
        adapt = _flag(adapt, "adapt")
        self.limits.render_work(s)  # issue 28: refused before any work when over --max-work-mb
        job = self.jobs.new("edit", s.id, client=client_key(request))

        def work(progress, cancel):
            t0 = time.perf_counter()
            state = s.apply(specs, progress, cancel) if specs else None
            r = render(s, state, adapt, progress, cancel, composite=mode)
            seconds = {"edit": sum(float(a.get("seconds", 0.0)) for a in (state.applied if state else []))}
            seconds["render"] = time.perf_counter() - t0 - seconds["edit"]
            seconds["total"] = time.perf_counter() - t0
            return r, seconds

        for item in run_job(self.jobs, job, work):
            if "result" not in item:
                yield _json(item), None, None, None
                continue
            r, seconds = item["result"]
            self.store.touch(s)
            status = {"done": True, "stage": "done", "fraction": 1.0, "job": job.id, "session": s.id}
            status.update(r.metrics)
            status["layer"] = _box_dict(r.layer_box)
            status["seconds"] = seconds
            status["adapt"] = bool(adapt)
            status = refs_for_paths(status, files)  # issue 28: no server path in a response
            yield (_json(_clean(status)), s_photo_image(r.photo), _rgb_image(r.layer),
                   _rgb_image(r.generated))

    # -- preview -----------------------------------------------------------------------
    def preview(self, session: str, edits: str = "[]", files=None) -> Image.Image:
        from ..compositing.blend import to_uint8

        s = self._session(session)
        s.require_projection()
        edits, mode, size = preview_options(edits, self.limits)
        specs = parse_edit_list(edits, files or [], self.limits)
        slow = [sp["kind"] for sp in specs if sp["kind"] in ("scribble", "segment", "interpolate")]
        if slow:
            raise InputError(f"preview runs only the fast edits (direction, paint, vector); send "
                             f"{', '.join(sorted(set(slow)))} edits to the edit endpoint")
        state = s.apply(specs) if specs else None
        if mode:
            return _rgb_image(s.preview_layer(state, mode, size))
        return _rgb_image(to_uint8(s.generate(state)))

    # -- cancel ------------------------------------------------------------------------
    def cancel(self, ident: str, request: gr.Request = None) -> str:
        ident = self.limits.text(ident, "id")
        if not ident:
            raise InputError("cancel needs a job id or a session id")
        # over the API only the caller's own jobs; the UI's own stop button (no request) its session's
        hit = self.jobs.cancel(ident, "cancelled by the client", client=client_key(request) if request else None)
        return json.dumps({"cancelled": bool(hit), "id": ident, "jobs": hit})

    # -- per-kind listings ---------------------------------------------------------------
    def directions(self, model: str = "") -> str:
        return json.dumps(_clean(kinds.list_directions(self._model(model), self.device)))

    def concepts(self, model: str = "", request: gr.Request = None) -> str:
        return json.dumps(_clean(kinds.list_concepts(self._model(model), self.device,
                                                     namespace=namespace_of(client_key(request)))))

    def segment(self, session: str, request: gr.Request = None):
        """Generator: status updates, then (status with legend, label map PNG at the layer box size)."""
        s = self._session(session)
        s.require_projection()
        job = self.jobs.new("segment", s.id, client=client_key(request))

        def work(progress, cancel):
            return kinds.segment(s, progress, cancel)

        for item in run_job(self.jobs, job, work):
            if "result" not in item:
                yield _json(item), None
                continue
            labels, legend, extra = item["result"]
            status = {"done": True, "stage": "done", "fraction": 1.0, "job": job.id, "session": s.id,
                      "legend": legend}
            status.update(extra)
            yield _json(_clean(status)), _rgb_image(labels)

    def stats(self) -> dict:
        return {"store": self.store.stats(), "jobs_running": len(self.jobs.running()),
                "jobs_started": self.jobs.started, "jobs_cancelled": self.jobs.cancelled,
                "slots": self.jobs.slots}


def _flag(value, what: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", ""):
        return value.strip().lower() in ("true", "1")
    raise InputError(f"{what} must be true or false, got a {type(value).__name__}")


def s_photo_image(photo) -> Image.Image:
    return photo.to_pil()
