"""Issue 28, memory that stays flat: the large-sigma low band is a pyramid blur equal to the
full-size Gaussian, and a request whose estimated peak memory is over --max-work-mb is refused
with one line naming the flag, before any work."""

from __future__ import annotations

import cv2
import numpy as np
import pytest


def _photo(side=600):
    from PIL import Image

    from conftest import skimage_data
    return np.asarray(Image.open(skimage_data("astronaut.png")).convert("RGB").resize((side, side))).astype(np.float32)


@pytest.mark.parametrize("sigma", [3.0, 13.0, 24.0])
def test_the_pyramid_low_band_equals_the_full_gaussian(sigma):
    from priorpaint.compositing.detail import low_band

    img = _photo()
    exact = cv2.GaussianBlur(img, (0, 0), sigma)
    got = low_band(img, sigma)
    assert got.shape == img.shape and got.dtype == np.float32
    d = np.abs(got - exact)
    inner = d[int(3 * sigma):-int(3 * sigma), int(3 * sigma):-int(3 * sigma)]
    # of 255: within 3 sigma of the border the shrunk copy reflects a little differently
    assert d.mean() < 0.3 and inner.max() < 0.5, (d.mean(), inner.max())
    assert low_band(img[..., 0].copy(), sigma).shape == img.shape[:2]


def test_work_over_max_work_mb_is_refused_with_one_line_naming_the_flag(tmp_path):
    from PIL import Image

    from priorpaint.app.limits import RENDER_BYTES_PER_PX, Limits
    from priorpaint.errors import InputError

    big = tmp_path / "big.png"
    Image.new("RGB", (3000, 2000)).save(big)        # 6 MP: 120 MB to open
    L = Limits(max_work_mb=100)
    with pytest.raises(InputError, match=r"^this projection would need about 114 MB .*\(--max-work-mb\)"):
        L.project_work(str(big))
    assert Limits(max_work_mb=200).project_work(str(big)) == pytest.approx(6e6 * 20 / 2 ** 20)

    class S:   # a session whose selection's square is 2000 px
        crop = type("C", (), {"square": (0, 0, 2000)})()
    with pytest.raises(InputError, match="2000x2000 selection square would need about") as e:
        L.render_work(S())
    assert "\n" not in str(e.value) and "--max-work-mb" in str(e.value)
    assert Limits(max_work_mb=2000 * 2000 * RENDER_BYTES_PER_PX / 2 ** 20 + 1).render_work(S()) > 0


def test_the_edit_endpoint_refuses_before_making_a_job(tiny_session):
    from priorpaint.app.api import Backend
    from priorpaint.app.limits import Limits
    from priorpaint.app.sessions import SessionStore

    store = SessionStore()
    sid = store.put(tiny_session, "")
    backend = Backend(store=store, limits=Limits(max_work_mb=0.001))
    with pytest.raises(Exception, match="--max-work-mb"):
        list(backend.edit(sid, "[]"))
    assert backend.jobs.started == 0


@pytest.mark.parametrize("shift", [True, False])
def test_the_composite_in_strips_equals_the_composite_in_one_piece(monkeypatch, shift):
    import priorpaint.compositing.detail as D

    side, res = 520, 32
    region = _photo(side).astype(np.uint8)
    base = cv2.resize(region, (res, res), interpolation=cv2.INTER_AREA)
    edited = base.copy()
    if shift:   # content moves: the photo's detail is warped along the flow
        edited[8:16, 6:26] = np.roll(base, 2, axis=1)[8:16, 6:26]
    else:
        edited[8:16] = np.clip(base[8:16].astype(int) + 40, 0, 255)
    mask = np.zeros((side, side), np.uint8)
    mask[40:470, 60:500] = 255
    monkeypatch.setattr(D, "STRIP_ROWS", 10 ** 6)
    whole = D.detail_composite(region, base, edited, mask)
    monkeypatch.setattr(D, "STRIP_ROWS", 37)
    strips = D.detail_composite(region, base, edited, mask)
    assert whole.info["motion"] == strips.info["motion"]
    for a, b in ((whole.region, strips.region), (whole.inner, strips.inner)):
        d = np.abs(a.astype(int) - b.astype(int))
        assert d.max() <= 1 and (d > 0).mean() < 1e-3
    assert np.array_equal(strips.region[mask == 0], region[mask == 0])
    assert not np.array_equal(strips.region, region)


def test_rows_of_a_resize_are_the_resize_rows():
    from priorpaint.compositing.detail import _rows

    small = _photo(40)
    for cubic, interp in ((False, cv2.INTER_LINEAR), (True, cv2.INTER_CUBIC)):
        full = cv2.resize(small, (333, 333), interpolation=interp)
        for y0, y1 in ((0, 7), (100, 180), (320, 333)):
            assert np.abs(_rows(small, 333, y0, y1, cubic) - full[y0:y1]).max() < 1e-2


def test_photo_figures_summed_in_strips_equal_the_whole_array_formulas(monkeypatch):
    import priorpaint.compositing.photo_metrics as PM

    monkeypatch.setattr(PM, "ROWS", 23)
    rng = np.random.default_rng(1)
    photo = _photo(200).astype(np.uint8)
    result = np.clip(photo.astype(int) + rng.integers(-9, 10, photo.shape), 0, 255).astype(np.uint8)
    sel = np.zeros((200, 200), np.uint8)
    sel[30:170, 20:190] = 255
    s = sel > 0
    d = result[s].astype(np.float64) - photo[s].astype(np.float64)
    assert PM.psnr_photo(result, photo, sel) == pytest.approx(10 * np.log10(255.0 ** 2 / (d * d).mean()), abs=1e-9)
    img = photo.astype(np.float32)
    # OpenCV's transform sums the products in its own order: equal to float32 rounding
    assert np.allclose(PM._luma(photo), 0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2],
                       rtol=1e-6, atol=1e-4)
    a = rng.normal(size=(200, 200, 3)).astype(np.float32)
    b = (a * 0.5 + rng.normal(size=a.shape)).astype(np.float32)
    x, y = a[s].ravel().astype(np.float64), b[s].ravel().astype(np.float64)
    assert PM._correlation(a, b, s) == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-9)


def test_low_band_figures_on_block_means_equal_the_full_size_figures(monkeypatch):
    import priorpaint.compositing.photo_metrics as PM

    side, res = 1600, 64                       # sigma 12.5 px: measured on 2x2 block means
    photo = _photo(side).astype(np.uint8)
    base = cv2.resize(photo, (res, res), interpolation=cv2.INTER_AREA)
    edited = base.copy()
    edited[16:40, 12:52] = np.roll(base, 4, axis=1)[16:40, 12:52]
    edited[20:30] = np.clip(edited[20:30].astype(int) + 30, 0, 255)
    mask = np.zeros((side, side), np.uint8)
    mask[200:1400, 150:1450] = 255
    from priorpaint.compositing.detail import composite_square
    result = composite_square(photo, base, edited, mask, 20, "detail")[0]
    assert PM._factor(12.5) == 2
    small = PM.photo_metrics(result, photo, base, edited, mask, mask, 20)
    monkeypatch.setattr(PM, "_factor", lambda sigma: 1)
    full = PM.photo_metrics(result, photo, base, edited, mask, mask, 20)
    assert full["effect_carried"] is not None and full["ghost"] is not None
    for k in ("effect_carried", "ghost", "ghost_reference"):
        assert small[k] == pytest.approx(full[k], abs=0.01), (k, small[k], full[k])
    for k in ("psnr_photo", "detail_kept", "seam_grain"):
        assert small[k] == full[k]


def test_high_frequency_in_strips_equals_the_whole_array(monkeypatch):
    import priorpaint.compositing.photo_metrics as PM

    photo = _photo(300).astype(np.uint8)
    whole = PM.high_frequency(photo)
    monkeypatch.setattr(PM, "ROWS", 29)
    assert np.array_equal(np.concatenate([hf for _, hf in PM._hf_strips(photo)]), whole)
    ring = np.zeros((300, 300), bool)
    ring[40:60, 30:270] = True
    assert PM._hf_sum(photo, ring) == pytest.approx(float(whole[ring].sum()), rel=1e-5)


def test_the_feathered_mask_in_strips_is_bit_identical():
    from priorpaint.compositing.blend import feather_mask

    rng = np.random.default_rng(3)
    mask = np.zeros((1100, 700), np.uint8)
    mask[100:1000, 50:650] = rng.integers(1, 256, (900, 600))
    mask[300:400, 200:300] = 0
    for radius in (0, 3, 25):
        a = mask.astype(np.float32) / 255.0
        if radius:
            pad, size = 2 * radius + 2, 2 * radius + 1
            support = cv2.copyMakeBorder(((mask > 0) * 255).astype(np.uint8), pad, pad, pad, pad,
                                         cv2.BORDER_CONSTANT, value=0)
            eroded = cv2.erode(support, np.ones((size, size), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
            k = 2 * int(round(1.25 * radius)) + 1
            a *= cv2.stackBlur(eroded, (k, k))[pad:-pad, pad:-pad].astype(np.float32) * np.float32(1.0 / 255.0)
        assert np.array_equal(feather_mask(mask, radius), a)


def test_detail_kept_weighted_in_strips_equals_the_whole_array_formula(monkeypatch):
    import priorpaint.compositing.photo_metrics as PM

    photo = _photo(260).astype(np.uint8)
    result = cv2.GaussianBlur(photo, (0, 0), 1.5)
    mask = np.zeros((260, 260), np.uint8)
    mask[30:220, 40:240] = 255
    mask[60:90] = 128
    w = mask.astype(np.float32) / 255.0
    want = float((PM.high_frequency(result) * w).sum() / (PM.high_frequency(photo) * w).sum())
    monkeypatch.setattr(PM, "ROWS", 31)
    assert PM.detail_kept(result, photo, mask) == pytest.approx(want, rel=1e-5)
    assert PM.detail_kept(result, photo, np.zeros_like(mask)) is None


def _full_crop(side=1500):
    from priorpaint.compositing.crop import make_crop
    from priorpaint.images import load_photo

    photo = load_photo(_photo(side).astype(np.uint8))
    crop = make_crop(photo, 256, box=(0, 0, side, side), margin=0.0)
    assert tuple(crop.layer_box) == (0, 0, side, side) and crop.square[2] == side
    return photo, crop


def test_a_full_photo_paste_holds_only_the_layer_beyond_its_inputs():
    """Issue 28 (36 MP render memory): pasting a whole-photo composite made a copy of the photo
    and the alpha channel through two full-size float32 arrays; now the RGBA layer is the only
    new photo-sized array, and the pixels are the same as before."""
    import tracemalloc

    from priorpaint.compositing.blend import feather_mask, paste_region

    photo, crop = _full_crop()
    side = crop.square[2]
    rng = np.random.default_rng(0)
    region = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    layer_rgb = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    alpha = feather_mask(crop.region_mask, 20)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        out, layer, box = paste_region(photo, crop, region, layer_rgb, alpha, own_region=True)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert peak < layer.nbytes + photo.rgb.nbytes // 2, (peak / 2 ** 20, layer.nbytes / 2 ** 20)
    assert box == (0, 0, side, side)
    assert np.array_equal(out.rgb, region) and np.array_equal(photo.rgb, _photo(side).astype(np.uint8))
    assert np.array_equal(layer, np.dstack([layer_rgb, np.round(alpha * 255).astype(np.uint8)]))


def test_a_paste_without_own_region_never_shares_the_callers_arrays():
    from priorpaint.compositing.blend import paste_region

    photo, crop = _full_crop(300)
    region = np.full((300, 300, 3), 7, np.uint8)
    alpha = np.ones((300, 300), np.float32)
    out, _, _ = paste_region(photo, crop, region, region, alpha)
    assert not np.shares_memory(out.rgb, region) and np.array_equal(out.rgb, region)
    owned, _, _ = paste_region(photo, crop, region, region, alpha, own_region=True)
    assert np.shares_memory(owned.rgb, region) and not np.shares_memory(owned.rgb, photo.rgb)


def test_a_render_measures_its_structure_on_a_square_of_at_most_measure_side(tiny_session, monkeypatch):
    """Issue 28 (36 MP render memory): the structure figures ran at the square's full size
    (float32 flow, warps and detail bands: over 2 GB at 36 MP); a square larger than
    MEASURE_SIDE is measured shrunk to it, as the preview's verdict is."""
    import priorpaint.measures.report as report
    import priorpaint.session as session

    side = tiny_session.crop.square[2]
    monkeypatch.setattr(session, "MEASURE_SIDE", side // 2)
    seen, measured = [], []
    real = report.structure_report

    def spy(gen, model_id, applied, result, photo, mask, **kwargs):
        seen.append((result.shape, photo.shape, mask.shape))
        structure, verdict = real(gen, model_id, applied, result, photo, mask, **kwargs)
        measured.append(structure["moved_px"])
        return dict(structure), verdict

    monkeypatch.setattr(report, "structure_report", spy)
    res = tiny_session.gen.resolution
    r = tiny_session.render(tiny_session.apply([{"kind": "paint", "concept": "part0", "mode": "add", "k": 2,
                                                 "mask": np.full((res, res), 255, np.uint8)}]), composite="detail")
    half = side // 2
    assert seen == [((half, half, 3), (half, half, 3), (half, half))]
    assert r.photo.rgb.shape[:2] == tiny_session.photo.rgb.shape[:2] and r.metrics["changed_outside_mask"] == 0
    assert "smear" in r.metrics["structure"]
    assert measured[0] is not None and measured[0] > 0   # moved_px: reported in the square's pixels, not the shrunk copy's
    assert r.metrics["structure"]["moved_px"] == pytest.approx(measured[0] * side / half, abs=1e-3)


# -- a 36 MP render's cost: the same figures, cheaper --------------------------------------------

def test_the_running_count_erosion_is_opencvs_square_erosion_bit_for_bit():
    from priorpaint.compositing.blend import erode_square

    rng = np.random.default_rng(5)
    for _ in range(40):
        h, w = (int(v) for v in rng.integers(3, 260, 2))
        support = ((rng.random((h, w)) > rng.uniform(0.001, 0.3)) * 255).astype(np.uint8)
        r = int(rng.integers(1, 40))
        ref = cv2.erode(support, np.ones((2 * r + 1, 2 * r + 1), np.uint8), borderType=cv2.BORDER_CONSTANT,
                        borderValue=0)
        assert np.array_equal(erode_square(support, r, rows=int(rng.integers(1, 90))), ref), (h, w, r)


def test_the_square_of_a_photo_is_cut_and_padded_as_numpy_pads_it():
    from priorpaint.compositing.crop import Rect, cut_square

    rng = np.random.default_rng(6)
    for _ in range(200):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        shape = (h, w) + ((int(rng.choice([1, 3, 4])),) if rng.random() < 0.6 else ())
        full = (rng.random(shape) * 255).astype(rng.choice([np.uint8, np.float32, bool]))
        side, x0, y0 = int(rng.integers(1, 60)), int(rng.integers(-30, 40)), int(rng.integers(-30, 40))
        box = Rect.square_in_image((x0, y0, side), (w, h))
        inner = full[box.rows, box.cols]
        if inner.size == 0:
            continue
        widths = [(box.y - y0, y0 + side - box.y - box.h), (box.x - x0, x0 + side - box.x - box.w)]
        widths += [(0, 0)] * (full.ndim - 2)
        for pad in ("edge", "zero"):
            ref = np.pad(inner, widths, mode="edge" if pad == "edge" else "constant")
            got = cut_square(full, (x0, y0, side), pad=pad)
            assert got.dtype == ref.dtype and np.array_equal(got, ref), (shape, full.dtype, pad, x0, y0, side)


def test_photo_metrics_from_shared_passes_equal_each_figure_on_its_own():
    import priorpaint.compositing.photo_metrics as PM

    rng = np.random.default_rng(7)
    photo = rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)
    result = photo.copy()
    result[60:240, 50:260] = np.clip(result[60:240, 50:260].astype(int) + rng.integers(-30, 30, (180, 210, 3)),
                                     0, 255).astype(np.uint8)
    mask = np.zeros((300, 300), np.uint8)
    mask[50:250, 40:270] = 255
    mask[100:120, 100:200] = 128
    base = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    edited = np.clip(base.astype(int) + 20, 0, 255).astype(np.uint8)
    m = PM.photo_metrics(result, photo, base, edited, mask, mask, 9)
    assert m["detail_kept"] == round(PM.detail_kept(result, photo, mask), 4)
    assert m["seam_grain"] == round(PM.seam_grain(result, photo, mask, 9), 4)
    sel = mask > 0
    d = result[sel].astype(np.float64) - photo[sel].astype(np.float64)
    assert m["psnr_photo"] == round(10 * np.log10(255.0 ** 2 / (d * d).mean()), 4)
    assert PM.psnr_photo(photo, photo, mask) == PM.PSNR_IDENTICAL


def test_the_rgba_layer_and_the_outside_check_equal_their_numpy_formulas():
    from types import SimpleNamespace

    from priorpaint.compositing.blend import changed_outside, rgba_layer
    from priorpaint.compositing.regions import Rect
    from priorpaint.images import Photo

    rng = np.random.default_rng(8)
    big = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    alpha = rng.random((90, 120)).astype(np.float32)
    alpha[:5] = 0.5
    for rgb, a in ((big, alpha), (big[10:70, 7:99], alpha[10:70, 7:99])):
        want = np.concatenate([rgb, np.round(a * np.float32(255.0)).astype(np.uint8)[..., None]], axis=2)
        assert np.array_equal(rgba_layer(rgb, a), want)
    H, W = 700, 300
    before = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    mask = np.zeros((200, 200), np.uint8)
    mask[20:180, 30:150] = 255
    crop = SimpleNamespace(image_size=(W, H), region_mask=mask, layer_box=Rect(50, 400, 200, 200),
                           square=(50, 400, 200), alignment=None)
    for alphas in ((None, None), (np.full((H, W), 255, np.uint8), None)):
        after = before.copy()
        after[430:560, 90:180] ^= 1                               # inside the mask: allowed
        after[5, 7, 2] ^= 4
        after[650, 299, 0] ^= 8
        after[410, 60, 1] ^= 16                                  # outside the mask, inside the box
        b_alpha = alphas[1]
        if alphas[0] is not None:
            b_alpha = alphas[0].copy()
            b_alpha[100, 100] = 3                                # an alpha change outside counts too
        inside = np.zeros((H, W), bool)
        inside[400:600, 50:250] = mask > 0
        diff = (before != after).any(axis=2) | ((alphas[0] if alphas[0] is not None else 255) !=
                                                (b_alpha if b_alpha is not None else 255))
        want = int((diff & ~inside).sum())
        got = changed_outside(Photo(before, alphas[0]), Photo(after, b_alpha), crop)
        assert got == want and want == 3 + (alphas[0] is not None)


def test_the_shrunk_luminance_in_strips_is_the_shrink_of_the_luminance():
    import priorpaint.compositing.photo_metrics as PM

    img = np.random.default_rng(9).integers(0, 256, (1203, 1203, 3), dtype=np.uint8)
    for f in (1, 3, 7):
        assert np.array_equal(PM._shrunk_luma(img, f), PM._shrink(PM._luma(img), f))
