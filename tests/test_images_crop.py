"""Photo loading (every mode, every bad file) and crop/composite geometry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from priorpaint.compositing.blend import changed_outside, composite, feather_mask
from priorpaint.compositing.crop import make_crop, parse_box, square_around
from priorpaint.errors import InputError
from priorpaint.images import MAX_PIXELS, load_mask, load_photo, photo_from_array


@pytest.fixture(scope="module")
def astro(astronaut_path):
    return load_photo(astronaut_path)


def test_rgb_photo(astro):
    assert astro.rgb.shape == (512, 512, 3) and astro.alpha is None and astro.mode == "RGB"


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "I;16", "CMYK", "1"])
def test_modes_are_converted(tmp_path, astronaut_path, mode):
    im = Image.open(astronaut_path)
    if mode == "I;16":
        arr = (np.asarray(im.convert("L"), dtype=np.uint16) * 257)
        conv = Image.fromarray(arr)
        assert conv.mode.startswith("I;16")
    elif mode == "LA":
        conv = im.convert("LA")
    elif mode == "P":
        conv = im.convert("P", palette=Image.ADAPTIVE)
    else:
        conv = im.convert(mode)
    path = tmp_path / ("x.tif" if mode == "CMYK" else "x.png")
    conv.save(path)
    photo = load_photo(path)
    assert photo.rgb.shape == (512, 512, 3) and photo.rgb.dtype == np.uint8
    assert (photo.alpha is not None) == (mode in ("LA", "RGBA"))
    if mode == "I;16":  # the 16-bit range maps back to the 8-bit values
        assert np.array_equal(photo.rgb[..., 0], np.asarray(im.convert("L")))


def test_missing_file():
    with pytest.raises(InputError, match="does not exist"):
        load_photo("/nonexistent/photo.png")


def test_non_image_file(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("this is not a picture")
    with pytest.raises(InputError, match="not an image file"):
        load_photo(p)


def test_truncated_file(tmp_path, astronaut_path):
    data = astronaut_path.read_bytes()
    p = tmp_path / "cut.png"
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match="truncated or corrupt|cannot be read"):
        load_photo(p)


def test_huge_image_is_refused_before_decoding(tmp_path):
    # A PNG header claiming 20000x6000 (120 MP): refused from the header alone.
    import struct
    import zlib
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", 20000, 6000, 8, 0, 0, 0, 0)
    p = tmp_path / "huge.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    assert 20000 * 6000 > MAX_PIXELS
    with pytest.raises(InputError, match="megapixel"):
        load_photo(p)


def test_arrays_of_every_shape():
    assert photo_from_array(np.zeros((10, 12), np.uint8)).rgb.shape == (10, 12, 3)
    p = photo_from_array(np.full((10, 12, 4), 65535, np.uint16))
    assert p.rgb.max() == 255 and p.alpha.max() == 255
    with pytest.raises(InputError, match="array"):
        photo_from_array(np.zeros((2, 3, 4, 5)))


def test_mask_size_must_match(tmp_path):
    Image.new("L", (10, 10), 255).save(tmp_path / "m.png")
    with pytest.raises(InputError, match="same size"):
        load_mask(tmp_path / "m.png", (20, 10))


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", ""])
def test_parse_box_errors(text):
    with pytest.raises(InputError, match="X,Y,W,H"):
        parse_box(text)


def test_box_inside(astro):
    c = make_crop(astro, 64, box=(140, 20, 180, 180))
    x0, y0, side = c.square
    assert side == 216 and 0 <= x0 and 0 <= y0 and c.region.shape == (216, 216, 3)
    assert c.target().shape == (1, 3, 64, 64) and -1 <= float(c.target().min())
    assert c.notes == []


def test_box_partly_outside_is_clipped_and_said(astro):
    c = make_crop(astro, 64, box=(450, -20, 100, 100))
    assert c.box == (450, 0, 62, 80)
    assert "clipped" in c.notes[0]


def test_box_outside_is_refused(astro):
    with pytest.raises(InputError, match="outside"):
        make_crop(astro, 64, box=(600, 600, 50, 50))


def test_tiny_box_is_refused(astro):
    with pytest.raises(InputError, match="at least 8x8"):
        make_crop(astro, 64, box=(10, 10, 7, 30))


def test_empty_mask_is_refused(astro):
    with pytest.raises(InputError, match="mask is empty"):
        make_crop(astro, 64, mask=np.zeros((512, 512), np.uint8))


def test_square_slides_inside_and_pads_when_larger():
    assert square_around((0, 0, 50, 50), (512, 512), 0.1) == (0, 0, 60)
    x0, y0, side = square_around((0, 0, 100, 40), (100, 40), 0.0)
    assert side == 100 and x0 == 0 and y0 <= 0 and y0 + side >= 40


def test_composite_is_bit_identical_outside_soft_mask(astro):
    yy, xx = np.mgrid[:512, :512]
    soft = np.clip(255 - np.hypot(xx - 230, yy - 110) * 2, 0, 255).astype(np.uint8)
    c = make_crop(astro, 64, mask=soft)
    gen = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    out, layer, box = composite(astro, c, gen)
    assert changed_outside(astro, out, c) == 0
    outside = soft == 0
    assert np.array_equal(out.rgb[outside], astro.rgb[outside])
    assert not np.array_equal(out.rgb, astro.rgb)
    assert layer.shape == (box[3], box[2], 4)
    assert astro.rgb.flags.writeable and out.rgb is not astro.rgb


def test_composite_at_border_keeps_alpha(astronaut_path):
    im = Image.open(astronaut_path).convert("RGBA")
    arr = np.asarray(im).copy()
    arr[..., 3] = 77
    photo = photo_from_array(arr)
    c = make_crop(photo, 64, box=(480, 480, 60, 60))  # clipped at the corner
    gen = np.zeros((64, 64, 3), np.uint8)
    out, _, box = composite(photo, c, gen)
    assert np.array_equal(out.alpha, photo.alpha)
    assert changed_outside(photo, out, c) == 0
    assert box[0] + box[2] <= 512 and box[1] + box[3] <= 512


def test_feather_stays_inside():
    m = np.zeros((100, 100), np.uint8)
    m[20:80, 20:80] = 255
    a = feather_mask(m, 5)
    assert a[m == 0].max() == 0 and a[50, 50] == pytest.approx(1.0, abs=1e-3) and 0 < a[21, 50] < 1
    assert np.array_equal(feather_mask(m, 0), m / 255.0)


def test_model_mask_and_target_devices(astro):
    c = make_crop(astro, 64, box=(140, 20, 180, 180))
    assert c.model_mask().shape == (1, 1, 64, 64)
    assert c.target(torch.device("cpu")).device.type == "cpu"
