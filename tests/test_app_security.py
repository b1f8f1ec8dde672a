"""Issue 16: the server's reliability and security findings, one test (or more) per row.

Unit tests drive the bounds, the job registry, the session store and the ASGI guard
directly; one live ``priorpaint serve`` (module fixture) takes the real-HTTP cases: Host and
Origin headers, upload bounds, one-line errors, and SIGTERM (the last test, which stops it).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import numpy as np
import pytest
import torch
from PIL import Image

from app_server import ROOT, Server, call, file_data, free_port, upload
from conftest import skimage_data

BOX = "140,20,180,180"


# -- row 1: unbounded steps; cancel reaches interpolate's nested projection -------------------

def test_row1_steps_beyond_the_bound_are_refused_before_any_work():
    from priorpaint.app.api import Backend, parse_edit_list
    from priorpaint.app.limits import Limits
    from priorpaint.errors import InputError

    spec = json.dumps([{"kind": "interpolate", "other": "file:0", "t": 0.5, "steps": 10 ** 9}])
    with pytest.raises(InputError, match=r"steps must be between 0 and 5000 .*--max-steps"):
        parse_edit_list(spec, [str(skimage_data("astronaut.png"))], Limits())
    b = Backend()
    with pytest.raises(InputError, match="steps must be between 0 and 5000"):
        next(b.project(str(skimage_data("astronaut.png")), None, BOX, "", 10 ** 9))
    assert b.jobs.started == 0  # refused before a job existed


def _cancel_after(n: int, stages: list):
    from priorpaint.jobs import CancelToken
    token = CancelToken()

    def progress(stage, fraction, info):
        stages.append(stage)
        if len(stages) == n:
            token.cancel("cancelled by the test")
    return token, progress


def test_row1_cancel_stops_interpolates_nested_projection(tiny_session, tmp_cache):
    from priorpaint.errors import Cancelled

    stages: list = []
    token, progress = _cancel_after(4, stages)
    spec = {"kind": "interpolate", "other": str(skimage_data("chelsea.png")), "t": 0.5, "steps": 5000}
    with pytest.raises(Cancelled, match="cancelled by the test"):
        tiny_session.apply([spec], progress, token)
    assert stages[1:] == ["project"] * 3    # the nested projection of OTHER reported progress ...
    assert len(stages) <= 5                 # ... and stopped within one step of the cancel


# -- row 2: scribble / segment / interpolate take cancel and progress ---------------------------

def test_row2_the_edit_context_carries_the_jobs_cancel_and_progress(tiny_session):
    from priorpaint.jobs import CancelToken

    token, progress = CancelToken(), (lambda stage, fraction, info: None)
    ctx = tiny_session.context(progress, token)
    assert ctx.cancel is token and ctx.progress is progress


def test_row2_cancel_stops_a_scribble_within_one_step(tiny_session):
    from priorpaint.errors import Cancelled

    w, h = tiny_session.photo.size
    strokes = np.zeros((h, w, 4), np.uint8)
    strokes[60:120, 200:260] = (255, 0, 0, 255)
    stages: list = []
    token, progress = _cancel_after(5, stages)
    with pytest.raises(Cancelled):
        tiny_session.apply([{"kind": "scribble", "strokes": strokes, "steps": 5000}], progress, token)
    assert stages.count("scribble") >= 3 and len(stages) <= 6


# -- row 3: nothing waits for a worker thread when a stream closes -------------------------------

def test_row3_closing_a_stream_never_waits_for_a_stuck_worker():
    from priorpaint.app.sessions import JobRegistry, run_job

    jobs = JobRegistry(slots=1)
    release = threading.Event()

    def stuck(progress, cancel):          # a step that ignores cancel until released
        progress("work", 0.1, {})
        release.wait(60)
        cancel.check()
        return "never"

    job = jobs.new("test")
    stream = run_job(jobs, job, stuck, min_interval=0.0)
    next(stream)
    stream.close()                          # returns at once: no join on the worker
    assert job.token.cancelled and job.thread.is_alive()
    release.set()
    deadline = time.monotonic() + 30
    while jobs.running() or jobs.busy:      # the worker frees its slot and leaves the registry itself
        assert time.monotonic() < deadline
        time.sleep(0.02)


# -- row 4: per-client caps; fair slots; jobs of a gone client never start ----------------------

def test_row4_per_client_and_global_caps_refuse_with_one_line():
    from priorpaint.app.sessions import JobRegistry
    from priorpaint.errors import InputError

    jobs = JobRegistry(slots=1, max_client_jobs=2, max_jobs=3)
    jobs.new("project", client="A")
    jobs.new("project", client="A")
    with pytest.raises(InputError, match=r"this client already has 2 jobs .*--max-client-jobs"):
        jobs.new("project", client="A")
    jobs.new("project", client="B")
    with pytest.raises(InputError, match=r"the server has 3 jobs .*--max-jobs"):
        jobs.new("project", client="C")
    assert jobs.refused == 2


def test_row4_a_free_slot_goes_to_the_client_with_the_fewest_running_and_gone_jobs_never_start():
    from priorpaint.app.sessions import JobRegistry, run_job
    from priorpaint.errors import Cancelled

    jobs = JobRegistry(slots=1, max_client_jobs=10, max_jobs=10)
    order, gate = [], threading.Event()

    def work_of(name):
        def work(progress, cancel):
            order.append(name)
            if name == "A1":
                gate.wait(60)
            return name
        return work

    def consume(job, name, out):
        try:
            out[name] = list(run_job(jobs, job, work_of(name)))[-1]
        except Cancelled as e:
            out[name] = e

    out: dict = {}
    threads = []

    def start(name, client):
        job = jobs.new("t", client=client)
        t = threading.Thread(target=consume, args=(job, name, out))
        t.start()
        threads.append(t)
        return job

    def waiting(n):
        deadline = time.monotonic() + 30
        while len(jobs._waiting) < n:
            assert time.monotonic() < deadline
            time.sleep(0.01)

    start("A1", "A")
    while not order:
        time.sleep(0.01)
    start("A2", "A"); waiting(1)
    start("A3", "A"); waiting(2)
    gone = start("C1", "C"); waiting(3)
    start("B1", "B"); waiting(4)
    gone.token.cancel("the client went away")       # C left while its job waited
    gate.set()
    for t in threads:
        t.join(60)
    # round robin over the clients with the fewest running: B (never served) before A's next
    assert order == ["A1", "B1", "A2", "A3"]
    assert isinstance(out["C1"], Cancelled) and jobs.dropped == 1 and jobs.busy == 0


# -- rows 5, 11, 13: names never become paths; no server paths in messages ------------------------

def test_row5_model_names_are_manifest_ids_never_paths():
    from priorpaint.app.api import Backend
    from priorpaint.edits.directions.named import directions_manifest_path
    from priorpaint.errors import InputError

    b = Backend()
    for name in ("../../../../tmp/x/app-config", "/etc/passwd", "nope"):
        with pytest.raises(InputError, match="unknown model") as e:
            b.directions(name)
        assert "known models: dcgan-digiface-64" in str(e.value)
        with pytest.raises(InputError):
            b.concepts(name)
    for name in ("../x", "/tmp/x", "a/b", ".."):
        with pytest.raises(InputError, match="unknown model"):
            directions_manifest_path(name)


def test_row13_messages_never_show_server_paths():
    from priorpaint.app.api import no_paths, one_line

    assert no_paths("cannot read /tmp/priorpaint-serve-x/abc/photo.png: bad") == "cannot read photo.png: bad"
    assert "/" not in one_line("file '/home/u/.cache/priorpaint/vectors/m/v.safetensors'\nsecond line")
    assert "\n" not in one_line("a\nb")


def test_row11_vectors_live_in_per_client_namespaces(tmp_cache):
    from priorpaint.app.api import namespace_of
    from priorpaint.edits.vectors import list_vectors, load_vector, save_vector
    from priorpaint.errors import InputError

    a, b = namespace_of("127.0.0.1|alice"), namespace_of("127.0.0.1|bob")
    assert a != b and len(a) == 16
    save_vector("m", "smile", torch.ones(1, 2, 2, 2), {"split": "b8"}, namespace=a)
    assert [v["name"] for v in list_vectors("m", a)] == ["smile"]
    assert list_vectors("m", b) == [] and list_vectors("m") == []   # B and the CLI see nothing of A's
    with pytest.raises(InputError, match="unknown vector 'smile'"):
        load_vector("m", "smile", b)
    save_vector("m", "smile", torch.zeros(1, 2, 2, 2), {"split": "b8"}, namespace=b)  # B's own, A's kept
    assert float(load_vector("m", "smile", a)[0]["delta_h"].sum()) == 8.0
    with pytest.raises(InputError, match="16 hex digits"):
        list_vectors("m", "../../x")
    with pytest.raises(InputError, match="vector name"):
        load_vector("m", "../smile", a)


# -- rows 6, 10: large fields and many edits are refused without echoing them --------------------

def test_row6_large_fields_are_refused_with_a_short_line():
    from priorpaint.app.api import Backend, parse_edit_list
    from priorpaint.app.limits import Limits
    from priorpaint.errors import InputError

    b = Backend()
    huge = "x" * 2_000_000
    for call_ in (lambda: b.cancel(huge), lambda: b.directions(huge), lambda: next(b.edit(huge))):
        with pytest.raises(InputError, match="characters; the limit is 256") as e:
            call_()
        assert len(str(e.value)) < 200
    pad = json.dumps([{"kind": "direction", "name": "sefa0", "strength": 1, "pad": huge}])
    with pytest.raises(InputError, match="--max-spec-chars") as e:
        parse_edit_list(pad, [], Limits())
    assert len(str(e.value)) < 200
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(InputError, match="nested deeper than 8"):
        parse_edit_list(deep, [], Limits(max_spec_chars=10 ** 6))


def test_row10_edits_per_request_are_bounded():
    from priorpaint.app.api import parse_edit_list
    from priorpaint.app.limits import Limits
    from priorpaint.errors import InputError

    many = json.dumps([{"kind": "direction", "name": "sefa0", "strength": 0.1}] * 65)
    with pytest.raises(InputError, match=r"65 edits in one request; the limit is 64 \(--max-edits\)"):
        parse_edit_list(many, [], Limits())
    assert len(parse_edit_list(many, [], Limits(max_edits=65))) == 65


# -- rows 7, 14: session quotas per client; the flags reach the store ------------------------------

class _S:
    def __init__(self, sid, size):
        self.id, self.size, self.used = sid, size, time.time()

    def nbytes(self):
        return self.size


def test_row7_no_client_evicts_another_clients_sessions():
    from priorpaint.app.sessions import SessionStore
    from priorpaint.errors import InputError

    store = SessionStore(max_sessions=8, max_bytes=1000, max_client_sessions=4, max_client_bytes=400)
    for i in range(3):
        store.put(_S(f"a{i}", 100), "A")
    for i in range(20):                       # B floods the store
        store.put(_S(f"b{i}", 100), "B")
    assert all(f"a{i}" in store for i in range(3))
    assert sum(f"b{i}" in store for i in range(20)) == 4 and "b19" in store
    with pytest.raises(InputError, match="more than the server can keep beside the other clients"):
        store.put(_S("bhuge", 900), "B")      # too large to keep without pushing A out
    assert all(f"a{i}" in store for i in range(3)) and "bhuge" not in store
    assert store.stats()["clients"] == 2


def test_row14_max_sessions_and_max_session_mb_reach_the_store():
    from priorpaint.app.api import Backend
    from priorpaint.app.server import build
    from priorpaint.app.sessions import SessionStore

    empty = SessionStore(max_sessions=2)
    assert Backend(store=empty).store is empty          # an empty store is still the store given
    _, backend = build(max_sessions=3, max_session_mb=1.5)
    assert backend.store.max_sessions == 3 and backend.store.max_bytes == int(1.5 * 1024 * 1024)


# -- rows 8, 12: the ASGI guard, driven directly ------------------------------------------------------

def _asgi(guard, path="/gradio_api/info", method="GET", headers=(), query=b"", scheme="http"):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)
    scope = {"type": "http", "method": method, "path": path, "query_string": query, "scheme": scheme,
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers]}
    asyncio.run(guard(scope, receive, send))
    start = sent[0]
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, b"".join(
        m.get("body", b"") for m in sent[1:])


async def _ok_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def test_row8_without_a_token_only_loopback_hosts_and_origins_pass():
    from priorpaint.app.guard import Guard

    g = Guard(_ok_app, loopback_port=7860)
    for host in ("127.0.0.1:7860", "localhost:7860", "[::1]:7860"):
        assert _asgi(g, headers=[("Host", host)])[0] == 200
        assert _asgi(g, headers=[("Host", host), ("Origin", f"http://{host}")])[0] == 200
    for host in ("evil.example:7860", "evil.example", "127.0.0.1:80", "127.0.0.1.nip.io:7860"):
        status, _, body = _asgi(g, headers=[("Host", host)])
        assert status == 403 and b"DNS rebinding" in body
    for origin in ("http://evil.example", "null", "http://127.0.0.1:9999", "file://"):
        status, _, body = _asgi(g, method="POST", path="/gradio_api/upload",
                                headers=[("Host", "127.0.0.1:7860"), ("Origin", origin)])
        assert status == 403 and b"cross-origin request" in body and json.loads(body)["detail"]


def test_row12_tokens_are_long_and_query_tokens_only_open_the_page():
    from priorpaint.app.guard import Guard, check_token
    from priorpaint.errors import InputError

    for bad in ("a", " ", "short-token", " padded-token-0123456789 ", "has space 0123456789"):
        with pytest.raises(InputError, match="at least 16 characters"):
            check_token(bad)
    t = "a-long-enough-token-123"
    g = Guard(_ok_app, token=t)
    assert _asgi(g, headers=[("Authorization", f"Bearer {t}")])[0] == 200
    status, hdrs, _ = _asgi(g, path="/", query=f"token={t}".encode())
    assert status == 200 and "HttpOnly" in hdrs["set-cookie"] and "Secure" not in hdrs["set-cookie"]
    status, hdrs, _ = _asgi(g, path="/", query=f"token={t}".encode(), scheme="https")
    assert "; Secure" in hdrs["set-cookie"]
    for path, method in (("/gradio_api/info", "GET"), ("/gradio_api/call/project", "POST")):
        assert _asgi(g, path=path, method=method, query=f"token={t}".encode())[0] == 401
    assert _asgi(g, headers=[("Cookie", f"priorpaint_token={t}")])[0] == 200


def test_row12_short_tokens_are_refused_and_ipv6_loopback_serves(tmp_path):
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    r = subprocess.run([sys.executable, "-m", "priorpaint.cli", "serve", "--token", "a", "--port", "1"],
                       capture_output=True, text=True, timeout=60, cwd=str(ROOT), env=env)
    assert r.returncode == 2 and "--token must be at least 16 characters" in r.stderr
    port = free_port()
    log = open(tmp_path / "v6.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "priorpaint.cli", "serve", "--host", "::1", "--port", str(port),
                             "--steps", "5"], stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT),
                            env=dict(env, PRIORPAINT_SERVER_TMP=""))
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "v6.log").read_text()
            try:
                with urllib.request.urlopen(f"http://[::1]:{port}/gradio_api/info", timeout=2) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "v6.log").read_text()
                time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        log.close()


# -- the live server: real HTTP -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("server-tmp")
    s = Server("--steps", "5", "--max-request-mb", "1", "--max-upload-disk-mb", "3", "--max-edits", "8",
               env={"PRIORPAINT_SERVER_TMP": str(tmp)})
    s.tmp = tmp
    yield s
    s.stop()


def _request(url, method="GET", headers=None, data=None):
    req = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _multipart(parts):
    b = "----pp" + uuid.uuid4().hex
    body = b""
    for name, data in parts:
        body += (f"--{b}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
                 f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    return body + f"--{b}--\r\n".encode(), {"Content-Type": f"multipart/form-data; boundary={b}"}


def _files_under(folder):
    return [os.path.join(r, f) for r, _, fs in os.walk(folder) for f in fs]


def test_row8_dns_rebinding_and_cross_origin_requests_are_refused_over_http(live):
    status, hdrs, body = _request(live.url + "/gradio_api/info", headers={"Host": "evil.example"})
    assert status == 403 and "access-control-allow-origin" not in {k.lower() for k in hdrs}
    assert "loopback" in json.loads(body)["detail"]
    status, hdrs, _ = _request(live.url + "/gradio_api/info", headers={"Origin": "http://evil.example"})
    assert status == 403 and "access-control-allow-origin" not in {k.lower() for k in hdrs}
    marker = b"cross-origin-" + uuid.uuid4().hex.encode()
    body, h = _multipart([("x.png", marker)])
    status, _, _ = _request(live.url + "/gradio_api/upload", "POST", dict(h, Origin="http://evil.example"), body)
    assert status == 403
    assert not any(marker in open(p, "rb").read() for p in _files_under(live.tmp))   # never stored
    status, hdrs, _ = _request(live.url + "/gradio_api/info", headers={"Origin": live.url})
    assert status == 200  # the server's own page may call it


def test_row13_bad_inputs_get_one_clear_line(live):
    path = upload(live.url, skimage_data("astronaut.png").read_bytes(), "a.png")
    cases = [
        ("project", [file_data(path), None, "inf,0,10,10", "", 5, 0, False], "four numbers X,Y,W,H"),
        ("project", [file_data(path), None, BOX, "", 5, 2 ** 70, False], "seed must be between 0 and 2147483647"),
        ("project", [[1, 2], None, BOX, "", 5, 0, False], "FileData"),
        ("project", [1], "didn't receive enough input values"),
        ("project", [file_data(path), None, BOX, "../../../../tmp/x/app-config", 5, 0, False], "unknown model"),
        ("directions", ["../../../../tmp/x/app-config"], "unknown model"),
        ("edit", ["no-such-session", "[" * 100_000, False, None, "detail"], "characters; the limit is"),
    ]
    for api, data, expected in cases:
        event, payload = call(live.url, api, data)[-1]
        assert event == "error", (api, payload)
        msg = payload["error"] if isinstance(payload, dict) else payload
        assert isinstance(msg, str) and expected in msg, (api, msg)
        assert "\n" not in msg and "internal error" not in msg and str(live.tmp) not in msg, msg


def test_row9_one_upload_request_is_bounded_in_total(live):
    parts = [(f"p{i}.bin", os.urandom(400 * 1024)) for i in range(3)]    # 3 × 0.4 MB > 1 MB, each < 50 MB
    before = len(_files_under(live.tmp))
    body, h = _multipart(parts)
    status, _, text = _request(live.url + "/gradio_api/upload", "POST", h, body)
    assert status == 413 and "--max-request-mb" in json.loads(text)["detail"]
    assert len(_files_under(live.tmp)) == before


def test_row9_upload_disk_is_bounded(live):
    refused = None
    for i in range(12):
        body, h = _multipart([(f"d{i}.bin", os.urandom(600 * 1024))])
        status, _, text = _request(live.url + "/gradio_api/upload", "POST", h, body)
        if status != 200:
            refused = (status, json.loads(text)["detail"])
            break
    assert refused and refused[0] == 507 and "--max-upload-disk-mb" in refused[1]
    used = sum(os.path.getsize(p) for p in _files_under(live.tmp))
    assert used <= 3 * 1024 * 1024 + 1024 * 1024  # the bound plus at most one request


def test_row9_sigterm_stops_and_removes_this_servers_files(live):
    assert _files_under(live.tmp)                   # uploads from the tests above
    live.proc.send_signal(signal.SIGTERM)
    assert live.proc.wait(60) == 0
    assert not os.path.exists(live.tmp) or not _files_under(live.tmp)
    assert "priorpaint: stopped (SIGTERM)" in live.log()


def test_row4_one_client_never_holds_every_slot():
    from priorpaint.app.sessions import JobRegistry, run_job

    jobs = JobRegistry(slots=2, max_client_jobs=10, max_jobs=10)
    started, gate = [], threading.Event()

    def work_of(name):
        def work(progress, cancel):
            started.append(name)
            if name.startswith("A"):
                gate.wait(60)
            return name
        return work

    threads = []
    deadline = time.monotonic() + 30
    for name, client in (("A1", "A"), ("A2", "A")):
        job = jobs.new("t", client=client)
        threads.append(threading.Thread(target=lambda j=job, n=name: list(run_job(jobs, j, work_of(n)))))
        threads[-1].start()
        while name == "A1" and started != ["A1"]:                  # A1 runs first
            assert time.monotonic() < deadline
            time.sleep(0.01)
    while not (started == ["A1"] and len(jobs._waiting) == 1):   # A2 waits although a slot is free
        assert time.monotonic() < deadline, (started, jobs._waiting)
        time.sleep(0.01)
    out = list(run_job(jobs, jobs.new("t", client="B"), work_of("B1")))   # B gets the free slot at once
    assert out[-1] == {"result": "B1"} and "A2" not in started
    gate.set()
    for t in threads:
        t.join(60)
    assert started == ["A1", "B1", "A2"]


def test_row6_api_bodies_are_bounded_before_parsing():
    from priorpaint.app.guard import Guard

    g = Guard(_ok_app, max_body_mb=1)
    status, _, body = _asgi(g, path="/gradio_api/call/edit", method="POST",
                            headers=[("Content-Length", str(20 * 1024 * 1024))])
    assert status == 413 and "--max-body-mb" in json.loads(body)["detail"]
    assert _asgi(g, path="/gradio_api/call/edit", method="POST", headers=[("Content-Length", "100")])[0] == 200
