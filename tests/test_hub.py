"""Hub sources through the real huggingface_hub client against a local endpoint.

A small HTTP server on 127.0.0.1 answers the two requests ``hf_hub_download`` makes
(HEAD for metadata, GET for the file) for one repo; ``HF_ENDPOINT`` points the client
at it.  ``HF_ENDPOINT`` is read when huggingface_hub is imported, so the download runs
in a fresh Python process.  No test touches the internet.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

REPO = "priorpaint-test/tiny-dcgan"
REVISION = "0123456789abcdef0123456789abcdef01234567"
FILENAME = "tiny.safetensors"


class _Hub:
    def __init__(self, payload: bytes):
        self.payload = payload
        self.requests = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, body: bool):
                hub.requests.append((self.command, self.path))
                want = f"/{REPO}/resolve/{REVISION}/{FILENAME}"
                if self.path.split("?")[0] != want:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                etag = hashlib.sha256(hub.payload).hexdigest()
                self.send_response(200)
                self.send_header("X-Repo-Commit", REVISION)
                self.send_header("ETag", f'"{etag}"')
                self.send_header("Content-Length", str(len(hub.payload)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                if body:
                    self.wfile.write(hub.payload)

            def do_HEAD(self):
                self._answer(False)

            def do_GET(self):
                self._answer(True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tiny_file(tmp_path, tiny_gen):
    from safetensors.torch import save_file
    path = tmp_path / FILENAME
    save_file({k: v.contiguous() for k, v in tiny_gen.state_dict().items()}, str(path))
    return path


def _manifest(tmp_path, sha):
    d = tmp_path / "manifest"
    d.mkdir()
    entry = {"id": "tiny-hub", "architecture": "dcgan", "config": {"nz": 8, "ngf": 4, "nc": 3},
             "resolution": 16, "split_layer": "b8",
             "sources": [{"type": "hub", "repo_id": REPO, "filename": FILENAME, "revision": REVISION,
                          "sha256": sha, "format": "safetensors"}]}
    (d / "tiny-hub.json").write_text(json.dumps(entry))
    return d


_SCRIPT = r"""
import json, sys, torch
from priorpaint.models.manifest import get_entry
from priorpaint.models.registry import generator_from_entry
from priorpaint.models.weights import weights_status
from priorpaint.errors import PriorpaintError
entry = get_entry("tiny-hub")
before = weights_status(entry)[0]
try:
    if sys.argv[1] == "offline":
        generator_from_entry(entry, device="cpu", allow_download=False)
    gen = generator_from_entry(entry, device="cpu", allow_download=True)
except PriorpaintError as e:
    print(json.dumps({"error": str(e), "before": before})); sys.exit(0)
z = gen.sample_latents(1, seed=3)
torch.save(gen(z), sys.argv[2])
print(json.dumps({"before": before, "after": weights_status(entry)[0]}))
"""


def _run(tmp_path, hub, manifest_dir, mode="online"):
    env = dict(os.environ, HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf-home"),
               PRIORPAINT_MANIFEST_DIR=str(manifest_dir), HF_HUB_DISABLE_TELEMETRY="1")
    env.pop("HF_HUB_OFFLINE", None)
    out = tmp_path / "img.pt"
    res = subprocess.run([sys.executable, "-c", _SCRIPT, mode, str(out)], env=env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1]), out


def test_hub_download_with_real_client(tmp_path, tiny_file, tiny_gen):
    payload = tiny_file.read_bytes()
    hub = _Hub(payload)
    try:
        result, out = _run(tmp_path, hub, _manifest(tmp_path, hashlib.sha256(payload).hexdigest()))
    finally:
        hub.close()
    assert result == {"before": False, "after": True}
    assert any(m == "GET" and FILENAME in p for m, p in hub.requests)
    z = tiny_gen.sample_latents(1, seed=3)
    assert torch.equal(torch.load(out, weights_only=True), tiny_gen(z))


def test_hub_model_is_not_downloaded_unless_asked(tmp_path, tiny_file):
    payload = tiny_file.read_bytes()
    hub = _Hub(payload)
    try:
        result, _ = _run(tmp_path, hub, _manifest(tmp_path, hashlib.sha256(payload).hexdigest()), mode="offline")
    finally:
        hub.close()
    assert "not available" in result["error"] and "ask for it explicitly" in result["error"]
    assert not any(m == "GET" for m, _ in hub.requests)


def test_hub_download_with_wrong_sha_is_refused(tmp_path, tiny_file):
    hub = _Hub(tiny_file.read_bytes())
    try:
        result, _ = _run(tmp_path, hub, _manifest(tmp_path, "f" * 64))
    finally:
        hub.close()
    assert result["error"].startswith("sha256 mismatch for tiny-hub")
