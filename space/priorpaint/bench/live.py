"""A live ``priorpaint serve`` on loopback, for the sections that measure the server (``app``,
``security``, ``soak``): a free port, the process with its log and its own folders, a wait until
it answers, a bounded stop, and a plain-HTTP client of the Gradio protocol (``docs/api.md``).

Loopback only; every wait is bounded.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Optional, Sequence


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def file_data(path: str) -> dict:
    """A server path as the Gradio protocol's file value."""
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


class Http:
    """Plain-HTTP client of one server: requests, multipart uploads, submit + SSE events."""

    def __init__(self, url: str):
        self.url = url

    def _open(self, req, timeout):
        return urllib.request.urlopen(req, timeout=timeout)

    def request(self, path, method="GET", data=None, headers=None, timeout=120):
        req = urllib.request.Request(self.url + path, method=method, data=data, headers=headers or {})
        try:
            with self._open(req, timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except OSError as e:
            return 0, str(e).encode()

    def upload(self, parts) -> tuple:
        b = "----pp" + uuid.uuid4().hex
        body = b""
        for name, data in parts:
            body += (f"--{b}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
                     "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
        body += f"--{b}--\r\n".encode()
        return self.request("/gradio_api/upload", "POST", body,
                            {"Content-Type": f"multipart/form-data; boundary={b}"})

    def submit(self, api: str, data: list, session_hash: Optional[str] = None):
        payload = {"data": data}
        if session_hash:
            payload["session_hash"] = session_hash
        status, body = self.request(f"/gradio_api/call/{api}", "POST", json.dumps(payload).encode(),
                                    {"Content-Type": "application/json"})
        if status != 200:
            return None, (status, body[:200].decode(errors="replace"))
        return json.loads(body)["event_id"], None

    def events(self, api: str, event_id: str, on_event=None, timeout=600, resp=None):
        """SSE events up to complete/error; when ``on_event`` returns True, stop there and hand back
        the still-open response (read on by passing it as ``resp``)."""
        out, event = [], None
        r = resp or urllib.request.urlopen(urllib.request.Request(self.url + f"/gradio_api/call/{api}/{event_id}"),
                                           timeout=timeout)
        for raw in r:
            line = raw.decode().rstrip("\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                try:
                    value = json.loads(line[5:].strip())
                except ValueError:
                    value = line[5:].strip()
                out.append((event, value))
                if on_event is not None and on_event(event, value):
                    return out, r
                if event in ("complete", "error"):
                    break
        r.close()
        return out, None

    def call(self, api: str, data: list, session_hash: Optional[str] = None):
        eid, err = self.submit(api, data, session_hash)
        if err:
            return "http", err
        evs, _ = self.events(api, eid)
        return evs[-1] if evs else ("none", None)


class CookieHttp(Http):
    """One client's plain HTTP, keeping the server's cookies (its client id, which its saved
    vectors are bound to) as a browser, gradio_client and the GIMP bridge do."""

    def __init__(self, url: str):
        super().__init__(url)
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def _open(self, req, timeout):
        return self.opener.open(req, timeout=timeout)


class LiveServer:
    """``priorpaint serve`` on a free loopback port with ``args`` (e.g. ``["--slots", "2"]``), its
    output in ``log_path`` and, with ``own_tmp``, an upload folder of its own (``server_tmp``,
    ``$PRIORPAINT_SERVER_TMP``); ``env`` adds variables. Use as a context manager: entering waits
    until it answers (``start_seconds``), leaving stops it (SIGTERM, then kill)."""

    def __init__(self, name: str, args: Sequence[str] = (), env: Optional[dict] = None, own_tmp: bool = True,
                 start_timeout: float = 180.0, stop_timeout: float = 30.0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = Http(self.url)
        self.tmp = tempfile.mkdtemp(prefix=f"priorpaint-bench-{name}-")
        self.log_path = os.path.join(self.tmp, "server.log")
        self.server_tmp = os.path.join(self.tmp, "server") if own_tmp else None
        extra = {"GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", **(env or {})}
        if self.server_tmp:
            os.makedirs(self.server_tmp)
            extra["PRIORPAINT_SERVER_TMP"] = self.server_tmp
        self._cmd = [sys.executable, "-m", "priorpaint.cli", "serve", "--port", str(self.port), *map(str, args)]
        self._env = dict(os.environ, **extra)
        self.start_timeout, self.stop_timeout = start_timeout, stop_timeout
        self.proc: Optional[subprocess.Popen] = None
        self.start_seconds: Optional[float] = None

    def log_text(self) -> str:
        return Path(self.log_path).read_text(errors="replace")

    def __enter__(self) -> "LiveServer":
        t0 = time.monotonic()
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(self._cmd, stdout=log, stderr=subprocess.STDOUT, env=self._env)
        try:
            while self.http.request("/gradio_api/info", timeout=2)[0] != 200:
                if self.proc.poll() is not None or time.monotonic() - t0 > self.start_timeout:
                    raise RuntimeError("the server did not start: " + self.log_text()[-2000:])
                time.sleep(0.2)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def stop(self) -> None:
        """SIGTERM and a bounded wait, then kill (nothing when it has already exited)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def __exit__(self, *exc) -> None:
        self.stop()
