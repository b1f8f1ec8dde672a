"""Colour scribbles: stroke geometry (sizes), the optimisation, no-op and bad input, the CLI."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from priorpaint.cli import main
from priorpaint.edits import scribble as S
from priorpaint.errors import InputError
from priorpaint.projection.project import ProjectionConfig
from priorpaint.session import EditSession

from conftest import FAST_PROJECTION

BOX = (140, 20, 180, 180)
FAST = FAST_PROJECTION
pytestmark = pytest.mark.usefixtures("tmp_cache")


def full_strokes(size, colour=(255, 0, 0), box=(200, 60, 260, 100)):
    im = Image.new("RGBA", size, (0, 0, 0, 0))
    ImageDraw.Draw(im).rectangle(box, fill=colour + (255,))
    return im


def test_layer_box_sized_strokes_equal_photo_sized_strokes(tiny_session):
    s = tiny_session
    full = full_strokes(s.photo.size)
    x0, y0, side = s.crop.square
    layer = full.crop((x0, y0, x0 + side, y0 + side))       # the square lies inside the photo here
    c1, w1, n1 = S.stroke_target(s.context(), full)
    c2, w2, n2 = S.stroke_target(s.context(), layer)
    assert torch.allclose(c1 * w1, c2 * w2, atol=1e-5) and torch.allclose(w1, w2, atol=1e-6)
    assert not n1 and not n2
    assert float(w1.max()) > 0.99 and float(w1.min()) == 0.0
    # under the strokes the target colour is the stroke colour (red)
    on = w1[0, 0] > 0.99
    assert torch.allclose(c1[0, 0][on], torch.ones(1)) and torch.allclose(c1[0, 2][on], -torch.ones(1))


def test_other_sized_strokes_are_resized_with_a_note(tiny_session):
    s = tiny_session
    x0, y0, side = s.crop.square
    full = full_strokes(s.photo.size)
    layer = full.crop((x0, y0, x0 + side, y0 + side))
    half = layer.resize((side // 2, side // 2), Image.NEAREST)
    c1, w1, _ = S.stroke_target(s.context(), layer)
    c2, w2, notes = S.stroke_target(s.context(), half)
    assert len(notes) == 1 and "resized to the layer box" in notes[0] and f"{side}x{side}" in notes[0]
    assert float((w1 - w2).abs().mean()) < 0.02
    assert float((c1 * w1 - c2 * w2).abs().mean()) < 0.05


def test_strokes_without_alpha_are_refused(tiny_session):
    rgb = Image.new("RGB", tiny_session.photo.size, (255, 0, 0))
    with pytest.raises(InputError, match="need an alpha channel"):
        tiny_session.apply([{"kind": "scribble", "strokes": rgb}])


def test_empty_scribble_is_a_no_op(tiny_session, tmp_path):
    s = tiny_session
    path = tmp_path / "empty.png"
    Image.new("RGBA", s.photo.size, (255, 0, 0, 0)).save(path)
    st = s.apply([f"scribble:{path}"])
    base = s.initial_state()
    assert torch.equal(st.h, base.h) and torch.equal(st.z, base.z)
    assert any("no strokes" in n for n in st.notes)
    assert st.applied[0]["noop"] is True


def test_scribble_takes_the_stroke_colours_and_keeps_the_rest(tiny_session):
    s = tiny_session
    st = s.apply([{"kind": "scribble", "strokes": full_strokes(s.photo.size, (20, 200, 40)), "steps": 60}])
    rec = st.applied[0]
    assert rec["stroke_mse_after"] < 0.6 * rec["stroke_mse_before"]   # a 4-channel random generator
    assert rec["elsewhere_mse"] < rec["stroke_mse_before"]
    assert st.edit_mask is None                          # the edit mask stays the selection
    r = s.render(st)
    assert r.metrics["changed_outside_mask"] == 0
    # deterministic
    again = s.apply([{"kind": "scribble", "strokes": full_strokes(s.photo.size, (20, 200, 40)), "steps": 60}])
    assert torch.equal(again.h, st.h)


def test_scribble_in_z_and_h(tiny_session):
    s = tiny_session
    st = s.apply([{"kind": "scribble", "strokes": full_strokes(s.photo.size), "steps": 40, "space": "z+h"}])
    assert not torch.equal(st.z, s.initial_state().z)
    assert st.applied[0]["stroke_mse_after"] < st.applied[0]["stroke_mse_before"]
    with pytest.raises(InputError, match="space must be"):
        s.apply([{"kind": "scribble", "strokes": full_strokes(s.photo.size), "space": "w"}])


def test_strokes_outside_the_selection_get_a_note(tiny_gen, astronaut_path):
    s = EditSession.open(astronaut_path, box=(200, 60, 60, 60), gen=tiny_gen, margin=0.5)
    s.project(ProjectionConfig(steps=4, **FAST))
    x0, y0, side = s.crop.square
    st = s.apply([{"kind": "scribble", "strokes": full_strokes(s.photo.size, box=(x0, y0, x0 + 8, y0 + 8)),
                   "steps": 5}])
    assert any("no scribble stroke lies inside the selection" in n for n in st.notes)


def test_bad_scribble_specs(tiny_session, tmp_path):
    with pytest.raises(InputError, match="scribble:STROKES.png"):
        tiny_session.apply(["scribble:"])
    with pytest.raises(InputError, match="does not exist"):
        tiny_session.apply([f"scribble:{tmp_path / 'missing.png'}"])
    with pytest.raises(InputError, match="steps must be between"):
        tiny_session.apply([{"kind": "scribble", "strokes": full_strokes(tiny_session.photo.size), "steps": -1}])


def test_cli_scribble_on_the_embedded_model_leaves_the_strokes_file_alone(tmp_path, astronaut_path):
    strokes = tmp_path / "strokes.png"
    Image.open(astronaut_path)
    full_strokes((512, 512), (250, 220, 60), box=(190, 52, 270, 66)).save(strokes)
    before = hashlib.sha256(strokes.read_bytes()).hexdigest()
    out, rep = tmp_path / "o.png", tmp_path / "r.json"
    rc = main(["edit", str(astronaut_path), "--box", "140,20,180,180", "--steps", "4",
               "--edit", f"scribble:{strokes}", "-o", str(out), "--report", str(rep)])
    assert rc == 0
    report = json.loads(rep.read_text())
    e = report["edits"][0]
    assert e["kind"] == "scribble" and e["seconds"] > 0
    assert e["stroke_mse_after"] < 0.5 * e["stroke_mse_before"]
    assert report["changed_outside_mask"] == 0
    assert hashlib.sha256(strokes.read_bytes()).hexdigest() == before
    res = np.asarray(Image.open(out).convert("RGB")).astype(int)
    src = np.asarray(Image.open(astronaut_path).convert("RGB")).astype(int)
    # the strokes' yellow shows up where they were drawn
    region = (slice(54, 64), slice(200, 260))
    assert (res[region][..., 2] - src[region][..., 2]).mean() < -10 or \
        (res[region][..., 0] - res[region][..., 2]).mean() > (src[region][..., 0] - src[region][..., 2]).mean()
