"""A head edit on a selection that cuts the head says so (compositing/warp_head.py ``head_cut``,
measures/verdict.py ``head_cut_note``): the share of the head under the selection's feather taper or
outside it, measured per render; where the head motion's fold check limited the turn or bow and the
cut is over ``MIN_HEAD_CUT``, the verdict's one line says so, with the fix; saying it changes no pixel."""

from __future__ import annotations

import numpy as np
import pytest

from priorpaint.compositing import warp_head as wh
from priorpaint.measures import verdict as vd

#: a frontal face's five landmarks in a 256 px square (model px × 4), as tests/test_warp_head.py's
FACE = np.array([[96.0, 104.0], [160.0, 104.0], [128.0, 136.0], [104.0, 176.0], [152.0, 176.0]])


def _frame():
    return wh.head_frame(FACE / 4.0)


def test_a_whole_head_is_not_cut_and_a_tight_box_cuts_most_of_it():
    assert wh.head_cut(_frame(), np.ones((64, 64), np.float32)) == 0.0
    tight = np.zeros((64, 64), np.float32)
    tight[22:50, 20:44] = 1.0                       # the taper's whole part: the middle of the face only
    assert 0.6 < wh.head_cut(_frame(), tight) < 1.0
    assert wh.head_cut(_frame(), np.zeros((64, 64), np.float32)) == 1.0


def test_the_head_past_the_squares_edge_counts_as_cut():
    """A head whose lower half lies below the square is cut by half, though all of the square is free."""
    low = wh.head_frame(FACE / 4.0 + np.array([0.0, 30.0]))   # the head moved down by about its half-height
    cut = wh.head_cut(low, np.ones((64, 64), np.float32))
    assert 0.3 < cut < 0.7


def test_the_taper_ramp_counts_where_it_holds_the_motion_back():
    ramp = np.ones((64, 64), np.float32)
    ramp[:, 32:] = 0.5                              # half the square at half the motion: held back
    assert 0.3 < wh.head_cut(_frame(), ramp) < 0.7
    ramp[:, 32:] = wh.CUT_TAPER                     # at the threshold: free
    assert wh.head_cut(_frame(), ramp) == 0.0


def test_a_limited_turn_on_a_cut_head_names_the_share_the_limit_and_the_fix():
    info = {"head_cut": 0.94, "head_angle_deg": -14.2, "head_angle_asked_deg": -22.0}
    note = vd.head_cut_note(info)
    assert note == ("the selection cuts the head (94 % of it under the edge's feather): the turn is limited "
                    "to 14° of 22°; select the whole head to turn it fully")
    bow = vd.head_cut_note({"head_cut": 0.95, "head_pitch_deg": 5.0, "head_pitch_asked_deg": 12.0})
    assert "the bow is limited to 5° of 12°" in bow and bow.endswith("to bow it fully")
    both = vd.head_cut_note({**info, "head_pitch_deg": 5.0, "head_pitch_asked_deg": 12.0})
    assert both.endswith("select the whole head to turn and bow it fully")


@pytest.mark.parametrize("info", [
    {"head_cut": 0.94, "head_angle_deg": -22.0, "head_angle_asked_deg": -22.0},      # cut, but turned fully
    {"head_cut": 0.94, "head_angle_deg": -21.7, "head_angle_asked_deg": -22.0},      # within half a degree
    {"head_cut": vd.MIN_HEAD_CUT, "head_angle_deg": 10.0, "head_angle_asked_deg": 22.0},   # limited, head inside
    {"head_cut": 0.3, "head_angle_deg": 10.0}, {}, None, {"motion": "landmarks"}])
def test_no_note_without_a_limit_a_cut_head_or_a_head_motion(info):
    assert vd.head_cut_note(info) is None


def test_the_note_joins_the_verdicts_one_line_carried_or_not():
    note = vd.head_cut_note({"head_cut": 0.93, "head_angle_deg": 15.9, "head_angle_asked_deg": 22.0})
    carried = vd.with_notes(vd.verdict(0.74, {"smear": 0.0}), [note])
    assert carried["carried"] is True and carried["notes"] == [note]
    assert carried["message"] == "carried: effect 0.74 of the model's; " + note and "\n" not in carried["message"]
    refused = vd.with_notes(vd.verdict(0.3, {"smear": 0.0}), [note])
    assert refused["carried"] is False and refused["message"].endswith("; " + note)
    assert vd.with_notes(vd.verdict(0.74, {}), [None]) == vd.verdict(0.74, {})
    assert vd.with_notes({"carried": None, "message": "no edit"}, [note]) == {"carried": None, "message": "no edit"}


def test_a_tighter_box_cuts_more_of_hoppers_head():
    """Real photo, no projection: the share measured from her own landmarks and the selection's taper
    (the tight box whose turn the fold check limits to 15.9–18.7°: 0.92; the box that turns fully
    at 22°: 0.88; a loose box: 0.81; docs/method/editability.md, round 10): each over
    ``MIN_HEAD_CUT`` (hair and crown count), and the tighter the box, the more."""
    from priorpaint.bench.fixtures import matplotlib_sample_path
    from priorpaint.compositing.between import mask_taper
    from priorpaint.compositing.blend import default_feather
    from priorpaint.faces.landmarks import square_landmarks
    from priorpaint.session import EditSession
    shares = []
    for box in ((170, 110, 220, 230), (150, 95, 250, 260), (100, 40, 350, 400)):
        s = EditSession.open(matplotlib_sample_path("grace_hopper.jpg"), box=box)
        region, side = s.photo_square(), s.crop.square[2]
        pts = square_landmarks(region, interpolation="auto")
        shares.append(wh.head_cut(wh.head_frame(np.asarray(pts, np.float64) / (side / 64.0)),
                                  mask_taper(s.crop.region_mask, default_feather(side), 64)))
    assert shares[0] > shares[1] > shares[2] > vd.MIN_HEAD_CUT, shares


def test_a_render_says_it_in_one_line_and_its_pixels_do_not_change(session, one_thread, monkeypatch):
    """The astronaut's bench box turns fully (its head cut about 0.77): no note. With the fold check made
    strict enough to limit its turn, the render's and the live preview's verdicts carry the note in their
    one line; with the cut threshold over its share, the same render has no note and the same pixels."""
    st = session.apply(["direction:head_turn=2"])
    plain = session.render(st, adapt=False)
    info = plain.metrics["composite_info"]
    assert vd.MIN_HEAD_CUT < info["head_cut"] < 1.0
    assert abs(info["head_angle_deg"]) == pytest.approx(abs(info["head_angle_asked_deg"]))
    assert plain.metrics["structure"]["head_cut"] == info["head_cut"]
    assert "selection cuts the head" not in plain.metrics["verdict"]["message"]
    assert "notes" not in plain.metrics["verdict"]
    monkeypatch.setattr(wh, "MIN_JACOBIAN", 0.9)          # a fold check that limits this turn
    noted = session.render(st, adapt=False)
    ninfo = noted.metrics["composite_info"]
    assert abs(ninfo["head_angle_deg"]) < abs(ninfo["head_angle_asked_deg"]) - 0.5
    msg = noted.metrics["verdict"]["message"]
    assert "the selection cuts the head" in msg and "the turn is limited to" in msg
    assert "select the whole head to turn it fully" in msg
    assert "\n" not in msg and len(noted.metrics["verdict"]["notes"]) == 1
    live = session.preview_verdict(st, "detail", 256)["verdict"]
    assert "the selection cuts the head" in live["message"] and "\n" not in live["message"]
    monkeypatch.setattr(vd, "MIN_HEAD_CUT", ninfo["head_cut"] + 0.01)
    quiet = session.render(st, adapt=False)
    assert "notes" not in quiet.metrics["verdict"] and "selection cuts" not in quiet.metrics["verdict"]["message"]
    assert np.array_equal(noted.photo.rgb, quiet.photo.rgb) and np.array_equal(noted.layer, quiet.layer)
