"""A model whose content is a box of its canvas (the LSUN car model: rows 64-447 of 512x512)."""

from __future__ import annotations

import numpy as np
import pytest

from priorpaint.compositing.crop import content_rect, make_crop
from priorpaint.errors import InputError
from priorpaint.images import load_photo

from conftest import skimage_data


@pytest.fixture(scope="module")
def photo():
    return load_photo(skimage_data("chelsea.png"))  # 451x300


def test_the_selection_fills_the_content_box_not_the_padding(photo):
    box = (60, 40, 320, 200)
    crop = make_crop(photo, 512, box=box, margin=0.05, content_box=[0, 64, 512, 384])
    x0, y0, side = crop.square
    rx0, ry0, rx1, ry1 = content_rect(crop.square, (0, 64, 512, 384), 512)
    # the selection with its margin spans the content box's width (the binding side here)
    assert abs((rx1 - rx0) - 320 * 1.1) <= 2 and (ry1 - ry0) >= 200
    # inside the content rectangle: the photo; outside: black (the model's zero padding)
    assert np.all(crop.region[:ry0] == 0) and np.all(crop.region[ry1:] == 0)
    sx, sy = box[0] - x0, box[1] - y0
    assert np.array_equal(crop.region[sy:sy + 200, sx:sx + 320], photo.rgb[40:240, 60:380])
    # the selection lies inside the content rectangle
    ys, xs = np.nonzero(crop.region_mask)
    assert ys.min() >= ry0 and ys.max() < ry1 and xs.min() >= rx0 and xs.max() < rx1
    t = crop.target()
    # at model resolution the padding rows are black (a few rows at the edge blur in the resize)
    assert float(t[0, :, :60].max()) == -1.0 and float(t[0, :, 452:].max()) == -1.0
    assert any("content is the box" in n for n in crop.notes)
    # without a content box the whole square is photo: the same rows hold photo pixels there
    plain = make_crop(photo, 512, box=box, margin=0.05)
    assert plain.region[:ry0].any() and not any("content is the box" in n for n in plain.notes)
    # a tall selection: the 384-row content box binds, so the square is 4/3 of the margined height
    tall = make_crop(photo, 512, box=(150, 20, 100, 240), margin=0.0, content_box=[0, 64, 512, 384])
    assert tall.square[2] >= 240 * 512 / 384 and tall.square[2] > make_crop(photo, 512, box=(150, 20, 100, 240),
                                                                             margin=0.0).square[2]


def test_bad_content_box(photo):
    for bad in ([0, 64, 512], [0, 200, 512, 384], "rows"):
        with pytest.raises(InputError, match="content_box"):
            make_crop(photo, 512, box=(10, 10, 50, 50), content_box=bad)


def test_session_uses_the_manifest_content_box(tiny_gen, photo):
    from types import SimpleNamespace

    from priorpaint.projection.project import ProjectionConfig
    from priorpaint.session import EditSession
    from conftest import FAST_PROJECTION
    tiny_gen.entry = SimpleNamespace(extra={"content_box": [0, 4, 16, 8]})  # rows 4-11 of 16
    try:
        s = EditSession.open(photo, box=(100, 80, 200, 100), gen=tiny_gen)
        rx0, ry0, rx1, ry1 = content_rect(s.crop.square, (0, 4, 16, 8), 16)
        assert np.all(s.crop.region[:ry0] == 0) and np.all(s.crop.region[ry1:] == 0)
        s.project(ProjectionConfig(steps=2, **FAST_PROJECTION))
        r = s.render(None, adapt=False)
        assert r.metrics["changed_outside_mask"] == 0
        outside = np.ones(photo.rgb.shape[:2], bool)
        outside[80:180, 100:300] = False
        assert np.array_equal(r.photo.rgb[outside], photo.rgb[outside])
    finally:
        del tiny_gen.entry
