"""Server-side state of the app: the session store and the running jobs.

* :class:`SessionStore` keeps :class:`~priorpaint.session.EditSession` objects under random
  ids (``secrets.token_urlsafe``): a bounded LRU by count *and* bytes
  (``EditSession.nbytes()``), with expiry.  An id is a capability: it is returned only
  to the client that made the projection, so sessions are never shared.
* :class:`JobRegistry` knows every running job (an id, its session, its
  :class:`~priorpaint.jobs.CancelToken`, its stage and fraction), so ``cancel`` can stop a
  job by job id or every job of a session.
* The registry bounds how many engine jobs run at once (the "slots"), how many one client,
  one address and all clients may have waiting or running, and hands a free slot to the
  client with the fewest running jobs; :func:`.runner.run_job` runs a job's work.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from ..errors import InputError
from ..jobs import CancelToken
from .clients import bounded_address, owner as owner_of

log = logging.getLogger(__name__)

MB = 1024 * 1024


class SessionStore:
    """A thread-safe LRU of sessions bounded by count, bytes and age, with per-client quotas.

    Every session belongs to the client that made it (``put(session, client)``) and only that
    client gets it back (``get(sid, client)``; on loopback, the machine: :func:`.clients.owner`).
    A client may hold ``max_client_sessions`` sessions and ``max_client_bytes`` (default: the
    global bounds); over its quota its *own* least recently used sessions go.  All clients of
    one remote address together may hold ``max_address_sessions`` and ``max_address_bytes`` (a
    client that drops its cookie becomes a new client, never a new address); over it, the least
    recently used session of that address's client holding the most bytes goes.  The global
    bounds (``max_sessions``, ``max_bytes``) stay: when they are reached, the least recently
    used session of the client holding the most bytes goes, so a client that floods the store
    evicts itself, not the others.  A session's bytes (:meth:`EditSession.nbytes`, its preview
    frames included) are measured again whenever it grows (:meth:`touch`).
    """

    def __init__(self, max_sessions: int = 32, max_bytes: int = 512 * MB, ttl_s: float = 3600.0,
                 max_client_sessions: Optional[int] = None, max_client_bytes: Optional[int] = None,
                 max_address_sessions: Optional[int] = None, max_address_bytes: Optional[int] = None):
        if max_sessions < 1 or max_bytes < 1:
            raise ValueError("the session store needs room for at least one session")
        self.max_sessions = int(max_sessions)
        self.max_bytes = int(max_bytes)
        self.ttl_s = float(ttl_s)
        self.max_client_sessions = int(max_client_sessions or self.max_sessions)
        self.max_client_bytes = int(max_client_bytes or self.max_bytes)
        self.max_address_sessions = int(max_address_sessions or self.max_sessions)
        self.max_address_bytes = int(max_address_bytes or self.max_bytes)
        self._items: "OrderedDict[str, object]" = OrderedDict()
        self._bytes: Dict[str, int] = {}
        self._owner: Dict[str, str] = {}
        self._lock = threading.Lock()
        self.evicted = 0
        self.expired = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __bool__(self) -> bool:  # a store is a store, even when empty (never `store or default`)
        return True

    def __contains__(self, sid: str) -> bool:
        """Whether ``sid`` is stored (without touching its LRU position)."""
        with self._lock:
            return sid in self._items

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(self._bytes.values())

    def put(self, session, client: str = "") -> str:
        """Store a session under its (random) id for ``client`` and return the id."""
        sid = session.id
        with self._lock:
            self._items[sid] = session
            self._items.move_to_end(sid)
            self._bytes[sid] = _size(session)
            self._owner[sid] = client or ""
            self._expire_locked()
            self._evict_locked(keep=sid)
        return sid

    def get(self, sid: str, client: Optional[str] = None):
        """The session for ``sid``; a clear error when it is unknown or expired, or (with a
        ``client``; none or "": a direct Python call) belongs to another client: the same error,
        so an id says nothing of others."""
        sid = (sid or "").strip() if isinstance(sid, str) else sid
        if not sid:
            raise InputError("no session given: project a selection first (the project endpoint returns a session id)")
        if not isinstance(sid, str) or len(sid) > 64:
            raise InputError("unknown or expired session (not a session id): project the selection again")
        with self._lock:
            self._expire_locked()
            s = self._items.get(sid)
            if s is not None and client and owner_of(self._owner.get(sid, "")) != owner_of(client):
                s = None
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
            self._owner.pop(sid, None)
            return self._items.pop(sid, None) is not None

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes.clear()
            self._owner.clear()

    def stats(self) -> dict:
        with self._lock:
            return {"sessions": len(self._items), "bytes": sum(self._bytes.values()),
                    "max_sessions": self.max_sessions, "max_bytes": self.max_bytes,
                    "max_client_sessions": self.max_client_sessions, "max_client_bytes": self.max_client_bytes,
                    "max_address_sessions": self.max_address_sessions, "max_address_bytes": self.max_address_bytes,
                    "clients": len(set(self._owner.values())),
                    "ttl_s": self.ttl_s, "evicted": self.evicted, "expired": self.expired}

    # -- internals ---------------------------------------------------------------------
    def _remove_locked(self, sid: str) -> None:
        self._items.pop(sid, None)
        self._bytes.pop(sid, None)
        self._owner.pop(sid, None)

    def _expire_locked(self) -> None:
        now = time.time()
        for sid in [k for k, s in self._items.items() if now - getattr(s, "used", now) > self.ttl_s]:
            self._remove_locked(sid)
            self.expired += 1

    def _evict_one_locked(self, candidates: List[str], why: str) -> None:
        oldest = candidates[0]  # _items is in LRU order, so candidates are too
        self._remove_locked(oldest)
        self.evicted += 1
        log.info("evicted session %s (%s)", oldest[:6], why)

    def _evict_locked(self, keep: str) -> None:
        owner = self._owner.get(keep, "")
        # 0. a session too large to keep without pushing other clients out is refused
        size = self._bytes[keep]
        others: Dict[str, int] = {}
        for k in self._items:
            if self._owner.get(k, "") != owner:
                others[self._owner.get(k, "")] = others.get(self._owner.get(k, ""), 0) + self._bytes[k]
        if others and sum(others.values()) + size > self.max_bytes and size > max(others.values()):
            self._remove_locked(keep)
            raise InputError(f"this selection's session needs {size / MB:.0f} MB, more than the server can "
                             f"keep beside the other clients' sessions (--max-session-mb "
                             f"{self.max_bytes / MB:.0f}): use a smaller photo or selection")
        # 1. the client's own quota: only its own sessions go
        while True:
            mine = [k for k in self._items if self._owner.get(k, "") == owner]
            if len(mine) <= 1 or (len(mine) <= self.max_client_sessions
                                  and sum(self._bytes[k] for k in mine) <= self.max_client_bytes):
                break
            self._evict_one_locked([k for k in mine if k != keep], "the client's quota")
        # 2. a remote address's quota: its largest holder's LRU session goes (a client rotating ids included)
        here = bounded_address(owner)
        while here is not None:
            mine = [k for k in self._items if bounded_address(self._owner.get(k, "")) == here]
            if len(mine) <= 1 or (len(mine) <= self.max_address_sessions
                                  and sum(self._bytes[k] for k in mine) <= self.max_address_bytes):
                break
            if not self._evict_largest_locked(mine, keep, "the address's quota"):
                break
        # 3. the global bounds: the LRU session of the client holding the most bytes goes
        while len(self._items) > 1 and (len(self._items) > self.max_sessions
                                        or sum(self._bytes.values()) > self.max_bytes):
            if not self._evict_largest_locked(list(self._items), keep, "the server's bound"):
                break

    def _evict_largest_locked(self, keys: List[str], keep: str, why: str) -> bool:
        """Evict the LRU session, among ``keys``, of the client holding the most bytes there
        (``keep``'s bytes counted for its own client); False when only ``keep`` is left."""
        owner = self._owner.get(keep, "")
        held: Dict[str, List[int]] = {}
        for k in keys:
            if k == keep:
                continue
            h = held.setdefault(self._owner.get(k, ""), [0, 0])
            h[0] += self._bytes.get(k, 0)
            h[1] += 1
        if not held:
            return False
        top = max(held, key=lambda o: (held[o][0] + (self._bytes[keep] if o == owner else 0), held[o][1]))
        self._evict_one_locked([k for k in self._items if k in keys and k != keep and self._owner.get(k, "") == top],
                               why)
        return True


def _size(session) -> int:
    for _ in range(3):  # a preview on another thread may add to the session's cache while it is summed
        try:
            return int(session.nbytes())
        except RuntimeError:
            continue
        except Exception:
            break
    return 1 * MB  # a session that cannot measure itself still counts


@dataclass
class Job:
    id: str
    session_id: Optional[str]
    kind: str
    client: str = ""
    token: CancelToken = field(default_factory=CancelToken)
    stage: str = "queued"
    fraction: float = 0.0
    started: float = field(default_factory=time.time)
    thread: Optional[threading.Thread] = None
    waiting_since: float = 0.0

    def status(self, **extra) -> dict:
        d = {"done": False, "stage": self.stage, "fraction": round(float(self.fraction), 4), "job": self.id}
        if self.session_id:
            d["session"] = self.session_id
        d.update(extra)
        return d


class JobRegistry:
    """Jobs waiting or running, by id, sharing a bounded number of engine slots fairly.

    * ``max_client_jobs``: one client may have at most this many jobs waiting or running;
      ``max_address_jobs``: all clients of one remote address (a client that rotates its id
      stays within it); ``max_jobs``: all clients together.  A job over any is refused when it is made
      (:meth:`new`), before any work, with one line naming the bound.
    * A client runs at most ``slots - 1`` jobs at once (1 with one or two slots), so a slot
      is always left to the other clients, whatever one client started first.
    * A free slot goes to the waiting job whose client has the fewest jobs running, among
      those to the client (a remote one: its address) served longest ago (round robin), then
      the oldest job: a client that floods the server, with one id or many, takes its turn
      with everyone else instead of going first.
    * A job whose token is cancelled while it waits (its client went away, or ``cancel``)
      leaves the queue without ever starting.
    """

    def __init__(self, slots: int = 2, max_client_jobs: int = 4, max_jobs: int = 32,
                 max_address_jobs: Optional[int] = None):
        self.slots = max(1, int(slots))
        self.max_client_jobs = max(1, int(max_client_jobs))
        self.max_jobs = max(1, int(max_jobs))
        self.max_address_jobs = max(1, int(max_address_jobs or self.max_jobs))
        self._jobs: Dict[str, Job] = {}
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._waiting: List[Job] = []
        self._running_per_client: Dict[str, int] = {}
        self._served: Dict[str, int] = {}   # client -> when (a counter) it last got a slot
        self._turn = 0
        self.busy = 0
        self.started = 0
        self.cancelled = 0
        self.refused = 0
        self.dropped = 0

    def new(self, kind: str, session_id: Optional[str] = None, client: str = "") -> Job:
        job = Job(id="job-" + secrets.token_urlsafe(12), session_id=session_id, kind=kind, client=client or "")
        with self._lock:
            mine = sum(1 for j in self._jobs.values() if j.client == job.client)
            if mine >= self.max_client_jobs:
                self.refused += 1
                log.warning("refused a job of client %s: %d waiting or running (--max-client-jobs)",
                            _short_client(job.client), mine)
                raise InputError(f"this client already has {mine} jobs waiting or running (the limit is "
                                 f"{self.max_client_jobs}, --max-client-jobs): wait for one to finish or cancel it")
            where = bounded_address(job.client)
            here = 0 if where is None else sum(1 for j in self._jobs.values() if bounded_address(j.client) == where)
            if where is not None and here >= self.max_address_jobs:
                self.refused += 1
                log.warning("refused a job of client %s: its address has %d waiting or running (--max-address-jobs)",
                            _short_client(job.client), here)
                raise InputError(f"the clients of this address already have {here} jobs waiting or running (the "
                                 f"limit is {self.max_address_jobs}, --max-address-jobs): wait for one to finish")
            if len(self._jobs) >= self.max_jobs:
                self.refused += 1
                log.warning("refused a job of client %s: the server has %d (--max-jobs)",
                            _short_client(job.client), len(self._jobs))
                raise InputError(f"the server has {len(self._jobs)} jobs waiting or running (the limit is "
                                 f"{self.max_jobs}, --max-jobs): try again in a moment")
            self._jobs[job.id] = job
            self.started += 1
        return job

    def finish(self, job: Job) -> None:
        with self._lock:
            self._jobs.pop(job.id, None)

    def running(self) -> List[Job]:
        with self._lock:
            return list(self._jobs.values())

    def cancel(self, ident: str, reason: str = "cancelled", client: Optional[str] = None) -> List[str]:
        """Cancel the job with this id, or every job of the session with this id; with a
        ``client``, only that client's own jobs (:func:`.clients.owner`): a remote client's are
        its id's (another id, even from the same proxy address, cancels nothing); on loopback
        the machine's (every caller is this machine's user, whom a loopback server already
        trusts, and a plain-HTTP client without its cookie still cancels its own job)."""
        ident = (ident or "").strip()
        mine = None if client is None else owner_of(client)
        with self._lock:
            hits = [j for j in self._jobs.values() if ident and (j.id == ident or j.session_id == ident)
                    and (mine is None or owner_of(j.client) == mine)]
        for j in hits:
            j.token.cancel(reason)
        if hits:
            self.cancelled += len(hits)
        return [j.id for j in hits]

    def cancel_all(self, reason: str = "the server is shutting down") -> int:
        with self._lock:
            jobs = list(self._jobs.values())
        for j in jobs:
            j.token.cancel(reason)
        return len(jobs)

    def join_workers(self, timeout: float = 15.0) -> int:
        """Wait (at shutdown, never on the event loop) for cancelled workers to stop; how many still run."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = [j.thread for j in self._jobs.values() if j.thread is not None]
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return sum(t.is_alive() for t in threads)

    def _next_locked(self) -> Optional[Job]:
        if self.busy >= self.slots:
            return None
        cap = max(1, self.slots - 1)  # one client never holds every slot: one is left to the others
        live = [j for j in self._waiting if not j.token.cancelled and self._running_per_client.get(j.client, 0) < cap]
        if not live:
            return None
        return min(live, key=lambda j: (self._running_per_client.get(j.client, 0),
                                        self._served.get(_turn_of(j.client), -1), j.waiting_since))

    def acquire(self, job_or_token, on_wait: Callable[[], None]) -> None:
        """Wait for a free engine slot (fairly across clients), honouring cancellation while waiting."""
        job = job_or_token if isinstance(job_or_token, Job) else Job(id="anon", session_id=None, kind="",
                                                                       token=job_or_token)
        waited = False
        with self._cond:
            job.waiting_since = time.monotonic()
            self._waiting.append(job)
            try:
                while job.token.cancelled or self._next_locked() is not job:
                    if job.token.cancelled:  # its client went away while it waited: it never starts
                        self.dropped += 1
                        job.token.check()
                    if not waited:
                        self._cond.release()
                        try:
                            on_wait()
                        finally:
                            self._cond.acquire()
                        waited = True
                        continue
                    self._cond.wait(0.1)
            finally:
                self._waiting.remove(job)
                self._cond.notify_all()
            self.busy += 1  # the caller releases it (run_job's worker does, in finally)
            self._running_per_client[job.client] = self._running_per_client.get(job.client, 0) + 1
            self._turn += 1
            self._served[_turn_of(job.client)] = self._turn
            if len(self._served) > 4096:  # forget clients long gone
                for c in sorted(self._served, key=self._served.get)[:2048]:
                    self._served.pop(c, None)

    def release(self, job: Optional[Job] = None) -> None:
        with self._cond:
            self.busy -= 1
            idle = self.busy == 0
            c = job.client if job is not None else ""
            n = self._running_per_client.get(c, 0) - 1
            if n > 0:
                self._running_per_client[c] = n
            else:
                self._running_per_client.pop(c, None)
            self._cond.notify_all()
        if idle:
            give_back_freed_memory()


_TRIM = None


def give_back_freed_memory() -> bool:
    """Hand the heap pages the engine freed back to the system (glibc's ``malloc_trim``), when
    the last running job ends. The C allocator otherwise keeps a photo's freed work arrays
    mapped: in a 3-minute soak the server's RSS fell by 67 MB (6 %) at one trim, while the
    Python-tracked memory grew by 16 MB (the session store filling to its bound). False
    where the C library has no ``malloc_trim`` (not glibc)."""
    global _TRIM
    if _TRIM is None:
        try:
            import ctypes
            _TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _TRIM = False
    if not _TRIM:
        return False
    _TRIM(0)
    return True


def _turn_of(client: str) -> str:
    """Whose turn a slot is, round robin: a remote client's address (a new id of an address just
    served, a cookie-less client, does not go before the others), a loopback client's key."""
    return bounded_address(client) or client


def _short_client(client: str) -> str:
    import hashlib
    return hashlib.sha256(client.encode()).hexdigest()[:8]


# the worker runner lives in .runner; read here too by the callers that always did
from .runner import is_cancelled, run_job  # noqa: E402,F401
