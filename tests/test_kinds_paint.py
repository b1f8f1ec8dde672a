"""Concept paint and label-map edits worked: something visible appears where they were painted
(``priorpaint.measures.kinds.painted_change``); the measure fails on an edit that did not happen
(a change of a few grey levels, like the nearly invisible "add hair") and passes on a visible one."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from priorpaint.measures import kinds as K
from priorpaint.measures.report import structure_report


@pytest.fixture(scope="module")
def square(astronaut_path):
    im = Image.open(astronaut_path).convert("RGB").crop((140, 20, 320, 200)).resize((256, 256), Image.LANCZOS)
    return np.asarray(im).copy()


def painted(square):
    mask = np.zeros(square.shape[:2], np.uint8)
    mask[20:90, 60:200] = 255                    # the hair above the forehead
    return mask


def test_a_nearly_invisible_paint_fails_and_a_visible_one_passes(square):
    mask = painted(square)
    faint = square.astype(int)
    faint[mask > 0] -= 6                         # a few grey levels darker: nothing a user sees
    faint = np.clip(faint, 0, 255).astype(np.uint8)
    m = K.painted_change(faint, square, mask)
    assert m["failed"] == ["visible"] and m["changed_share"] < 0.1, m
    dark = square.astype(np.float32)
    dark[mask > 0] *= 0.45                       # darker hair, the texture kept
    m = K.painted_change(dark.astype(np.uint8), square, mask)
    assert m["failed"] == [] and m["changed_share"] > 0.5, m


def test_the_report_judges_paint_and_segment_edits(square):
    mask = painted(square)
    gen = SimpleNamespace(resolution=64)
    for kind in ("paint", "segment"):
        st, v = structure_report(gen, None, [{"kind": kind, "concept": "hair"}], square.copy(), square, mask)
        assert st["kind"]["kind"] == kind and v["carried"] is False and "visible" in v["failed"]
        assert "no visible change where it was painted" in v["message"]
    assert K.kind_report([{"kind": "paint", "noop": True}], square, square, mask, 64) is None
    assert K.kind_report([{"kind": "interpolate"}], square, square, mask, 64) is None


# -- the asked part appeared: the region reads as the photo's own part ------------------------------

def _part_case(square):
    """Hair asked on the backdrop at the top left (model cells rows 1-3, cols 0-2 of 16): the photo's
    own hair is the top of the head (rows 1-4, cols 3-12)."""
    from priorpaint.compositing.texture import part_map
    before = np.full((16, 16), 0, np.int64)
    before[1:5, 3:13] = 1
    after = before.copy()
    after[1:4, 0:3] = 1
    mask = np.zeros(square.shape[:2], np.uint8)
    mask[8:72, 0:56] = 255
    return part_map(before, after, ["background", "hair"]), mask


def test_the_part_measure_fails_on_a_blob_a_shadow_and_no_change(square):
    import cv2
    pm, mask = _part_case(square)
    none = K.part_appeared(square.copy(), square, pm, mask, 64)
    assert none["failed"] == ["part"] and "colour" in none["part_failed"], none
    blob = square.astype(np.float32)
    blob[16:64, 0:48] = square[16:80, 48:208].reshape(-1, 3).mean(0)       # the hair's colour, flat
    blob = np.where(mask[..., None] > 0, cv2.GaussianBlur(blob, (0, 0), 1), square).astype(np.uint8)
    b = K.part_appeared(blob, square, pm, mask, 64)
    assert b["failed"] == ["part"] and "texture" in b["part_failed"] and b["part_colour"] > 0.5, b
    shadow = square.astype(np.float32)
    shadow[16:64, 0:48] *= 0.5                                             # the backdrop darker
    s = K.part_appeared(shadow.astype(np.uint8), square, pm, mask, 64)
    assert s["failed"] == ["part"] and "texture" in s["part_failed"], s


def test_the_part_measure_passes_on_the_photos_own_hair_pasted_there(square):
    pm, mask = _part_case(square)
    paste = square.copy()
    paste[16:64, 0:48] = square[20:68, 100:148]                           # a patch of her own hair
    m = K.part_appeared(paste, square, pm, mask, 64)
    assert m["failed"] == [] and m["part"] == "hair" and m["part_found"], m
    assert 0.6 <= m["part_texture"] <= 1.67 and 0.6 <= m["part_orientation"] <= 1.67


def test_the_verdict_says_why_the_part_did_not_appear(square):
    pm, mask = _part_case(square)
    gen = SimpleNamespace(resolution=64)
    dark = square.astype(np.float32)
    dark[mask > 0] *= 0.45
    st, v = structure_report(gen, None, [{"kind": "paint", "concept": "hair", "part_map": pm}],
                             dark.astype(np.uint8), square, mask)
    assert st["kind"]["changed_share"] > 0.5 and "part" in v["failed"] and v["carried"] is False
    assert "does not read as the photo's hair" in v["message"]
    # a photo with none of the part: it cannot be carried here, and the verdict says so
    from priorpaint.compositing.texture import part_map
    before = np.zeros((16, 16), np.int64)
    after = before.copy()
    after[1:4, 0:3] = 1
    st, v = structure_report(gen, None, [{"kind": "segment", "part_map": part_map(before, after, ["background", "hair"])}],
                             dark.astype(np.uint8), square, mask)
    assert st["kind"]["part_found"] is False and "shows too little hair" in v["message"]
