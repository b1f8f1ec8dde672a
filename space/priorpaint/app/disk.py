"""The server's upload folder as a bounded, self-healing disk: reservations, expiry, eviction.

Gradio keeps every upload and every result image under ``GRADIO_TEMP_DIR`` (this server's
own folder, :func:`priorpaint.app.server.server_temp_dir`) and never removes one while the
server runs.  :class:`UploadDisk` bounds that folder:

* **Reservations.**  An upload request reserves its ``Content-Length`` (or the whole
  ``--max-request-mb`` when it sends none) *before* its first byte is read, and the guard
  counts the bytes as they arrive, so concurrent uploads together never pass
  ``--max-upload-disk-mb``: the bytes on disk plus the bytes reserved stay under it.
* **Eviction under pressure.**  When a reservation does not fit, the oldest files go first
  (by modification time) until it does; a file is *held* — never evicted — while this
  process has it open (an upload being written, a result being served or read by a job)
  or when it is younger than ``grace_s`` (an upload whose ``project`` call is on its way).
  Sessions keep their pixels in memory, so no session needs its upload after ``project``.
* **Expiry.**  A sweeper thread removes files older than ``--max-file-age-s`` every
  ``every_s`` seconds, held ones excepted.
* **Partial uploads.**  Gradio writes an upload's body to a top-level ``tmpXXXX`` file and
  moves it into a hashed folder when the request ends; an aborted request leaves the
  partial file behind.  When the last upload in flight ends, every top-level ``tmp*`` file
  is such a leftover and is removed (the sweeper removes any older than ``grace_s`` that a
  never-idle server leaves too).

Why not Gradio's ``delete_cache``: it only ages files (no bound on bytes, nothing under
pressure), runs on its own clock, and does not know which files are open or in flight.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import List, Optional, Set, Tuple

log = logging.getLogger(__name__)

MB = 1024 * 1024
PARTIAL_PREFIX = "tmp"


def open_files() -> Set[str]:
    """Real paths of the files this process has open (Linux ``/proc/self/fd``; empty elsewhere)."""
    out: Set[str] = set()
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            out.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return out


class UploadDisk:
    """Bytes under ``folder`` kept under ``max_bytes``; files older than ``max_age_s`` expire."""

    def __init__(self, folder: str, max_bytes: int, max_age_s: float = 3600.0, grace_s: float = 10.0,
                 clock=time.time):
        self.folder = os.path.realpath(folder)
        self.max_bytes = int(max_bytes)
        self.max_age_s = float(max_age_s)
        self.grace_s = float(grace_s)
        self.clock = clock
        self.reserved = 0
        self.in_flight = 0
        self.evicted = self.expired = self.partials_removed = 0
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # -- what is there ----------------------------------------------------------------------
    def files(self) -> List[Tuple[float, int, str]]:
        """(modification time, bytes, path) of every regular file under the folder."""
        out = []
        for root, _dirs, names in os.walk(self.folder):
            for n in names:
                p = os.path.join(root, n)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                out.append((st.st_mtime, st.st_size, p))
        return out

    def used(self) -> int:
        return sum(size for _t, size, _p in self.files())

    def _is_partial(self, path: str) -> bool:
        return os.path.dirname(path) == self.folder and os.path.basename(path).startswith(PARTIAL_PREFIX)

    def _held(self, path: str, mtime: float, now: float, opened: Set[str]) -> bool:
        return now - mtime < self.grace_s or path in opened or (self._is_partial(path) and self.in_flight > 0)

    def _remove(self, path: str) -> bool:
        try:
            os.unlink(path)
        except OSError:
            return False
        parent = os.path.dirname(path)
        if parent != self.folder:
            try:
                os.rmdir(parent)  # Gradio's one-file hash folders; a folder still in use is not empty
            except OSError:
                pass
        return True

    # -- reservations (the guard, per upload request) ---------------------------------------
    def reserve(self, nbytes: int) -> bool:
        """Room for ``nbytes`` more, evicting the oldest unheld files if needed; False: no room."""
        with self._lock:
            files = self.files()
            over = sum(s for _t, s, _p in files) + self.reserved + nbytes - self.max_bytes
            if over > 0:
                over -= self._evict(files, over)
            if over > 0:
                return False
            self.reserved += nbytes
            self.in_flight += 1
            return True

    def release(self, nbytes: int) -> None:
        """An upload request ended (stored, refused or aborted): its reservation goes, and
        when it was the last one in flight every partial file left behind is removed."""
        with self._lock:
            self.reserved = max(0, self.reserved - nbytes)
            self.in_flight = max(0, self.in_flight - 1)
            if self.in_flight == 0:
                self.remove_partials()

    def remove_partials(self, older_than_s: float = 0.0) -> int:
        """Remove top-level ``tmp*`` files: all of them when no upload is in flight, else only
        those older than ``older_than_s`` that this process no longer has open."""
        with self._lock:
            if self.in_flight and not older_than_s:
                return 0
            opened = open_files() if self.in_flight else set()
            now, n = self.clock(), 0
            try:
                names = os.listdir(self.folder)
            except OSError:
                return 0
            for name in names:
                p = os.path.join(self.folder, name)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                if name.startswith(PARTIAL_PREFIX) and os.path.isfile(p) and now - st.st_mtime >= older_than_s \
                        and p not in opened:
                    n += self._remove(p)
            self.partials_removed += n
            return n

    def _evict(self, files, need: int) -> int:
        now, opened, freed = self.clock(), open_files(), 0
        for mtime, size, path in sorted(files):
            if freed >= need:
                break
            if self._held(path, mtime, now, opened):
                continue
            if self._remove(path):
                freed += size
                self.evicted += 1
        if freed:
            log.info("upload disk: evicted the oldest files, %.1f MB freed", freed / MB)
        return freed

    # -- expiry ------------------------------------------------------------------------------
    def sweep(self) -> dict:
        """Remove expired files (older than ``max_age_s``, not held) and stale partial uploads."""
        with self._lock:
            now, opened, n = self.clock(), open_files(), 0
            for mtime, _size, path in self.files():
                if now - mtime > self.max_age_s and not self._held(path, mtime, now, opened):
                    n += self._remove(path)
            self.expired += n
            partials = self.remove_partials(older_than_s=max(self.grace_s, 60.0) if self.in_flight else 0.0)
            return {"expired": n, "partials": partials}

    def start(self, every_s: float = 60.0) -> "UploadDisk":
        def loop():
            while not self._stop.wait(every_s):
                try:
                    self.sweep()
                except Exception:  # a sweep never stops the server
                    log.exception("upload disk sweep failed")
        self._thread = threading.Thread(target=loop, name="priorpaint-upload-sweeper", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def stats(self) -> dict:
        return {"bytes": self.used(), "max_bytes": self.max_bytes, "reserved": self.reserved,
                "in_flight": self.in_flight, "evicted": self.evicted, "expired": self.expired,
                "partials_removed": self.partials_removed}
