"""Server-side state of the app: the session store and the running jobs.

* :class:`SessionStore` keeps :class:`~priorpaint.session.EditSession` objects under random
  ids (``secrets.token_urlsafe``): a bounded LRU by count *and* bytes
  (``EditSession.nbytes()``), with expiry.  An id is a capability: it is returned only
  to the client that made the projection, so sessions are never shared.
* :class:`JobRegistry` knows every running job (an id, its session, its
  :class:`~priorpaint.jobs.CancelToken`, its stage and fraction), so ``cancel`` can stop a
  job by job id or every job of a session.
* :func:`run_job` runs engine work in a worker thread and yields its progress from a
  queue; when the consumer stops early (client gone, Gradio cancellation, an exception),
  the job's token is cancelled in ``finally`` and the worker stops within one step.
  A semaphore bounds how many engine jobs run at once (the "slots").
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional

from ..errors import Cancelled, InputError
from ..jobs import CancelToken

log = logging.getLogger(__name__)

MB = 1024 * 1024


class SessionStore:
    """A thread-safe LRU of sessions bounded by count, bytes and age."""

    def __init__(self, max_sessions: int = 32, max_bytes: int = 512 * MB, ttl_s: float = 3600.0):
        if max_sessions < 1 or max_bytes < 1:
            raise ValueError("the session store needs room for at least one session")
        self.max_sessions = int(max_sessions)
        self.max_bytes = int(max_bytes)
        self.ttl_s = float(ttl_s)
        self._items: "OrderedDict[str, object]" = OrderedDict()
        self._bytes: Dict[str, int] = {}
        self._lock = threading.Lock()
        self.evicted = 0
        self.expired = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, sid: str) -> bool:
        """Whether ``sid`` is stored (without touching its LRU position)."""
        with self._lock:
            return sid in self._items

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(self._bytes.values())

    def put(self, session) -> str:
        """Store a session under its (random) id and return the id."""
        sid = session.id
        with self._lock:
            self._items[sid] = session
            self._items.move_to_end(sid)
            self._bytes[sid] = _size(session)
            self._expire_locked()
            self._evict_locked(keep=sid)
        return sid

    def get(self, sid: str):
        """The session for ``sid``; a clear error when it is unknown or expired."""
        sid = (sid or "").strip()
        if not sid:
            raise InputError("no session given: project a selection first (the project endpoint returns a session id)")
        with self._lock:
            self._expire_locked()
            s = self._items.get(sid)
            if s is None:
                raise InputError(f"unknown or expired session {sid!r}: project the selection again")
            self._items.move_to_end(sid)
            s.used = time.time()
            return s

    def touch(self, session) -> None:
        """Re-measure a session after it grew (a fitted G′) and evict others if needed."""
        with self._lock:
            if session.id in self._items:
                self._bytes[session.id] = _size(session)
                self._evict_locked(keep=session.id)

    def drop(self, sid: str) -> bool:
        with self._lock:
            self._bytes.pop(sid, None)
            return self._items.pop(sid, None) is not None

    def stats(self) -> dict:
        with self._lock:
            return {"sessions": len(self._items), "bytes": sum(self._bytes.values()),
                    "max_sessions": self.max_sessions, "max_bytes": self.max_bytes,
                    "ttl_s": self.ttl_s, "evicted": self.evicted, "expired": self.expired}

    # -- internals ---------------------------------------------------------------------
    def _expire_locked(self) -> None:
        now = time.time()
        for sid in [k for k, s in self._items.items() if now - getattr(s, "used", now) > self.ttl_s]:
            self._items.pop(sid)
            self._bytes.pop(sid, None)
            self.expired += 1

    def _evict_locked(self, keep: str) -> None:
        while len(self._items) > 1 and (len(self._items) > self.max_sessions
                                        or sum(self._bytes.values()) > self.max_bytes):
            oldest = next(iter(self._items))
            if oldest == keep:  # never evict the session being stored/used
                self._items.move_to_end(keep)
                oldest = next(iter(self._items))
                if oldest == keep:
                    break
            self._items.pop(oldest)
            self._bytes.pop(oldest, None)
            self.evicted += 1
            log.info("evicted session %s (LRU)", oldest[:6])


def _size(session) -> int:
    try:
        return int(session.nbytes())
    except Exception:  # a session that cannot measure itself still counts
        return 1 * MB


@dataclass
class Job:
    id: str
    session_id: Optional[str]
    kind: str
    token: CancelToken = field(default_factory=CancelToken)
    stage: str = "queued"
    fraction: float = 0.0
    started: float = field(default_factory=time.time)
    thread: Optional[threading.Thread] = None

    def status(self, **extra) -> dict:
        d = {"done": False, "stage": self.stage, "fraction": round(float(self.fraction), 4), "job": self.id}
        if self.session_id:
            d["session"] = self.session_id
        d.update(extra)
        return d


class JobRegistry:
    """Running jobs by id, with a bounded number of engine slots."""

    def __init__(self, slots: int = 2):
        self.slots = max(1, int(slots))
        self._sem = threading.BoundedSemaphore(self.slots)
        self._jobs: Dict[str, Job] = {}
        self._lock = threading.Lock()
        self.busy = 0
        self.started = 0
        self.cancelled = 0

    def new(self, kind: str, session_id: Optional[str] = None) -> Job:
        job = Job(id="job-" + secrets.token_urlsafe(12), session_id=session_id, kind=kind)
        with self._lock:
            self._jobs[job.id] = job
            self.started += 1
        return job

    def finish(self, job: Job) -> None:
        with self._lock:
            self._jobs.pop(job.id, None)

    def running(self) -> List[Job]:
        with self._lock:
            return list(self._jobs.values())

    def cancel(self, ident: str, reason: str = "cancelled") -> List[str]:
        """Cancel the job with this id, or every job of the session with this id."""
        ident = (ident or "").strip()
        with self._lock:
            hits = [j for j in self._jobs.values() if ident and (j.id == ident or j.session_id == ident)]
        for j in hits:
            j.token.cancel(reason)
        if hits:
            self.cancelled += len(hits)
        return [j.id for j in hits]

    def acquire(self, token: CancelToken, on_wait: Callable[[], None]) -> None:
        """Wait for a free engine slot, honouring cancellation while waiting."""
        waited = False
        while not self._sem.acquire(timeout=0.1):
            token.check()
            if not waited:
                on_wait()
                waited = True
        with self._lock:
            self.busy += 1

    def release(self) -> None:
        with self._lock:
            self.busy -= 1
        self._sem.release()


_DONE = object()


def run_job(jobs: JobRegistry, job: Job, work: Callable[[Callable, CancelToken], object],
            min_interval: float = 0.2, heartbeat: float = 1.0) -> Iterator[dict]:
    """Run ``work(progress, cancel)`` in a worker thread; yield status dicts, then the result.

    Yields ``job.status()`` dicts while the job runs (at most one per ``min_interval``
    seconds, and at least one per ``heartbeat`` seconds so a closed consumer is noticed);
    the last item yielded is ``{"result": value}``.  Errors from the work are re-raised
    here.  If the consumer stops iterating (``GeneratorExit``: the client disconnected or
    the event was cancelled), the job's token is cancelled and the worker joined briefly.
    """
    q: "queue.Queue" = queue.Queue()

    def progress(stage: str, fraction: float, info: dict) -> None:
        q.put(("progress", stage, fraction))

    def target() -> None:
        acquired = False
        try:
            jobs.acquire(job.token, lambda: q.put(("progress", "waiting for a free slot", 0.0)))
            acquired = True
            job.token.check()
            q.put(("progress", "starting", 0.0))
            from .gpu import engine_call
            q.put(("result", engine_call(work, progress, job.token)))
        except BaseException as e:  # handed to the consumer
            q.put(("error", e))
        finally:
            if acquired:
                jobs.release()
            q.put((_DONE,))

    job.thread = threading.Thread(target=target, name=f"priorpaint-{job.kind}-{job.id[-6:]}", daemon=True)
    finished = False
    try:
        job.thread.start()
        yield job.status()
        last = time.monotonic()
        pending = False
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
                yield job.status()
    finally:
        if not finished:
            job.token.cancel("stopped: the client went away or the job was cancelled")
            log.warning("job %s stopped before it finished (%s); its worker was cancelled", job.id, job.kind)
        if job.thread is not None and job.thread.is_alive():
            job.thread.join(timeout=10.0)
        jobs.finish(job)


def is_cancelled(e: BaseException) -> bool:
    return isinstance(e, Cancelled)
