"""Issue 28: no absolute server path in any response, and what a client owns is bound to an id
the server issued (not to Gradio's client-chosen ``session_hash``).

The guard is driven directly with small ASGI apps; one live ``priorpaint serve`` checks every
byte of every response of upload / project / edit / preview / download over plain HTTP, through
gradio_client and through the GIMP bridge, and that two clients with the same ``session_hash``
each list only their own saved vectors.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import os
import re
import sys
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

from app_server import Server, file_data, png_array
from conftest import skimage_data

from priorpaint.app.filenames import PUBLIC, FileNames
from priorpaint.app.clients import CLIENT_COOKIE, CLIENT_HEADER
from priorpaint.app.guard import Guard

BOX = "140,20,180,180"


# -- the name map ------------------------------------------------------------------------------

def test_file_names_hide_the_folder_and_map_public_names_back(tmp_path):
    folder = str(tmp_path / "priorpaint-serve-x")
    names = FileNames(folder)
    out = names.hide(json.dumps({"path": f"{folder}/ab12/image.png",
                                 "url": f"http://h/gradio_api/file={folder}/ab12/image.png"}).encode())
    assert folder.encode() not in out and str(tmp_path).encode() not in out
    assert json.loads(out)["path"] == f"{PUBLIC}/ab12/image.png"
    assert names.hide(urllib.parse.quote(folder, safe="").encode() + b"%2Fx") == PUBLIC.encode() + b"%2Fx"
    assert names.request_path(f"/gradio_api/file={PUBLIC}/ab12/image.png") == \
        f"/gradio_api/file={os.path.realpath(folder)}/ab12/image.png"
    assert names.request_path(f"/gradio_api/file={PUBLIC}/../../etc/passwd") is None
    assert names.request_path("/gradio_api/file=/etc/passwd") is None      # not ours: left to Gradio
    body = json.dumps({"data": [{"path": f"{PUBLIC}/ab12/p.png"}, {"path": f"{PUBLIC}/../x"}]}).encode()
    back = json.loads(names.reveal(body))["data"]
    assert back[0]["path"] == f"{os.path.realpath(folder)}/ab12/p.png" and back[1]["path"] == f"{PUBLIC}/../x"


def test_a_path_split_across_two_streamed_chunks_is_still_hidden(tmp_path):
    folder = str(tmp_path / "f")
    names = FileNames(folder)
    text = f'data: ["{folder}/ab/image.png"]\n\n'.encode()
    for cut in range(1, len(text)):
        sent, held = names.hide_stream(b"", text[:cut], False)
        rest, held = names.hide_stream(held, text[cut:], True)
        assert sent + rest == f'data: ["{PUBLIC}/ab/image.png"]\n\n'.encode() and held == b""
    sent, held = names.hide_stream(b"", b"event: heartbeat\n\n", False)
    assert sent == b"event: heartbeat\n\n" and held == b""    # a whole event is never held back


# -- the guard with a small app ----------------------------------------------------------------------

def _drive(guard, path="/x", method="GET", headers=(), body=b""):
    """Run one request through ``guard``; (status, headers, body)."""
    sent, chunks = [], [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(m):
        sent.append(m)
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [(k.encode(), v.encode()) for k, v in headers], "client": ("127.0.0.1", 5)}
    asyncio.run(guard(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return (start["status"], dict((k.decode(), v.decode()) for k, v in start["headers"]),
            b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))


def _echo_app(folder, seen):
    """Answers with the folder's paths: a JSON body (with its length) and a stream of events."""
    async def app(scope, receive, send):
        seen.append(scope)
        message = await receive()
        seen.append(message.get("body", b""))
        path = f"{folder}/abc/image.png"
        if scope["path"].endswith("/stream"):
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")]})
            text = f'event: complete\ndata: [{{"path": "{path}"}}]\n\n'.encode()
            for i in range(0, len(text), 7):
                await send({"type": "http.response.body", "body": text[i:i + 7], "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        body = json.dumps([path, f"http://h/gradio_api/file={path}"]).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"x-where", path.encode())]})
        await send({"type": "http.response.body", "body": body})
    return app


def test_the_guard_hides_the_servers_folder_in_every_answer(tmp_path):
    folder = str(tmp_path / "srv")
    seen = []
    guard = Guard(_echo_app(folder, seen), files_dir=folder)
    status, headers, body = _drive(guard, "/gradio_api/upload_like", headers=[("accept-encoding", "gzip, br")])
    assert status == 200 and str(tmp_path).encode() not in body and str(tmp_path) not in json.dumps(headers)
    assert json.loads(body)[0] == f"{PUBLIC}/abc/image.png" and int(headers["content-length"]) == len(body)
    assert not any(k == b"accept-encoding" for k, _ in seen[0]["headers"])   # answers come uncompressed
    status, _, body = _drive(guard, "/gradio_api/stream")
    assert body == f'event: complete\ndata: [{{"path": "{PUBLIC}/abc/image.png"}}]\n\n'.encode()


def test_the_guard_maps_public_names_back_in_file_routes_and_json_bodies(tmp_path):
    folder = str(tmp_path / "srv")
    seen = []
    guard = Guard(_echo_app(folder, seen), files_dir=folder)
    _drive(guard, f"/gradio_api/file={PUBLIC}/abc/image.png")
    assert seen[0]["path"] == f"/gradio_api/file={os.path.realpath(folder)}/abc/image.png"
    seen.clear()
    payload = json.dumps({"data": [{"path": f"{PUBLIC}/abc/p.png", "meta": {"_type": "gradio.FileData"}}]})
    _drive(guard, "/gradio_api/call/project", "POST", [("content-type", "application/json"),
                                                        ("content-length", str(len(payload)))], payload.encode())
    assert json.loads(seen[1])["data"][0]["path"] == f"{os.path.realpath(folder)}/abc/p.png"
    status, _, body = _drive(guard, f"/gradio_api/file={PUBLIC}/../../etc/passwd")
    assert status == 404 and b"no such file" in body


def test_the_guard_issues_a_signed_client_id_and_never_takes_the_clients_own(tmp_path, monkeypatch):
    monkeypatch.setenv("PRIORPAINT_CACHE", str(tmp_path / "cache"))
    seen = []
    guard = Guard(_echo_app(str(tmp_path), seen), files_dir=str(tmp_path))
    _, headers, _ = _drive(guard, "/config", headers=[(CLIENT_HEADER, "chosen-by-the-client")])
    cookie = headers["set-cookie"]
    assert cookie.startswith(CLIENT_COOKIE + "=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    ident = dict(seen[0]["headers"])[CLIENT_HEADER.encode()].decode()
    assert value.startswith(ident + ".") and ident != "chosen-by-the-client"
    assert [v for k, v in seen[0]["headers"] if k == CLIENT_HEADER.encode()] == [ident.encode()]
    seen.clear()
    _, headers, _ = _drive(guard, "/config", headers=[("cookie", f"{CLIENT_COOKIE}={value}")])
    assert "set-cookie" not in headers and dict(seen[0]["headers"])[CLIENT_HEADER.encode()].decode() == ident
    seen.clear()
    forged = f"{CLIENT_COOKIE}=someone-else-id.{'0' * 32}"
    _, headers, _ = _drive(guard, "/config", headers=[("cookie", forged)])
    assert "set-cookie" in headers and dict(seen[0]["headers"])[CLIENT_HEADER.encode()] != b"someone-else-id"


def test_client_keys_use_the_verified_id_not_the_session_hash():
    from priorpaint.app.api import client_key

    class Req:
        def __init__(self, host, sh, ident=None):
            self.client = type("C", (), {"host": host})()
            self.session_hash = sh
            self.headers = {CLIENT_HEADER: ident} if ident else {}

    a, b = client_key(Req("127.0.0.1", "same", "id-a")), client_key(Req("127.0.0.1", "same", "id-b"))
    assert a != b and "same" not in a + b and a == client_key(Req("127.0.0.1", "other", "id-a"))
    assert client_key(Req("127.0.0.1", "same")) != client_key(Req("127.0.0.1", "same"))   # no id: its own
    assert client_key(Req("10.0.0.5", "same", "id-a")) == "10.0.0.5|id-a"   # remote too: by the id (a proxy)


# -- live ---------------------------------------------------------------------------------------------

class Recorder:
    """Plain HTTP with a cookie jar; every response's status line, headers and body are kept."""

    def __init__(self, url):
        self.url, self.raw = url, []
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def open(self, path, body=None, headers=None, method=None):
        req = urllib.request.Request(path if path.startswith("http") else self.url + path, data=body,
                                     headers=headers or {}, method=method)
        with self.opener.open(req, timeout=300) as r:
            data = r.read()
        self.raw.append(str(r.headers).encode() + b"\n" + data)
        return data

    def upload(self, data, name="photo.png"):
        b = "----pp" + uuid.uuid4().hex
        body = (f"--{b}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{b}--\r\n".encode()
        return json.loads(self.open("/gradio_api/upload", body, {"Content-Type": f"multipart/form-data; boundary={b}"}))[0]

    def call(self, api, data, session_hash=None):
        payload = {"data": data, **({"session_hash": session_hash} if session_hash else {})}
        eid = json.loads(self.open(f"/gradio_api/call/{api}", json.dumps(payload).encode(),
                                   {"Content-Type": "application/json"}))["event_id"]
        text = self.open(f"/gradio_api/call/{api}/{eid}").decode()
        events = re.findall(r"event: (\w+)\ndata: (.*)\n", text)
        assert events and events[-1][0] == "complete", text[-500:]
        return json.loads(events[-1][1])


def _absolute_paths(blob: bytes, server) -> list:
    """Absolute server paths in ``blob``: the server's folder, /tmp, the home and the checkout."""
    text = blob.decode("utf-8", "replace")
    places = {str(server.tmp), os.path.realpath(str(server.tmp)), "/tmp/", str(Path.home()) + "/",
              str(Path(__file__).resolve().parent.parent), os.path.realpath(sys.prefix)}
    return [p for p in places if p in text or urllib.parse.quote(p, safe="") in text]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("paths-tmp")
    cache = tmp_path_factory.mktemp("paths-cache")
    s = Server("--steps", "5", env={"PRIORPAINT_SERVER_TMP": str(tmp), "PRIORPAINT_CACHE": str(cache)})
    s.tmp, s.cache = tmp, cache
    yield s
    s.stop()


@pytest.mark.e2e
def test_live_no_response_names_a_server_path_and_every_client_gets_its_images(live):
    photo = skimage_data("astronaut.png")
    http = Recorder(live.url)
    path = http.upload(photo.read_bytes(), "astronaut.png")
    assert path.startswith(PUBLIC + "/")
    out = http.call("project", [file_data(path), None, BOX, "", 5, 0, False])
    session = json.loads(out[0])["session"]
    spec = json.dumps([{"kind": "direction", "name": "sefa0", "strength": 1.0}])
    out = http.call("edit", [session, spec, False, None, "detail"])
    result = png_array(http.open(out[1]["url"]))
    assert result.shape == png_array(photo).shape
    assert png_array(http.open(f"/gradio_api/file={out[2]['path']}")).shape[2] == 4   # by path, as gradio_client
    prev = http.call("preview", [session, spec])
    assert png_array(http.open(prev[0]["url"])).ndim == 3
    assert json.loads(http.call("download", ["dcgan-digiface-64"])[0])["done"]
    http.open("/config")
    http.open("/gradio_api/info")
    leaks = [(i, _absolute_paths(b, live)) for i, b in enumerate(http.raw) if _absolute_paths(b, live)]
    assert not leaks, leaks

    from gradio_client import Client, handle_file
    client = Client(live.url, verbose=False, download_files=False)
    out = client.predict(handle_file(str(photo)), None, BOX, "", 5, 0, False, api_name="/project")
    assert _absolute_paths(json.dumps(out).encode(), live) == [] and out[1]["path"].startswith(PUBLIC)
    client = Client(live.url, verbose=False)   # downloads every output by its path
    out = client.predict(handle_file(str(photo)), None, BOX, "", 5, 0, False, api_name="/project")
    assert png_array(out[1]).shape == (64, 64, 3)

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from gimp_bridge.client import Client as Bridge
    bridge = Bridge(live.url)
    up = bridge.upload(photo.read_bytes(), "astronaut.png")
    assert up.startswith(PUBLIC + "/")
    outs = bridge.call("project", [file_data(up), None, BOX, "", 5, 0, False])
    assert png_array(bridge.download(outs[1])).shape == (64, 64, 3)


@pytest.mark.e2e
def test_live_clients_with_the_same_session_hash_list_only_their_own_vectors(live, monkeypatch):
    import torch

    from priorpaint.edits.vectors import save_vector
    from priorpaint.store import client_namespace
    monkeypatch.setenv("PRIORPAINT_CACHE", str(live.cache))
    names = {}
    for who in ("alice", "bob"):
        http = Recorder(live.url)
        http.open("/config")   # first contact: the server's id in a cookie
        cookie = next(c for c in http.opener.handlers if isinstance(c, urllib.request.HTTPCookieProcessor)).cookiejar
        ident = next(c.value for c in cookie if c.name == CLIENT_COOKIE).split(".")[0]
        save_vector("dcgan-digiface-64", f"{who}-hair", torch.zeros(1, 2, 2, 2), {"split": "b8"},
                    namespace=client_namespace(f"127.0.0.1|{ident}"))
        names[who] = http

    def listed(http, session_hash="shared-hash"):
        out = http.call("concepts", [""], session_hash=session_hash)
        return sorted(v["name"] for v in json.loads(out[0]).get("vectors", []))

    assert listed(names["alice"]) == ["alice-hair"]
    assert listed(names["bob"]) == ["bob-hair"]
    assert listed(Recorder(live.url)) == []     # a new client, same session_hash: nothing of theirs


@pytest.mark.e2e
def test_live_x_forwarded_for_from_an_untrusted_peer_is_ignored(live):
    """A server started without --forwarded-allow-ips believes no X-Forwarded-For (uvicorn's own
    reading trusted 127.0.0.1): a loopback client that claims a remote address stays the
    machine's, so its cookie-less edit reaches the session its project made."""
    photo = skimage_data("astronaut.png").read_bytes()
    spoof = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}
    req = urllib.request.Request(live.url + "/gradio_api/info", headers=spoof)
    with urllib.request.urlopen(req, timeout=60) as r:
        cookie = r.headers.get("Set-Cookie") or ""
    assert "SameSite=Strict" in cookie and "Secure" not in cookie
    from app_server import call, upload
    path = upload(live.url, photo, "astronaut.png", headers=spoof)
    events = call(live.url, "project", [file_data(path), None, BOX, "", 5, 0, False], headers=spoof)
    session = json.loads(events[-1][1][0])["session"]
    spec = json.dumps([{"kind": "direction", "name": "sefa0", "strength": 1.0}])
    events = call(live.url, "edit", [session, spec, False, None, "detail"], headers=spoof)
    assert events[-1][0] == "complete", events[-1]


# -- aborted uploads: one log line --------------------------------------------------------------------

def test_an_aborted_upload_logs_one_line_not_a_traceback(tmp_path, caplog):
    from starlette.requests import Request

    async def app(scope, receive, send):   # reads its body the way Gradio's upload route does
        async for _ in Request(scope, receive).stream():
            pass
    chunks = [{"type": "http.request", "body": b"x" * 1000, "more_body": True}, {"type": "http.disconnect"}]

    async def receive():
        return chunks.pop(0)

    async def send(m):
        raise AssertionError("nothing is sent to a client that left")
    scope = {"type": "http", "method": "POST", "path": "/gradio_api/upload", "raw_path": b"/gradio_api/upload",
             "query_string": b"", "headers": [(b"content-length", b"5000"), (b"content-type", b"multipart/form-data")],
             "client": ("127.0.0.1", 5)}
    caplog.set_level("INFO", logger="priorpaint.app.guard")
    asyncio.run(Guard(app, files_dir=str(tmp_path))(scope, receive, send))   # no ClientDisconnect raised
    lines = [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0].getMessage() and lines[0].exc_info is None
    assert "after 1000 bytes" in lines[0].getMessage()


# -- soak: the freed work of a job goes back to the system --------------------------------------------

def test_the_last_running_job_hands_freed_heap_back(monkeypatch):
    import priorpaint.app.sessions as S

    trims = []
    monkeypatch.setattr(S, "give_back_freed_memory", lambda: trims.append(1) or True)
    jobs = S.JobRegistry(slots=2)
    a, b = jobs.new("project", client="x"), jobs.new("edit", client="y")
    jobs.acquire(a, lambda: None)
    jobs.acquire(b, lambda: None)
    jobs.release(a)
    assert trims == []                   # another job still runs: its arrays are in use
    jobs.release(b)
    assert trims == [1]


def test_malloc_trim_is_reached_on_glibc():
    import platform

    import priorpaint.app.sessions as S
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim is glibc's")
    assert S.give_back_freed_memory() is True
