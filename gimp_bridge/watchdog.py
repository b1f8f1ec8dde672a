"""Cancel the backend job when the plug-in process dies before the job finishes.

When the user presses Cancel on a plug-in's progress bar, GIMP ends the plug-in's
process outright (on Unix with SIGKILL), so the plug-in itself gets no chance to tell
the backend. :class:`JobGuard` therefore starts a small watcher process that holds the
other end of a pipe: the plug-in writes ``job <id>`` lines as the backend names its jobs
and ``done`` when it finishes. If the pipe closes without ``done`` (the plug-in was
killed), the watcher calls the backend's ``cancel`` endpoint for the last job named.

The token travels in the watcher's environment, never on its command line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Optional


class JobGuard:
    """Context manager: ``with JobGuard(client) as g: client.call(..., on_job=g.set_job)``."""

    def __init__(self, client, spawn: bool = True):
        self.client = client
        self.job: Optional[str] = None
        self._proc: Optional[subprocess.Popen] = None
        self._spawn = spawn

    def _start(self) -> None:
        if self._proc is not None or not self._spawn:
            return
        env = dict(os.environ)
        env["PRIORPAINT_WATCHDOG_TOKEN"] = self.client.token or ""
        pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "gimp_bridge.watchdog", self.client.url],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env=env, close_fds=True, start_new_session=True)
        except OSError:
            self._proc = None  # without a watcher, cancel still works while the plug-in lives

    def set_job(self, job: str) -> None:
        self.job = job
        self._start()
        self._send(f"job {job}\n")

    def _send(self, line: str) -> None:
        if self._proc is None or self._proc.stdin is None:
            return
        try:
            self._proc.stdin.write(line.encode("utf-8"))
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass

    def finish(self) -> None:
        if self._proc is None:
            return
        self._send("done\n")
        try:
            self._proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        self._proc = None

    def __enter__(self) -> "JobGuard":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        from .client import BridgeError
        if exc_type is not None and self.job is not None and not issubclass(exc_type, BridgeError):
            # The plug-in is failing while the job may still run (an error in our own code,
            # an interrupt): cancel it now instead of leaving it to the watcher.
            try:
                self.client.cancel(self.job)
            except Exception:
                pass
        self.finish()


def _watch(url: str) -> int:
    job = None
    for raw in sys.stdin.buffer:
        line = raw.decode("utf-8", "replace").strip()
        if line == "done":
            return 0
        if line.startswith("job "):
            job = line[4:].strip() or job
    if job is None:
        return 0
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from gimp_bridge.client import Client
    client = Client(url, token=os.environ.get("PRIORPAINT_WATCHDOG_TOKEN", ""), timeout=30, connect_retries=1)
    try:
        client.cancel(job)
    except Exception:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_watch(sys.argv[1]))
