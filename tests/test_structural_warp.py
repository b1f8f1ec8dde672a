"""The structural composite (compositing/warp.py): the photo's pixels moved along a dense
correspondence field, generated pixels only where content is new."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from priorpaint.compositing.warp import (correspondence_from_features, feature_correspondence,
                                         warp_composite)


@pytest.fixture(scope="module")
def square():
    from skimage import data
    return np.ascontiguousarray(data.astronaut()[40:296, 120:376])   # 256 px: 4 photo px per model px


@pytest.fixture(scope="module")
def mask():
    m = np.zeros((256, 256), np.uint8)
    m[48:208, 48:208] = 255
    return m


def _flat(res=64, value=128):
    return np.full((res, res, 3), value, np.uint8)


def test_no_motion_no_change_is_the_photo_bit_for_bit(square, mask):
    b = _flat()
    w = warp_composite(square, b, b.copy(), np.zeros((64, 64, 2), np.float32), np.zeros((64, 64), np.float32), mask, 6)
    assert np.array_equal(w.region, square)


def test_a_translation_moves_the_photos_own_pixels(square, mask):
    flow = np.zeros((64, 64, 2), np.float32)
    flow[..., 0] = 2.0                                     # edited x shows base x + 2 (model px)
    b = _flat()
    w = warp_composite(square, b, b.copy(), flow, np.zeros((64, 64), np.float32), mask, 6)
    inner = w.region[80:176, 80:168]
    assert np.abs(inner.astype(int) - square[80:176, 88:176].astype(int)).max() <= 1   # moved 8 photo px
    outside = mask == 0
    assert np.array_equal(w.region[outside], square[outside])


def test_new_content_takes_generated_pixels_with_grain(square, mask):
    b = _flat()
    e = b.copy()
    e[24:40, 24:40] = (230, 20, 20)                        # a red patch the base does not have
    new = np.zeros((64, 64), np.float32)
    new[24:40, 24:40] = 1.0
    w = warp_composite(square, b, e, np.zeros((64, 64, 2), np.float32), new, mask, 6)
    patch = w.region[104:152, 104:152].astype(np.float32)
    assert patch[..., 0].mean() - patch[..., 2].mean() > 80         # it is red
    assert patch[..., 0].std() > 1.0                                 # with grain, not a flat paste
    assert np.array_equal(w.region[mask == 0], square[mask == 0])


def test_unexplained_change_marks_what_the_motion_does_not_explain():
    from priorpaint.compositing.warp import unexplained_change
    rng = np.random.default_rng(0)
    b = cv2.GaussianBlur(rng.integers(0, 255, (64, 64, 3)).astype(np.uint8), (0, 0), 2)
    flow = np.zeros((64, 64, 2), np.float32)
    flow[..., 0] = 3.0
    moved = cv2.remap(b, *np.meshgrid(np.arange(64, dtype=np.float32) + 3, np.arange(64, dtype=np.float32)),
                      cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    assert unexplained_change(b, moved, flow, (15, 35)).max() == 0.0          # a move explains it
    e = moved.copy()
    e[10:26, 20:44] = (200, 30, 30)                                            # a cap the base has not
    new = unexplained_change(b, e, flow, (15, 35))
    assert new[14:22, 26:38].min() == 1.0 and new[40:, :].max() == 0.0


def test_the_crown_region_lies_above_the_photos_eyes():
    from skimage import data
    from priorpaint.warp_render import crown_region
    face = np.ascontiguousarray(data.astronaut()[20:200, 140:320])   # eyes at about a third of the height
    crown = crown_region(face, 64)
    ys, xs = np.nonzero(crown)
    assert len(ys) > 100 and ys.max() < 28 and 16 < xs.mean() < 48   # above the eyes, centred on the face
    assert crown_region(np.full((180, 180, 3), 128, np.uint8), 64).max() == 0.0   # no face: nowhere


def test_feature_matching_finds_a_known_shift():
    torch.manual_seed(0)
    f = torch.randn(1, 16, 64, 64)
    shifted = torch.roll(f, shifts=(0, 3), dims=(2, 3))   # edited content = base moved 3 px right
    m = feature_correspondence([f], [shifted], 64, radius=5)
    inner = m["field"][8:56, 8:56]
    assert np.all(inner[..., 0] == -3) and np.all(inner[..., 1] == 0)
    assert m["distance"][8:56, 8:56].max() < 1e-4
    flow, new, _ = correspondence_from_features([f], [shifted], 64, radius=5)
    assert np.abs(flow[14:50, 14:50, 0] + 3).max() < 0.05 and new[14:50, 14:50].max() < 0.05


def test_session_renders_the_warp_composite(tiny_session):
    r0 = tiny_session.render(composite="warp")
    assert np.array_equal(r0.photo.rgb, tiny_session.photo.rgb)       # no edit: the photo, bit for bit
    st = tiny_session.apply(["direction:sefa0=2"])
    r = tiny_session.render(st, composite="warp")
    assert r.metrics["changed_outside_mask"] == 0
    assert r.metrics["composite"] == "warp" and r.metrics["composite_info"]["composite"] == "warp"
    for key in ("smear", "unexplained", "ghost", "effect_ratio"):
        assert key in r.metrics["structure"]
    assert "message" in r.metrics["verdict"] and "\n" not in r.metrics["verdict"]["message"]
    from priorpaint.errors import InputError
    with pytest.raises(InputError):
        tiny_session.render(st, composite="warped")


def test_generated_content_above_the_eyes_keeps_the_outside(tiny_session, monkeypatch):
    # round 4's setting C25: generated pixels where the motion leaves the proxy's change unexplained,
    # only above the photo's eyes; the photo outside the mask is still untouched
    from priorpaint.compositing import warp
    monkeypatch.setattr(warp, "NEW_FROM_CHANGE", (25, 50))
    monkeypatch.setattr(warp, "NEW_REGION", "crown")
    r = tiny_session.render(tiny_session.apply(["direction:sefa0=2"]), composite="warp")
    assert r.metrics["changed_outside_mask"] == 0
    info = r.metrics["composite_info"]
    assert info["composite"] == "warp" and 0.0 <= info["new_content"] <= 1.0


def test_the_preview_says_whether_the_edit_is_carried(tiny_session):
    st = tiny_session.apply(["direction:sefa0=2"])
    out = tiny_session.preview_verdict(st, size=64)
    assert set(out) == {"structure", "verdict"} and "message" in out["verdict"]
    assert tiny_session.preview_verdict(None, size=64)["verdict"]["carried"] is None   # no edit: nothing to judge


@pytest.mark.parametrize("box", [(200, 60, 10, 10), (190, 50, 130, 130)])
def test_warp_on_a_gray_photo_and_a_selection_smaller_than_the_model(tiny_gen, box):
    """A grayscale photo stays gray; a selection smaller than the model's 16 px works; stacked
    structural edits render, measured for artefacts only; a strength at the range's end is clamped
    with a note."""
    from priorpaint.projection.project import ProjectionConfig
    from priorpaint.session import EditSession
    from skimage import data
    s = EditSession.open(data.camera(), box=box, gen=tiny_gen)
    s.project(ProjectionConfig(steps=4, candidates=8, starts=1, perceptual=False))
    st = s.apply(["direction:sefa0=2", "direction:sefa1=-3"])
    r = s.render(st, composite="warp")
    assert r.photo.gray
    rgb = r.photo.rgb.astype(int)
    assert np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])
    assert r.metrics["changed_outside_mask"] == 0
    assert r.metrics["structure"]["effect_ratio"] is None            # stacked: artefacts only
    end = s.apply(["direction:sefa0=99"])
    assert any("clamped" in n for n in end.notes)
    assert s.render(end, composite="warp").metrics["changed_outside_mask"] == 0


def test_thin_plate_field_passes_through_its_points_and_keeps_the_border():
    from priorpaint.compositing.warp import thin_plate_field
    src = np.array([[20.0, 24.0], [44.0, 24.0], [32.0, 34.0], [24.0, 44.0], [40.0, 44.0]])
    dst = src + np.array([3.0, 0.0])
    f = thin_plate_field(src, dst, 64, smoothing=0.0)
    for (x, y) in src.astype(int):
        assert f[y, x, 0] == pytest.approx(3.0, abs=0.05) and f[y, x, 1] == pytest.approx(0.0, abs=0.05)
    assert np.abs(f[0]).max() < 0.05 and np.abs(f[:, -1]).max() < 0.05
    assert np.isfinite(f).all()


def test_landmark_motion_on_the_models_own_face(default_gen):
    from priorpaint.compositing.blend import to_uint8
    from priorpaint.compositing.warp import landmark_correspondence
    with torch.no_grad():
        img = to_uint8(default_gen(default_gen.sample_latents(1, seed=3).to(default_gen.device)))
    flow, new = landmark_correspondence(img, img)
    assert np.abs(flow).max() < 0.05 and not new.any()            # the same face: no motion
    assert landmark_correspondence(np.full((64, 64, 3), 128, np.uint8), img) is None   # no face: no field


def _smooth_features(seed=0, shift=0.0):
    """(1, 8, 64, 64) smooth random features, sampled ``shift`` px to the right (edited x shows base x + shift)."""
    g = torch.Generator().manual_seed(seed)
    f = torch.nn.functional.interpolate(torch.randn(1, 8, 16, 16, generator=g), size=(64, 64), mode="bicubic")
    if not shift:
        return f
    gy, gx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    grid = torch.stack([(gx + shift + 0.5) / 64 * 2 - 1, (gy + 0.5) / 64 * 2 - 1], -1)[None]
    return torch.nn.functional.grid_sample(f, grid, mode="bilinear", padding_mode="border", align_corners=False)


def test_the_match_spline_follows_a_known_shift_and_cannot_fold():
    from priorpaint.compositing.warp import match_correspondence, min_jacobian, subpixel_matches
    base, edited = _smooth_features(), _smooth_features(shift=2.5)
    m = subpixel_matches([base], [edited], 64)
    assert np.median(m["field"][12:52, 12:52, 0]) == pytest.approx(2.5, abs=0.15)   # sub-pixel, not 2 or 3
    flow, new, info = match_correspondence([base], [edited], 64)
    assert np.median(flow[20:44, 20:44, 0]) == pytest.approx(2.5, abs=0.3)
    assert np.abs(flow[20:44, 20:44, 1]).max() < 0.5
    assert info["matches"] > 100 and min_jacobian(flow) > 0.3 and not (new > 0.5).any()
    folded = np.zeros((64, 64, 2), np.float32)
    folded[:, 32:, 0] = -8.0                                   # two columns of pixels swap sides
    assert min_jacobian(folded) < 0


def test_registration_recovers_a_known_affine_and_refuses_a_blank():
    from skimage import data
    from priorpaint.compositing.warp import register_affine
    photo = cv2.resize(np.ascontiguousarray(data.astronaut()[30:290, 120:380]), (256, 256), interpolation=cv2.INTER_AREA)
    small = cv2.resize(photo, (64, 64), interpolation=cv2.INTER_AREA)
    truth = np.array([[1.08, 0.0, -3.0], [0.0, 1.08, 2.0]], np.float32)   # base(A·x) = photo(x)
    base = cv2.warpAffine(small, truth, (64, 64), flags=cv2.INTER_CUBIC,   # forward: base(truth·x) = small(x)
                          borderMode=cv2.BORDER_REPLICATE)
    a = register_affine(photo, base)
    assert a is not None and np.abs(a - truth).max() < 0.35
    assert register_affine(photo, np.full((64, 64, 3), 128, np.uint8)) is None   # nothing to register on


def test_motion_carried_into_the_photos_frame():
    from priorpaint.compositing.warp import to_photo_frame
    flow = np.zeros((64, 64, 2), np.float32)
    flow[..., 0] = 1.0
    img = np.zeros((64, 64, 3), np.uint8)
    img[:, 40:] = 200
    zero = np.zeros((64, 64), np.float32)
    shift = np.array([[1.0, 0.0, 4.0], [0.0, 1.0, 0.0]], np.float32)          # the proxy sits 4 px to the right
    f, new, b, e = to_photo_frame(shift, flow, zero, img, img)
    assert np.allclose(f[..., 0], 1.0) and np.allclose(f[..., 1], 0.0)
    assert b[:, 36:38].min() == 200 and b[:, 30:34].max() == 0              # its edge lands 4 px to the left
    half = np.array([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]], np.float32)          # the proxy's face is half the size
    assert np.allclose(to_photo_frame(half, flow, zero, img, img)[0][..., 0], 2.0)   # its motion doubles


def test_the_refined_proxy_fits_the_photo_better_and_stays_near(default_gen):
    """projection/proxy.py: z refined towards the photo's low band (bounded steps, a penalty towards
    the start); with z_r = z the proxy's edit is the plain proxy's."""
    from priorpaint.projection.proxy import _low, proxy_features, refine_proxy_z
    g = default_gen
    with torch.no_grad():
        z = g.sample_latents(2, seed=5).to(g.device)
        target = g(z[1:])                                           # another face: the "photo"
    z0 = z[:1]
    err = lambda zz: float((_low(g(zz), 1.5) - _low(target, 1.5)).pow(2).mean())
    zr = refine_proxy_z(g, z0, target, steps=30)
    assert err(zr) < 0.9 * err(z0)
    assert float((zr - z0).pow(2).mean()) < float((z[1:] - z0).pow(2).mean())   # not all the way to the photo's z
    assert torch.equal(refine_proxy_z(g, z0, target, steps=0), z0)
    split = g.default_split
    with torch.no_grad():
        h = g.forward_to(z0, split)
        z_e = z0 + 0.5
        h_e = g.forward_to(z_e, split) + 0.1
        hp, hpe, zpe = proxy_features(g, split, z0, z0, z_e, h, h_e)
    assert torch.allclose(hp, h) and torch.allclose(hpe, h + (h_e - h), atol=1e-5) and torch.equal(zpe, z_e)


def test_the_proxys_landmark_motion_is_bounded():
    """A proxy whose landmarks jump (its face changed, or the detector did) must not bend the photo:
    the shared shift and each landmark's own motion are each bounded by a share of the eye distance."""
    from priorpaint.compositing.warp import MAX_LANDMARK_MOTION, bounded_motion
    before = np.array([[20.0, 24.0], [44.0, 24.0], [32.0, 34.0], [24.0, 44.0], [40.0, 44.0]])   # eye distance 24
    small = before + np.array([[0.5, 0.0], [0.5, 0.0], [1.5, 1.0], [0.5, 0.5], [0.5, 0.5]])
    np.testing.assert_allclose(bounded_motion(before, small), small)            # a model-sized move: kept
    jump = before.copy()
    jump[2] += [20.0, 0.0]                                                       # the nose jumps 20 px
    out = bounded_motion(before, jump)
    motion = out - before
    own = motion - motion.mean(axis=0)
    assert np.linalg.norm(motion.mean(axis=0)) <= MAX_LANDMARK_MOTION * 24 + 1e-6
    assert np.linalg.norm(own, axis=1).max() <= MAX_LANDMARK_MOTION * 24 + 1e-6
    assert out[2, 0] > before[2, 0]                                              # still the same direction
