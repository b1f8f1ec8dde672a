"""The interpolation's composite (``priorpaint.compositing.between``): the photo's own pixels moved to
the face between the two, judged by the independent measures (landmarks between, blotches, smear,
unexplained structure); the pixels outside the mask untouched; no face, or t = 0, moves nothing.
And a render of an interpolation goes through it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from priorpaint.compositing.between import between_composite
from priorpaint.measures.artefacts import artefacts
from priorpaint.measures.interpolation import MAX_BETWEEN, between_report, interpolation_worked, square_points

from conftest import ASTRONAUT_BOX, FAST_PROJECTION

SIDE, RES = 256, 64


def scaled(img: np.ndarray, k: float, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
    c = img.shape[0] / 2.0
    m = np.float32([[k, 0, c - k * c + dx], [0, k, c - k * c + dy]])
    return cv2.warpAffine(img, m, img.shape[:2][::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


@pytest.fixture(scope="module")
def pair(astronaut_path):
    """The astronaut's face square, another face (the same one smaller and lower, as a second photo
    framed differently would be), both squares' model-resolution renders, and a box mask."""
    im = Image.open(astronaut_path).convert("RGB").crop((120, 0, 340, 220)).resize((SIDE, SIDE), Image.LANCZOS)
    a = np.asarray(im).copy()
    b = scaled(a, 0.8, 0, 14)
    small = [cv2.resize(x, (RES, RES), interpolation=cv2.INTER_AREA) for x in (a, b)]
    mask = np.zeros((SIDE, SIDE), np.uint8)
    mask[16:-16, 16:-16] = 255
    return a, b, small[0], small[1], mask


def test_the_photo_moves_to_the_face_between_without_artefacts(pair):
    a, b, ra, rb, mask = pair
    w = between_composite(a, ra, rb, 0.5, mask, 8)
    assert w.info["motion"] == "landmarks"
    m = interpolation_worked(w.region, a, b, 0.5, mask)
    assert m["failed"] == [], m
    assert "between" in interpolation_worked(a, a, b, 0.5, mask)["failed"]   # the photo itself is not between
    art = artefacts(w.region, a, mask, RES)
    assert art["smear"] <= 0.03 and art["unexplained"] <= 0.10, art
    assert np.array_equal(w.region[mask == 0], a[mask == 0])
    # the same measures fail on what the detail composite made: the two faces cross-faded
    fade = np.clip(0.5 * a.astype(np.float32) + 0.5 * b, 0, 255).astype(np.uint8)
    bad = artefacts(fade, a, mask, RES)
    assert bad["unexplained"] > 0.10, bad


def test_no_face_and_t_zero_move_nothing(pair):
    a, b, ra, rb, mask = pair
    assert np.array_equal(between_composite(a, ra, rb, 0.0, mask, 8).region, a)
    flat = np.full_like(rb, 128)
    w = between_composite(a, ra, flat, 0.5, mask, 8)
    assert w.info["motion"] == "none" and w.info["moved_model_px"] == 0.0
    assert np.array_equal(w.region[mask == 0], a[mask == 0])


def test_an_interpolation_renders_through_the_between_composite(default_gen, astronaut_path, tmp_path, tmp_cache):
    from priorpaint.projection.project import ProjectionConfig
    from priorpaint.session import EditSession
    s = EditSession.open(astronaut_path, box=ASTRONAUT_BOX, gen=default_gen)
    s.project(ProjectionConfig(steps=10, **FAST_PROJECTION))
    sq = s.photo_square()
    other = tmp_path / "other.png"
    Image.fromarray(scaled(sq, 0.8, 0, sq.shape[0] / 18)).save(other)
    r = s.render(s.apply([f"interpolate:{other}@0.5"]))
    assert r.metrics["composite"] == "warp" and r.metrics["composite_info"]["kind"] == "interpolate"
    assert r.metrics["changed_outside_mask"] == 0
    kind = r.metrics["structure"]["kind"]           # the report's own "worked": the face between the two
    assert kind["kind"] == "interpolate" and kind["face_found"] and kind["between"] is not None
    assert ("between" in r.metrics["verdict"]["failed"]) == (kind["between"] > MAX_BETWEEN)
    assert not np.array_equal(r.photo.rgb, s.photo.rgb)


def test_the_reports_between_measure_reads_the_others_landmarks(pair):
    """A render's report keeps the other face's landmarks (fractions of its square), not its pixels:
    the exact geometric half-way face passes, the unmoved photo and the other face itself fail, and
    a square without a face says so."""
    a, b, _, _, _ = pair
    other = square_points(b)
    assert other is not None and other.shape == (5, 2) and 0 < other.min() and other.max() < 1
    half = between_report(scaled(a, 0.9, 0, 7), a, other.tolist(), 0.5)
    assert half["face_found"] and half["between"] < MAX_BETWEEN and half["failed"] == []
    for wrong in (a, b):
        bad = between_report(wrong, a, other.tolist(), 0.5)
        assert bad["between"] > MAX_BETWEEN and bad["failed"] == ["between"], bad
    flat = np.full_like(a, 128)
    assert between_report(flat, a, other.tolist(), 0.5) == {"between": None, "face_found": False, "failed": ["face"]}
    assert between_report(a, a, None, 0.5)["failed"] == ["face"]


def test_an_interpolations_verdict_says_when_the_face_is_not_between():
    from priorpaint.measures.kinds import merge_verdict
    from priorpaint.measures.verdict import verdict
    kind = {"kind": "interpolate", "between": 0.27, "face_found": True, "failed": ["between"]}
    v = merge_verdict(verdict(None, {"smear": 0.0, "unexplained": 0.02, "ghost": 0.01}), kind)
    assert v["carried"] is False and v["failed"] == ["between"]
    assert v["message"] == ("this edit cannot be carried here: the face is 0.27 eye distances from the one "
                            f"between the two (at most {MAX_BETWEEN})")
    ok = merge_verdict(verdict(None, {"smear": 0.0, "unexplained": 0.02, "ghost": 0.01}),
                       dict(kind, between=0.05, failed=[]))
    assert ok["carried"] is True and ok["message"] == "carried: the face is 0.05 eye distances from the one between the two"
