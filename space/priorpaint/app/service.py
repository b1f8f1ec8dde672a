"""The app's service: sessions and jobs behind typed calls, knowing nothing of Gradio.

:class:`Service` owns the session store (:class:`~priorpaint.app.sessions.SessionStore`),
the job registry (:class:`~priorpaint.app.sessions.JobRegistry`) and the bounds
(:class:`~priorpaint.app.limits.Limits`).  It takes the requests of
:mod:`priorpaint.app.contract` and a *client key* (who asks: the endpoints derive it from the
Gradio request), and its long calls (``project``, ``edit``, ``segment``, ``download``) are
generators yielding :class:`~priorpaint.app.contract.Progress` while the engine runs in a
worker thread (:func:`~priorpaint.app.sessions.run_job`), then one typed result.  The web page
(:mod:`priorpaint.app.ui`) and the API endpoints (:mod:`priorpaint.app.endpoints`) both call
it; neither reaches behind it.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Iterator, List, Optional, Union

import numpy as np
from PIL import Image

from ..errors import InputError
from ..projection.project import SERVED_STEPS
from . import kinds
from .contract import (Box, CancelResult, DownloadResult, EditRequest, EditResult, PreviewRequest, Progress,
                       ProjectRequest, ProjectResult, SegmentResult, clean)
from .verdict import VerdictRequest
from .limits import Limits
from .runner import run_job
from .sessions import JobRegistry, SessionStore


def namespace_of(client: str) -> str:
    """The client's own editing-vector namespace (16 hex digits)."""
    from ..store import client_namespace
    return client_namespace(client)


#: what of a stage's progress report reaches the clients, as it is: a drag's step, its handles'
#: current photo positions, their targets and the distances left (the live preview draws them)
LIVE_KEYS = ("step", "handles", "targets", "distance_px")
#: a job that reports live positions is streamed at most this often (seconds; 10 a second): the
#: page and GIMP redraw the points from these; other jobs keep :func:`run_job`'s default
LIVE_INTERVAL = 0.1


def _progress(status: dict) -> Progress:
    extra = {k: v for k, v in status.items() if k not in ("done", "stage", "fraction", "job")}
    return Progress(stage=status.get("stage", ""), fraction=float(status.get("fraction", 0.0)),
                    job=status.get("job"), extra=extra)


class Service:
    """Typed calls over one session store, job registry and default model."""

    def __init__(self, model: Optional[str] = None, store: Optional[SessionStore] = None,
                 jobs: Optional[JobRegistry] = None, default_steps: int = SERVED_STEPS,
                 max_steps: Optional[int] = None, device=None, limits: Optional[Limits] = None):
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

    # -- models ------------------------------------------------------------------------------
    def warm_up(self) -> dict:
        """Load the default model and its encoder and run a 2-step projection of a blank
        image, so that the first request pays neither for reading weights nor for torch's
        first-call costs (its first optimiser imports the compiler stack; the first
        convolutions build their kernels).  A model whose weights are not on this machine is
        left alone (nothing is downloaded).  Returns what was done."""
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

    def models(self) -> List[dict]:
        from ..models.listing import list_models
        return list_models(kind="generator", default=self.model)

    def model_row(self, model_id: Optional[str]) -> Optional[dict]:
        """The listing row of one model (None when it is not listed)."""
        return next((r for r in self.models() if r.get("id") == model_id), None)

    def model_choices(self) -> List[tuple]:
        return [(f"{r['id']} ({r['resolution']}px" + (f" {r['domain']}" if r.get("domain") else "")
                 + ("" if r["present"] else ", not downloaded") + ")", r["id"]) for r in self.models()]

    def download(self, model: str) -> Iterator[Union[Progress, DownloadResult]]:
        """Download (and verify) a manifest model's weights; progress with ``bytes_done`` /
        ``bytes_total``.  The name is only looked up in the manifest."""
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
        step = Progress(stage="download", fraction=0.0,
                        extra={"model": model_id, "bytes_done": 0, "bytes_total": None})
        yield step
        last = time.monotonic()
        while True:
            try:
                item = q.get(timeout=1.0)
            except queue.Empty:
                yield step  # a heartbeat: a closed client is noticed
                continue
            if item[0] == "error":
                raise item[1]
            if item[0] == "result":
                r = item[1]
                yield DownloadResult(model=model_id, path=str(r.path), bytes=int(r.bytes),
                                     already_present=bool(r.already_present))
                return
            step.extra["bytes_done"], step.extra["bytes_total"] = item[1], item[2]
            step.fraction = min(1.0, item[1] / item[2]) if item[2] else 0.0
            if time.monotonic() - last >= 0.2:
                last = time.monotonic()
                yield step

    def model_id(self, model: Optional[str]) -> Optional[str]:
        """The model id of a request: one of the manifest's ids (a name never becomes a path)."""
        m = self.limits.text(model, "model")
        if not m:
            return self.model
        from ..models.manifest import get_entry
        get_entry(m)  # unknown ids are refused, listing the known ones
        return m

    def session(self, sid: str, client: Optional[str] = None):
        """A projected session of the store (a clear error when it is gone or not projected);
        with a ``client``, only that client's own (another's is 'unknown or expired')."""
        s = self.store.get(self.limits.text(sid, "session"), client)
        s.require_projection()
        return s

    def holds(self, sid: str, client: Optional[str] = None) -> bool:
        """Whether the store still holds the projected session ``sid`` (a reloaded page resumes it);
        with ``client``, whether it is that client's own."""
        try:
            self.session(sid, client)
        except InputError:
            return False
        return True

    # -- project -----------------------------------------------------------------------------
    def project(self, req: ProjectRequest, client: str = "") -> Iterator[Union[Progress, ProjectResult]]:
        """Open a session on the photo's selection and project it (``adapt``: also fit G′)."""
        from ..compositing.blend import to_uint8
        from ..projection.project import ProjectionConfig
        from ..session import EditSession

        steps = self.default_steps if req.steps is None else req.steps
        model_id = self.model_id(req.model)
        explicit = bool(req.model)
        self.limits.image_pixels(req.image, "image")
        self.limits.image_pixels(req.mask, "mask")
        self.limits.project_work(req.image, req.adapt)   # refused before any work over --max-work-mb
        job = self.jobs.new("project", client=client)

        def work(progress, cancel):
            t0 = time.perf_counter()
            s = EditSession.open(req.image, box=req.box, mask=req.mask, model=model_id, device=self.device,
                                 allow_download=explicit, align=req.align, eyes=req.eyes)
            job.session_id = None  # the id is handed out only with the result
            proj = s.project(ProjectionConfig(steps=steps, seed=req.seed, init=req.init.value), progress, cancel)
            recon = to_uint8(s.generate())
            adapted, psnr_adapted, notes = None, None, []
            if req.adapt:
                r = s.render(None, adapt=True, progress=progress, cancel=cancel)
                adapted = r.generated
                psnr_adapted = r.metrics.get("psnr_adapted")
                notes = [n for n in r.metrics.get("notes", []) if n not in s.crop.notes]
            crop = np.asarray(Image.fromarray(s.crop.region, "RGB").resize(
                (s.gen.resolution, s.gen.resolution), Image.LANCZOS, reducing_gap=None))
            seconds = dict(s.seconds)
            seconds.update(proj.seconds)
            seconds["total"] = time.perf_counter() - t0
            return s, proj, crop, recon, adapted, psnr_adapted, notes, seconds

        for item in run_job(self.jobs, job, work):
            if "result" not in item:
                yield _progress(item)
                continue
            s, proj, crop, recon, adapted, psnr_adapted, notes, seconds = item["result"]
            s.vector_namespace = namespace_of(client)
            sid = self.store.put(s, client)
            report = {
                "psnr_z": proj.psnr_z, "psnr_projection": proj.psnr, "psnr_adapted": psnr_adapted,
                "box": list(s.crop.box), "square": list(s.crop.square),
                "alignment": s.crop.alignment.report() if s.crop.alignment is not None else None,
                "resolution": s.gen.resolution, "steps": steps, "perceptual_loss": proj.perceptual_used,
                "projection_init": proj.init, "encoder": proj.encoder, "psnr_encoder": proj.psnr_encoder,
                "notes": list(s.crop.notes) + list(proj.notes) + notes, "seconds": seconds,
            }
            yield ProjectResult(job=job.id, session=sid, model=s.model_id, layer=Box.of(s.crop.layer_box),
                                report=clean(report), crop=crop, reconstruction=np.asarray(recon),
                                adapted=None if adapted is None else np.asarray(adapted))

    # -- edit --------------------------------------------------------------------------------
    def edit(self, req: EditRequest, client: str = "") -> Iterator[Union[Progress, EditResult]]:
        """Apply the edits in order and render them into the photo (``adapt``: through G′)."""
        s = self.session(req.session, client)
        specs = list(req.edits)
        self.limits.render_work(s)   # refused before any work over --max-work-mb
        job = self.jobs.new("edit", s.id, client=client)
        options = req.method.value if req.method is not None else None

        def work(progress, cancel):
            t0 = time.perf_counter()
            state = s.apply(specs, progress, cancel) if specs else None
            r = s.render(state, adapt=req.adapt, adapt_options=options, progress=progress, cancel=cancel,
                         composite=req.composite.value)
            seconds = {"edit": sum(float(a.get("seconds", 0.0)) for a in (state.applied if state else []))}
            seconds["render"] = time.perf_counter() - t0 - seconds["edit"]
            seconds["total"] = time.perf_counter() - t0
            return r, seconds

        streamed = {"min_interval": LIVE_INTERVAL} if any(sp.get("kind") == "drag" for sp in specs) else {}
        for item in run_job(self.jobs, job, work, live_keys=LIVE_KEYS, **streamed):
            if "result" not in item:
                yield _progress(item)
                continue
            r, seconds = item["result"]
            self.store.touch(s)
            report = dict(r.metrics)   # whatever the render measured, passed through
            report["seconds"] = seconds
            yield EditResult(job=job.id, session=s.id, layer=Box.of(r.layer_box), adapt=req.adapt,
                             report=clean(report), photo=r.photo.to_pil(), layer_image=np.asarray(r.layer),
                             generated=np.asarray(r.generated))

    # -- preview -----------------------------------------------------------------------------
    def preview(self, req: PreviewRequest, slow_ok: bool = False, client: Optional[str] = None) -> np.ndarray:
        """The edits rendered at once (RGB uint8; the exact frame).  Only the kinds that declare a
        preview cost other than ``slow`` run here (``slow_ok``: the page's own preview of an
        interpolation being set, bounded like any other preview)."""
        return [image for image, _ in self.preview_frames(req, slow_ok, approximate=False, client=client)][-1]

    def preview_frames(self, req: PreviewRequest, slow_ok: bool = False, approximate: bool = True,
                       client: Optional[str] = None):
        """The preview progressively: yields ``(image, flag)``, first an approximate frame where the
        session can predict one (a slow model, the same edits previewed at other strengths;
        :meth:`EditSession.preview_frames`), then always the exact frame.  ``flag``:
        ``{"approximate": bool, "method": ..., "strength", "from"}``.  The frames the session keeps
        for its next previews count toward ``--max-session-mb``: the store measures it again after
        each exact frame (and evicts or refuses by its rule)."""
        s = self.session(req.session, client)
        specs = list(req.edits)
        if not slow_ok:
            self._fast_only(specs, "preview")
        mode = req.composite.value if req.composite is not None else None
        for image, flag in s.preview_frames(specs, mode, req.size, approximate=approximate):
            if not flag.get("approximate"):
                self.store.touch(s)
            yield np.asarray(image), flag

    def _fast_only(self, specs: List[dict], what: str) -> None:
        slow = kinds.slow_kinds()
        refused = [sp["kind"] for sp in specs if sp["kind"] in slow]
        if refused:
            fast = [k for k in kinds.edit_kinds() if k not in slow]
            raise InputError(f"{what} runs only the fast edits ({', '.join(sorted(fast))}); send "
                             f"{', '.join(sorted(set(refused)))} edits to the edit endpoint")

    def verdict(self, req: VerdictRequest, client: Optional[str] = None, slow_ok: bool = False) -> dict:
        """``{"structure", "verdict"}``: whether the edits can be carried on this photo, measured on
        the live preview's square (``verdict["carried"]`` false: ``verdict["message"]`` is the one
        line to show before the user renders).  Only the fast kinds, as :meth:`preview` (``slow_ok``:
        the page's own interpolation preview, whose other image is already projected)."""
        s = self.session(req.session, client)
        specs = list(req.edits)
        if not slow_ok:
            self._fast_only(specs, "verdict")
        state = s.apply(specs) if specs else None
        return clean(s.preview_verdict(state, req.composite.value, req.size))

    # -- cancel ------------------------------------------------------------------------------
    def cancel(self, ident: str, client: Optional[str] = None) -> CancelResult:
        """Cancel the jobs of a job or session id: with ``client`` only that client's own (the
        API's callers); without, any (the page's own stop button, in its own session)."""
        ident = self.limits.text(ident, "id")
        if not ident:
            raise InputError("cancel needs a job id or a session id")
        return CancelResult(id=ident, jobs=list(self.jobs.cancel(ident, "cancelled by the client", client=client)))

    # -- per-kind listings -------------------------------------------------------------------
    def directions(self, model: Optional[str] = "") -> List[dict]:
        return clean(kinds.list_directions(self.model_id(model), self.device))

    def concepts(self, model: Optional[str] = "", client: str = "") -> dict:
        return clean(kinds.list_concepts(self.model_id(model), self.device, namespace=namespace_of(client)))

    def segment(self, session: str, client: str = "") -> Iterator[Union[Progress, SegmentResult]]:
        """The session's part label map at the layer box size, with its legend."""
        s = self.session(session, client)
        job = self.jobs.new("segment", s.id, client=client)
        for item in run_job(self.jobs, job, lambda progress, cancel: kinds.segment(s, progress, cancel)):
            if "result" not in item:
                yield _progress(item)
                continue
            labels, legend, extra = item["result"]
            yield SegmentResult(job=job.id, session=s.id, legend=clean(legend), report=clean(extra),
                                labels=np.asarray(labels))

    def capabilities(self) -> dict:
        """What this server offers (:func:`~priorpaint.app.contract.capabilities`)."""
        from .contract import capabilities
        return capabilities(self.default_steps, self.limits.max_steps)

    def stats(self) -> dict:
        return {"store": self.store.stats(), "jobs_running": len(self.jobs.running()),
                "jobs_started": self.jobs.started, "jobs_cancelled": self.jobs.cancelled,
                "slots": self.jobs.slots}
