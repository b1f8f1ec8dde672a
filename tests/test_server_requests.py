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
    from priorpaint.app.api import Backend
    from priorpaint.app.sessions import JobRegistry

    class Req:
        def __init__(self, sh):
            self.client = type("C", (), {"host": "127.0.0.1"})()
            self.session_hash = sh
    backend = Backend(jobs=JobRegistry(2, 4, 8))
    from priorpaint.app.api import client_key
    job = backend.jobs.new("edit", "sess-a", client=client_key(Req("alice")))
    out = json.loads(backend.cancel(job.id, request=Req("mallory")))
    assert out["cancelled"] is False and not job.token.cancelled
    out = json.loads(backend.cancel("sess-a", request=Req("mallory")))
    assert out["cancelled"] is False and not job.token.cancelled
    out = json.loads(backend.cancel(job.id, request=Req("alice")))
    assert out["cancelled"] is True and job.token.cancelled


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
