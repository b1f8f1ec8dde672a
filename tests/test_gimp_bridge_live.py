"""gimp_bridge against a live ``priorpaint serve`` (the real app, embedded model, loopback)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import skimage_data
from gimp_backend import Backend
from gimp_bridge import catalog, ops, png
from gimp_bridge.client import BackendError, Cancelled, Client

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
SELECTION = (140, 20, 180, 180)
TOKEN = "bridge-test-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    b = Backend(tmp_path_factory.mktemp("bridge-live") / "serve.log", "--token", TOKEN, "--steps", "120")
    yield b
    b.stop()


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.asarray(Image.open(skimage_data("astronaut.png")).convert("RGB"))


def _crop(photo: np.ndarray, sel=SELECTION) -> ops.Crop:
    H, W = photo.shape[:2]
    x, y, w, h = ops.crop_rect(sel, (W, H))
    mask = np.zeros((h, w), np.uint8)
    mask[sel[1] - y:sel[1] - y + sel[3], sel[0] - x:sel[0] - x + sel[2]] = 255
    return ops.Crop.from_pixels(x, y, w, h, np.ascontiguousarray(photo[y:y + h, x:x + w]).tobytes(), 3,
                                mask.tobytes())


def test_token_is_required(server):
    with pytest.raises(BackendError, match="token"):
        catalog.list_directions(Client(server.url, token=""))
    assert catalog.list_directions(Client(server.url, token=TOKEN))


def test_semantic_edit_layer_lands_on_the_selection(server, photo):
    c = Client(server.url, token=TOKEN)
    direction = catalog.list_directions(c)[0]["name"]
    seen = []
    layer = ops.semantic_edit(c, _crop(photo), direction, 3.0, adapt=False,
                              progress=lambda f, text: seen.append(f))
    x0, y0, cw, ch = ops.crop_rect(SELECTION, (512, 512))
    assert (layer.x, layer.y, layer.image.width, layer.image.height) == (x0, y0, cw, ch)
    assert layer.status["changed_outside_mask"] == 0
    assert seen[-1] == 1.0 and all(b >= a - 1e-9 for a, b in zip(seen, seen[1:])), "progress goes forward"
    rgba = np.frombuffer(layer.image.data, np.uint8).reshape(ch, cw, 4)
    alpha = rgba[..., 3]
    sx, sy, sw, sh = SELECTION
    inside = np.zeros_like(alpha, bool)
    inside[sy - y0:sy - y0 + sh, sx - x0:sx - x0 + sw] = True
    assert alpha[~inside].max() == 0 and alpha[inside].max() == 255
    # the plug-in's composite: the layer over the photo with its alpha as the layer mask
    region = photo[y0:y0 + ch, x0:x0 + cw].astype(np.float32)
    a = alpha[..., None] / 255.0
    out = np.round(region * (1 - a) + rgba[..., :3] * a).astype(np.uint8)
    np.testing.assert_array_equal(out[~inside], photo[y0:y0 + ch, x0:x0 + cw][~inside])
    assert np.abs(out[inside].astype(int) - region[inside]).mean() > 3
    assert c.bytes_sent < 200_000


def test_the_verdict_reaches_the_plugin_from_the_real_backend(server, photo):
    """The edit's status carries the backend's verdict and the plug-in's notes say "not
    carried" exactly when it is false. The dialog's ``verdict`` endpoint is asked only when
    the backend declares it: the endpoint comes from another branch, so on a backend without
    it the worker must say nothing and keep previewing."""
    from gimp_bridge.preview import PreviewWorker
    from gimp_bridge.verdict import supports_verdict, verdict, verdict_message
    c = Client(server.url, token=TOKEN)
    name = catalog.list_directions(c)[0]["name"]
    layer = ops.semantic_edit(c, _crop(photo), name, 3.0, adapt=False)
    v = layer.status.get("verdict")
    assert isinstance(v, dict) and v.get("carried") in (True, False, None) and "\n" not in str(v.get("message"))
    first = (ops.notes_of(layer.status) or [""])[0]
    said_first = v["carried"] is False or bool(v.get("notes"))
    assert (first == " ".join(str(v.get("message")).split())) == said_first, (v, first)
    said, shown = [], []
    worker = PreviewWorker(c, _crop(photo), composite="detail", size=160, on_image=lambda k, im, s: shown.append(k),
                           on_verdict=lambda k, m: said.append((k, m))).start()
    assert worker.wait_projection(600) is not None, worker.error
    worker.request("strong", [catalog.direction_spec(name, 3.0)])
    deadline = time.monotonic() + 120
    while (not shown or (supports_verdict(c) and not said)) and time.monotonic() < deadline and worker.error is None:
        time.sleep(0.05)
    worker.close()
    assert shown == ["strong"], worker.error
    if supports_verdict(c):
        # measured as the worker asked for it: the preview's size (the figures depend on it)
        answer = verdict(c, worker.projection.session, [catalog.direction_spec(name, 3.0)], composite="detail",
                         size=160)
        assert said == [("strong", verdict_message(answer))]
    else:
        assert said == [] and verdict(c, worker.projection.session, []) is None
    print(f"\n[gimp_bridge] verdict of {name} +3: {v} (backend declares verdict: {supports_verdict(c)})")


def test_preview_follows_the_strength_and_edit_inputs_are_declared(server, photo):
    """What the Semantic edit dialog uses: one projection, then previews per strength; and the
    `edit` inputs the backend declares (the bridge sends `composite` only when declared)."""
    from gimp_bridge.preview import PreviewWorker
    c = Client(server.url, token=TOKEN)
    directions = catalog.list_directions(c)
    name = directions[0]["name"]
    lo, hi, _ = catalog.direction_range(directions, name)
    shown = []
    worker = PreviewWorker(c, _crop(photo), on_image=lambda k, img, s: shown.append((k, img, s))).start()
    assert worker.wait_projection(600) is not None, worker.error
    for strength in (lo, hi):
        n = len(shown)
        worker.request(strength, [catalog.direction_spec(name, strength)])
        deadline = time.monotonic() + 120
        while len(shown) == n and time.monotonic() < deadline and worker.error is None:
            time.sleep(0.05)
    worker.close()
    assert [k for k, _, _ in shown] == [lo, hi], worker.error
    a, b = (np.frombuffer(img.data, np.uint8).astype(int) for _, img, _ in shown)
    assert shown[0][1].width == shown[0][1].height and np.abs(a - b).mean() > 2   # the preview moved
    # the photo-resolution option through the real endpoint: the 216 px square composited, shrunk to 160 px
    proj = worker.projection
    flat = ops.preview(c, proj, [catalog.direction_spec(name, 0.0)], composite="detail", size=160)
    moved = ops.preview(c, proj, [catalog.direction_spec(name, hi)], composite="detail", size=160)
    assert (flat.width, flat.height) == (moved.width, moved.height) == (160, 160) and not c.preview_model_only
    assert flat.data != moved.data
    inputs = c.endpoint_inputs("edit")
    assert inputs and len(inputs) >= 4
    assert ops.supports_composite(c) == (len(inputs) >= 5 or "composite" in inputs)
    print(f"\n[gimp_bridge] preview of {name} at {lo:+g} / {hi:+g}: "
          f"{', '.join('%.2f s' % s for _, _, s in shown)} (shared machine: noisy)")


def test_project_layers_give_gz_and_gprime(server, photo):
    c = Client(server.url, token=TOKEN)
    proj, layers = ops.project_layers(c, _crop(photo), adapt=True)
    assert [(L.name, L.role) for L in layers] == [("model's own rendering — priorpaint", ops.ROLE_MODEL_RENDERING),
                                                  ("fit to this photo — priorpaint", ops.ROLE_RECONSTRUCTION)]
    gz, gp = layers
    x0, y0, side = proj.square
    assert (gz.x, gz.y) == (x0, y0) and gz.image.width == gz.image.height == proj.status["resolution"]
    assert (gp.x, gp.y) == ops.crop_rect(SELECTION, (512, 512))[:2]
    assert proj.status["psnr_adapted"] is None and gp.status["psnr_adapted"] > proj.status["psnr_projection"]


def test_cancel_stops_the_backend_job(server, photo):
    c = Client(server.url, token=TOKEN)
    fired = []

    def should_cancel():
        fired.append(time.monotonic())
        return True

    with pytest.raises(Cancelled):
        ops.project(c, _crop(photo), steps=2000, should_cancel=should_cancel)
    # the server confirmed the cancel of the running job (how fast it stops is bench's measure)
    assert c.last_cancel and c.last_cancel["cancelled"] is True, c.last_cancel
    # the server is free again: a short job runs at once
    assert catalog.list_directions(c)


def test_killed_plugin_leaves_no_running_job(server, photo, tmp_path):
    """The plug-in process dies mid-job (GIMP's cancel): the backend job is cancelled, not left running."""
    crop = _crop(photo)
    (tmp_path / "crop.png").write_bytes(png.encode_image(crop.image))
    (tmp_path / "mask.png").write_bytes(png.encode(crop.width, crop.height, 1, crop.mask))
    script = tmp_path / "plugin_like.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from gimp_bridge import ops, png\n"
        "from gimp_bridge.client import Client\n"
        "from gimp_bridge.watchdog import JobGuard\n"
        f"c = Client({server.url!r}, token={TOKEN!r})\n"
        f"img = png.read({str(tmp_path / 'crop.png')!r})\n"
        f"mask = png.read({str(tmp_path / 'mask.png')!r})\n"
        f"crop = ops.Crop({crop.x}, {crop.y}, img, mask.data)\n"
        "def report(f, stage, st):\n"
        "    if stage == 'project':\n"
        "        print('job', st.get('job'), flush=True)\n"
        "with JobGuard(c) as g:\n"
        "    ops.project(c, crop, steps=3000, on_job=g.set_job, on_progress=report)\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("job "), line
        job = line.split()[1]
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 20
        c = Client(server.url, token=TOKEN)
        while time.monotonic() < deadline:
            # once the job is gone, cancelling it finds nothing to cancel
            if c.cancel(job)["cancelled"] is False:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"job {job} still running 20 s after the plug-in died")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_concepts_and_segmentation_follow_the_backend(server, photo):
    """Paint concept / segment work when the backend offers them; otherwise its message reaches the user."""
    c = Client(server.url, token=TOKEN)
    crop = _crop(photo)
    try:
        concepts = catalog.list_concepts(c).get("concepts") or []
    except BackendError as e:
        assert "not available" in str(e)
        concepts = None
    if concepts:
        name = concepts[0]["name"] if isinstance(concepts[0], dict) else concepts[0]
        layer = ops.paint_concept(c, crop, str(name), "add", adapt=False)
        assert (layer.x, layer.y) == (crop.x, crop.y)
    try:
        seg = ops.segment(c, crop)
    except BackendError as e:
        assert "not available" in str(e)
        return
    assert seg.legend and (seg.labels.x, seg.labels.y) == (crop.x, crop.y)
    assert (seg.labels.image.width, seg.labels.image.height) == (crop.width, crop.height)
    labels = np.frombuffer(seg.labels.image.data, np.uint8).reshape(crop.height, crop.width, 4).copy()
    colours = [tuple(v) for v in seg.legend.values()]
    assert len(colours) >= 2
    sx, sy = SELECTION[0] - crop.x, SELECTION[1] - crop.y
    labels[sy + 60:sy + 100, sx + 60:sx + 100, :3] = colours[0]   # the user repaints a block inside the face
    # with an antialiased edge in between colours, as a GIMP brush leaves it
    labels[sy + 100, sx + 60:sx + 100, :3] = (np.array(colours[0]) * 0.6 + np.array(colours[1]) * 0.4).astype(np.uint8)
    edited = png.Image(crop.width, crop.height, 4, labels.tobytes())
    # without "snap" the backend refuses colours outside the legend; apply_segmentation asks it to snap
    proj = ops.Projection(session=seg.session, status={}, crop=crop, square=(0, 0, 0), reconstruction=None,
                          adapted=None)
    with pytest.raises(BackendError, match="legend|colour"):
        ops.edit(c, proj, [{"kind": "segment", "labels": "file:0"}], False, "x",
                 files=[png.encode_image(edited)])
    layer = ops.apply_segmentation(c, seg.session, edited, (crop.x, crop.y), adapt=False, legend=seg.legend)
    assert any("snapped to the nearest legend colour" in n for n in layer.status.get("notes", []))
    # the result layer lies inside the crop, wherever the backend puts its box
    w, h = layer.image.width, layer.image.height
    assert crop.x <= layer.x and crop.y <= layer.y
    assert layer.x + w <= crop.x + crop.width and layer.y + h <= crop.y + crop.height
    assert layer.status["changed_outside_mask"] == 0
    assert np.frombuffer(layer.image.data, np.uint8).reshape(h, w, 4)[..., 3].max() > 0


def test_the_dialog_shows_a_slow_models_approximate_frame_before_the_exact_one(photo, tmp_path, monkeypatch):
    """A backend whose exact previews are slower than its budget (here: a budget of 0 ms) streams
    an approximate frame first; the preview worker hands it to the dialog, then the exact one."""
    from gimp_bridge.preview import PreviewWorker
    monkeypatch.setenv("PRIORPAINT_PREVIEW_BUDGET_MS", "0")
    slow = Backend(tmp_path / "serve.log", "--steps", "20")
    try:
        c = Client(slow.url)
        name = "warm_light"
        events = []
        worker = PreviewWorker(c, _crop(photo), composite="detail", size=160,
                               on_image=lambda k, img, s: events.append(("exact", k, img)),
                               on_approximate=lambda k, img, flag: events.append(("approximate", k, img, flag)))
        worker.start()
        assert worker.wait_projection(600) is not None, worker.error
        for strength in (1.0, 2.0):          # the first makes an exact frame; the second is predicted from it
            n = len([e for e in events if e[0] == "exact"])
            worker.request(strength, [catalog.direction_spec(name, strength)])
            deadline = time.monotonic() + 120
            while len([e for e in events if e[0] == "exact"]) == n and time.monotonic() < deadline \
                    and worker.error is None:
                time.sleep(0.05)
        worker.close()
        assert worker.error is None, worker.error
        assert [(e[0], e[1]) for e in events] == [("exact", 1.0), ("approximate", 2.0), ("exact", 2.0)], \
            [(e[0], e[1]) for e in events]
        approx, exact = events[1], events[2]
        assert approx[3]["approximate"] is True and approx[3]["method"] == "nearest"   # one kept frame: itself
        assert (approx[2].width, approx[2].height) == (exact[2].width, exact[2].height) == (160, 160)
        assert approx[2].data == events[0][2].data and exact[2].data != approx[2].data
    finally:
        slow.stop()
