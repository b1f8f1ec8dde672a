"""Interpolation worked: a face between the two, without blotches
(``priorpaint.measures.interpolation``): the measures fail on an end point (no interpolation) and on
a dark blotch, and pass on a face halfway."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from priorpaint.measures.interpolation import MAX_BETWEEN, interpolation_worked


def shifted(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, img.shape[:2][::-1], borderMode=cv2.BORDER_REFLECT)


@pytest.fixture(scope="module")
def faces(astronaut_path):
    """The astronaut's face square and the same face moved down and right by 24 px (the other face)."""
    im = Image.open(astronaut_path).convert("RGB").crop((140, 20, 320, 200)).resize((256, 256), Image.LANCZOS)
    a = np.asarray(im).copy()
    return a, shifted(a, 24, 24)


def test_a_face_halfway_passes_an_end_point_and_a_blotch_fail(faces):
    a, b = faces
    half = shifted(a, 12, 12)
    good = interpolation_worked(half, a, b, 0.5)
    assert good["face_found"] and good["failed"] == [] and good["between"] < MAX_BETWEEN / 2, good
    end = interpolation_worked(a.copy(), a, b, 0.5)
    assert "between" in end["failed"], end
    blot = half.copy()
    cv2.circle(blot, (150, 170), 28, (25, 15, 20), -1)
    blot = cv2.GaussianBlur(blot, (0, 0), 4)
    bad = interpolation_worked(blot, a, b, 0.5)
    assert "blotch" in bad["failed"] and bad["blotch"] > 0.02, bad


def test_no_face_is_said(faces):
    a, b = faces
    flat = np.full_like(a, 128)
    out = interpolation_worked(flat, a, b, 0.5)
    assert out["face_found"] is False and "face" in out["failed"] and out["between"] is None
