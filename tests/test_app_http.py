"""The API over plain HTTP with the standard library only (the protocol gimp_bridge uses).

upload -> call project (SSE: ``generating`` progress, then ``complete``) -> call edit ->
download the result by its ``url``: pixels outside the selection unchanged.  Uploads over
the limit get HTTP 413; a non-image upload gets a clear ``error`` event; a client that
disconnects mid-job stops it.
"""

from __future__ import annotations

import io
import json
import re
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from app_server import Server, call, download, file_data, outside_box_equal, png_array, upload
from conftest import skimage_data

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BOX = (140, 20, 180, 180)


@pytest.fixture(scope="module")
def server():
    s = Server("--steps", "20", "--max-upload-mb", "1")
    yield s
    s.stop()


def test_project_and_edit_over_plain_http(server):
    photo = skimage_data("astronaut.png")
    path = upload(server.url, photo.read_bytes(), "astronaut.png")
    events = call(server.url, "project", [file_data(path), None, "140,20,180,180", "", 30, 0, False])
    kinds = [e for e, _ in events]
    assert kinds[-1] == "complete", events[-1]
    generating = [d for e, d in events if e == "generating"]   # heartbeats (data null) may come between
    pairs = [(json.loads(d[0]), d) for d in generating]
    pairs = [(p, d) for p, d in pairs if not p["done"]]  # the last generating event repeats the final one
    progress = [p for p, _ in pairs]
    assert progress and all(p["job"].startswith("job-") and all(x is None for x in d[1:]) for p, d in pairs)
    # what the protocol guarantees: status events (done false, a stage, a fraction in 0..1) before the
    # completion; which fractions a machine samples depends on its speed, so none is required
    assert all(isinstance(p["stage"], str) and p["stage"] and 0 <= p["fraction"] <= 1 for p in progress)
    assert kinds.index("generating") < len(kinds) - 1
    final = events[-1][1]
    st = json.loads(final[0])
    assert st["done"] and st["box"] == list(BOX)
    crop = png_array(download(server.url, final[1]))
    assert crop.shape == (64, 64, 3)

    events = call(server.url, "edit", [st["session"], "[]", False, None, "replace"])
    assert events[-1][0] == "complete", events[-1]
    est = json.loads(events[-1][1][0])
    assert est["changed_outside_mask"] == 0
    result = png_array(download(server.url, events[-1][1][1]))
    src = png_array(photo)
    assert outside_box_equal(result, src, BOX)
    layer = png_array(download(server.url, events[-1][1][2]))
    assert layer.shape == (est["layer"]["h"], est["layer"]["w"], 4)


def test_the_server_warms_its_default_model_up(server):
    """While it starts, the server loads the default model and runs it once (see
    test_app_warm_up.py); its log says so in one line."""
    deadline = time.monotonic() + 120
    while "warmed up" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert re.search(r"priorpaint: dcgan-digiface-64 loaded and warmed up on \S+ \(hybrid projection\) in [0-9.]+ s",
                     server.log()), server.log()


def test_upload_over_the_limit_gets_413(server):
    big = np.random.default_rng(0).integers(0, 256, (800, 800, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, format="PNG")
    assert len(buf.getvalue()) > 1024 * 1024
    with pytest.raises(urllib.error.HTTPError) as e:
        upload(server.url, buf.getvalue(), "big.png")
    assert e.value.code == 413


def test_non_image_upload_gets_a_clear_error(server):
    path = upload(server.url, b"%PDF-1.4 not an image at all", "notes.pdf")
    events = call(server.url, "project", [file_data(path), None, "1,1,20,20", "", 5, 0, False])
    assert events[-1][0] == "error"
    assert "not an image file PIL can read" in json.dumps(events[-1][1])


def test_unknown_session_error_event(server):
    events = call(server.url, "edit", ["no-such-session", "[]", False, None, "detail"])
    assert events[-1][0] == "error"
    assert "unknown or expired session 'no-such-session'" in json.dumps(events[-1][1])


def test_disconnecting_client_stops_its_job(server):
    """Open the SSE stream of a long projection, read some progress, hang up: the worker stops."""
    path = upload(server.url, skimage_data("astronaut.png").read_bytes(), "a.png")
    req = urllib.request.Request(server.url + "/gradio_api/call/project", method="POST",
                                 data=json.dumps({"data": [file_data(path), None, "140,20,180,180", "", 5000, 0,
                                                           False]}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        event_id = json.loads(r.read())["event_id"]
    resp = urllib.request.urlopen(server.url + f"/gradio_api/call/project/{event_id}", timeout=120)
    job = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = resp.readline().decode()
        if line.startswith("data:"):
            st = json.loads(json.loads(line[5:])[0])
            job = st["job"]
            if st["stage"] == "project":
                break
    assert job, "no progress before the hang-up"
    resp.close()  # the client goes away mid-job
    deadline = time.monotonic() + 30
    while f"job {job} stopped before it finished" not in server.log():
        assert time.monotonic() < deadline, "the job kept running after its client disconnected"
        time.sleep(0.2)
    # and it leaves the registry once its worker has stopped: cancelling it then finds nothing
    time.sleep(1.0)
    events = call(server.url, "cancel", [job])
    assert json.loads(events[-1][1][0])["cancelled"] is False
