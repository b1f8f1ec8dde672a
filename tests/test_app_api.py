"""The API with the real gradio_client against a live ``priorpaint serve`` (subprocess).

project -> edit: the result's pixels outside the selection are the input's, bit for bit;
progress arrives as intermediate outputs; cancel stops a running projection and frees its
slot; engine errors reach the client as ``AppError`` with the message; token auth.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from app_server import ROOT, Server, outside_box_equal, png_array
from conftest import skimage_data

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BOX = (140, 20, 180, 180)


@pytest.fixture(scope="module")
def server():
    s = Server("--steps", "20", "--max-upload-mb", "2", "--slots", "1")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client
    return Client(server.url, verbose=False, download_files=str(ROOT / "artifacts" / "app" / "downloads"))


def statuses(outputs):
    return [json.loads(o[0]) for o in outputs if o and o[0]]


def test_project_edit_round_trip_keeps_outside_pixels(client):
    from gradio_client import handle_file

    photo = skimage_data("astronaut.png")
    job = client.submit(handle_file(str(photo)), None, ",".join(map(str, BOX)), "", 30, 0, False,
                        api_name="/project")
    st, crop, recon, adapted = job.result(timeout=300)
    st = json.loads(st)
    assert st["done"] and st["model"] == "dcgan-digiface-64"
    assert st["box"] == list(BOX) and len(st["session"]) >= 16
    assert st["psnr_projection"] > 10 and adapted is None
    assert png_array(crop).shape == (64, 64, 3) and png_array(recon).shape == (64, 64, 3)
    # progress: what every machine sends, fast or slow: the job's first status (done false, its id)
    # before any work, and only statuses of this job; which fractions of the projection a machine
    # samples depends on its speed (30 steps may end before the first one is sent), so none is
    # required here: test_job_stream_reports_each_stage_fraction_in_order drives them deterministically
    inter = [s for s in statuses(job.outputs()) if not s["done"]]
    assert inter and all(s["job"] == st["job"] for s in inter)
    assert all(isinstance(s["stage"], str) and 0 <= s["fraction"] <= 1 for s in inter)
    fr = [s["fraction"] for s in inter if s["stage"] == "project"]
    # a stage may report 1.0 while the endpoint still renders: done=false marks the stream, not the stage
    assert fr == sorted(fr)

    est, result, layer, preview = client.predict(st["session"], "[]", False, None, "replace", api_name="/edit")
    est = json.loads(est)
    assert est["changed_outside_mask"] == 0 and est["composite"] == "replace"
    src = png_array(photo)
    out = png_array(result)
    assert out.shape == src.shape
    assert outside_box_equal(out, src, BOX)
    assert not np.array_equal(out, src)  # the region was re-generated
    assert est["psnr_photo"] < 45 and est["detail_kept"] < 0.9
    # The default composite keeps the photo's detail: a round trip without edits is the photo.
    dst, dresult, _, _ = client.predict(st["session"], "[]", False, None, api_name="/edit")
    dst = json.loads(dst)
    assert dst["composite"] == "detail" and dst["psnr_photo"] == 100.0 and dst["detail_kept"] == 1.0
    assert np.array_equal(png_array(dresult), src)
    from gradio_client.exceptions import AppError
    with pytest.raises(AppError, match="composite must be one of detail, replace, warp, got 'blend'"):
        client.predict(st["session"], "[]", False, None, "blend", api_name="/edit")
    lay = png_array(layer)
    L = est["layer"]
    assert lay.shape == (L["h"], L["w"], 4)
    assert png_array(preview).shape == (64, 64, 3)

    # A direction edit rendered through G′: still bit-identical outside the selection.
    edits = json.dumps([{"kind": "direction", "name": "sefa0", "strength": 2.0}])
    est2, result2, _, preview2 = client.predict(st["session"], edits, True, None, api_name="/edit")
    est2 = json.loads(est2)
    assert est2["changed_outside_mask"] == 0 and est2["adapt"] is True
    assert isinstance(est2["psnr_adapted"], float)
    assert [e["kind"] for e in est2["edits"]] == ["direction"]
    out2 = png_array(result2)
    assert outside_box_equal(out2, src, BOX) and not np.array_equal(out2, out)
    assert not np.array_equal(png_array(preview2), png_array(preview))


def test_mask_selection_and_no_mixing_between_sessions(client, tmp_path):
    from gradio_client import handle_file

    photo = skimage_data("chelsea.png")
    w, h = Image.open(photo).size
    mask = np.zeros((h, w), np.uint8)
    mask[60:200, 120:300] = 255
    mpath = tmp_path / "mask.png"
    Image.fromarray(mask, "L").save(mpath)
    st, *_ = client.predict(handle_file(str(photo)), handle_file(str(mpath)), "", "", 10, 1, False,
                            api_name="/project")
    st = json.loads(st)
    assert st["box"] == [120, 60, 180, 140]
    est, result, _, _ = client.predict(st["session"], "[]", False, None, api_name="/edit")
    out, src = png_array(result), png_array(photo)
    assert out.shape == src.shape and (out[mask == 0] == src[mask == 0]).all()


def test_errors_reach_the_client_as_app_error(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="unknown or expired session 'nope'"):
        client.predict("nope", "[]", False, None, api_name="/edit")
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    with pytest.raises(AppError, match="not an image file"):
        client.predict(handle_file(str(text)), None, "1,1,20,20", "", 5, 0, False, api_name="/project")
    photo = skimage_data("astronaut.png")
    with pytest.raises(AppError, match="exactly one of a mask or a box"):
        client.predict(handle_file(str(photo)), None, "", "", 5, 0, False, api_name="/project")
    with pytest.raises(AppError, match="lies outside"):
        client.predict(handle_file(str(photo)), None, "900,900,20,20", "", 5, 0, False, api_name="/project")
    with pytest.raises(AppError, match="unknown model 'nope'"):
        client.predict(handle_file(str(photo)), None, "140,20,180,180", "nope", 5, 0, False, api_name="/project")
    with pytest.raises(AppError, match="steps must be between"):
        client.predict(handle_file(str(photo)), None, "140,20,180,180", "", -1, 0, False, api_name="/project")


def test_bad_edit_spec_is_refused_before_work(client):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    st, *_ = client.predict(handle_file(str(skimage_data("astronaut.png"))), None, "140,20,180,180", "", 5, 0,
                            False, api_name="/project")
    sid = json.loads(st)["session"]
    with pytest.raises(AppError, match="unknown edit kind 'nonsense'"):
        client.predict(sid, '[{"kind": "nonsense"}]', False, None, api_name="/edit")
    with pytest.raises(AppError, match="not valid JSON|JSON list"):
        client.predict(sid, "[{oops", False, None, api_name="/edit")


def test_cancel_stops_a_running_projection_and_frees_its_slot(client):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    photo = handle_file(str(skimage_data("astronaut.png")))
    job = client.submit(photo, None, "140,20,180,180", "", 5000, 0, False, api_name="/project")
    job_id = None
    deadline = time.monotonic() + 120
    while job_id is None or not any(s["stage"] == "project" for s in statuses(job.outputs())):
        assert time.monotonic() < deadline, "the projection never reported progress"
        sts = statuses(job.outputs())
        job_id = sts[0]["job"] if sts else None
        time.sleep(0.1)
    t0 = time.monotonic()
    reply = json.loads(client.predict(job_id, api_name="/cancel"))
    assert reply == {"cancelled": True, "id": job_id, "jobs": [job_id]}
    with pytest.raises(AppError, match="cancelled"):
        job.result(timeout=60)
    stopped = time.monotonic() - t0
    assert stopped < 10, f"cancel took {stopped:.1f} s"
    # The only engine slot (--slots 1) is free again: a short projection runs at once.
    t1 = time.monotonic()
    st, *_ = client.predict(photo, None, "140,20,180,180", "", 5, 0, False, api_name="/project")
    assert json.loads(st)["done"]
    assert time.monotonic() - t1 < 60
    # Cancelling something that is not running says so.
    assert json.loads(client.predict(job_id, api_name="/cancel"))["cancelled"] is False


def test_verdict_says_before_render_that_an_edit_cannot_be_carried(client):
    """A cat has no face the head measure can find: the verdict says the edit cannot be carried
    here, in one line, before anything is rendered; no edit: nothing to judge; a slow kind is
    refused as the preview refuses it."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    st, *_ = client.predict(handle_file(str(skimage_data("chelsea.png"))), None, "120,20,200,200", "", 20, 0,
                            False, api_name="/project")
    sid = json.loads(st)["session"]
    out = json.loads(client.predict(sid, json.dumps(["direction:head_turn=2"]), json.dumps({"size": 64}),
                                    api_name="/verdict"))
    assert set(out) == {"structure", "verdict"}
    v = out["verdict"]
    assert v["carried"] is False and "\n" not in v["message"]
    assert v["message"].startswith("this edit cannot be carried here") and "no face found" in v["message"]
    none = json.loads(client.predict(sid, "[]", "", api_name="/verdict"))["verdict"]
    assert none["carried"] is None
    with pytest.raises(AppError, match="verdict runs only the fast edits"):
        client.predict(sid, json.dumps([{"kind": "scribble", "scribble": "/tmp/x.png"}]), "", api_name="/verdict")
    with pytest.raises(AppError, match="verdict size must be between"):
        client.predict(sid, "[]", json.dumps({"size": 4}), api_name="/verdict")


def test_models_endpoint(client):
    rows = json.loads(client.predict(api_name="/models"))
    ids = {r["id"]: r for r in rows}
    assert ids["dcgan-digiface-64"]["present"] is True
    assert {"id", "architecture", "resolution", "domain", "present", "source", "description"} <= set(rows[0])


def test_capabilities_endpoint(client):
    """A client reads what the server offers instead of counting an endpoint's inputs."""
    caps = json.loads(client.predict(api_name="/capabilities"))
    assert caps["version"] >= 2 and caps["default_steps"] == 20   # the server's --steps
    assert "detail" in caps["composite"] and "encoder" in caps["init"]
    assert caps["kinds"]["direction"]["preview"] == "latent" and caps["kinds"]["scribble"]["preview"] == "slow"
    assert caps["kinds"]["paint"]["file_fields"] == ["mask"]


def test_token_auth_for_gradio_client_and_http():
    import urllib.error
    import urllib.request
    from gradio_client import Client

    s = Server("--steps", "5", "--token", "s3cret-token-0123456789")
    try:
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(s.url + "/gradio_api/info", timeout=10)
        assert e.value.code == 401 and b"Bearer" in e.value.read()
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(urllib.request.Request(
                s.url + "/gradio_api/info", headers={"Authorization": "Bearer wrong"}), timeout=10)
        assert e.value.code == 401
        with pytest.raises(Exception):
            Client(s.url, verbose=False)
        c = Client(s.url, verbose=False, headers={"Authorization": "Bearer s3cret-token-0123456789"})
        assert json.loads(c.predict(api_name="/models"))[0]["id"]
    finally:
        s.stop()


def test_non_loopback_bind_without_token_is_refused():
    r = subprocess.run([sys.executable, "-m", "priorpaint.cli", "serve", "--host", "0.0.0.0", "--port", "1"],
                       capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
                       cwd=str(ROOT))
    assert r.returncode == 2
    assert "refusing to serve on 0.0.0.0 without a token" in r.stderr


def test_space_export_is_self_contained_and_runs(tmp_path):
    """``priorpaint space-export DIR`` writes a folder whose app.py serves the API on its own."""
    import os
    import urllib.request

    from gradio_client import Client
    from app_server import free_port

    dest = tmp_path / "space"
    r = subprocess.run([sys.executable, "-m", "priorpaint.cli", "space-export", str(dest)],
                       capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert r.returncode == 0, r.stderr
    for name in ("app.py", "README.md", "requirements.txt", "priorpaint/session.py",
                 "priorpaint/app/ui/app.py", "priorpaint/app/ui/tabs/segment.py", "priorpaint/manifests/dcgan-digiface-64.json",
                 "priorpaint/manifests/models/dcgan-digiface-64.safetensors"):
        assert (dest / name).is_file(), name
    card = (dest / "README.md").read_text()
    assert card.startswith("---\n") and "sdk: gradio" in card and "app_file: app.py" in card
    # A second export into the non-empty folder is refused without --force.
    r2 = subprocess.run([sys.executable, "-m", "priorpaint.cli", "space-export", str(dest)],
                        capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert r2.returncode == 2 and "--force" in r2.stderr
    # Run the exported app.py from elsewhere: it must use its own package and manifest.
    port = free_port()
    env = dict(os.environ, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port),
               GRADIO_ANALYTICS_ENABLED="False", PRIORPAINT_STEPS="5")
    env.pop("PRIORPAINT_MANIFEST_DIR", None)
    log = open(tmp_path / "space.log", "w")
    proc = subprocess.Popen([sys.executable, str(dest / "app.py")], cwd=str(tmp_path), env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "space.log").read_text()
            try:
                urllib.request.urlopen(url + "/gradio_api/info", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "the exported Space did not start"
                time.sleep(0.3)
        rows = json.loads(Client(url, verbose=False).predict(api_name="/models"))
        assert "dcgan-digiface-64" in {r["id"] for r in rows}
        probe = subprocess.run([sys.executable, "-c",
                                "import sys; sys.path.insert(0, sys.argv[1]); import priorpaint; "
                                "from priorpaint.models.manifest import manifest_dirs; "
                                "print(priorpaint.__file__); print(manifest_dirs()[0])", str(dest)],
                               capture_output=True, text=True, timeout=60, env=env, cwd=str(tmp_path))
        lines = probe.stdout.split()
        assert lines[0].startswith(str(dest)) and lines[1] == str(dest / "priorpaint" / "manifests")
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


def test_listings_segment_and_file_referencing_edits(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    dirs = json.loads(client.predict("", api_name="/directions"))
    assert dirs and {"name", "description", "min", "max", "default"} <= set(dirs[0])
    concepts = json.loads(client.predict("", api_name="/concepts"))
    names = [c["name"] for c in concepts["concepts"]]
    assert "hair" in names and isinstance(concepts["vectors"], list)

    photo = skimage_data("astronaut.png")
    st, *_ = client.predict(handle_file(str(photo)), None, "140,20,180,180", "", 10, 0, False, api_name="/project")
    st = json.loads(st)
    sst, labels = client.predict(st["session"], api_name="/segment")
    sst = json.loads(sst)
    lab = png_array(labels)
    x0, y0, side = st["square"]
    assert lab.shape[:2] == (side, side)  # the square lies inside the photo here: layer box = square
    legend = sst["legend"]
    assert "hair" in legend and all(len(c) == 3 for c in legend.values())
    # Paint "hair" over the forehead in the label map and send it back as file:0.
    edited = lab[..., :3].copy()
    edited[30:60, 40:170] = legend["hair"]  # inside the selection (the box starts 18 px into the square)
    lpath = tmp_path / "labels.png"
    Image.fromarray(edited, "RGB").save(lpath)
    spec = json.dumps([{"kind": "segment", "labels": "file:0", "steps": 20}])
    est, result, _, _ = client.predict(st["session"], spec, False, [handle_file(str(lpath))], api_name="/edit")
    est = json.loads(est)
    assert est["changed_outside_mask"] == 0
    # A label edit's mask is the changed labels, dilated: it may reach past the selection,
    # never past the layer box (the square).
    assert outside_box_equal(png_array(result), png_array(photo), (x0, y0, side, side))
    assert not np.array_equal(png_array(result), png_array(photo))
    # Concept paint with its mask as file:0 (sized like the layer box).
    m = np.zeros((side, side), np.uint8)
    m[20:90, 30:180] = 255
    mpath = tmp_path / "paint.png"
    Image.fromarray(m, "L").save(mpath)
    spec = json.dumps([{"kind": "paint", "concept": "hair", "mode": "add", "mask": "file:0"}])
    est, result, _, _ = client.predict(st["session"], spec, False, [handle_file(str(mpath))], api_name="/edit")
    assert json.loads(est)["changed_outside_mask"] == 0
    # A server path instead of a file reference is refused: clients use only what they upload.
    with pytest.raises(AppError, match="must be a reference"):
        client.predict(st["session"], json.dumps([{"kind": "scribble", "strokes": str(photo)}]), False, None,
                       api_name="/edit")
    with pytest.raises(AppError, match="must be a reference"):
        client.predict(st["session"], json.dumps([f"scribble:{photo}"]), False, None, api_name="/edit")
    with pytest.raises(AppError, match="refers to 'file:3' but 1 file"):
        client.predict(st["session"], json.dumps([{"kind": "scribble", "strokes": "file:3"}]), False,
                       [handle_file(str(mpath))], api_name="/edit")


# -- the session store and the job runner, in-process ------------------------------------------

class _FakeSession:
    def __init__(self, sid, size):
        self.id, self.size, self.used = sid, size, time.time()

    def nbytes(self):
        return self.size


def test_session_store_is_a_bounded_lru_with_expiry():
    from priorpaint.app.sessions import SessionStore
    from priorpaint.errors import InputError

    store = SessionStore(max_sessions=3, max_bytes=1000, ttl_s=3600)
    for k in "abc":
        store.put(_FakeSession(k, 100))
    store.get("a")                      # a is now the most recently used
    store.put(_FakeSession("d", 100))   # over the count: the least recently used (b) goes
    assert [k for k in "abcd" if _has(store, k)] == ["a", "c", "d"]
    store.put(_FakeSession("e", 850))   # over the bytes: c, then a (LRU order: c, a, d) go; e stays
    assert [k for k in "acde" if _has(store, k)] == ["d", "e"]
    assert store.nbytes == 950 and store.evicted == 3
    big = _FakeSession("huge", 5000)    # a session larger than the budget is still kept alone
    store.put(big)
    assert _has(store, "huge") and len(store) == 1
    store.ttl_s = 0.05
    time.sleep(0.1)
    with pytest.raises(InputError, match="unknown or expired session 'huge'"):
        store.get("huge")
    assert store.expired == 1
    with pytest.raises(InputError, match="no session given"):
        store.get("")


def _has(store, sid):
    return sid in store  # no LRU touch


def test_job_stream_reports_each_stage_fraction_in_order():
    """The job stream, driven step by step (the work reports its next fraction only after the
    consumer has seen the last one): the first status comes before any work, then every
    reported fraction, in order, then the result. Nothing here depends on the machine's speed."""
    from priorpaint.app.sessions import JobRegistry, run_job

    jobs = JobRegistry(slots=1)
    gate = threading.Semaphore(0)
    reported = (0.0, 0.25, 0.5, 1.0)

    def work(progress, cancel):
        for f in reported:
            progress("project", f, {})
            assert gate.acquire(timeout=60), "the consumer never saw the last fraction"
        return "ok"

    job = jobs.new("project")
    stream = run_job(jobs, job, work, min_interval=0.0)
    first = next(stream)
    assert first["job"] == job.id and first["done"] is False
    seen, out = [], None
    for item in stream:
        if "result" in item:
            out = item["result"]
            break
        assert item["job"] == job.id and item["done"] is False
        if item["stage"] == "project" and (not seen or item["fraction"] != seen[-1]):
            seen.append(item["fraction"])  # heartbeats repeat the last status: counted once
            gate.release()
    assert seen == list(reported) and out == "ok"
    assert not jobs.running() and jobs.busy == 0


def test_closing_a_job_stream_cancels_its_worker_and_frees_the_slot():
    from priorpaint.app.sessions import JobRegistry, run_job
    from priorpaint.jobs import checkpoint

    jobs = JobRegistry(slots=1)
    steps = []

    def work(progress, cancel):
        for i in range(10_000):
            checkpoint(cancel, progress, "work", i / 10_000)
            steps.append(i)
            time.sleep(0.005)
        return "finished"

    job = jobs.new("test")
    stream = run_job(jobs, job, work, min_interval=0.0)
    seen = [next(stream) for _ in range(5)]
    assert all(s["job"] == job.id and not s["done"] for s in seen)
    stream.close()                      # the consumer went away
    n = len(steps)
    time.sleep(0.2)
    assert len(steps) <= n + 1, "the worker kept running after its stream closed"
    assert job.token.cancelled and not jobs.running() and jobs.busy == 0
    # the slot is free: a second job runs to completion
    job2 = jobs.new("test")
    out = list(run_job(jobs, job2, lambda p, c: "ok"))
    assert out[-1] == {"result": "ok"}


def test_cancel_by_session_id_and_errors_from_the_worker():
    from priorpaint.app.sessions import JobRegistry, run_job
    from priorpaint.errors import Cancelled, InputError
    from priorpaint.jobs import checkpoint

    jobs = JobRegistry(slots=2)

    def slow(progress, cancel):
        while True:
            checkpoint(cancel, progress, "work", 0.5)
            time.sleep(0.01)

    job = jobs.new("test", session_id="S1")
    stream = run_job(jobs, job, slow)
    next(stream)
    assert jobs.cancel("S1") == [job.id]
    with pytest.raises(Cancelled, match="cancelled"):
        for _ in stream:
            pass
    assert jobs.cancel("S1") == []

    def bad(progress, cancel):
        raise InputError("the selection mask is empty: select a region first")
    with pytest.raises(InputError, match="mask is empty"):
        list(run_job(jobs, jobs.new("test"), bad))
    assert jobs.busy == 0 and not jobs.running()


def test_editor_value_to_photo_and_mask_and_painted_labels():
    from priorpaint.app.ui.page import editor_layers as _editor_layers, photo_image as _photo_image
    from priorpaint.app.ui.tabs.segment import paint_over_labels

    bg = np.zeros((6, 8, 4), np.uint8)
    bg[..., 3] = 255
    paint = np.zeros((6, 8, 4), np.uint8)
    paint[1:3, 2:5, 3] = 200                      # the brush layer's alpha is the selection
    photo, alpha = _editor_layers({"background": bg, "layers": [paint], "composite": None})
    assert photo.shape == (6, 8, 4) and alpha.sum() == 200 * 6
    assert _photo_image(photo).mode == "RGB"      # an opaque background is saved as RGB
    assert _editor_layers({"background": None, "layers": [], "composite": bg})[0] is not None
    assert _editor_layers(None) == (None, None)
    # Brush pixels go over the labels as painted (the server snaps them); faint ones are not painted.
    layer = np.zeros((2, 2, 4), np.uint8)
    layer[0, 0] = [250, 8, 3, 255]
    layer[1, 1] = [0, 0, 250, 60]
    out = paint_over_labels(np.zeros((2, 2, 3), np.uint8), layer)
    assert out[0, 0].tolist() == [250, 8, 3] and out[1, 1].tolist() == [0, 0, 0]
