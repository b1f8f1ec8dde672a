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
import time
from pathlib import Path
from typing import Any, List, Optional, Sequence

import numpy as np
from PIL import Image

import gradio as gr

from ..errors import InputError, PriorpaintError
from .sessions import JobRegistry, SessionStore, run_job
from . import kinds

log = logging.getLogger(__name__)

MAX_STEPS = 5000


@contextlib.contextmanager
def _as_gr_errors(name: str):
    try:
        yield
    except PriorpaintError as e:
        raise gr.Error(str(e), print_exception=False) from None
    except gr.Error:
        raise
    except Exception as e:
        log.exception("internal error in %s", name)
        raise gr.Error(f"internal error in {name}: {type(e).__name__}: {_first_line(e)}") from None


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
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < lo or v > hi:
        raise InputError(f"{what} must be between {lo:g} and {hi:g}, got {value!r}")
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
            if isinstance(v, str) and v.startswith("file:"):
                ref = v[5:]
                if not ref.isdigit() or int(ref) >= len(paths):
                    raise InputError(f"edit {spec.get('kind')!r}: {k} refers to {v!r} but "
                                     f"{len(paths)} file(s) were sent with the edits")
                spec[k] = paths[int(ref)]
        out.append(spec)
    return out


def parse_edit_list(edits: Any, files: Sequence = ()) -> List[dict]:
    """Edit specs from the API's JSON string (or a list), with file references resolved."""
    from ..edits.registry import parse_specs

    if edits is None or (isinstance(edits, str) and not edits.strip()):
        return []
    if isinstance(edits, str):
        text = edits.strip()
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"edits must be a JSON list of edit specs: {e}") from None
    else:
        raw = edits
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        raise InputError(f"edits must be a JSON list of edit specs, got {type(raw).__name__}")
    return resolve_files(parse_specs(raw), files)


def render(session, state, adapt: bool, progress=None, cancel=None):
    """``session.render`` through G′ (``adapt``) or G."""
    return session.render(state, adapt=bool(adapt), progress=progress, cancel=cancel)


class Backend:
    """Endpoint functions bound to one session store, job registry and default model."""

    def __init__(self, model: Optional[str] = None, store: Optional[SessionStore] = None,
                 jobs: Optional[JobRegistry] = None, default_steps: int = 300, max_steps: int = MAX_STEPS,
                 device=None):
        self.model = model or None
        self.store = store or SessionStore()
        self.jobs = jobs or JobRegistry()
        self.default_steps = int(default_steps)
        self.max_steps = int(max_steps)
        self.device = device

    # -- models ------------------------------------------------------------------------
    def models(self) -> str:
        from ..models.listing import list_models
        return json.dumps(list_models(kind="generator", default=self.model))

    def model_choices(self) -> List[tuple]:
        rows = json.loads(self.models())
        return [(f"{r['id']} ({r['resolution']}px {r['domain']}" + ("" if r["present"] else ", downloads on first use") + ")",
                 r["id"]) for r in rows]

    def _model(self, model: Optional[str]) -> Optional[str]:
        m = (model or "").strip()
        return m or self.model

    # -- project -----------------------------------------------------------------------
    def project(self, image, mask=None, box: str = "", model: str = "", steps=None, seed=0, adapt=False,
                init: str = "auto"):
        """Generator: status updates, then (status, crop, reconstruction, adapted).

        ``init``: "auto" (the model's encoder when it has one matching its weights, else the
        multi-start search), "encoder" (hybrid) or "search"; the Gradio endpoint uses "auto"."""
        from ..compositing.crop import parse_box
        from ..projection.project import ProjectionConfig
        from ..session import EditSession

        path = file_path(image, "image")
        mask_path = file_path(mask, "mask", required=False)
        box_text = (box or "").strip()
        if bool(mask_path) == bool(box_text):
            raise InputError("give exactly one of a mask or a box (\"X,Y,W,H\") for the selection")
        box_t = parse_box(box_text) if box_text else None
        steps = self.default_steps if steps is None or steps == "" else _num(steps, "steps", 0, self.max_steps)
        seed = _num(seed if seed not in (None, "") else 0, "seed", 0, 2 ** 31 - 1)
        model_id = self._model(model)
        explicit = bool((model or "").strip())
        init = (init or "auto").strip()
        if init not in ("auto", "encoder", "search"):
            raise InputError(f"init must be auto, encoder or search, got {init!r}")

        job = self.jobs.new("project")

        def work(progress, cancel):
            t0 = time.perf_counter()
            s = EditSession.open(path, box=box_t, mask=mask_path, model=model_id, device=self.device,
                                 allow_download=explicit)
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
            sid = self.store.put(s)
            status = {
                "done": True, "stage": "done", "fraction": 1.0, "job": job.id,
                "session": sid, "model": s.model_id, "psnr_z": proj.psnr_z,
                "psnr_projection": proj.psnr, "psnr_adapted": psnr_adapted,
                "box": list(s.crop.box), "square": list(s.crop.square),
                "resolution": s.gen.resolution, "steps": steps,
                "perceptual_loss": proj.perceptual_used,
                "projection_init": proj.init, "encoder": proj.encoder, "psnr_encoder": proj.psnr_encoder,
                "notes": list(s.crop.notes) + list(proj.notes) + notes, "seconds": seconds,
            }
            yield (_json(_clean(status)), _rgb_image(crop), _rgb_image(recon),
                   None if adapted is None else _rgb_image(adapted))

    # -- edit --------------------------------------------------------------------------
    def edit(self, session: str, edits: str = "[]", adapt: bool = False, files=None):
        """Generator: status updates, then (status, result, layer, preview)."""
        s = self.store.get(session)
        s.require_projection()
        specs = parse_edit_list(edits, files or [])  # refuse a bad spec before any work
        job = self.jobs.new("edit", s.id)

        def work(progress, cancel):
            t0 = time.perf_counter()
            state = s.apply(specs, progress, cancel) if specs else None
            r = render(s, state, adapt, progress, cancel)
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
            x, y, w, h = (int(v) for v in r.layer_box)
            status = {"done": True, "stage": "done", "fraction": 1.0, "job": job.id, "session": s.id}
            status.update(r.metrics)
            status["layer"] = {"x": x, "y": y, "w": w, "h": h}
            status["seconds"] = seconds
            status["adapt"] = bool(adapt)
            yield (_json(_clean(status)), s_photo_image(r.photo), _rgb_image(r.layer),
                   _rgb_image(r.generated))

    # -- preview -----------------------------------------------------------------------
    def preview(self, session: str, edits: str = "[]", files=None) -> Image.Image:
        from ..compositing.blend import to_uint8

        s = self.store.get(session)
        s.require_projection()
        specs = parse_edit_list(edits, files or [])
        state = s.apply(specs) if specs else None
        return _rgb_image(to_uint8(s.generate(state)))

    # -- cancel ------------------------------------------------------------------------
    def cancel(self, ident: str) -> str:
        ident = (ident or "").strip()
        if not ident:
            raise InputError("cancel needs a job id or a session id")
        hit = self.jobs.cancel(ident, "cancelled by the client")
        return json.dumps({"cancelled": bool(hit), "id": ident, "jobs": hit})

    # -- per-kind listings ---------------------------------------------------------------
    def directions(self, model: str = "") -> str:
        return json.dumps(_clean(kinds.list_directions(self._model(model), self.device)))

    def concepts(self, model: str = "") -> str:
        return json.dumps(_clean(kinds.list_concepts(self._model(model), self.device)))

    def segment(self, session: str):
        """Generator: status updates, then (status with legend, label map PNG at the layer box size)."""
        s = self.store.get(session)
        s.require_projection()
        job = self.jobs.new("segment", s.id)

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


def s_photo_image(photo) -> Image.Image:
    return photo.to_pil()
