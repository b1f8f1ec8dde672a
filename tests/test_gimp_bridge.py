"""gimp_bridge: PNG codec against PIL, SSE parsing, the HTTP client, cancel, settings, installer.

The client tests run against a small standard-library HTTP server in this file that
speaks the plain-HTTP Gradio protocol of docs/api.md (upload, call, SSE stream, files),
so that progress, errors, tokens and cancellation can be driven deterministically.
The tests against the real backend are in test_gimp_bridge_live.py.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
import zlib
from http.server import ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from gimp_bridge import catalog, ops, png
from gimp_bridge import settings as bsettings
from gimp_fake_backend import QuietHandler
from gimp_bridge.client import (BackendError, BackendNotRunning, BridgeError, Cancelled, Client, error_message,
                                not_running_message, parse_sse)

REPO = Path(__file__).resolve().parent.parent


def _astronaut() -> np.ndarray:
    import skimage
    return np.asarray(PILImage.open(Path(skimage.__file__).parent / "data" / "astronaut.png").convert("RGB"))


def _pil_png(img: PILImage.Image, **kw) -> bytes:
    b = io.BytesIO()
    img.save(b, "PNG", **kw)
    return b.getvalue()


def _arr(img: png.Image) -> np.ndarray:
    a = np.frombuffer(img.data, np.uint8).reshape(img.height, img.width, img.channels)
    return a[..., 0] if img.channels == 1 else a


# -- PNG -----------------------------------------------------------------------------------

@pytest.mark.parametrize("channels,mode", [(1, "L"), (2, "LA"), (3, "RGB"), (4, "RGBA")])
@pytest.mark.parametrize("size", [(1, 1), (7, 3), (64, 33), (255, 17)])
def test_png_encode_is_read_by_pil(channels, mode, size):
    rng = np.random.default_rng(sum(size) * channels)
    w, h = size
    a = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    a[h // 2:, :] = a[0:1, :]   # repeated rows exercise the Up filter's zero differences
    blob = png.encode(w, h, channels, a.tobytes())
    got = np.asarray(PILImage.open(io.BytesIO(blob)))
    assert PILImage.open(io.BytesIO(blob)).mode == mode
    np.testing.assert_array_equal(got.reshape(h, w, channels), a)
    back = png.decode(blob)
    assert (back.width, back.height, back.channels) == (w, h, channels)
    assert back.data == a.tobytes()


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "1"])
def test_png_decode_matches_pil_on_a_photo(mode):
    photo = PILImage.fromarray(_astronaut()[100:260, 120:290])   # odd sizes, real content
    if mode == "RGBA":
        a = np.asarray(photo.convert("RGBA")).copy()
        a[..., 3] = np.linspace(0, 255, a.shape[1]).astype(np.uint8)[None, :]
        img = PILImage.fromarray(a, "RGBA")
    elif mode == "LA":
        img = photo.convert("LA")
    elif mode == "P":
        img = photo.convert("P", palette=PILImage.Palette.ADAPTIVE, colors=37)
    else:
        img = photo.convert(mode)
    blob = _pil_png(img, optimize=True)   # PIL chooses filters per row (Sub/Up/Average/Paeth)
    got = png.decode(blob)
    expect_mode = {"P": "RGB", "1": "L"}.get(mode, mode)
    ref = np.asarray(img.convert(expect_mode))
    if expect_mode == "L":
        ref = ref.astype(np.uint8)
    np.testing.assert_array_equal(_arr(got), ref)


def test_png_decode_palette_with_transparency_and_16_bit():
    a = _astronaut()[:40, :50]
    p = PILImage.fromarray(a).convert("P", palette=PILImage.Palette.ADAPTIVE, colors=8)
    p.info["transparency"] = bytes([0, 128] + [255] * 6)
    blob = _pil_png(p, transparency=bytes([0, 128] + [255] * 6))
    got = png.decode(blob)
    assert got.channels == 4
    np.testing.assert_array_equal(_arr(got), np.asarray(PILImage.open(io.BytesIO(blob)).convert("RGBA")))
    g16 = (np.asarray(PILImage.fromarray(a).convert("L")).astype(np.uint16) * 257)
    blob16 = _pil_png(PILImage.fromarray(g16))
    assert PILImage.open(io.BytesIO(blob16)).mode.startswith("I")
    np.testing.assert_array_equal(_arr(png.decode(blob16)), (g16 >> 8).astype(np.uint8))


def _adam7_png(a: np.ndarray) -> bytes:
    """An Adam7-interlaced RGB PNG written by hand (PIL cannot write interlaced PNGs)."""
    h, w, _ = a.shape
    raw = bytearray()
    for x0, y0, dx, dy in png._ADAM7:
        sub = a[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        prev = np.zeros_like(sub[0])
        for row in sub:
            raw.append(2)   # Up filter within each pass
            raw += ((row.astype(np.int16) - prev) % 256).astype(np.uint8).tobytes()
            prev = row.astype(np.int16)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1)
    return png.SIGNATURE + png._chunk(b"IHDR", ihdr) + png._chunk(b"IDAT", zlib.compress(bytes(raw))) + \
        png._chunk(b"IEND", b"")


def test_png_decode_interlaced():
    a = _astronaut()[:21, :13]
    blob = _adam7_png(a)
    np.testing.assert_array_equal(np.asarray(PILImage.open(io.BytesIO(blob)).convert("RGB")), a)
    np.testing.assert_array_equal(_arr(png.decode(blob)), a)


def test_png_rejects_corrupt_data():
    blob = bytearray(png.encode(4, 4, 3, bytes(48)))
    with pytest.raises(png.PNGError, match="signature"):
        png.decode(b"GIF89a" + bytes(blob[6:]))
    blob[-20] ^= 0xFF   # inside IDAT: the CRC no longer matches
    with pytest.raises(png.PNGError, match="CRC"):
        png.decode(bytes(blob))
    with pytest.raises(ValueError):
        png.encode(4, 4, 3, bytes(47))


def test_channel_conversions():
    rgba = png.Image(2, 1, 4, bytes([255, 0, 0, 10, 0, 0, 255, 200]))
    assert rgba.to_rgb().data == bytes([255, 0, 0, 0, 0, 255])
    assert rgba.to_gray().data == bytes([76, 29])   # Rec. 601 luma, as PIL's convert("L")
    assert png.convert(rgba.data, 4, 2) == bytes([76, 10, 29, 200])
    gray = png.Image(2, 1, 1, bytes([5, 250]))
    assert gray.to_rgba().data == bytes([5, 5, 5, 255, 250, 250, 250, 255])
    ref = np.asarray(PILImage.fromarray(_astronaut()[:8, :8]).convert("L"))
    got = png.Image(8, 8, 3, _astronaut()[:8, :8].tobytes()).to_gray()
    np.testing.assert_array_equal(_arr(got), ref)
    assert png.Image(3, 2, 1, bytes(range(6))).crop(1, 0, 2, 2).data == bytes([1, 2, 4, 5])


# -- SSE and messages ----------------------------------------------------------------------

def test_parse_sse():
    raw = [b"event: generating\r\n", b'data: ["{\\"done\\": false}", null]\r\n', b"\r\n",
           b": a comment\n", b"event: heartbeat\n", b"data: null\n", b"\n",
           b"event:complete\n", b"data: [1,\n", b"data: 2]\n", b"\n",
           b"data: no event name\n"]
    assert list(parse_sse(raw)) == [
        ("generating", '["{\\"done\\": false}", null]'),
        ("heartbeat", "null"),
        ("complete", "[1,\n2]"),
        ("message", "no event name"),
    ]


def test_error_message_forms():
    assert error_message('"Selection too small"') == "Selection too small"
    assert error_message("plain text") == "plain text"
    assert error_message('{"message": "bad"}') == "bad"
    assert "without a message" in error_message("null")


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_connection_refused_message(monkeypatch):
    import gimp_bridge.client as client_module

    url = f"http://127.0.0.1:{_free_port()}"
    c = Client(url, connect_retries=2, retry_delay=0.01)
    waits = []  # the retries are bounded: counted, not timed
    me, real_sleep = threading.get_ident(), time.sleep

    def sleep(seconds):  # this thread's waits are recorded (and skipped); other threads sleep as ever
        waits.append(seconds) if threading.get_ident() == me else real_sleep(seconds)
    monkeypatch.setattr(client_module.time, "sleep", sleep)
    with pytest.raises(BackendNotRunning) as e:
        c.call("models", [])
    assert str(e.value) == f"backend not running at {url} — start it with `priorpaint serve`"
    assert str(e.value) == not_running_message(url)
    assert waits == [0.01, 0.02]


# -- a protocol-faithful fake backend --------------------------------------------------------

class FakeBackend:
    """Plain-HTTP Gradio protocol: uploads, calls, SSE streams, files, cancel, token."""

    def __init__(self, token: str = ""):
        self.token = token
        self.uploads: list = []
        self.calls: list = []
        self.cancelled: list = []
        self.cancel_event = threading.Event()
        self.files = {"/srv/out.png": png.encode(2, 2, 4, bytes(range(16)))}
        fake = self

        class Handler(QuietHandler):
            def _auth(self) -> bool:
                if fake.token and self.headers.get("Authorization") != f"Bearer {fake.token}":
                    self._send(401, b'{"detail": "Not authenticated"}')
                    return False
                return True

            def do_POST(self):
                if not self._auth():
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path == "/gradio_api/upload":
                    fake.uploads.append(body)
                    self._send(200, json.dumps([f"/srv/upload{len(fake.uploads)}.png"]).encode())
                elif self.path.startswith("/gradio_api/call/"):
                    api = self.path.rsplit("/", 1)[1]
                    data = json.loads(body)["data"]
                    fake.calls.append((api, data))
                    if api == "cancel":
                        fake.cancelled.append(data[0])
                        fake.cancel_event.set()
                    self._send(200, json.dumps({"event_id": f"ev{len(fake.calls)}"}).encode())
                else:
                    self._send(404, b'{"detail": "Not Found"}')

            def do_GET(self):
                if not self._auth():
                    return
                if self.path.startswith("/gradio_api/file="):
                    blob = fake.files.get(self.path.split("=", 1)[1])
                    return self._send(200, blob, "image/png") if blob else self._send(404, b"{}")
                if not self.path.startswith("/gradio_api/call/"):
                    return self._send(404, b"{}")
                api = self.path.split("/")[3]
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()

                def event(name, data):
                    try:
                        self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                        self.wfile.flush()
                    except (BrokenPipeError, ConnectionResetError):
                        pass   # the client went away (it cancelled): nothing more to send

                def status(**kw):
                    return json.dumps(kw)

                if api == "cancel":
                    event("complete", [status(cancelled=True, id=fake.cancelled[-1])])
                elif api == "work":
                    for f in (0.0, 0.5):
                        event("generating", [status(done=False, stage="project", fraction=f, job="job-7"), None])
                    event("heartbeat", None)
                    event("complete", [status(done=True, session="s1"),
                                       {"path": "/srv/out.png", "url": "/gradio_api/file=/srv/out.png"}])
                elif api == "slow":
                    event("generating", [status(done=False, stage="adapt", fraction=0.1, job="job-slow"), None])
                    # keep streaming heartbeats until cancelled (bounded: 20 s)
                    for _ in range(200):
                        if fake.cancel_event.wait(0.1):
                            break
                        event("heartbeat", None)
                    event("error", "job cancelled")
                elif api == "fails":
                    event("error", "the selection is 3x3 px; it must be at least 8x8 px")
                elif api == "dies":
                    event("generating", [status(done=False, stage="project", fraction=0.1, job="j"), None])
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    f = FakeBackend()
    yield f
    f.close()


def test_call_reports_progress_and_downloads_files(fake):
    c = Client(fake.url)
    seen, jobs = [], []
    outputs = c.call("work", ["a", 1], on_progress=lambda f, s, st: seen.append((f, s)), on_job=jobs.append)
    assert seen == [(0.0, "project"), (0.5, "project"), (1.0, "done")]
    assert jobs == ["job-7"]
    assert json.loads(outputs[0])["session"] == "s1"
    assert fake.calls == [("work", ["a", 1])]
    img = png.decode(c.download(outputs[1]))
    assert (img.width, img.height, img.channels) == (2, 2, 4) and img.data == bytes(range(16))
    # an absolute URL naming another host (server bound to 0.0.0.0) is fetched from ours
    assert c.file_url({"path": "/srv/out.png", "url": "http://0.0.0.0:9/gradio_api/file=/srv/out.png"}) == \
        fake.url + "/gradio_api/file=/srv/out.png"


def test_upload_is_multipart_and_counted(fake):
    c = Client(fake.url)
    blob = png.encode(3, 3, 3, bytes(27))
    assert c.upload(blob, "crop.png") == "/srv/upload1.png"
    body = fake.uploads[0]
    assert b'name="files"; filename="crop.png"' in body and blob in body
    assert c.bytes_sent == len(body)


def test_error_event_and_closed_stream(fake):
    c = Client(fake.url)
    with pytest.raises(BackendError, match="at least 8x8 px"):
        c.call("fails", [])
    with pytest.raises(BackendError, match="closed the stream"):
        c.call("dies", [])
    with pytest.raises(BackendError, match="no such endpoint"):
        c._json("POST", "/nope", {})


def test_token_is_sent_and_missing_token_explained():
    f = FakeBackend(token="s3cret")
    try:
        with pytest.raises(BackendError, match="token"):
            Client(f.url, token="").call("work", [])
        assert json.loads(Client(f.url, token="s3cret").call("work", [])[0])["session"] == "s1"
    finally:
        f.close()


def test_should_cancel_cancels_the_backend_job(fake):
    c = Client(fake.url)
    with pytest.raises(Cancelled):
        c.call("slow", [], should_cancel=lambda: True)
    assert fake.cancelled == ["job-slow"]


def test_killed_plugin_process_cancels_the_job_through_the_watchdog(fake, tmp_path):
    """GIMP kills a plug-in whose progress the user cancels; the watcher cancels the job."""
    script = tmp_path / "plugin_like.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from gimp_bridge.client import Client\n"
        "from gimp_bridge.watchdog import JobGuard\n"
        f"c = Client({fake.url!r})\n"
        "with JobGuard(c) as g:\n"
        "    c.call('slow', [], on_job=g.set_job, on_progress=lambda f, s, st: print('progress', f, flush=True))\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("progress 0.1")
        time.sleep(0.3)   # the job id has reached the watcher
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert fake.cancel_event.wait(15), "the watcher did not cancel the job"
        assert fake.cancelled == ["job-slow"]
    finally:
        if proc.poll() is None:
            proc.kill()


def test_finished_job_is_not_cancelled(fake, tmp_path):
    from gimp_bridge.watchdog import JobGuard
    c = Client(fake.url)
    with JobGuard(c) as g:
        c.call("work", [], on_job=g.set_job)
        watcher = g._proc
    assert watcher is not None and watcher.poll() is not None
    time.sleep(0.3)
    assert fake.cancelled == []


# -- crop geometry -------------------------------------------------------------------------

def test_square_matches_the_backend_rule():
    from priorpaint.compositing.crop import square_around as backend_square
    rng = np.random.default_rng(0)
    for _ in range(500):
        W, H = (int(v) for v in rng.integers(20, 900, 2))
        w, h = int(rng.integers(8, W + 1)), int(rng.integers(8, H + 1))
        x, y = int(rng.integers(0, W - w + 1)), int(rng.integers(0, H - h + 1))
        assert ops.square_around((x, y, w, h), (W, H)) == backend_square((x, y, w, h), (W, H), ops.MARGIN)


def test_crop_rect_is_clipped_and_contains_the_selection():
    assert ops.crop_rect((140, 20, 180, 180), (512, 512)) == (122, 2, 216, 216)
    x, y, w, h = ops.crop_rect((0, 0, 300, 300), (6000, 4000))
    assert (x, y) == (0, 0) and w == h == 360
    x, y, w, h = ops.crop_rect((10, 0, 100, 30), (120, 30))    # selection touches the border
    assert (x, y, w, h) == (0, 0, 120, 30)


def test_selection_checks_and_alpha_folding():
    with pytest.raises(Exception, match="selection is empty"):
        ops.check_selection(None, (100, 100))
    with pytest.raises(Exception, match="at least 8x8"):
        ops.check_selection((0, 0, 5, 50), (100, 100))
    px = bytes([10, 20, 30, 0, 10, 20, 30, 255])   # first pixel transparent
    crop = ops.Crop.from_pixels(0, 0, 2, 1, px, 4, bytes([255, 128]))
    assert crop.mask == bytes([0, 128]) and crop.image.channels == 3
    with pytest.raises(Exception, match="empty"):
        ops.Crop.from_pixels(0, 0, 2, 1, bytes([1, 0, 2, 0]), 2, bytes([255, 255]))


def test_only_the_crop_travels_for_a_big_photo(fake, capsys):
    """6000x4000 photo, 300 px selection: the upload is the 360 px square and its mask."""
    W, H = 6000, 4000
    big = np.tile(_astronaut(), (8, 12, 1))[:H, :W]   # photo detail at native resolution everywhere
    sel = (2500, 1500, 300, 300)
    x, y, w, h = ops.crop_rect(sel, (W, H))
    mask = np.zeros((h, w), np.uint8)
    mask[sel[1] - y:sel[1] - y + 300, sel[0] - x:sel[0] - x + 300] = 255
    crop = ops.Crop.from_pixels(x, y, w, h, np.ascontiguousarray(big[y:y + h, x:x + w]).tobytes(), 3,
                                mask.tobytes())
    c = Client(fake.url)
    crop.upload(c)
    c.call("work", ["project"])
    sent = c.bytes_sent
    with capsys.disabled():
        print(f"\n[gimp_bridge] 6000x4000 photo, 300 px selection: crop {w}x{h}, bytes sent {sent} "
              f"(the full photo raw would be {W * H * 3} bytes)")
    assert (w, h) == (360, 360)
    assert sent < 600_000   # a 360x360 RGB PNG + a mask PNG + JSON
    assert sent < W * H * 3 / 100


def test_edit_sends_the_composite_mode_as_the_fifth_input():
    """Plain-HTTP callers send all five inputs of ``edit``: detail for edits, replace for the
    G′ reconstruction of *Project selection* (a detail round trip would be the photo itself)."""
    from gimp_fake_backend import FakeKindsBackend
    photo = _astronaut()
    sel = (140, 20, 180, 180)
    x, y, w, h = ops.crop_rect(sel, (512, 512))
    mask = np.zeros((h, w), np.uint8)
    mask[sel[1] - y:sel[1] - y + 180, sel[0] - x:sel[0] - x + 180] = 255
    crop = ops.Crop.from_pixels(x, y, w, h, np.ascontiguousarray(photo[y:y + h, x:x + w]).tobytes(), 3,
                                mask.tobytes())
    fake = FakeKindsBackend()
    try:
        c = Client(fake.url)
        layer = ops.semantic_edit(c, crop, "warm_light", 2.0)
        assert (layer.x, layer.y, layer.image.width, layer.image.height) == (x, y, w, h)
        _, layers = ops.project_layers(c, crop, adapt=True)
        assert [(L.name, L.role) for L in layers][-1] == ("fit to this photo — priorpaint", ops.ROLE_RECONSTRUCTION)
        ops.paint_concept(c, crop, "hair", "remove")
    finally:
        fake.close()
    sent = [d for api, d in fake.calls if api == "edit"]
    assert [len(d) for d in sent] == [5, 5, 5]
    assert [d[4] for d in sent] == ["detail", "replace", "detail"]
    assert json.loads(sent[1][1]) == [] and sent[1][2] is True


# -- settings ------------------------------------------------------------------------------

def test_settings_precedence_and_persistence(tmp_path, monkeypatch):
    path = tmp_path / "gimp.json"
    monkeypatch.setenv("PRIORPAINT_SETTINGS", str(path))
    monkeypatch.delenv("PRIORPAINT_URL", raising=False)
    assert bsettings.load().resolved_url() == "http://127.0.0.1:7860"
    monkeypatch.setenv("PRIORPAINT_URL", "http://127.0.0.1:9999/")
    assert bsettings.load().resolved_url() == "http://127.0.0.1:9999"
    bsettings.save(bsettings.Settings(url="https://user-priorpaint.hf.space", model="m", token="t"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    s = bsettings.load()
    assert (s.resolved_url(), s.model, s.token) == ("https://user-priorpaint.hf.space", "m", "t")
    assert Client.from_settings().url == "https://user-priorpaint.hf.space"
    path.write_text("{not json")
    assert bsettings.load() == bsettings.Settings()


# -- installer -----------------------------------------------------------------------------

def test_plugin_and_bridge_files_stay_readable():
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines())
             for folder in ("plugin", "gimp_bridge") for p in (REPO / folder).rglob("*.py")}
    assert len(sizes) >= 12 and {k: n for k, n in sizes.items() if n > 500} == {}


def test_plugin_rooms_never_import_the_script():
    """GIMP runs priorpaint.py as __main__: a room importing it would register everything twice."""
    import ast
    for path in (REPO / "plugin" / "priorpaint").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert "priorpaint" not in names, path.name

def test_installer_copies_plugin_and_bridge(tmp_path):
    from priorpaint import gimp_install
    target = gimp_install.install(tmp_path / "plug-ins")
    script = target / "priorpaint.py"
    assert script.read_text().startswith("#!/usr/bin/env python3")
    assert os.access(script, os.X_OK)
    rooms = sorted(p.name for p in (REPO / "plugin" / "priorpaint").glob("*.py"))
    assert {"priorpaint.py", "procedures.py", "canvas.py", "dialogs.py", "tracing.py"} <= set(rooms)
    assert sorted(p.name for p in target.glob("*.py")) == rooms       # every room beside the script
    assert (target / "gimp.md").read_text() == (REPO / "docs" / "usage" / "gimp.md").read_text()   # what Help shows
    for name in ("__init__.py", "catalog.py", "client.py", "png.py", "ops.py", "settings.py", "watchdog.py"):
        assert (target / "gimp_bridge" / name).is_file()
    # a second install replaces the first; uninstall removes it
    gimp_install.install(tmp_path / "plug-ins")
    assert sorted(p.name for p in (tmp_path / "plug-ins").iterdir()) == ["priorpaint"]
    assert gimp_install.uninstall(tmp_path / "plug-ins") == target and not target.exists()
    assert gimp_install.uninstall(tmp_path / "plug-ins") is None
    foreign = tmp_path / "other" / "priorpaint"
    foreign.mkdir(parents=True)
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(gimp_install.InstallError):
        gimp_install.uninstall(tmp_path / "other")
    assert (foreign / "keep.txt").exists()


def test_installer_cli_and_default_folders(tmp_path):
    from priorpaint import gimp_install
    home = Path("/h")
    assert gimp_install.default_plugin_dir("linux", {}, home) == home / ".config/GIMP/3.0/plug-ins"
    assert gimp_install.default_plugin_dir("linux", {"XDG_CONFIG_HOME": "/x"}, home) == Path("/x/GIMP/3.0/plug-ins")
    assert gimp_install.default_plugin_dir("darwin", {}, home) == \
        home / "Library/Application Support/GIMP/3.0/plug-ins"
    assert gimp_install.default_plugin_dir("win32", {"APPDATA": "C:/U/AppData/Roaming"}, home) == \
        Path("C:/U/AppData/Roaming/GIMP/3.0/plug-ins")
    exe = Path(sys.executable).parent / "priorpaint"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "priorpaint.cli"]
    out = subprocess.run(cmd + ["install-gimp-plugin", "--plugin-dir", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "priorpaint" / "priorpaint.py").exists()
    out = subprocess.run(cmd + ["install-gimp-plugin", "--gimp-dir", str(tmp_path), "--uninstall"],   # the old name
                         capture_output=True, text=True)
    assert out.returncode == 0 and not (tmp_path / "priorpaint").exists()


def test_plugin_and_bridge_use_only_the_standard_library():
    allowed_third_party = {"gi"}   # GIMP's own bindings
    rooms = sorted((REPO / "plugin" / "priorpaint").glob("*.py"))
    allowed_third_party |= {p.stem for p in rooms} - {"priorpaint"}    # the plug-in's rooms, beside it
    for path in [*rooms, *sorted((REPO / "gimp_bridge").glob("*.py"))]:
        import ast
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module.split(".")[0]]
            for n in names:
                assert n in sys.stdlib_module_names or n in allowed_third_party or n == "gimp_bridge", \
                    f"{path.name} imports {n}"


# -- what the GIMP dialogs ask through the bridge (protocol-faithful stand-in) ---------------

@pytest.fixture
def kinds():
    from gimp_fake_backend import FakeKindsBackend
    f = FakeKindsBackend()
    yield f
    f.close()


def _face_crop() -> ops.Crop:
    a = _astronaut()
    x, y, w, h = ops.crop_rect((140, 20, 180, 180), (512, 512))
    region = a[y:y + h, x:x + w]
    mask = np.zeros((h, w), np.uint8)
    mask[20 - y:200 - y, 140 - x:320 - x] = 255
    return ops.Crop.from_pixels(x, y, w, h, region.tobytes(), 3, mask.tobytes())


def test_preview_worker_projects_once_and_shows_only_the_newest_request(kinds):
    from gimp_bridge.preview import PreviewWorker
    shown, ready = [], threading.Event()
    worker = PreviewWorker(Client(kinds.url), _face_crop(), on_ready=lambda p: ready.set(),
                           on_image=lambda k, img, s: shown.append((k, img)))
    for strength in (0.5, 1.0, 2.0):          # asked before the projection is done: only 2.0 is rendered
        worker.request(("exposure", strength), [catalog.direction_spec("exposure", strength)])
    worker.start()
    assert ready.wait(20) and worker.wait_projection(5) is not None
    deadline = time.monotonic() + 20
    while not shown and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.request(("exposure", -1.0), [catalog.direction_spec("exposure", -1.0)])
    while len(shown) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.close()
    worker.join(5)
    assert [k for k, _ in shown] == [("exposure", 2.0), ("exposure", -1.0)]
    levels = [img.data[0] for _, img in shown]
    assert levels == [208, 88]                 # the stand-in's preview follows the strength
    assert [api for api, _ in kinds.calls].count("project") == 1


def test_preview_asks_for_the_photo_resolution_composite_and_falls_back(kinds):
    """The dialog's preview is the selection's square composited at the photo's resolution
    (the backend shrinks it to the preview's size); an older backend gives the model rendering."""
    from gimp_bridge.preview import PreviewWorker
    client, crop = Client(kinds.url), _face_crop()
    proj = ops.project(client, crop, fetch_images=False)
    spec = [catalog.direction_spec("exposure", 1.0)]
    img = ops.preview(client, proj, spec, composite="detail", size=192)
    assert (img.width, img.height) == (192, 192) and img.data[0] == 168
    sent = json.loads([d for api, d in kinds.calls if api == "preview"][-1][1])
    assert sent == {"edits": spec, "composite": "detail", "size": 192}
    assert ops.preview(client, proj, spec, composite="replace", size=192).width == 191
    assert ops.preview(client, proj, spec, composite="detail", size=4096).width == max(crop.width, crop.height)
    with pytest.raises(BridgeError, match="composite must be one of detail, replace"):
        ops.preview(client, proj, spec, composite="blend")
    kinds.preview_model_only = True            # an older backend: one refused try, then the list form
    old = Client(kinds.url)
    assert ops.preview(old, proj, spec, composite="detail", size=192).width == 64 and old.preview_model_only
    n = len(kinds.calls)
    assert ops.preview(old, proj, spec, composite="detail", size=192).width == 64
    assert len(kinds.calls) == n + 1 and isinstance(json.loads(kinds.calls[-1][1][1]), list)
    kinds.preview_model_only = False
    shown = []
    worker = PreviewWorker(client, crop, composite="detail", size=160,
                           on_image=lambda k, im, sec: shown.append(im)).start()
    worker.request("k", spec)
    deadline = time.monotonic() + 20
    while not shown and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.close()
    assert shown and shown[0].width == 160


def test_preview_worker_close_cancels_and_reports_errors(kinds):
    from gimp_bridge.preview import PreviewWorker
    errors = []
    worker = PreviewWorker(Client(kinds.url), _face_crop(), on_error=errors.append)
    worker.start()
    assert worker.wait_projection(20) is not None
    worker.projection.session = "gone"         # the backend forgot the session: the preview fails
    worker.request(("exposure", 1.0), [catalog.direction_spec("exposure", 1.0)])
    worker.join(20)
    assert len(errors) == 1 and "gone" in errors[0] and "\n" not in errors[0]


def _wait_for(items, n, seconds=20):
    deadline = time.monotonic() + seconds
    while len(items) < n and time.monotonic() < deadline:
        time.sleep(0.05)


def test_preview_worker_says_when_the_edit_is_not_carried(kinds):
    """After each preview the worker asks the backend's ``verdict`` for the same edits, with
    the dialog's compositing and size; a false ``carried`` reaches the dialog as one line."""
    from gimp_bridge.preview import PreviewWorker
    said = []
    worker = PreviewWorker(Client(kinds.url), _face_crop(), composite="replace", size=160,
                           on_verdict=lambda k, m: said.append((k, m))).start()
    worker.request("mild", [catalog.direction_spec("exposure", 1.0)])
    _wait_for(said, 1)
    worker.request("strong", [catalog.direction_spec("exposure", 2.5)])
    _wait_for(said, 2)
    worker.request("drag", [{"kind": "drag", "points": []}])   # a slow kind: refused, says nothing
    _wait_for(said, 3)
    worker.close()
    worker.join(5)
    assert said == [("mild", None), ("strong", "this edit cannot be carried here: the model smeared "
                                               "the selection; try a smaller strength"), ("drag", None)]
    asked = [d for api, d in kinds.calls if api == "verdict"]
    assert json.loads(asked[0][1]) == [catalog.direction_spec("exposure", 1.0)]
    assert json.loads(asked[0][2]) == {"composite": "replace", "size": 160}
    assert worker.error is None                # a refused verdict never stops the previews


def test_an_older_backend_without_verdict_is_never_asked(kinds):
    from gimp_bridge.preview import PreviewWorker
    from gimp_bridge.verdict import verdict
    del kinds.info["named_endpoints"]["/verdict"]
    client, said, shown = Client(kinds.url), [], []
    assert verdict(client, "any", []) is None
    worker = PreviewWorker(client, _face_crop(), on_image=lambda k, im, s: shown.append(k),
                           on_verdict=lambda k, m: said.append(m)).start()
    worker.request("strong", [catalog.direction_spec("exposure", 2.5)])
    _wait_for(shown, 1)
    worker.close()
    worker.join(5)
    assert shown == ["strong"] and said == [] and "verdict" not in [api for api, _ in kinds.calls]
    kinds.info = None                          # no listing at all: the same
    assert verdict(Client(kinds.url), "any", []) is None


def test_verdict_lines_and_bad_answers(kinds):
    from gimp_bridge.verdict import verdict, verdict_message
    assert verdict_message({"verdict": {"carried": True, "message": "fine"}}) is None
    assert verdict_message({"verdict": {"carried": None, "message": "unknown"}}) is None
    assert verdict_message({}) is None and verdict_message(None) is None
    assert verdict_message({"verdict": {"carried": False, "message": "a\nb "}}) == "a b"
    assert verdict_message({"verdict": {"carried": False}}).startswith("this edit cannot be carried here")
    noted = {"carried": True, "message": "carried: effect 0.52 of the model's; the selection cuts the head",
             "notes": ["the selection cuts the head"]}
    assert verdict_message({"verdict": noted}) == noted["message"]       # carried, but held back: said
    assert verdict_message({"verdict": {**noted, "notes": []}}) is None
    client = Client(kinds.url)
    proj = ops.project(client, _face_crop(), fetch_images=False)
    answer = verdict(client, proj.session, [catalog.direction_spec("smile", -2.5)], composite="detail")
    assert answer["verdict"]["carried"] is False and "structure" in answer
    with pytest.raises(BackendError, match="composite must be one of detail, replace"):
        verdict(client, proj.session, [], composite="blend")
    with pytest.raises(BackendError, match="too long to judge"):
        verdict(client, proj.session, [{"kind": "drag", "points": []}])
    with pytest.raises(BackendError, match="gone"):
        verdict(client, "gone", [])


def test_semantic_edit_uses_the_direction_range_and_names_the_layer_with_it(kinds):
    client = Client(kinds.url)
    layer = ops.semantic_edit(client, _face_crop(), "exposure", 8.0, adapt=False)
    assert layer.name == "exposure +3 — priorpaint"
    sent = json.loads([d for api, d in kinds.calls if api == "edit"][-1][1])
    assert sent == [{"kind": "direction", "name": "exposure", "strength": 3.0}]
    assert ops.notes_of(layer.status) == [   # the stand-in smears past 2: the verdict's line comes first
        "this edit cannot be carried here: the model smeared the selection; try a smaller strength",
        "strength 8 of 'exposure' is outside its range [-3, 3]; used 3"]
    # with the projection the dialog already made, OK does not project again
    proj = ops.project(client, _face_crop(), fetch_images=False)
    before = [api for api, _ in kinds.calls].count("project")
    layer = ops.semantic_edit(client, _face_crop(), "exposure", -1.5, adapt=False, projection=proj,
                              directions=[{"name": "exposure", "min": -2, "max": 2}])
    assert layer.name == "exposure -1.5 — priorpaint" and ops.notes_of(layer.status) == []
    assert [api for api, _ in kinds.calls].count("project") == before
    assert catalog.direction_range([{"name": "x", "min": -1, "max": 1.5, "default": 9}], "x") == (-1.0, 1.5, 1.5)
    assert catalog.direction_range([], "unknown") == (-3.0, 3.0, 0.0)


def test_composite_is_sent_only_to_a_backend_that_declares_it(kinds):
    crop = _face_crop()
    kinds.info = None                      # an older backend: declares nothing, takes four inputs
    layer = ops.paint_concept(Client(kinds.url), crop, "hair", "add", adapt=False, composite="replace")
    assert len([d for api, d in kinds.calls if api == "edit"][-1]) == 4
    assert any("no compositing choice" in n and "Replace with generated pixels" in n
               for n in ops.notes_of(layer.status))
    kinds.info = {"named_endpoints": {"/edit": {"parameters": [
        {"parameter_name": n} for n in ("session", "edits", "adapt", "files", "composite")]}}}
    layer = ops.paint_concept(Client(kinds.url), crop, "hair", "add", adapt=False, composite="replace")
    assert [d for api, d in kinds.calls if api == "edit"][-1][4] == "replace"
    assert not any("compositing" in n for n in ops.notes_of(layer.status))
    with pytest.raises(BridgeError, match="composite must be one of detail, replace"):
        ops.paint_concept(Client(kinds.url), crop, "hair", "add", adapt=False, composite="blend")


def test_progress_speaks_plain_words():
    seen = []
    p = ops.Progress(lambda f, t: seen.append((round(f, 2), t)), [("Fitting the selection to the model", 0.5),
                                                                  ("Editing", 0.5)])
    p.stage(0)(0.5, "project", {})
    p.stage(1)(0.5, "adapt", {})
    p.stage(1)(1.0, "done", {})
    assert seen == [(0.25, "Fitting the selection to the model"), (0.75, "Tuning the model to this photo"),
                    (1.0, "Editing")]
    assert ops.stage_words("waiting for a free slot").startswith("waiting for the backend")


def test_models_say_which_are_not_downloaded_and_download_with_progress(kinds):
    client = Client(kinds.url)
    rows = {r["id"]: r for r in catalog.list_models(client)}
    assert catalog.model_label(rows["dcgan-digiface-64"]) == "dcgan-digiface-64 (64 px faces)"
    assert catalog.model_label(rows["stylegan2-ffhq-256"]) == "stylegan2-ffhq-256 (256 px faces) — not downloaded"
    seen = []
    st = catalog.download_model(client, "stylegan2-ffhq-256", progress=lambda f, t: seen.append((f, t)))
    assert st["present"] and st["model"] == "stylegan2-ffhq-256"
    assert seen[0][0] == 0.0 and seen[-1][0] == 1.0
    assert ("Downloading stylegan2-ffhq-256: 1.5 of 3.0 MB") in [t for _, t in seen]
    assert {r["id"]: r for r in catalog.list_models(client)}["stylegan2-ffhq-256"]["present"]
    with pytest.raises(BridgeError) as e:          # offline: the backend's one line, as it is
        catalog.download_model(client, "stylegan2-car-512")
    msg = str(e.value)
    assert "\n" not in msg and "stylegan2-car-512" in msg and "aaronb/StyleGAN2" in msg
    assert "priorpaint download stylegan2-car-512" in msg


def test_sample_points_on_the_crop_are_the_eyes():
    # image pixels -> crop pixels at the pixel centres, image-left first; not exactly two inside: None
    assert ops.eyes_in_crop([(250, 110), (200, 100)], (150, 50, 200, 180)) == (50.5, 50.5, 100.5, 60.5)
    assert ops.eyes_in_crop([(200, 100)], (150, 50, 200, 180)) is None
    assert ops.eyes_in_crop([(200, 100), (250, 110), (10, 10)], (150, 50, 200, 180)) == (50.5, 50.5, 100.5, 60.5)
    assert ops.eyes_in_crop([(200, 100), (250, 110), (220, 120)], (150, 50, 200, 180)) is None
    assert ops.eyes_in_crop([(350, 100), (250, 110)], (150, 50, 200, 180)) is None   # x = 350 is outside


# -- words and carried edits ----------------------------------------------------------------

def test_an_edit_on_a_result_starts_from_its_directions():
    base = [{"kind": "direction", "name": "exposure", "strength": 1.5},
            {"kind": "paint", "concept": "hair", "mode": "remove", "mask": "file:0"}]
    kept = catalog.carried(base)
    assert kept == base[:1]                       # a painted concept belongs to its own selection
    assert catalog.with_edit(kept, catalog.direction_spec("smile", 1)) == kept + [catalog.direction_spec("smile", 1)]
    assert catalog.with_edit(kept, catalog.direction_spec("exposure", -2)) == [catalog.direction_spec("exposure", -2)]
    assert catalog.edits_title(base) == "exposure +1.5, remove hair"
    assert ops.layer_name("exposure +1.5") == "exposure +1.5 — priorpaint"


def test_plain_words_for_the_fit_and_the_models():
    from gimp_bridge import words
    assert [words.fit_words(v) for v in (35, 27.5, 21, 12, None)] == ["very closely", "closely", "roughly",
                                                                      "loosely", None]
    assert words.fit_sentence(27.46) == "the model reproduced your selection closely (27.5 dB PSNR)"
    assert words.fit_sentence(None) is None and words.fit_sentence("27") is None
    rows = [{"id": "dcgan-digiface-64", "architecture": "dcgan", "resolution": 64, "domain": "faces",
             "present": True, "default": True},
            {"id": "stylegan2-cat-256", "architecture": "stylegan2", "resolution": 256, "domain": "cats",
             "present": False, "downloadable": True, "download_bytes": 1_300_000_000},
            {"id": "stylegan2-cat-256-tf", "architecture": "stylegan2", "resolution": 256, "domain": "cats",
             "present": False, "downloadable": False}]
    default, cat, tf = (words.model_about(r, rows) for r in rows)
    assert "appearance edits" in default and "Larger models" in default
    assert cat.startswith("Draws cats at 256 px (StyleGAN2). For photos of cats.")
    assert "Not downloaded yet (1.3 GB): OK offers" in cat and "stylegan2-cat-256-tf is the same network" in cat
    assert "The same network as stylegan2-cat-256" in tf and "no download source" in tf
