"""The page's own logic without a browser (issue 27): the painted selection closed at the
displayed scale, the plain words of the status and of a render, and what a reload may take
back from the browser."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from priorpaint.app.ui import project, render, resume, selection


def _stripes(h=3000, w=2560, gap=60, width=20):
    """Horizontal brush stripes over a face-sized area, ``gap`` photo px apart."""
    m = np.zeros((h, w), np.uint8)
    for y in range(600, 1400, gap + width):
        m[y:y + width, 900:1700] = 255
    return m


def test_gapped_stripes_become_the_painted_area_at_a_small_zoom():
    m = _stripes()
    closed, info = selection.close_gaps(m, scale=0.15)   # 60 px gaps are 9 screen px at 15 %
    assert closed is not None and closed.dtype == np.uint8
    assert (closed[m > 0] == 255).all(), "a painted pixel was dropped"
    inside = closed[610:1330, 950:1650]   # from the first stripe to the last
    assert (inside == 255).mean() > 0.99, "the gaps between the strokes are still there"
    assert closed[:400].max() == 0 and closed[:, :700].max() == 0, "the selection grew far beyond the paint"
    assert info["gap_px"] == round(selection.GAP_SCREEN_PX / 0.15) and info["added"] > 0.5
    assert "brush gaps up to" in selection.note(info)


def test_gaps_wider_than_the_screen_gap_stay_open():
    m = _stripes(gap=400, width=20)   # 60 screen px at 15 %: two separate strokes, not a gap
    closed, _ = selection.close_gaps(m, scale=0.15)
    assert closed[700:1000, 1200].max() == 0


def test_holes_of_a_painted_outline_are_filled():
    m = np.zeros((400, 400), np.uint8)
    m[100:300, 100:300] = 255
    m[130:270, 130:270] = 0   # a ring painted around a face
    closed, info = selection.close_gaps(m, scale=1.0)
    assert (closed[100:300, 100:300] == 255).all() and closed[:90].max() == 0
    assert info["added"] > 0.5


def test_a_solid_selection_is_left_as_painted():
    m = np.zeros((200, 300), np.uint8)
    m[50:150, 60:200] = 255
    closed, info = selection.close_gaps(m, scale=0.5)
    assert np.array_equal(closed, m) and selection.note(info) == ""
    assert selection.close_gaps(None)[0] is None
    assert selection.close_gaps(np.zeros((5, 5), np.uint8))[0] is None


@pytest.mark.parametrize("text, expect", [("460,520", min(460 / 2560, 520 / 3000)), ("", 1.0), ("a,b", 1.0),
                                          ("0,0", 1.0), ("nan,5", 1.0), ("1e9,1e9", 1e9 / 3000)])
def test_display_scale(text, expect):
    assert selection.display_scale(text, (3000, 2560)) == pytest.approx(expect)


def test_status_is_plain_words_without_the_session_id():
    st = {"session": "0123456789abcdef", "model": "dcgan-digiface-64", "psnr_z": 18.0, "psnr_projection": 24.5,
          "psnr_adapted": 33.0, "seconds": {"total": 3.2}, "notes": []}
    text = project.status_md(st, "selection: the painted region")
    assert "0123456789" not in text and "session" not in text.lower()
    assert "PSNR" not in text and "G′" not in text and "G(z" not in text
    assert "reproduces your selection fairly" in text
    figures = project.figures_md(st)
    assert "24.50 dB" in figures and "refined, G(z_h)" in figures and "fitted to this photo, G′" in figures
    assert project.fit_words(35) == "closely" and project.fit_words(12).startswith("poorly")


def test_tiny_box_is_warned():
    assert "far below the model's 64 px" in project.tiny_note((10, 10, 8, 8), 64)
    assert project.tiny_note((0, 0, 200, 200), 64) == ""
    assert project.tiny_note((0, 0, 8, 8), None) == ""


def test_where_image_outlines_a_box_on_a_shrunk_photo():
    bg = np.full((3000, 2560, 3), 90, np.uint8)
    im = project.where_image(bg, None, (1000, 1000, 600, 600))
    assert max(im.size) == 480
    a = np.asarray(im)
    assert (a == (255, 51, 102)).all(axis=2).sum() > 100   # the box's outline


def test_render_message_explains_detail_kept():
    d = {"changed_outside_mask": 0, "psnr_photo": 30.1, "detail_kept": 1.45, "composite": "detail",
         "seconds": {"total": 1.0}, "edits": [{"kind": "direction"}]}
    msg = render.render_message(d)
    assert "detail kept 1.45 (above 1: more fine detail than the photo)" in msg
    assert "how close to your photo inside the selection 30.1 dB" in msg


class _Scratch:
    def __init__(self, d):
        self.dir = d


class _Page:
    def __init__(self, d):
        self.scratch = _Scratch(d)


def test_a_reload_takes_back_only_the_pages_own_files(tmp_path):
    own = tmp_path / "scratch"
    own.mkdir()
    mine = own / "paint-1.png"
    Image.new("RGBA", (4, 4)).save(mine)
    other = tmp_path / "secret.png"
    Image.new("RGBA", (4, 4)).save(other)
    page = _Page(own)
    items = [{"spec": {"kind": "direction", "name": "head_turn", "strength": 1.0}, "label": "direction head_turn"},
             {"spec": {"kind": "paint", "concept": "smile", "mode": "add", "mask": str(mine)}, "label": "paint"},
             {"spec": {"kind": "paint", "concept": "smile", "mode": "add", "mask": str(other)}, "label": "paint"},
             {"spec": {"kind": "paint", "concept": "x", "mode": "add", "mask": str(own / ".." / "secret.png")},
              "label": "paint"},
             "not an entry", {"spec": "nope", "label": "x"}]
    kept, dropped = resume.kept_items(page, items)
    assert [it["label"] for it in kept] == ["direction head_turn", "paint"] and dropped == 4
    assert kept[1]["spec"]["mask"] == str(mine)
    hist = [{"n": 1, "path": str(mine), "before": str(mine), "after": str(mine), "caption": "#1"},
            {"n": 2, "path": str(other), "before": str(mine), "after": str(mine), "caption": "#2"}]
    assert [h["n"] for h in resume.kept_history(page, hist)] == [1]
    assert resume.kept_items(page, "not a list") == ([], 0)
    assert resume.kept_history(page, {"a": 1}) == []


def test_a_finished_stage_says_the_composite_follows():
    from priorpaint.app.contract import Progress
    assert render.stage_words(Progress(stage="adapt", fraction=1.0)) == \
        "adapt done; compositing into the full-size photo"
    assert render.stage_words(Progress(stage="adapt", fraction=0.5)) == "adapt"
    assert render.stage_words(Progress(stage="starting", fraction=1.0)) == "starting"


def test_the_service_says_whether_it_holds_a_session():
    from priorpaint.app.service import Service
    svc = Service()
    assert svc.holds("0123456789abcdef") is False and svc.holds("") is False and svc.holds("x" * 500) is False
