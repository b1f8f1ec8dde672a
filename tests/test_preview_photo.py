"""The ``preview`` endpoint's photo-resolution option: the selection's square composited as the
edit would composite it (``detail`` / ``replace``), shrunk to the size asked; the list form
still gives the model-resolution rendering."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from PIL import Image

from priorpaint.compositing.crop import cut_square
from priorpaint.errors import InputError


def _backend(session):
    from priorpaint.app.api import Backend
    b = Backend()
    return b, b.store.put(session)


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"))


EDIT = [{"kind": "direction", "name": "sefa0", "strength": 2.5}]


def test_list_form_is_still_the_model_rendering(tiny_session):
    b, sid = _backend(tiny_session)
    r = tiny_session.gen.resolution
    assert _arr(b.preview(sid, json.dumps(EDIT))).shape == (r, r, 3)


def test_photo_resolution_preview_is_the_detail_composite_of_the_square(tiny_session):
    b, sid = _backend(tiny_session)
    s = tiny_session
    square = cut_square(s.photo.rgb, s.crop.square, pad="edge")
    side = square.shape[0]
    assert side > s.gen.resolution
    full = _arr(b.preview(sid, json.dumps({"edits": EDIT, "composite": "detail", "size": 1024})))
    assert full.shape == (side, side, 3)
    # the same pixels as the edit endpoint's detail composite of the square (without G′)
    state = s.apply(EDIT)
    rendered = s.render(state, composite="detail")
    x0, y0, _ = s.crop.square
    bx, by, bw, bh = rendered.layer_box
    photo = rendered.photo.rgb
    np.testing.assert_array_equal(full[by - y0:by - y0 + bh, bx - x0:bx - x0 + bw], photo[by:by + bh, bx:bx + bw])
    # outside the selection the square is the photo's own, bit for bit
    outside = s.crop.region_mask == 0
    np.testing.assert_array_equal(full[outside], square[outside])
    assert (full != square).any()
    # no edit: the photo's square itself
    same = _arr(b.preview(sid, json.dumps({"edits": [], "composite": "detail"})))
    np.testing.assert_array_equal(same, square)


def test_a_smaller_preview_looks_like_the_full_composite_shrunk(tiny_session):
    import cv2
    b, sid = _backend(tiny_session)
    full = _arr(b.preview(sid, json.dumps({"edits": EDIT, "size": 1024})))
    small = _arr(b.preview(sid, json.dumps({"edits": EDIT, "size": 96})))
    shrunk = cv2.resize(full, (96, 96), interpolation=cv2.INTER_AREA)
    square = cv2.resize(cut_square(tiny_session.photo.rgb, tiny_session.crop.square, pad="edge"), (96, 96),
                        interpolation=cv2.INTER_AREA)
    diff = np.abs(small.astype(int) - shrunk.astype(int))
    change = np.abs(shrunk.astype(int) - square.astype(int))
    print(f"\n[preview] 96 px preview vs the full composite shrunk: mean {diff.mean():.2f}, "
          f"99th pct {np.percentile(diff, 99):.0f} levels (the edit itself: mean {change.mean():.2f})")
    assert diff.mean() < 0.25 * change.mean() and np.percentile(diff, 99) <= 24


def test_size_shrinks_and_strength_changes_the_preview(tiny_session):
    b, sid = _backend(tiny_session)
    small = []
    for strength in (-2.0, 2.0):
        spec = {"edits": [{"kind": "direction", "name": "sefa0", "strength": strength}], "size": 96}
        t0 = time.perf_counter()
        small.append(_arr(b.preview(sid, json.dumps(spec))))
        print(f"\n[preview] photo-resolution detail preview, 96 px: {time.perf_counter() - t0:.3f} s")
    assert small[0].shape == small[1].shape == (96, 96, 3)
    # the tiny random generator's change is mostly fine grain, which detail mode leaves to the
    # photo: the low band that remains is small, but a preview that ignored the strength gives 0
    assert np.abs(small[0].astype(int) - small[1].astype(int)).mean() > 0.1
    rep = _arr(b.preview(sid, json.dumps({"edits": EDIT, "composite": "replace", "size": 96})))
    det = _arr(b.preview(sid, json.dumps({"edits": EDIT, "composite": "detail", "size": 96})))
    assert rep.shape == (96, 96, 3) and (rep != det).any()


@pytest.mark.parametrize("options, message", [
    ({"edits": [], "size": 4}, "preview size must be between 16 and 1024, got 4"),
    ({"edits": [], "size": "big"}, "preview size must be a number, got 'big'"),
    ({"edits": [], "composite": "blur"}, "composite must be one of detail, replace"),
    ({"edits": [], "zoom": 2}, "preview options are edits, composite and size; unknown: zoom"),
])
def test_bad_preview_options_get_one_line(tiny_session, options, message):
    b, sid = _backend(tiny_session)
    with pytest.raises(InputError) as e:
        b.preview(sid, json.dumps(options))
    assert message in str(e.value) and "\n" not in str(e.value)
