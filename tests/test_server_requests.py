"""Issue 28, the smaller findings: file references, cancel ownership, a total-steps cap, the
documented bounds, and no server path in a response."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("ref", ["file:²", "file:٣", "file:1²", "file:+0", "file: 0", "file:", "file:9999999999",
                                 "file:1"])
def test_file_references_are_ascii_digits_naming_a_sent_file(ref):
    from priorpaint.app.api import resolve_files
    from priorpaint.errors import InputError

    with pytest.raises(InputError, match=r"1 file\(s\) were sent"):
        resolve_files([{"kind": "paint", "mask": ref}], ["/srv/a.png"])
    assert resolve_files([{"kind": "paint", "mask": "file:0"}], ["/srv/a.png"])[0]["mask"] == "/srv/a.png"


def test_one_request_has_a_total_steps_cap():
    from priorpaint.app.api import parse_edit_list
    from priorpaint.app.limits import Limits
    from priorpaint.errors import InputError

    specs = [{"kind": "scribble", "strokes": "file:0", "steps": 5000} for _ in range(8)]
    with pytest.raises(InputError, match=r"40000 optimisation steps in all; the limit is 20000 \(--max-request-steps\)"):
        Limits().spec_steps(specs)
    Limits().spec_steps(specs[:4])
    with pytest.raises(InputError, match="--max-request-steps"):
        parse_edit_list(json.dumps(specs[:3]), ["/srv/s.png"], Limits(max_request_steps=10000))


def test_cancel_touches_only_the_calling_clients_jobs():
    """Another host's or another id's job or session id cancels nothing (a remote client is its
    server-issued id: behind a proxy every visitor has the proxy's address); on loopback the
    machine owns its jobs, so a plain-HTTP client (a new Gradio session hash, maybe no cookie, on
    every call) cancels its own job from another call."""
    from priorpaint.app.api import Backend, client_key
    from priorpaint.app.clients import CLIENT_HEADER
    from priorpaint.app.sessions import JobRegistry

    class Req:
        def __init__(self, host, ident):
            self.client = type("C", (), {"host": host})()
            self.headers = {CLIENT_HEADER: ident}
    backend = Backend(jobs=JobRegistry(2, 4, 8))
    job = backend.jobs.new("edit", "sess-a", client=client_key(Req("10.0.0.5", "alice")))
    out = json.loads(backend.cancel(job.id, request=Req("10.0.0.9", "alice")))
    assert out["cancelled"] is False and not job.token.cancelled
    out = json.loads(backend.cancel("sess-a", request=Req("10.0.0.9", "mallory")))
    assert out["cancelled"] is False and not job.token.cancelled
    out = json.loads(backend.cancel("sess-a", request=Req("10.0.0.5", "mallory")))   # same proxy address
    assert out["cancelled"] is False and not job.token.cancelled
    out = json.loads(backend.cancel(job.id, request=Req("10.0.0.5", "alice")))
    assert out["cancelled"] is True and job.token.cancelled
    local = backend.jobs.new("project", None, client=client_key(Req("127.0.0.1", "call-1")))
    out = json.loads(backend.cancel(local.id, request=Req("127.0.0.1", "call-2")))
    assert out["cancelled"] is True and local.token.cancelled


def test_documented_bounds_match_the_code():
    from dataclasses import fields

    from priorpaint.app.limits import Limits
    from priorpaint.edits.segedit import SegEditConfig  # noqa: F401  (the cap below is its own)
    text = (ROOT / "docs" / "api.md").read_text()
    rows = dict(re.findall(r"^\| `(--[a-z-]+)` \| ([0-9.]+) \|", text, re.M))
    for f in fields(Limits):
        flag = Limits.flag(f.name)
        assert flag in rows, f"{flag} is not in docs/api.md's bounds table"
        assert float(rows[flag]) == float(f.default), (flag, rows[flag], f.default)
    steps_row = next(line for line in text.splitlines() if line.startswith("| `--max-steps`"))
    assert "segment" in steps_row and "2000" in steps_row   # segment's own, smaller range is stated


def test_the_download_status_names_no_server_path(monkeypatch):
    import priorpaint.models.download as dl
    import priorpaint.models.manifest as mf
    from priorpaint.app.api import Backend

    monkeypatch.setattr(mf, "load_manifest", lambda: {"m": object()})
    done = threading.Event()

    def fake(entry, progress=None):
        done.set()
        return dl.Downloaded("m", "/home/someone/.cache/huggingface/hub/blobs/abc/model.pt", "/home/someone/.cache",
                             "hub", 10, False)
    monkeypatch.setattr(dl, "download_entry", fake)
    statuses = list(Backend().download("m"))
    text = " ".join(statuses)
    assert json.loads(statuses[-1])["done"] is True and json.loads(statuses[-1])["file"] == "model.pt"
    assert "/home/someone" not in text and "/" not in json.dumps(json.loads(statuses[-1]).get("file"))


# -- saved vectors: quotas, LRU, namespaces -----------------------------------------------------------

def _vec(n=1000):
    import torch
    return torch.ones(1, 1, 1, n)   # 4 KB of float32


def test_vector_namespaces_need_the_servers_secret(tmp_cache):
    import hashlib

    from priorpaint.app.api import namespace_of
    from priorpaint.store import cache_root

    client = "127.0.0.1|alice"
    ns = namespace_of(client)
    assert len(ns) == 16 and ns == namespace_of(client) and ns != namespace_of("127.0.0.1|bob")
    # not the plain hash of the client's own value: knowing the value is not enough to name the folder
    assert ns != hashlib.sha256(("priorpaint-vectors|" + client).encode()).hexdigest()[:16]
    secret = cache_root() / ".namespace-secret"
    assert secret.exists() and (secret.stat().st_mode & 0o777) == 0o600


def test_a_clients_vectors_stay_under_its_quota_least_recently_used_first(tmp_cache, monkeypatch):
    import os
    import time

    from priorpaint.edits import vectors as V

    monkeypatch.setitem(V.QUOTA, "client_bytes", 3 * 4600)
    a, b = "a" * 16, "b" * 16
    for i, name in enumerate(("one", "two", "three")):
        V.save_vector("m", name, _vec(), {"split": "b8"}, namespace=a)
        for p in (V.vectors_dir("m", a)).glob(f"{name}.*"):
            os.utime(p, (time.time() - 100 + i, time.time() - 100 + i))
    V.load_vector("m", "one", a)                    # used: now the most recent
    V.save_vector("m", "four", _vec(), {"split": "b8"}, namespace=a)
    names = sorted(v["name"] for v in V.list_vectors("m", a))
    assert names == ["four", "one", "three"], names  # "two", least recently used, went
    V.save_vector("m", "mine", _vec(), {"split": "b8"}, namespace=b)
    assert [v["name"] for v in V.list_vectors("m", b)] == ["mine"]   # B's quota is its own
    assert len(V.list_vectors("m", a)) == 3


def test_the_global_vector_quota_evicts_the_largest_holder_first(tmp_cache, monkeypatch):
    from priorpaint.edits import vectors as V

    monkeypatch.setitem(V.QUOTA, "total_bytes", 5 * 4600)
    flood, quiet = "f" * 16, "0" * 16
    V.save_vector("m", "kept", _vec(), {"split": "b8"}, namespace=quiet)
    for i in range(8):
        V.save_vector("m", f"v{i}", _vec(), {"split": "b8"}, namespace=flood)
    assert [v["name"] for v in V.list_vectors("m", quiet)] == ["kept"]
    assert "v7" in [v["name"] for v in V.list_vectors("m", flood)]
    total = sum(p.stat().st_size for p in V.store.folder("vectors").rglob("*") if p.is_file())
    assert total <= 5 * 4600


def test_an_edits_status_names_its_files_as_the_client_sent_them():
    from priorpaint.app.api import refs_for_paths

    files = [{"path": "/tmp/priorpaint-serve-x/ab12/labels.png"}, "/tmp/priorpaint-serve-x/cd34/mask.png"]
    status = {"edits": [{"kind": "segment", "labels": "/tmp/priorpaint-serve-x/ab12/labels.png", "steps": 5},
                        {"kind": "paint", "mask": "/tmp/priorpaint-serve-x/cd34/mask.png", "k": 3}],
              "notes": ["kept"], "psnr": 30.5}
    out = refs_for_paths(status, files)
    assert out["edits"][0]["labels"] == "file:0" and out["edits"][1]["mask"] == "file:1"
    assert out["notes"] == ["kept"] and out["psnr"] == 30.5 and "/tmp" not in json.dumps(out)
    assert refs_for_paths(status, None) is status
