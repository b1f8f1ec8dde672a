"""Drag points' live reports through the GIMP bridge: against a live ``priorpaint serve`` the drag's
intermediate handle positions arrive while it runs (crop pixels, each with its target), and a
cancel stops it; sample points become pairs in creation order (an odd count is one line); the
dialog's picture draws the moving handles. Pure bridge logic is tested without a server too."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import skimage_data
from gimp_backend import Backend
from gimp_bridge import drag as bdrag
from gimp_bridge import ops, png
from gimp_bridge.client import BridgeError, Cancelled, Client
from test_gimp_bridge_live import _crop   # the astronaut's face selection as the plug-in sends it


@pytest.mark.e2e
@pytest.mark.slow
def test_the_drags_handle_positions_arrive_while_it_runs(tmp_path):
    photo = np.asarray(Image.open(skimage_data("astronaut.png")).convert("RGB"))
    crop = _crop(photo)
    # the lower lip far up (the handle does not arrive, so every step runs and reports)
    points = bdrag.pairs_in_crop([[230.5, 150.5, 236.5, 118.5]], crop)
    backend = Backend(tmp_path / "serve.log", "--steps", "20")
    try:
        c = Client(backend.url)
        proj = ops.project(c, crop, adapt=False, fetch_images=False)
        seen = []
        layer = bdrag.drag_edit(c, crop, points, steps=300, projection=proj, on_live=seen.append)
        assert seen, "no intermediate handle positions reached the bridge"
        for live in seen:
            assert len(live["handles"]) == 1
            assert live["targets"][0] == pytest.approx(points[0][2:], abs=0.11)
            assert all(0 <= v < crop.width for v in live["handles"][0])
        assert [r["step"] for r in seen] == sorted(r["step"] for r in seen)
        assert seen[0]["step"] < 300                      # intermediate: reported before the last step
        assert (layer.image.width, layer.image.height) == (crop.width, crop.height)
        # a cancel while the drag runs stops it
        stop = {"now": False}
        with pytest.raises(Cancelled):
            bdrag.drag_edit(c, crop, points, steps=300, projection=proj, should_cancel=lambda: stop["now"],
                            on_live=lambda live: stop.update(now=True))
    finally:
        backend.stop()


def test_sample_points_pair_up_in_creation_order():
    pairs = bdrag.pairs_from_sample_points([(230, 150), (230, 140), (200, 110), (212, 110)], offsets=(10, 5))
    # a sample point marks a pixel: its continuous position is the pixel's centre
    assert pairs == [[220.5, 145.5, 220.5, 135.5], [190.5, 105.5, 202.5, 105.5]]
    c = ops.Crop(100, 50, png.Image(200, 200, 3, bytes(200 * 200 * 3)), b"\xff" * (200 * 200))
    # back in the crop's pixels, a sample point is its pixel: image pixel − offsets − crop origin
    assert bdrag.pairs_in_crop(pairs, c) == [[120.0, 95.0, 120.0, 85.0], [90.0, 55.0, 102.0, 55.0]]


@pytest.mark.parametrize("points, message", [
    ([], "the image has no sample points"),
    ([(1, 1), (2, 2), (3, 3)], "3 sample points, an odd number"),
    ([(i, 1) for i in range(34)], "34 sample points .17 pairs.; a drag takes at most 16"),
])
def test_bad_sample_points_are_one_line_errors(points, message):
    with pytest.raises(BridgeError, match=message) as e:
        bdrag.pairs_from_sample_points(points)
    assert "\n" not in str(e.value)


def test_live_points_read_a_drag_steps_status_only():
    st = {"done": False, "stage": "drag", "step": 4, "handles": [[10.0, 12.5]], "targets": [[10, 2]]}
    assert bdrag.live_points(st) == {"step": 4, "handles": [(10.0, 12.5)], "targets": [(10.0, 2.0)]}
    for other in ({"stage": "render"}, None, dict(st, handles=[[1, "x"]]), dict(st, targets=[]),
                  dict(st, handles=[[float("nan"), 1]]), dict(st, handles="12")):
        assert bdrag.live_points(other) is None


def test_the_dialogs_picture_draws_the_moving_handles():
    img = png.Image(40, 30, 3, bytes(40 * 30 * 3))
    pairs = [[5.0, 20.0, 30.0, 20.0]]
    still = bdrag.with_pairs(img, pairs)
    moving = bdrag.with_pairs(img, pairs, current=[(15.0, 20.0)])
    px = lambda im, x, y: tuple(im.data[(y * 40 + x) * 3:(y * 40 + x) * 3 + 3])   # noqa: E731
    assert px(still, 5, 20) == (255, 51, 102) and px(still, 15, 20) == (255, 51, 102)
    assert px(moving, 15, 20) == (51, 221, 102)           # the handle now
    assert px(moving, 10, 20) == (255, 221, 51)           # the way it came
    assert px(moving, 25, 20) == (255, 51, 102)           # the way still to go
    assert px(moving, 15, 5) == (0, 0, 0)
