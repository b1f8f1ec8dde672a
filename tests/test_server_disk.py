"""Issue 28, disk that heals: the upload folder is bounded while bytes arrive, expires, evicts
its oldest unused files under pressure, and keeps no partial upload.

The guard is driven directly with a small ASGI app that stores bodies the way Gradio does
(a top-level ``tmpXXXX`` file, moved into a hashed folder when the body is complete); one
live ``priorpaint serve`` checks aborted uploads and a full disk over real HTTP.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import tempfile
import time
import urllib.error
import urllib.request
import uuid

import pytest

from app_server import Server

MB = 1024 * 1024


def _files(folder):
    return [os.path.join(r, f) for r, _, fs in os.walk(folder) for f in fs]


def _used(folder):
    return sum(os.path.getsize(p) for p in _files(folder))


def _storing_app(folder):
    """Stores a body like Gradio's upload route: tmpXXXX first, then a hashed folder."""
    async def app(scope, receive, send):
        f = tempfile.NamedTemporaryFile(delete=False, dir=folder)
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ConnectionResetError("client went away")   # as starlette's ClientDisconnect
                f.write(message.get("body", b""))
                await asyncio.sleep(0)
                if not message.get("more_body"):
                    break
        finally:
            f.close()
        dest = os.path.join(folder, uuid.uuid4().hex)
        os.makedirs(dest)
        os.replace(f.name, os.path.join(dest, "upload.bin"))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"[]"})
    return app


async def _upload(guard, size, chunk=256 * 1024, abort_after=None):
    sent, body, pos = [], os.urandom(size), 0

    async def receive():
        nonlocal pos
        await asyncio.sleep(0)
        if abort_after is not None and pos >= abort_after:
            return {"type": "http.disconnect"}
        part = body[pos:pos + chunk]
        pos += len(part)
        return {"type": "http.request", "body": part, "more_body": pos < len(body)}

    async def send(message):
        sent.append(message)
    scope = {"type": "http", "method": "POST", "path": "/gradio_api/upload", "query_string": b"",
             "headers": [(b"content-length", str(size).encode())]}
    try:
        await guard(scope, receive, send)
    except ConnectionResetError:
        return None
    return sent[0]["status"] if sent else None


def _guard(folder, disk_mb, **kw):
    from priorpaint.app.disk import UploadDisk
    from priorpaint.app.guard import Guard
    disk = UploadDisk(str(folder), int(disk_mb * MB), **kw)
    return Guard(_storing_app(str(folder)), max_request_mb=50, disk=disk), disk


def test_concurrent_uploads_never_overshoot_the_disk_limit(tmp_path):
    guard, _ = _guard(tmp_path, 5)

    async def main():
        return await asyncio.gather(*[_upload(guard, 2 * MB) for _ in range(8)])
    statuses = asyncio.run(main())
    assert statuses.count(200) == 2 and statuses.count(507) == 6, statuses
    assert _used(tmp_path) <= 5 * MB


def test_a_full_disk_evicts_its_oldest_unused_files_and_keeps_held_ones(tmp_path):
    guard, disk = _guard(tmp_path, 3, grace_s=5.0)
    old = []
    for i in range(3):
        d = tmp_path / f"h{i}"
        d.mkdir()
        p = d / "photo.png"
        p.write_bytes(os.urandom(MB - 1000))
        os.utime(p, (time.time() - 600 + i, time.time() - 600 + i))
        old.append(p)
    held = open(old[0], "rb")          # a result being served: never evicted
    try:
        assert asyncio.run(_upload(guard, MB)) == 200
        assert old[0].exists() and not old[1].exists() and old[2].exists()
        assert not (tmp_path / "h1").exists()            # its hash folder went with it
        assert disk.evicted == 1 and _used(tmp_path) <= 3 * MB
        # everything left is held (open, or younger than the grace period): a clear 507
        fresh = [tmp_path / f"n{i}" for i in range(3)]
        for p in fresh:
            p.write_bytes(os.urandom(MB))
        guard2, _ = _guard(tmp_path, 3, grace_s=60.0)
        sent = []

        async def send(m):
            sent.append(m)

        async def receive():
            return {"type": "http.request", "body": b"x" * 100, "more_body": False}
        asyncio.run(guard2({"type": "http", "method": "POST", "path": "/gradio_api/upload", "query_string": b"",
                            "headers": [(b"content-length", b"100")]}, receive, send))
        assert sent[0]["status"] == 507
        detail = json.loads(sent[1]["body"])["detail"]
        assert "--max-upload-disk-mb" in detail and "\n" not in detail
    finally:
        held.close()


def test_files_expire_after_the_age_limit(tmp_path):
    from priorpaint.app.disk import UploadDisk

    disk = UploadDisk(str(tmp_path), 100 * MB, max_age_s=60.0, grace_s=1.0)
    (tmp_path / "a").mkdir()
    stale, young = tmp_path / "a" / "stale.png", tmp_path / "young.png"
    stale.write_bytes(b"x" * 10)
    young.write_bytes(b"y" * 10)
    os.utime(stale, (time.time() - 120, time.time() - 120))
    assert disk.sweep()["expired"] == 1
    assert not stale.exists() and not (tmp_path / "a").exists() and young.exists()


def test_aborted_uploads_leave_no_partial_file(tmp_path):
    guard, disk = _guard(tmp_path, 50)

    async def main():
        return await asyncio.gather(*[_upload(guard, 2 * MB, abort_after=MB) for _ in range(5)],
                                    _upload(guard, MB))
    statuses = asyncio.run(main())
    assert statuses[-1] == 200
    names = [os.path.basename(p) for p in _files(tmp_path)]
    assert names == ["upload.bin"], names
    assert disk.reserved == 0 and disk.in_flight == 0


def test_the_flags_reach_the_server_help():
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "priorpaint.cli", "serve", "--help"], capture_output=True, text=True,
                       timeout=120)
    assert "--max-file-age-s" in r.stdout and "--max-request-steps" in r.stdout


# -- over real HTTP ------------------------------------------------------------------------------

def _multipart(data: bytes):
    b = "----pp" + uuid.uuid4().hex
    body = (f"--{b}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"x.bin\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{b}--\r\n".encode()
    return body, f"multipart/form-data; boundary={b}"


def _post(url, data: bytes):
    body, ctype = _multipart(data)
    req = urllib.request.Request(url + "/gradio_api/upload", data=body, method="POST",
                                 headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _abort(port: int, total: int, sent: int) -> None:
    body, ctype = _multipart(os.urandom(total))
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall((f"POST /gradio_api/upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {ctype}\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:sent])
        time.sleep(0.3)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("disk-tmp")
    s = Server("--steps", "5", "--max-upload-disk-mb", "2", env={"PRIORPAINT_SERVER_TMP": str(tmp)})
    s.tmp = tmp
    yield s
    s.stop()


def test_live_aborted_uploads_leave_no_tmp_files(live):
    for _ in range(6):
        _abort(live.port, 300 * 1024, 100 * 1024)
    deadline = time.monotonic() + 20
    while True:
        stray = [p for p in os.listdir(live.tmp) if p.startswith("tmp")]
        if not stray:
            break
        assert time.monotonic() < deadline, stray
        time.sleep(0.2)
    assert _post(live.url, b"after the aborts")[0] == 200
    assert not [p for p in os.listdir(live.tmp) if p.startswith("tmp")]


def test_live_a_full_disk_takes_new_uploads_again_within_seconds(live):
    statuses = [_post(live.url, os.urandom(400 * 1024))[0] for _ in range(8)]   # 3.2 MB into 2 MB
    assert 507 in statuses and _used(live.tmp) <= 2 * MB
    deadline = time.monotonic() + 30   # the grace period for fresh uploads is 10 s
    while True:
        status, _ = _post(live.url, os.urandom(400 * 1024))
        if status == 200:
            break
        assert status == 507 and time.monotonic() < deadline
        time.sleep(1.0)
    assert _used(live.tmp) <= 2 * MB
