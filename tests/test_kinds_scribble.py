"""A colour scribble worked: the ``colour`` composite keeps the photo's texture under the strokes
and shows the strokes' colour; the measures of ``priorpaint.measures.kinds`` fail on a red bar
and on an edit that did not happen, and pass on a good result."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from priorpaint.compositing.colour import colour_composite
from priorpaint.edits.scribble import stroke_map
from priorpaint.measures import kinds as K

R = 64
RED = (220, 30, 30)


@pytest.fixture(scope="module")
def square(astronaut_path):
    """The astronaut's face square at 256 px (a real photo: skin, hair, fabric)."""
    im = Image.open(astronaut_path).convert("RGB").crop((140, 20, 320, 200)).resize((256, 256), Image.LANCZOS)
    return np.asarray(im).copy()


def strokes_at_model(colour=RED, box=(14, 8, 50, 22)):
    """(colour (1,3,R,R) in [-1,1], weight (1,1,R,R)): a painted rectangle, as stroke_target gives it."""
    w = torch.zeros(1, 1, R, R)
    x0, y0, x1, y1 = box
    w[..., y0:y1, x0:x1] = 1.0
    c = torch.tensor(colour, dtype=torch.float32).div(127.5).sub(1.0).view(1, 3, 1, 1).expand(1, 3, R, R).clone()
    return c, w


def renderings(region: np.ndarray, colour=RED, box=(14, 8, 50, 22)):
    """The unedited rendering (the photo at the model's size) and an edited one whose strokes
    are flat stroke colour: what the optimised generator shows."""
    base = cv2.resize(region, (R, R), interpolation=cv2.INTER_AREA)
    edited = base.copy()
    x0, y0, x1, y1 = box
    edited[y0:y1, x0:x1] = colour
    return base, edited


def red_bar(region: np.ndarray, edited: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The failure of the issue: the generated pixels pasted (upsampled) over the strokes."""
    up = cv2.resize(edited, region.shape[:2][::-1], interpolation=cv2.INTER_CUBIC)
    out = region.copy()
    changed = cv2.resize((np.abs(edited.astype(int) - cv2.resize(region, (R, R), interpolation=cv2.INTER_AREA))
                          .max(axis=2) > 0).astype(np.uint8), region.shape[:2][::-1], interpolation=cv2.INTER_NEAREST) > 0
    out[changed & (mask > 0)] = up[changed & (mask > 0)]
    return out


def test_stroke_map_round_trips():
    c, w = strokes_at_model()
    w[..., 40:42, 5:9] = 0.4                       # under the alpha threshold: not a stroke
    m = stroke_map(c, w)
    on, rgb = K.decode_stroke_map(m)
    assert m["resolution"] == R and np.array_equal(on, (w[0, 0] >= 0.5).numpy())
    assert (rgb[on] == RED).all() and (rgb[~on] == 0).all()
    assert len(m["runs"]) == 14                    # one run per stroked row
    assert K.decode_stroke_map({"resolution": 4, "runs": [[0, "x"]]}) is None


def test_colour_composite_keeps_texture_shows_colour_and_leaves_outside_alone(square):
    base, edited = renderings(square)
    mask = np.zeros(square.shape[:2], np.uint8)
    mask[16:240, 16:240] = 255
    out, inner, alpha, info = colour_composite(square, base, edited, mask)
    assert info["mode"] == "colour"
    assert np.array_equal(out[alpha == 0], square[alpha == 0])          # outside the mask: bit for bit
    m = K.scribble_worked(out, square, stroke_map(*strokes_at_model()), R, mask)
    assert m["failed"] == [], m
    assert m["texture_kept"] >= K.MIN_TEXTURE and m["hue_distance"] <= 10 and m["colour_reached"] >= 0.7


def test_measures_fail_on_a_red_bar_and_on_no_edit(square):
    base, edited = renderings(square)
    mask = np.full(square.shape[:2], 255, np.uint8)
    sm = stroke_map(*strokes_at_model())
    bar = K.scribble_worked(red_bar(square, edited, mask), square, sm, R, mask)
    assert "texture" in bar["failed"] and bar["texture_kept"] < 0.3, bar
    assert bar["hue_distance"] <= 10                                    # the colour shows: only texture fails
    nothing = K.scribble_worked(square.copy(), square, sm, R, mask)
    assert "colour" in nothing["failed"] and nothing["texture_kept"] == pytest.approx(1.0)
    blue = K.scribble_worked(colour_composite(square, base, renderings(square, (30, 60, 220))[1], mask)[0],
                             square, sm, R, mask)
    assert "hue" in blue["failed"], blue                                # the wrong colour


def test_colour_composite_no_change_and_gray(square):
    base, _ = renderings(square)
    mask = np.full(square.shape[:2], 255, np.uint8)
    assert np.array_equal(colour_composite(square, base, base.copy(), mask)[0], square)
    gray = np.repeat(cv2.cvtColor(square, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    gb = np.repeat(cv2.cvtColor(base, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    ge = gb.copy()
    ge[8:22, 14:50] = 200
    out = colour_composite(gray, gb, ge, mask)[0]
    assert np.abs(out[..., 0].astype(int) - out[..., 2]).max() <= 1    # a gray photo stays gray


def test_verdict_says_why_a_scribble_was_not_carried():
    v = {"carried": True, "message": "carried", "failed": []}
    kind = {"kind": "scribble", "texture_kept": 0.2, "hue_distance": 3.0, "colour_reached": 0.9, "failed": ["texture"]}
    out = K.merge_verdict(v, kind)
    assert out["carried"] is False and out["failed"] == ["texture"]
    assert out["message"] == "this edit cannot be carried here: texture kept 0.2 of the photo's (at least 0.6)"
    good = dict(kind, texture_kept=0.9, failed=[])
    assert K.merge_verdict({"carried": None, "message": "nothing", "failed": []}, good)["carried"] is True


def test_a_rendered_scribble_is_composited_in_colour_and_measured(tiny_session):
    s = tiny_session
    W, H = s.photo.size
    strokes = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    ImageDraw.Draw(strokes).rectangle((170, 40, 290, 110), fill=RED + (255,))
    state = s.apply([{"kind": "scribble", "strokes": strokes, "steps": 20}])
    assert state.applied[-1]["stroke_map"]["runs"]
    r = s.render(state)
    assert r.metrics["composite_info"]["mode"] == "colour"
    kind = r.metrics["structure"]["kind"]
    assert kind["kind"] == "scribble" and kind["texture_kept"] is not None
    assert r.metrics["verdict"]["carried"] in (True, False)
    assert r.metrics["changed_outside_mask"] == 0
    prev = s.preview_region(state, size=128)
    assert prev.shape == (128, 128, 3)


def test_gray_photo_verdict_says_it_keeps_no_colour():
    kind = {"kind": "scribble", "gray_photo": True, "texture_kept": 1.0, "hue_distance": None,
            "colour_reached": 0.0, "failed": ["colour"]}
    out = K.merge_verdict({"carried": True, "message": "carried", "failed": []}, kind)
    assert out["carried"] is False and out["message"].endswith("; a grayscale photo keeps no colour")


def test_the_report_judges_a_scribble_by_its_own_measures(square):
    from types import SimpleNamespace

    from priorpaint.measures.report import structure_report
    base, edited = renderings(square)
    mask = np.full(square.shape[:2], 255, np.uint8)
    spec = {"kind": "scribble", "strokes": "<Image>", "stroke_map": stroke_map(*strokes_at_model())}
    good = colour_composite(square, base, edited, mask)[0]
    st, v = structure_report(SimpleNamespace(resolution=R), None, [spec], good, square, mask)
    assert st["kind"]["in_place"] and st["kind"]["failed"] == [] and v["carried"] is True, (st, v)
    st, v = structure_report(SimpleNamespace(resolution=R), None, [spec], red_bar(square, edited, mask), square, mask)
    assert v["carried"] is False and "texture" in v["failed"] and "texture kept" in v["message"]
