"""Detail-preserving compositing (issue 11): the math on synthetic images, then the pipeline."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from priorpaint.compositing.detail import detail_composite, estimate_motion
from priorpaint.compositing.photo_metrics import (PSNR_IDENTICAL, detail_kept, effect_carried, ghost,
                                                  photo_metrics, psnr_photo, seam_grain)

R = 64


def _texture(side: int, seed: int = 0, gray: bool = False) -> np.ndarray:
    """A smooth gradient plus fine grain: detail no 64 px model can carry."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
    base = np.stack([90 + 80 * xx, 100 + 60 * yy, 120 - 40 * xx], -1)
    grain = rng.normal(0, 14, (side, side, 1 if gray else 3)).astype(np.float32)
    img = base + grain
    if gray:
        img = np.repeat(img.mean(-1, keepdims=True), 3, -1)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _small(region: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(region).resize((R, R), Image.LANCZOS))


def _box_mask(side: int, lo: float = 0.2, hi: float = 0.8) -> np.ndarray:
    m = np.zeros((side, side), np.uint8)
    m[int(side * lo):int(side * hi), int(side * lo):int(side * hi)] = 255
    return m


def test_zero_change_returns_the_photo_bit_for_bit():
    region = _texture(256)
    base = _small(region)
    d = detail_composite(region, base, base.copy(), _box_mask(256))
    assert d.region.tobytes() == region.tobytes()
    assert d.flow is None


def test_outside_the_mask_is_bit_identical_and_the_change_arrives_inside():
    region = _texture(256)
    base = _small(region)
    edited = np.clip(base.astype(int) + [30, 5, -20], 0, 255).astype(np.uint8)  # "warm light"
    mask = _box_mask(256)
    d = detail_composite(region, base, edited, mask)
    assert (d.region[mask == 0] == region[mask == 0]).all()
    inner = (d.region.astype(int) - region.astype(int))[100:150, 100:150].reshape(-1, 3).mean(0)
    assert np.allclose(inner, [30, 5, -20], atol=2.5)
    assert detail_kept(d.region, region, mask) > 0.95
    assert effect_carried(d.region, region, base, edited, mask, 8) > 0.9
    assert seam_grain(d.region, region, mask, 8) < 0.1


def test_soft_mask_edges_stay_inside_and_have_no_seam():
    side = 300
    region = _texture(side, 1)
    base = _small(region)
    edited = np.clip(base.astype(int) - 25, 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[0:side, 0:side]
    r = np.hypot(yy - side / 2, xx - side / 2)
    mask = np.clip((110 - r) / 30 * 255, 0, 255).astype(np.uint8)  # a soft disc
    d = detail_composite(region, base, edited, mask)
    assert (d.region[mask == 0] == region[mask == 0]).all()
    seam = seam_grain(d.region, region, mask, 9)
    assert seam < 0.05
    # the replace composite's smooth pixels make a grain seam the measure sees (softened by the soft edge)
    from priorpaint.compositing.blend import blend_region, feather_mask, resize_generated
    rep = blend_region(region, resize_generated(edited, side), feather_mask(mask, 9))
    assert seam_grain(rep, region, mask, 9) > max(0.1, 3 * seam)
    assert detail_kept(rep, region, mask) < 0.5


def test_grayscale_photo_keeps_a_gray_detail_band():
    region = _texture(256, 2, gray=True)
    base = _small(region)
    edited = np.clip(base.astype(int) + [25, 10, -15], 0, 255).astype(np.uint8)
    d = detail_composite(region, base, edited, _box_mask(256, 0.0, 1.0), motion=False)
    diff = d.region.astype(np.float32) - region.astype(np.float32)
    # the result minus the photo is the (coloured) low-band change; its high band is zero,
    # so the photo's gray detail band came through unchanged in every channel
    hp = diff - cv2.GaussianBlur(diff, (0, 0), 6.0)
    assert np.abs(hp[20:-20, 20:-20]).mean() < 1.0
    # a gray change on a gray photo stays gray
    gray_edit = np.clip(base.astype(int) - 20, 0, 255).astype(np.uint8)
    d2 = detail_composite(region, base, gray_edit, _box_mask(256, 0.0, 1.0), motion=False)
    assert (d2.region[..., 0] == d2.region[..., 1]).all() and (d2.region[..., 1] == d2.region[..., 2]).all()


def test_flow_moves_the_photo_detail_with_a_shifted_pattern():
    side = 256
    rng = np.random.default_rng(3)
    blobs = cv2.GaussianBlur(rng.normal(0, 1, (side, side)).astype(np.float32), (0, 0), 10)
    blobs = (blobs - blobs.min()) / (blobs.max() - blobs.min())
    grain = rng.normal(0, 10, (side, side)).astype(np.float32)
    photo = np.clip(40 + 170 * blobs + grain, 0, 255)
    region = np.repeat(np.round(photo)[..., None], 3, -1).astype(np.uint8)
    shift = 8  # photo pixels = 2 model pixels
    moved = np.roll(region, shift, axis=1)
    base, edited = _small(region), _small(moved)
    flow, conf, info = estimate_motion(base, edited)
    core = (slice(16, 48), slice(16, 48))
    assert np.median(flow[core][..., 0]) == pytest.approx(-2.0, abs=0.4)
    assert abs(np.median(flow[core][..., 1])) < 0.4
    mask = _box_mask(side, 0.15, 0.85)
    d = detail_composite(region, base, edited, mask)
    sel = mask > 0
    sel[:, :48] = sel[:, -48:] = False  # away from the wrap-around of np.roll
    err_detail = np.abs(d.region[sel].astype(int) - moved[sel].astype(int)).mean()
    naive = detail_composite(region, base, edited, mask, motion=False)
    err_naive = np.abs(naive.region[sel].astype(int) - moved[sel].astype(int)).mean()
    assert err_detail < 0.6 * err_naive  # the grain moved with the content
    g = ghost(d.region, region, base, edited, mask)
    g_naive = ghost(naive.region, region, base, edited, mask)
    assert g["ghost"] is not None and g["ghost"] < g_naive["ghost"]


def test_new_content_fades_to_generated_pixels():
    side = 256
    region = _texture(side, 4)
    base = _small(region)
    edited = base.copy()
    cv2.circle(edited, (32, 32), 12, (20, 200, 30), -1)  # a painted object the photo never had
    mask = _box_mask(side, 0.0, 1.0)
    d = detail_composite(region, base, edited, mask)
    assert d.confidence is not None and d.confidence[32, 32] < 0.5 and d.confidence[5, 5] > 0.9
    centre = d.region[118:138, 118:138].reshape(-1, 3).astype(np.float32)
    assert np.allclose(centre.mean(0), [20, 200, 30], atol=12)
    # the photo's grain does not show through the new object: it fades to the generated pixels
    assert centre.std(0).mean() < 0.6 * region[118:138, 118:138].reshape(-1, 3).std(0).mean()


def test_a_colour_edit_over_a_rerendered_texture_moves_nothing():
    """A light/colour edit whose generator re-renders the fine texture a little (as G′ does):
    the flow estimator reads motion in the noise, but no warp explains the structure better
    than standing still, so the photo is not warped and keeps its detail."""
    side = 256
    region = _texture(side, 7)
    base = _small(region)
    rng = np.random.default_rng(8)
    noise = cv2.GaussianBlur(rng.normal(0, 4, base.shape).astype(np.float32), (0, 0), 0.7)
    edited = np.clip(base.astype(np.float32) + [28, 6, -18] + noise, 0, 255).astype(np.uint8)
    mask = _box_mask(side, 0.1, 0.9)
    flow, conf, info = estimate_motion(base, edited)
    assert info["flow_max_model_px"] > 0.2           # the estimator did read some motion ...
    assert float(np.abs(flow).max()) == 0.0          # ... and none of it was used
    d = detail_composite(region, base, edited, mask)
    assert d.info["motion"] is False
    assert detail_kept(d.region, region, mask) > 0.93
    assert effect_carried(d.region, region, base, edited, mask, 8) > 0.9
    assert (d.region[mask == 0] == region[mask == 0]).all()


def test_pyramid_low_band_equals_the_full_size_blur():
    from priorpaint.compositing.detail import _resize, band_sigma, low_band, upsampled_low_band
    rng = np.random.default_rng(9)
    change = (rng.normal(0, 20, (R, R, 3))).astype(np.float32)
    side = 1000
    full = low_band(_resize(change, side), band_sigma(side, R))
    fast = upsampled_low_band(change, side)
    assert fast.shape == full.shape
    # the same band: inside, differences a few % of the change (edges: the borders reflect at another size)
    assert np.abs(fast - full)[20:-20, 20:-20].max() < 0.05 * np.abs(full).max()
    assert np.abs(fast - full).mean() < 0.03 * np.abs(full).mean()  # white noise: the worst case


def test_the_layer_outside_the_mask_box_is_the_photo():
    side = 200
    region = _texture(side, 10)
    base = _small(region)
    edited = np.clip(base.astype(int) + 25, 0, 255).astype(np.uint8)
    mask = np.zeros((side, side), np.uint8)
    mask[60:120, 80:150] = 255
    d = detail_composite(region, base, edited, mask)
    outside = np.ones((side, side), bool)
    outside[60:120, 80:150] = False
    assert (d.inner[outside] == region[outside]).all() and (d.region[outside] == region[outside]).all()
    assert np.abs(d.inner[70:110, 90:140].astype(int) - region[70:110, 90:140]).mean() > 15


def test_small_selection_takes_the_change_at_the_photo_scale():
    side = 40  # smaller than the model: the model has more detail than the photo
    region = _texture(side, 5)
    base = np.asarray(Image.fromarray(region).resize((R, R), Image.BICUBIC))
    edited = np.clip(base.astype(int) + 20, 0, 255).astype(np.uint8)
    mask = np.full((side, side), 255, np.uint8)
    d = detail_composite(region, base, edited, mask, motion=False)
    assert d.info["band_sigma_px"] == 0.0
    diff = d.region.astype(int) - region.astype(int)
    assert np.abs(diff[8:-8, 8:-8] - 20).max() <= 1


def test_photo_metrics_of_an_identical_result():
    region = _texture(128)
    base = _small(region)
    m = photo_metrics(region, region, base, base, _box_mask(128), _box_mask(128), 4)
    assert m["psnr_photo"] == PSNR_IDENTICAL and m["detail_kept"] == 1.0 and m["seam_grain"] == 0.0
    assert m["effect_carried"] is None and m["ghost"] is None
    assert psnr_photo(region, region, np.zeros((128, 128), np.uint8)) is None


# -- through the pipeline --------------------------------------------------------------------

@pytest.fixture(scope="module")
def session(astronaut_path):
    from priorpaint.projection.project import ProjectionConfig
    from priorpaint.session import EditSession
    s = EditSession.open(astronaut_path, box=(140, 20, 180, 180), model="dcgan-digiface-64", device="cpu")
    s.project(ProjectionConfig(steps=8, seed=0))
    return s


def test_session_render_detail_and_replace(session):
    r0 = session.render()
    assert r0.metrics["composite"] == "detail"
    assert np.array_equal(r0.photo.rgb, session.photo.rgb)  # no edit: the photo itself
    assert r0.metrics["psnr_photo"] == PSNR_IDENTICAL
    rr = session.render(composite="replace")
    assert rr.metrics["psnr_photo"] < 45 and rr.metrics["detail_kept"] < 0.9
    state = session.apply(["direction:warm_light=2"])
    rd = session.render(state)
    rp = session.render(state, composite="replace")
    for r in (rd, rp):
        assert r.metrics["changed_outside_mask"] == 0
    assert rd.metrics["detail_kept"] > rp.metrics["detail_kept"]
    assert rd.metrics["detail_kept"] > 0.8 and rd.metrics["effect_carried"] > 0.8
    assert rd.metrics["seam_grain"] < rp.metrics["seam_grain"]
    assert rd.layer.shape == rp.layer.shape


def test_session_refuses_an_unknown_composite(session):
    from priorpaint.errors import InputError
    with pytest.raises(InputError, match="composite must be one of detail, replace, warp, got 'paste'"):
        session.render(composite="paste")


def test_sixteen_bit_photo_keeps_its_detail(tmp_path):
    from priorpaint.projection.project import ProjectionConfig
    from priorpaint.session import EditSession
    img = (_texture(200, 6, gray=True)[..., 0].astype(np.uint16) * 257)
    path = tmp_path / "g16.png"
    Image.fromarray(img, "I;16").save(path)
    s = EditSession.open(path, box=(40, 40, 120, 120), model="dcgan-digiface-64", device="cpu")
    s.project(ProjectionConfig(steps=4, seed=0, init="search"))  # the figure below is for the search start
    r = s.render(s.apply(["direction:exposure=-1"]))
    assert r.metrics["changed_outside_mask"] == 0
    assert r.metrics["detail_kept"] > 0.8


def test_cli_composite_option(tmp_path, astronaut_path):
    from priorpaint.cli import main
    src = np.asarray(Image.open(astronaut_path).convert("RGB"))
    for mode in ("detail", "replace"):
        out, rep = tmp_path / f"{mode}.png", tmp_path / f"{mode}.json"
        assert main(["edit", str(astronaut_path), "--box", "140,20,180,180", "--steps", "4", "--no-adapt",
                     "--composite", mode, "-o", str(out), "--report", str(rep)]) == 0
        report = json.loads(rep.read_text())
        assert report["composite"] == mode and report["changed_outside_mask"] == 0
        for k in ("psnr_photo", "detail_kept", "seam_grain"):
            assert k in report
        same = np.array_equal(np.asarray(Image.open(out).convert("RGB")), src)
        assert same == (mode == "detail")  # no edit: detail returns the photo, replace the reconstruction


def test_cli_refuses_a_bad_composite(tmp_path, astronaut_path, capsys):
    from priorpaint.cli import main
    with pytest.raises(SystemExit) as e:
        main(["edit", str(astronaut_path), "--box", "140,20,180,180", "--composite", "blend",
              "-o", str(tmp_path / "x.png")])
    assert e.value.code == 2
    assert "invalid choice: 'blend'" in capsys.readouterr().err


def test_a_grayscale_photo_stays_gray_through_every_render_and_preview(tiny_gen, astronaut_path):
    """The generator renders colour, but on a gray photo the edit is its luminance: the result,
    the layer and both previews are gray in both modes (a colour photo keeps the colour)."""
    from PIL import Image
    from priorpaint.images import load_photo
    from priorpaint.projection.project import ProjectionConfig
    from priorpaint.session import EditSession
    from conftest import ASTRONAUT_BOX, FAST_PROJECTION
    gray = load_photo(Image.open(astronaut_path).convert("L"))
    assert gray.gray and not load_photo(astronaut_path).gray
    s = EditSession.open(gray, box=ASTRONAUT_BOX, gen=tiny_gen)
    s.project(ProjectionConfig(steps=4, **FAST_PROJECTION))
    state = s.initial_state()
    torch.manual_seed(3)
    state.h = state.h + 0.8 * torch.randn_like(state.h)   # a change with colour in it
    edited = s.generate(state)
    assert float((edited[:, 0] - edited[:, 1]).abs().max()) > 0.05      # the generator's rendering is colour

    def is_gray(a):
        return np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 1], a[..., 2])
    for mode in ("detail", "replace"):
        r = s.render(state, composite=mode)
        assert is_gray(r.photo.rgb) and is_gray(r.layer[..., :3]) and r.metrics["changed_outside_mask"] == 0
        assert (r.photo.rgb != gray.rgb).any()
        assert is_gray(s.preview_region(state, mode)) and is_gray(s.preview_layer(state, mode, 96))
    colour = EditSession.open(astronaut_path, box=ASTRONAUT_BOX, gen=tiny_gen)
    colour.projection = s.projection
    assert not is_gray(colour.render(state, composite="replace").layer[..., :3])
