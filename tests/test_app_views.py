"""The page's logic without a browser: readable previews, the selection's compare pair, the
box field, the edit list (add / remove / reorder / strengths, what the preview runs) and
the render history."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from priorpaint.app import views
from priorpaint.errors import InputError


def test_readable_enlarges_model_images_by_a_whole_factor():
    small = np.arange(64 * 64 * 3, dtype=np.uint8).reshape(64, 64, 3)
    big = views.readable(small)
    assert big.size == (256, 256)
    assert (np.asarray(big)[::4, ::4] == small).all()  # nearest neighbour: the model's pixels as they are
    photo = Image.new("RGB", (300, 280))
    assert views.readable(photo) is photo  # already readable: the photo's own resolution
    assert views.readable(None) is None


def test_compare_pair_is_the_layer_box_at_photo_resolution():
    before = np.zeros((100, 120, 3), np.uint8)
    after = before.copy()
    after[10:40, 20:60] = 200
    b, a = views.compare_pair(before, after, (20, 10, 40, 30))
    assert b.size == a.size and min(a.size) >= views.MIN_PREVIEW
    assert np.asarray(b).max() == 0 and np.asarray(a).min() == 200
    with pytest.raises(InputError, match="outside"):
        views.box_crop(before, (500, 500, 10, 10))


def test_selection_mask_counts_translucent_paint():
    alpha = np.zeros((8, 8), np.uint8)
    assert views.selection_mask(alpha) is None
    alpha[2:4, 2:4] = 115  # the translucent brush
    m = views.selection_mask(alpha)
    assert m.dtype == np.uint8 and set(np.unique(m)) == {0, 255} and m[2, 2] == 255


def test_selection_outline_draws_only_near_the_edge():
    photo = np.full((64, 64, 3), 50, np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = 255
    out = views.selection_outline(photo, mask)
    assert (out[32, 32] == 50).all() and (out[0, 0] == 50).all()
    assert (out[16, 32] != 50).any()


@pytest.mark.parametrize("text, box", [("140,20,180,180", (140, 20, 180, 180)), ("140 20 180 180", (140, 20, 180, 180)),
                                       (" 1, 2 ,3,4 ", (1, 2, 3, 4)), ("", None)])
def test_box_text(text, box):
    assert views.parse_box_text(text) == box


@pytest.mark.parametrize("text", ["140 20 180", "a,b,c,d", "1,2,3,4,5", "nan,1,2,3"])
def test_bad_box_text_says_what_to_type(text):
    with pytest.raises(InputError) as e:
        views.parse_box_text(text)
    msg = str(e.value)
    assert "four numbers X,Y,W,H" in msg and "--box" not in msg and "\n" not in msg


def test_edit_list_add_replace_move_remove():
    ranges = {"smile": (-2.0, 2.0)}
    items, msg = views.add([], {"kind": "direction", "name": "smile", "strength": 1.0}, ranges)
    assert msg.startswith("added #1")
    items, msg = views.add(items, {"kind": "scribble", "strokes": "/tmp/s.png"})
    items, msg = views.add(items, {"kind": "direction", "name": "smile", "strength": 5.0}, ranges)
    assert msg.startswith("updated #1") and "clamped to 2" in msg  # the same direction is replaced, not doubled
    assert [r[1] for r in views.table(items)] == ["direction smile", "colour scribble"]
    assert [r[3] for r in views.table(items)] == ["live", "at Render"]
    items, _ = views.move(items, 2, -1)
    assert [s["kind"] for s in views.specs(items)] == ["scribble", "direction"]
    items, msg = views.set_strength(items, 2, -9)
    assert views.specs(items)[1]["strength"] == -2.0 and "clamped to -2" in msg
    with pytest.raises(InputError, match="no strength"):
        views.set_strength(items, 1, 1.0)
    with pytest.raises(InputError, match="no edit #3"):
        views.remove(items, 3)
    items, msg = views.remove(items, 1)
    assert views.specs(items) == [{"kind": "direction", "name": "smile", "strength": -2.0}]
    with pytest.raises(InputError, match="empty"):
        views.remove([], 1)


def test_edit_list_never_changes_the_callers_list():
    items, _ = views.add([], {"kind": "vector", "name": "v", "strength": 1.0})
    snapshot = [dict(i) for i in items]
    views.set_strength(items, 1, 2.0)
    views.move(items, 1, 1)
    views.remove(items, 1)
    assert items[0]["spec"] == snapshot[0]["spec"]


def test_preview_runs_only_cheap_edits_and_says_so():
    spec_list = [{"kind": "direction", "name": "a", "strength": 1}, {"kind": "scribble", "strokes": "x"},
                 {"kind": "vector", "name": "v", "strength": 1}, {"kind": "paint", "concept": "c"}]
    run, skipped = views.cheap(spec_list)
    assert [s["kind"] for s in run] == ["direction", "vector"] and skipped == ["scribble", "paint"]
    note = views.preview_note(len(run), skipped)
    assert "2 latent edit(s)" in note and "scribble, paint" in note and "Render" in note


def test_history_and_download_name():
    h = []
    for n in range(1, 12):
        h = views.push_history(h, {"n": n})
    assert [x["n"] for x in h] == list(range(11, 11 - views.HISTORY, -1))
    assert views.download_name("astronaut.png", 3) == "astronaut-priorpaint-3.png"
    assert views.download_name("../../etc/pass wd.jpg", 1) == "pass_wd-priorpaint-1.png"
    assert views.download_name("", 2) == "photo-priorpaint-2.png"
    assert views.download_name(None, 2) == "photo-priorpaint-2.png"


def test_download_line_shows_bytes_and_share():
    from priorpaint.app.ui.models import download_line
    line = download_line({"model": "m", "bytes_done": 12_500_000, "bytes_total": 25_000_000})
    assert "12.5 MB of 25.0 MB (50 %)" in line and "<progress" in line and "**m**" in line
    assert download_line({"model": "m", "bytes_done": 0, "bytes_total": None}).endswith("0.0 MB so far")


def test_verdict_line_warns_only_when_not_carried():
    from priorpaint.app import views as V
    assert V.verdict_line(None) == "" and V.verdict_line({"carried": None, "message": "nothing to judge"}) == ""
    bad = V.verdict_line({"carried": False, "message": "this edit cannot be carried here: effect 0.20 of the model's"})
    assert bad.startswith("**⚠ this edit cannot be carried here: effect 0.20") and "\n" not in bad
    ok = V.verdict_line({"carried": True, "message": "carried: effect 0.80 of the model's"})
    assert "⚠" not in ok and "carried: effect 0.80" in ok


def test_unchanged_line_says_when_a_render_changed_nothing():
    from priorpaint.app import views as V
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[1, 1, 0] = 1
    assert V.unchanged_line(a, b, 1) == ""
    assert "Nothing changed: the result is identical to your photo" in V.unchanged_line(a, a.copy(), 2)
    assert "no edits are listed" in V.unchanged_line(a, a.copy(), 0)
