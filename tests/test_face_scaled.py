"""``faces.landmarks.scaled_face``: how the measures read a face on a result and on the photo (one
place for the scale, the interpolation and the smallest face accepted)."""

from __future__ import annotations

import numpy as np
import skimage.data

from priorpaint.faces.landmarks import scaled_face


def test_a_wide_crop_is_scaled_by_its_longer_side_and_its_face_found():
    img = skimage.data.astronaut()[20:320, 100:460]          # 300 × 360: wider than tall
    small, face = scaled_face(img, side=256)
    assert small.shape[1] == 256 and small.shape[0] == round(300 * 256 / 360)
    assert face is not None
    eyes = np.asarray(face.points[:2])
    assert (eyes >= 0).all() and (eyes[:, 0] < small.shape[1]).all() and (eyes[:, 1] < small.shape[0]).all()


def test_grayscale_reads_as_its_rgb_repeat_and_a_blank_square_has_no_face():
    gray = skimage.data.camera()[40:200, 180:340]
    a_small, a = scaled_face(gray)
    b_small, b = scaled_face(np.repeat(gray[..., None], 3, axis=2))
    assert np.array_equal(a_small, b_small)
    assert (a is None) == (b is None)
    if a is not None:
        assert np.allclose(a.points, b.points)
    _, none = scaled_face(np.full((120, 120, 3), 128, np.uint8))
    assert none is None
