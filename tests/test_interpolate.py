"""Interpolation between two projected images: the blend, the geometry, caching, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from priorpaint.cli import main
from priorpaint.edits import interpolate as I
from priorpaint.edits.registry import parse_spec
from priorpaint.errors import InputError

from conftest import FAST_PROJECTION, skimage_data

BOX = (140, 20, 180, 180)
FAST = FAST_PROJECTION
pytestmark = pytest.mark.usefixtures("tmp_cache")


def test_interpolation_is_linear_in_both_latents(tiny_session, monkeypatch):
    s = tiny_session
    z_o = torch.randn_like(s.projection.z)
    h_o = torch.randn_like(s.projection.h)
    monkeypatch.setattr(I, "project_other", lambda session, other, steps=None, seed=None: (z_o, h_o))
    monkeypatch.setattr(I, "other_points", lambda ctx, other: None)   # no file behind "x.png"
    base = s.initial_state()
    st0 = s.apply([{"kind": "interpolate", "other": "x.png", "t": 0.0}])
    assert torch.equal(st0.h, base.h) and torch.equal(st0.z, base.z)
    st1 = s.apply([{"kind": "interpolate", "other": "x.png", "t": 1.0}])
    assert torch.allclose(st1.h, h_o) and torch.allclose(st1.z, z_o)
    mid = s.apply(["interpolate:x.png@0.25"])
    assert torch.allclose(mid.h, 0.75 * base.h + 0.25 * h_o, atol=1e-6)


def test_the_same_photo_projects_to_the_same_latent(tiny_session, astronaut_path):
    """OTHER of the photo's size has the session's square cut from it, like the photo."""
    s = tiny_session
    st = s.apply([{"kind": "interpolate", "other": str(astronaut_path), "t": 1.0, "steps": 8}])
    # the session was projected with the same config, except the perceptual flag: compare pixels
    other = I.other_square(s.context(), str(astronaut_path))
    expect = np.array(Image.fromarray(s.crop.region).resize((16, 16), Image.LANCZOS, reducing_gap=None))
    assert np.array_equal(other, expect)
    assert st.h.shape == s.projection.h.shape


def test_other_sizes_are_the_square_itself(tiny_session, astronaut_path):
    s = tiny_session
    x0, y0, side = s.crop.square
    square = Image.open(astronaut_path).convert("RGB").crop((x0, y0, x0 + side, y0 + side))
    a = I.other_square(s.context(), square)
    b = I.other_square(s.context(), str(astronaut_path))
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    wide = Image.new("RGB", (300, 100), (10, 20, 30))
    wide.paste(square.resize((100, 100)), (100, 0))           # non-square: centre-cropped
    c = I.other_square(s.context(), wide)
    assert np.abs(c.astype(int) - a.astype(int)).mean() < 6


def test_the_other_projection_is_cached_in_the_session(tiny_session, monkeypatch):
    s = tiny_session
    calls = []
    real = I.project
    monkeypatch.setattr(I, "project", lambda *a, **k: calls.append(1) or real(*a, **k))
    other = str(skimage_data("chelsea.png"))
    a = s.apply([{"kind": "interpolate", "other": other, "t": 0.3, "steps": 6}])
    b = s.apply([{"kind": "interpolate", "other": other, "t": 0.6, "steps": 6}])
    assert calls == [1]
    assert not torch.equal(a.h, b.h)
    assert s.render(b).metrics["changed_outside_mask"] == 0


@pytest.mark.parametrize("spec, message", [
    ("interpolate:other.png", "interpolate:OTHER.png@T"),
    ("interpolate:@0.5", "interpolate:OTHER.png@T"),
    ("interpolate:other.png@half", "not a number"),
])
def test_bad_interpolate_specs(spec, message):
    with pytest.raises(InputError, match=message):
        parse_spec(spec)


def test_t_outside_0_1_and_missing_files_are_refused(tiny_session, tmp_path):
    with pytest.raises(InputError, match="between 0 and 1"):
        tiny_session.apply(["interpolate:x.png@1.5"])
    with pytest.raises(InputError, match="does not exist"):
        tiny_session.apply([f"interpolate:{tmp_path / 'nope.png'}@0.5"])
    with pytest.raises(InputError, match="steps must be"):
        tiny_session.apply([{"kind": "interpolate", "other": "x.png", "t": 0.5, "steps": -2}])


def test_cli_interpolate_on_the_embedded_model(tmp_path, astronaut_path):
    other = tmp_path / "other.png"
    Image.open(skimage_data("coffee.png")).convert("RGB").resize((180, 180)).save(other)
    out, rep = tmp_path / "o.png", tmp_path / "r.json"
    rc = main(["edit", str(astronaut_path), "--box", "140,20,180,180", "--steps", "4",
               "--edit", f"interpolate:{other}@0.5", "-o", str(out), "--report", str(rep)])
    assert rc == 0
    report = json.loads(rep.read_text())
    assert report["edits"][0]["kind"] == "interpolate" and report["edits"][0]["t"] == 0.5
    assert report["changed_outside_mask"] == 0
