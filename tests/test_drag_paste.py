"""Where a drag's render may paste generated pixels: only near the handles' paths
(:func:`priorpaint.edits.drag_region.paste_bound`), never far from every handle (a drifting proxy's
"new content" pasted a dark spot into the cameraman's sky, docs/method/drag.md)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from priorpaint.edits import drag_region as R

pytestmark = pytest.mark.usefixtures("tmp_cache")

CHIN = [230, 150, 230, 138]
#: the synthetic new-content blobs' radius, model px (the tiny generator renders 16 px)
BLOB = 1.0


def _drag(handles, targets, r1=3.0) -> dict:
    h, t = np.asarray(handles, np.float64), np.asarray(targets, np.float64)
    return {"kind": "drag", "handles_model": h.tolist(), "targets_model": t.tolist(),
            "paste_radii_model": R.paste_radii(h, r1).tolist()}


def test_the_paste_radius_is_the_motion_supervision_patch_swept_along_its_path():
    np.testing.assert_allclose(R.paste_radii(np.array([[10.0, 20.0], [30, 30]]), 3.0), [3.0, 3.0])
    b = R.paste_bound([_drag([[32.0, 40.0]], [[32.0, 36.0]])], 64)      # radius 3 px around x 32, y 36..40
    assert b.shape == (64, 64) and b.dtype == np.float32
    assert b[40, 32] == b[36, 32] == b[38, 34] == b[42, 32] == 1.0       # on the path, 2 px beside and beyond it
    assert b[38, 35] == 0.0 and b[44, 32] == 0.0 and b[5, 5] == 0.0       # 3 px and beyond: nothing
    assert 0.0 < R.paste_bound([_drag([[32.0, 40.0]], [[32.0, 36.0]], r1=2.5)], 64)[38, 34] < 1.0   # the edge
    assert R.paste_bound([{"kind": "direction", "name": "smile"}], 64) is None
    # several pairs (and drags): the union of their neighbourhoods
    two = R.paste_bound([_drag([[10.0, 10.0]], [[10.0, 8.0]]), _drag([[50.0, 50.0]], [[52.0, 50.0]])], 64)
    assert two[10, 10] == 1.0 and two[50, 51] == 1.0 and two[30, 30] == 0.0
    assert two[10, 12] == 1.0 and two[13, 10] == 0.0                     # 2 px below the handle; 3 px: nothing


def _render_with_new_content(session, state, monkeypatch, spots):
    """The render of ``state`` with the drag's proxy showing a dark blob at each model px of ``spots``
    and new content declared there (the composite's own inputs replaced, nothing else)."""
    from priorpaint.compositing import warp as W
    real = W.proxy_renders

    def renders(*a, **k):
        xb, xe, fb, fe = real(*a, **k)
        xe = xb.clone()
        gy, gx = np.mgrid[0:xe.shape[-1], 0:xe.shape[-1]]
        for x, y in spots:
            blob = torch.from_numpy(np.hypot(gx - x, gy - y) <= BLOB)
            xe[..., blob] = -1.0                                           # black in the edited proxy
        return xb, xe, fb, fe

    def new_content(fb, fe, flow, res, off=False):
        gy, gx = np.mgrid[0:res, 0:res]
        return np.clip(sum((np.hypot(gx - x, gy - y) <= BLOB).astype(np.float32) for x, y in spots), 0, 1)

    monkeypatch.setattr(W, "proxy_renders", renders)
    monkeypatch.setattr(W, "new_content_along", new_content)
    return session.render(state)


def _model_to_square(session, q):
    side, res = session.crop.square[2], session.gen.resolution
    return ((np.asarray(q, np.float64) + 0.5) * side / res - 0.5).round().astype(int)


def test_new_content_far_from_the_handles_is_not_pasted_and_at_the_handle_it_is(tiny_session, monkeypatch, tmp_path):
    from PIL import Image
    s = tiny_session
    movable = np.zeros(s.photo.rgb.shape[:2], np.uint8)
    movable[60:240, 150:310] = 255                     # a movable region much wider than the drag
    Image.fromarray(movable).save(tmp_path / "movable.png")
    state = s.apply([{"kind": "drag", "points": [CHIN], "steps": 3, "mask": str(tmp_path / "movable.png")}])
    d = state.applied[0]
    h, t = np.array(d["handles_model"][0]), np.array(d["targets_model"][0])
    radius = d["paste_radii_model"][0]
    mask = s.edit_mask(state)
    # a spot in the edit mask but beyond the paste radius, beside the path (perpendicular to it)
    side_dir = np.array([-(t - h)[1], (t - h)[0]]) / np.linalg.norm(t - h)
    far = None
    for k in np.arange(radius + BLOB + 0.5, 3 * radius, 0.25):
        q = (h + t) / 2 + side_dir * k
        x, y = _model_to_square(s, q)
        if 0 <= x < mask.shape[1] and 0 <= y < mask.shape[0] and mask[y, x] == 255:
            far = q
    assert far is not None, "no place in the edit mask beyond the paste radius"
    plain = _render_with_new_content(s, state, monkeypatch, [])
    got = _render_with_new_content(s, state, monkeypatch, [tuple(far), tuple(h)])
    ref = s.photo_square()
    out, base = (np.asarray(_square(s, r.photo.rgb), np.int16) for r in (got, plain))
    fx, fy = _model_to_square(s, far)
    hx, hy = _model_to_square(s, h)
    # far from every handle: the photo's own (warped) pixels, exactly as with no new content at all
    np.testing.assert_array_equal(out[fy - 2:fy + 3, fx - 2:fx + 3], base[fy - 2:fy + 3, fx - 2:fx + 3])
    # at the handle: the generated (dark) pixels
    assert (base[hy - 1:hy + 2, hx - 1:hx + 2] - out[hy - 1:hy + 2, hx - 1:hx + 2]).mean() > 20
    # outside the edit mask: the photo, bit for bit
    assert got.metrics["changed_outside_mask"] == 0
    sq = _square(s, got.photo.rgb)
    np.testing.assert_array_equal(sq[mask == 0], ref[mask == 0])


def _square(s, rgb):
    from priorpaint.compositing.crop import cut_square
    return cut_square(rgb, s.crop.square, pad="edge")


def test_a_drag_that_moved_nothing_renders_the_photo_bit_for_bit(tiny_session):
    """No steps: no motion, no change of the proxy; the guard leaves the round trip exact."""
    s = tiny_session
    state = s.apply([{"kind": "drag", "points": [CHIN], "steps": 0}])
    assert state.applied[0]["paste_radii_model"]
    r = s.render(state)
    np.testing.assert_array_equal(r.photo.rgb, s.photo.rgb)


def test_the_bench_reads_a_pasted_spot_that_the_detail_band_measure_hardly_sees():
    """``unexplained_spot``: a dark blob pasted into a smooth region reads its depth; the photo and a
    smooth shift of it read (nearly) nothing."""
    import cv2
    from skimage import data
    from priorpaint.bench.drag import unexplained_spot
    photo = np.ascontiguousarray(data.astronaut()[0:256, 200:456])    # the astronaut's face and the grey wall
    mask = np.full((256, 256), 255, np.uint8)
    gy, gx = np.mgrid[0:256, 0:256].astype(np.float32)
    shifted = cv2.remap(photo, gx + 2.0 + 0.01 * (gy - 128), gy, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    spot = photo.astype(np.float32).copy()
    blob = np.exp(-((gx - 40) ** 2 + (gy - 40) ** 2) / (2 * 6.0 ** 2))[..., None]
    spot = np.clip(spot - 90 * blob, 0, 255).astype(np.uint8)
    assert unexplained_spot(photo, photo, mask, 64) == 0.0
    assert unexplained_spot(photo, shifted, mask, 64) < 15
    assert unexplained_spot(photo, spot, mask, 64) > 40
    assert unexplained_spot(photo, spot, np.zeros_like(mask), 64) == 0.0
