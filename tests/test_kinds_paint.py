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
