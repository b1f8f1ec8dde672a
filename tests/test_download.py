"""``priorpaint download`` and the app's ``download`` endpoint against a local Hub endpoint.

The real huggingface_hub client talks to a small HTTP server on 127.0.0.1 (as in
test_hub.py); ``HF_ENDPOINT`` is read when huggingface_hub is imported, so each run is a
fresh Python process.  No test touches the internet.
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

from test_stylegan2 import STYLE_DIM, rosinality_state_dict

REVISION = "89abcdef0123456789abcdef0123456789abcdef"


class Hub:
    """Serves ``files[(repo, filename)]`` at REVISION; honours Range; may drop the first GET midway,
    or (``hold``, a threading.Event) send half of a file and wait for the event before the rest."""

    def __init__(self, files, drop_first_get=False, hold=None, port=0):
        self.files, self.requests, self.drop, self.hold = dict(files), [], drop_first_get, hold
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self, body):
                hub.requests.append((self.command, self.path, self.headers.get("Range")))
                path = self.path.split("?")[0]
                found = None
                for (repo, name), payload in hub.files.items():
                    if path == f"/{repo}/resolve/{REVISION}/{name}":
                        found = payload
                if found is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng and body:
                    start = int(rng.split("=")[1].split("-")[0])
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", REVISION)
                self.send_header("ETag", f'"{hashlib.sha256(found).hexdigest()}"')
                self.send_header("Content-Length", str(len(found) - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(found) - 1}/{len(found)}")
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                if not body:
                    return
                if hub.drop and not start:
                    hub.drop = False
                    self.wfile.write(found[: len(found) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if hub.hold is not None:
                    half = start + (len(found) - start) // 2
                    self.wfile.write(found[start:half])
                    self.wfile.flush()
                    hub.hold.wait(600)
                    start = half
                self.wfile.write(found[start:])

            def do_HEAD(self):
                self._answer(False)

            def do_GET(self):
                self._answer(True)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def gets(self):
        return [r for r in self.requests if r[0] == "GET"]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A rosinality .pt (g_ema + latent_avg) as bytes."""
    path = tmp_path_factory.mktemp("ckpt") / "sg2.pt"
    torch.save({"g_ema": rosinality_state_dict(seed=3), "latent_avg": torch.full((STYLE_DIM,), 0.125)}, path)
    return path.read_bytes()


def _manifest(tmp_path, payload, sha=None, size=None):
    from priorpaint.models.stylegan2 import infer_config
    d = tmp_path / "manifest"
    d.mkdir(exist_ok=True)
    entry = {"id": "tiny-sg2", "architecture": "stylegan2", "resolution": 64,
             "config": infer_config(rosinality_state_dict(seed=3)),
             "sources": [{"type": "hub", "repo_id": "priorpaint-test/tiny-sg2", "filename": "sg2.pt",
                          "revision": REVISION, "sha256": sha or hashlib.sha256(payload).hexdigest(),
                          "size": len(payload) if size is None else size, "format": "torch",
                          "state_dict_key": "g_ema"}]}
    (d / "tiny-sg2.json").write_text(json.dumps(entry))
    return d


def _env(tmp_path, hub_url, manifest, **extra):
    env = dict(os.environ, HF_ENDPOINT=hub_url, HF_HOME=str(tmp_path / "hf-home"),
               PRIORPAINT_MANIFEST_DIR=str(manifest), HF_HUB_DISABLE_TELEMETRY="1", **extra)
    env.pop("HF_HUB_OFFLINE", None) if "HF_HUB_OFFLINE" not in extra else None
    env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
    return env


def _cli(env, *args):
    return subprocess.run([sys.executable, "-m", "priorpaint.cli", "download", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_download_progress_sha_cache_and_latent_avg(tmp_path, checkpoint):
    hub = Hub({("priorpaint-test/tiny-sg2", "sg2.pt"): checkpoint})
    try:
        env = _env(tmp_path, hub.url, _manifest(tmp_path, checkpoint))
        res = _cli(env, "tiny-sg2")
        assert res.returncode == 0, res.stderr
        assert "tiny-sg2: downloaded, sha256 verified" in res.stdout
        assert str(tmp_path / "hf-home") in res.stdout and "Hugging Face cache:" in res.stdout
        assert "sg2.pt" in res.stderr and "100%" in res.stderr  # huggingface_hub's tqdm bar
        assert len(hub.gets()) == 1
        again = _cli(env, "--all")
        assert again.returncode == 0 and "tiny-sg2: already present, sha256 verified" in again.stdout
        assert len(hub.gets()) == 1  # nothing fetched twice
        # offline afterwards: the cached, pinned file loads, with the checkpoint's latent_avg
        script = ("from priorpaint.models.registry import load_generator;"
                  "g = load_generator('tiny-sg2', device='cpu'); print(g.mean_latent(space='w').unique().tolist())")
        out = subprocess.run([sys.executable, "-c", script], env=dict(env, HF_HUB_OFFLINE="1"),
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "[0.125]"
    finally:
        hub.close()


def test_a_dropped_connection_is_resumed(tmp_path):
    # huggingface_hub writes 10 MiB chunks: resuming needs a file of more than one chunk
    # (download only verifies size + sha256; the bytes need not be a checkpoint here)
    payload = os.urandom(24 << 20)
    hub = Hub({("priorpaint-test/tiny-sg2", "sg2.pt"): payload}, drop_first_get=True)
    try:
        res = _cli(_env(tmp_path, hub.url, _manifest(tmp_path, payload)), "tiny-sg2")
    finally:
        hub.close()
    assert res.returncode == 0, res.stderr
    assert "tiny-sg2: downloaded, sha256 verified" in res.stdout
    ranges = [r for _, _, r in hub.gets()]
    assert ranges[0] is None and ranges[-1] is not None
    assert 0 < int(ranges[-1].split("=")[1].rstrip("-")) <= len(payload) // 2


@pytest.mark.parametrize("bad", ["sha256", "size"])
def test_a_wrong_file_is_refused_and_removed(tmp_path, checkpoint, bad):
    hub = Hub({("priorpaint-test/tiny-sg2", "sg2.pt"): checkpoint})
    try:
        manifest = _manifest(tmp_path, checkpoint, sha="f" * 64 if bad == "sha256" else None,
                             size=len(checkpoint) + 7 if bad == "size" else None)
        res = _cli(_env(tmp_path, hub.url, manifest), "tiny-sg2")
    finally:
        hub.close()
    assert res.returncode == 2
    err = res.stderr.strip().splitlines()[-1]
    assert err.startswith(f"priorpaint: error: {bad} mismatch for tiny-sg2") and "removed from the cache" in err
    blobs = list((tmp_path / "hf-home").rglob("blobs/*"))
    assert blobs == []


@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE", "unreachable"])
def test_offline_is_one_line_naming_model_repo_and_command(tmp_path, checkpoint, how):
    manifest = _manifest(tmp_path, checkpoint)
    if how == "HF_HUB_OFFLINE":
        env = _env(tmp_path, "http://127.0.0.1:9", manifest, HF_HUB_OFFLINE="1")
    else:
        hub = Hub({})
        url = hub.url
        hub.close()  # nothing listens there any more
        env = _env(tmp_path, url, manifest)
    res = _cli(env, "tiny-sg2")
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("priorpaint: error:")]
    assert len(lines) == 1
    assert "tiny-sg2" in lines[0] and "priorpaint-test/tiny-sg2" in lines[0]
    assert "run `priorpaint download tiny-sg2` once online" in lines[0]
    # choosing the model for an edit offline says the same
    script = ("import sys\nfrom priorpaint.models.registry import load_generator\nfrom priorpaint.errors import "
              "PriorpaintError\ntry:\n    load_generator('tiny-sg2', device='cpu', allow_download=True)\n"
              "except PriorpaintError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert "run `priorpaint download tiny-sg2` once online" in out.stdout


def test_bad_arguments(tmp_path, checkpoint):
    env = _env(tmp_path, "http://127.0.0.1:9", _manifest(tmp_path, checkpoint), HF_HUB_OFFLINE="1")
    for args, msg in [((), "name at least one model"), (("nope",), "unknown model 'nope'"),
                      (("tiny-sg2", "--all"), "not both")]:
        res = _cli(env, *args)
        assert res.returncode == 2 and msg in res.stderr, res.stderr


_API = r"""
import json, sys
from priorpaint.app.api import Backend
b = Backend()
statuses = [json.loads(s) for s in b.download("tiny-sg2")]
print(json.dumps({"statuses": statuses, "models": json.loads(b.models())}))
"""


def test_api_download_endpoint(tmp_path, checkpoint):
    hub = Hub({("priorpaint-test/tiny-sg2", "sg2.pt"): checkpoint})
    try:
        env = _env(tmp_path, hub.url, _manifest(tmp_path, checkpoint))
        before = subprocess.run([sys.executable, "-c", "from priorpaint.app.api import Backend; print(Backend().models())"],
                                env=env, capture_output=True, text=True, timeout=120)
        row = json.loads(before.stdout.strip().splitlines()[-1])[0]
        assert (row["id"], row["present"], row["downloadable"]) == ("tiny-sg2", False, True)
        res = subprocess.run([sys.executable, "-c", _API], env=env, capture_output=True, text=True, timeout=120)
    finally:
        hub.close()
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    first, last = out["statuses"][0], out["statuses"][-1]
    assert first["done"] is False and first["stage"] == "download"
    assert last["done"] is True and last["bytes"] == len(checkpoint) and last["already_present"] is False
    assert all(0.0 <= s["fraction"] <= 1.0 for s in out["statuses"])
    assert out["models"][0]["present"] is True
