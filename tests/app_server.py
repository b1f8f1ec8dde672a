"""A live ``priorpaint serve`` in a subprocess on a free loopback port, for the app tests."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import List, Optional

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *extra: str, env: Optional[dict] = None, startup_s: float = 120.0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = ROOT / "artifacts" / "app" / f"server-{self.port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")
        e = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
        e.update(env or {})
        cmd = [sys.executable, "-m", "priorpaint.cli", "serve", "--port", str(self.port), *extra]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=e, cwd=str(ROOT))
        deadline = time.monotonic() + startup_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/gradio_api/info", timeout=2):
                    break
            except urllib.error.HTTPError as err:  # 401 with a token: it is up
                if err.code == 401:
                    break
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not start within {startup_s} s: {self.log()}")
            time.sleep(0.3)
        self.started_s = startup_s - (deadline - time.monotonic())

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


# -- plain HTTP (standard library only: the protocol gimp_bridge uses) --------------------------

def upload(url: str, data: bytes, name: str = "image.png", headers: Optional[dict] = None) -> str:
    b = "----pp" + uuid.uuid4().hex
    body = (f"--{b}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{b}--\r\n".encode()
    req = urllib.request.Request(url + "/gradio_api/upload", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={b}", **(headers or {})})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())[0]


def file_data(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


def call(url: str, api: str, data: list, headers: Optional[dict] = None, on_event=None) -> List[tuple]:
    """Run an endpoint; return the list of (event, parsed data) up to complete/error."""
    req = urllib.request.Request(url + f"/gradio_api/call/{api}", data=json.dumps({"data": data}).encode(),
                                 method="POST", headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=60) as r:
        event_id = json.loads(r.read())["event_id"]
    req = urllib.request.Request(url + f"/gradio_api/call/{api}/{event_id}", headers=headers or {})
    events, event = [], None
    with urllib.request.urlopen(req, timeout=300) as r:
        for raw in r:
            line = raw.decode().rstrip("\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                payload = line[5:].strip()
                try:
                    value = json.loads(payload)
                except ValueError:
                    value = payload
                events.append((event, value))
                if on_event is not None:
                    on_event(event, value)
                if event in ("complete", "error"):
                    break
    return events


def download(url: str, output, headers: Optional[dict] = None) -> bytes:
    link = output["url"]
    if link.startswith("/"):
        link = url + link
    with urllib.request.urlopen(urllib.request.Request(link, headers=headers or {}), timeout=60) as r:
        return r.read()


def png_array(data_or_path) -> np.ndarray:
    if isinstance(data_or_path, (bytes, bytearray)):
        return np.asarray(Image.open(io.BytesIO(data_or_path)))
    return np.asarray(Image.open(data_or_path))


def outside_box_equal(a: np.ndarray, b: np.ndarray, box) -> bool:
    """True when ``a`` and ``b`` (H, W, C) are identical everywhere outside ``box`` (x, y, w, h)."""
    x, y, w, h = box
    keep = np.ones(a.shape[:2], bool)
    keep[y:y + h, x:x + w] = False
    return a.shape == b.shape and bool((a[keep] == b[keep]).all())
