"""A live preview for a dialog: project once in the background, then render previews on demand.

The dialog (GIMP's main loop) must never wait on the network. :class:`PreviewWorker`
runs in one background thread: it projects the crop (the slow part, seconds), then
answers preview requests with the backend's ``preview`` endpoint: with ``composite`` the
selection's square composited at the photo's resolution as the edit will be (``detail``
keeps the photo's own detail), shrunk by the backend to ``size`` px; without it (or from
an older backend) ``G_F`` of the edited latent at model resolution. A fraction of a second
on the embedded model. Requests
made while a preview is being computed are coalesced: only the newest one is rendered
next, so dragging a slider never queues up stale previews.

Callbacks run in the worker thread; a GTK dialog hands them to its main loop (e.g. with
``GLib.idle_add``). The projection is kept so that OK can edit the same session instead
of projecting again. Standard library only.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Callable, List, Optional, Tuple

from . import ops, png
from .verdict import supports_verdict, verdict, verdict_message
from .client import BridgeError, Cancelled, Client


class PreviewWorker:
    """``start()``, then ``request(key, edits)`` as the controls change; ``close()`` when done.

    - ``on_progress(fraction, text)`` while projecting,
    - ``on_ready(projection)`` once projected,
    - ``on_image(key, image, seconds)`` for every preview shown (``seconds``: from the
      request to the image),
    - ``on_approximate(key, image, flag)`` for an approximate frame a slow model's backend sends
      before the exact one (``flag["method"]``: how it was predicted); ``on_image`` follows,
    - ``on_error(message)`` once, when projecting or a preview fails (a failed preview
      stops the worker; the dialog can still run the edit),
    - ``on_verdict(key, message)`` after each preview, from a backend with the ``verdict``
      endpoint: ``message`` is the one line saying the edit is not carried, or None (carried,
      unknown, or the backend refused this kind); an older backend sends none.
    """

    def __init__(self, client: Client, crop: ops.Crop, model: str = "",
                 on_progress: Optional[Callable[[float, str], None]] = None,
                 on_ready: Optional[Callable[[ops.Projection], None]] = None,
                 on_image: Optional[Callable[[object, png.Image, float], None]] = None,
                 on_error: Optional[Callable[[str], None]] = None,
                 on_job: Optional[Callable[[str], None]] = None,
                 on_verdict: Optional[Callable[[object, Optional[str]], None]] = None,
                 composite: Optional[str] = None, size: Optional[int] = None,
                 on_approximate: Optional[Callable[[object, png.Image, dict], None]] = None):
        self.client = client
        self.on_approximate = on_approximate
        self.composite = composite
        self.size = size
        self.crop = crop
        self.model = model
        self.on_progress = on_progress
        self.on_ready = on_ready
        self.on_image = on_image
        self.on_error = on_error
        self.on_job = on_job
        self.on_verdict = on_verdict
        self.verdicts: List[Tuple[object, Optional[str]]] = []   # (key, message) of every verdict delivered
        self.projection: Optional[ops.Projection] = None
        self.job: Optional[str] = None                   # the backend's id of the projection job
        self.error: Optional[str] = None
        self.shown: List[Tuple[object, float]] = []      # (key, seconds) of every preview delivered
        self._cond = threading.Condition()
        self._wanted: Optional[Tuple[object, list, float]] = None
        self._closed = False
        self._done = threading.Event()                   # projection finished (or failed / cancelled)
        self._thread = threading.Thread(target=self._run, name="priorpaint-preview", daemon=True)

    # -- the dialog's side -----------------------------------------------------------------
    def start(self) -> "PreviewWorker":
        self._thread.start()
        return self

    def request(self, key: object, edits: list) -> None:
        """Ask for the preview of ``edits``; supersedes any request not yet started."""
        with self._cond:
            self._wanted = (key, list(edits), time.monotonic())
            self._cond.notify_all()

    def close(self) -> None:
        """Stop: a running projection is cancelled on the backend, no more previews are made."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def abandon(self) -> None:
        """Close, and cancel a projection still running on the backend right away (the caller
        may exit before the worker thread sees the close)."""
        self.close()
        if not self._done.is_set() and self.job:
            try:
                self.client.cancel(self.job)
            except BridgeError:
                pass

    def wait_projection(self, timeout: Optional[float] = None) -> Optional[ops.Projection]:
        """Block until the projection is done; the projection, or None (failed / cancelled / timeout)."""
        self._done.wait(timeout)
        return self.projection

    def join(self, timeout: Optional[float] = None) -> None:
        self._thread.join(timeout)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- the worker thread -------------------------------------------------------------------
    def _fail(self, message: str) -> None:
        self.error = message
        if self.on_error is not None:
            self.on_error(message)

    def _job(self, job: str) -> None:
        self.job = job
        if self.on_job is not None:
            self.on_job(job)

    def _run(self) -> None:
        progress = ops.Progress(self.on_progress, [("Fitting the selection to the model", 1.0)]).stage(0)
        try:
            self.projection = ops.project(self.client, self.crop, model=self.model, adapt=False,
                                          on_progress=progress, on_job=self._job,
                                          should_cancel=lambda: self._closed, fetch_images=False)
        except Cancelled:
            return
        except BridgeError as exc:
            self._fail(str(exc))
            return
        finally:
            self._done.set()
        projected_at = time.monotonic()
        if self.on_ready is not None:
            self.on_ready(self.projection)
        while True:
            with self._cond:
                while self._wanted is None and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                key, edits, asked = self._wanted
                self._wanted = None
            try:
                image = ops.preview(self.client, self.projection, edits, composite=self.composite,
                                    size=self.size, on_outputs=self._approximate(key))
            except BridgeError as exc:
                if not self._closed:
                    self._fail(str(exc))
                return
            seconds = time.monotonic() - max(asked, projected_at)   # a request made while fitting waited for it
            self.shown.append((key, seconds))
            if self.on_image is not None and not self._closed:
                self.on_image(key, image, seconds)
            self._verdict(key, edits)

    def _approximate(self, key: object):
        if self.on_approximate is None:
            return None

        def frame(outputs: list) -> None:      # the preview's earlier yields: [image, flag JSON]
            if self._closed or len(outputs) < 2 or not outputs[0] or not isinstance(outputs[1], str):
                return
            try:
                flag = json.loads(outputs[1])
            except ValueError:
                return
            if isinstance(flag, dict) and flag.get("approximate"):
                image = png.decode(self.client.download(outputs[0])).to_rgb()
                self.on_approximate(key, image, flag)
        return frame

    def _verdict(self, key: object, edits: list) -> None:
        """Ask whether the previewed edits are carried; a refusal or failure says nothing
        (the verdict is advice: it never stops the previews)."""
        if self.on_verdict is None or self._closed or not supports_verdict(self.client):
            return                                        # an older backend: nothing to show, ever
        with self._cond:
            if self._wanted is not None:
                return                                    # a newer preview waits: judge that one instead
        try:
            answer = verdict(self.client, self.projection.session, edits, composite=self.composite,
                             size=self.size, should_cancel=lambda: self._closed)
        except Cancelled:
            return
        except BridgeError:
            answer = None
        message = verdict_message(answer)
        self.verdicts.append((key, message))
        if not self._closed:
            self.on_verdict(key, message)
