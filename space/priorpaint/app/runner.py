"""Running one engine job: :func:`run_job` runs its work in a worker thread and yields its
progress from a queue; when the consumer stops early (client gone, Gradio cancellation, an
exception), the job's token is cancelled in ``finally`` and the worker stops within one step
(the consumer never waits for it).  Its slot comes from the
:class:`~priorpaint.app.sessions.JobRegistry`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable, Iterator, Tuple

from ..errors import Cancelled
from ..jobs import CancelToken

log = logging.getLogger("priorpaint.app.sessions")


_DONE = object()


def run_job(jobs, job, work: Callable[[Callable, CancelToken], object],
            min_interval: float = 0.2, heartbeat: float = 1.0, live_keys: Tuple[str, ...] = ()) -> Iterator[dict]:
    """Run ``work(progress, cancel)`` of ``job`` (a :class:`~priorpaint.app.sessions.Job` of the
    registry ``jobs``) in a worker thread; yield status dicts, then the result.

    Yields ``job.status()`` dicts while the job runs (at most one per ``min_interval``
    seconds, and at least one per ``heartbeat`` seconds so a closed consumer is noticed);
    the last item yielded is ``{"result": value}``.  Errors from the work are re-raised
    here.  If the consumer stops iterating (``GeneratorExit``: the client disconnected or
    the event was cancelled), the job's token is cancelled; the consumer never waits for
    the worker (it may be closed on the server's event loop): the worker stops within one
    step and then releases its slot and leaves the registry itself.

    ``live_keys``: the keys of a stage's progress ``info`` that reach the consumer as they are,
    in the statuses of the stage that reported them (a drag's handle positions: the live
    preview draws them); other info stays in the worker.
    """
    q: "queue.Queue" = queue.Queue()

    def progress(stage: str, fraction: float, info: dict) -> None:
        q.put(("progress", stage, fraction, {k: info[k] for k in live_keys if k in (info or {})}))

    def target() -> None:
        acquired = False
        out = None
        try:
            jobs.acquire(job, lambda: q.put(("progress", "waiting for a free slot", 0.0)))
            acquired = True
            job.token.check()
            q.put(("progress", "starting", 0.0))
            from .gpu import engine_call
            out = ("result", engine_call(work, progress, job.token))
        except BaseException as e:  # handed to the consumer
            out = ("error", e)
        finally:
            if acquired:
                jobs.release(job)
            jobs.finish(job)  # the slot and the registry are clean before the consumer hears of the end
            q.put(out)
            q.put((_DONE,))

    job.thread = threading.Thread(target=target, name=f"priorpaint-{job.kind}-{job.id[-6:]}", daemon=True)
    finished = False
    started = False
    try:
        job.thread.start()
        started = True
        yield job.status()
        last = time.monotonic()
        pending = False
        live: dict = {}   # the live info of the last progress report (of the job's current stage)
        while True:
            try:
                item = q.get(timeout=min(heartbeat, 0.25))
            except queue.Empty:
                item = None
            now = time.monotonic()
            if item is not None:
                tag = item[0]
                if tag == "progress":
                    job.stage, job.fraction = item[1], item[2]
                    live = item[3] if len(item) > 3 else {}
                    pending = True
                elif tag == "result":
                    finished = True
                    yield {"result": item[1]}
                    return
                elif tag == "error":
                    finished = True
                    raise item[1]
                elif tag is _DONE:  # pragma: no cover - result/error always come first
                    finished = True
                    return
            if (pending and now - last >= min_interval) or now - last >= heartbeat:
                pending = False
                last = now
                yield {**job.status(), **live} if live else job.status()
    finally:
        if not finished:
            job.token.cancel("stopped: the client went away or the job was cancelled")
            log.warning("job %s stopped before it finished (%s); its worker was cancelled", job.id, job.kind)
        if not started:
            jobs.finish(job)


def is_cancelled(e: BaseException) -> bool:
    return isinstance(e, Cancelled)
