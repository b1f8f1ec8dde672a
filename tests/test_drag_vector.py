"""A saved drag (``--save-vector`` / ``"save_vector"``) replays on another photo: its pairs are kept
as fractions of the selection's square and mapped through the other photo's crop (edits/drag.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import ASTRONAUT_BOX, FAST_PROJECTION
from priorpaint.cli import main
from priorpaint.edits import parse_spec
from priorpaint.edits import drag as D
from priorpaint.edits import vectors as V
from priorpaint.errors import InputError

pytestmark = pytest.mark.usefixtures("tmp_cache")

CHIN = "drag:230,150>230,138;200,100>204,96"


def _session(gen, path, box):
    from priorpaint.projection.project import ProjectionConfig
    from priorpaint.session import EditSession
    s = EditSession.open(path, box=box, gen=gen)
    s.project(ProjectionConfig(steps=4, **FAST_PROJECTION))
    return s


def test_the_saved_drag_spec_parses_and_bad_ones_are_one_line_errors():
    assert parse_spec("drag:lift_chin") == {"kind": "drag", "vector": "lift_chin"}
    assert parse_spec("drag:lift_chin=0.5@m.png") == {"kind": "drag", "vector": "lift_chin", "strength": 0.5,
                                                      "mask": "m.png"}
    for spec, message in [("drag:lift=abc", "strength 'abc' is not a number"),
                          ("drag:lift=0", "non-zero number in \\[-3, 3\\]"),
                          ("drag:lift=4", "non-zero number"),
                          ("drag:lift=nan", "finite numbers"),
                          ("drag:1,2", "drag edit is drag:HX,HY>TX,TY")]:
        with pytest.raises(InputError, match=message) as e:
            parse_spec(spec) if "=0" not in spec and "=4" not in spec else D._check(None, parse_spec(spec))
        assert "\n" not in str(e.value)


def test_a_saved_drag_replays_through_another_crop(tiny_gen, astronaut_path, tmp_path):
    s = _session(tiny_gen, astronaut_path, ASTRONAUT_BOX)
    state = s.apply([{**parse_spec(CHIN), "steps": 3, "save_vector": "lift"}])
    d = state.applied[0]
    assert d["saved_vector"].endswith("lift.safetensors")
    [meta] = [v for v in V.list_vectors("tiny-dcgan") if v["name"] == "lift"]
    assert meta["kind"] == "drag" and np.shape(meta["points_square"]) == (2, 4)
    tensors, _ = V.load_vector("tiny-dcgan", "lift")
    assert tuple(tensors["delta_h"].shape) == tuple(state.h.shape)

    # the same face, another selection (twice as far from the corner, larger): the pairs follow the square
    box2 = (120, 0, 220, 220)
    s2 = _session(tiny_gen, astronaut_path, box2)
    x0, y0, side = s.crop.square
    x1, y1, side2 = s2.crop.square
    pts = np.asarray(d["points"], np.float64)
    want = np.empty_like(pts)
    for k in (0, 2):                  # a pixel centre's place in the square, as a fraction, is kept
        want[:, k] = (pts[:, k] + 0.5 - x0) / side * side2 + x1 - 0.5
        want[:, k + 1] = (pts[:, k + 1] + 0.5 - y0) / side * side2 + y1 - 0.5
    st2 = s2.apply([{"kind": "drag", "vector": "lift", "steps": 3}])
    np.testing.assert_allclose(st2.applied[0]["points"], want, atol=0.02)
    # a strength scales each move from its handle
    st3 = s2.apply([{"kind": "drag", "vector": "lift", "strength": -0.5, "steps": 2}])
    got = np.asarray(st3.applied[0]["points"])
    np.testing.assert_allclose(got[:, :2], want[:, :2], atol=0.02)
    np.testing.assert_allclose(got[:, 2:], want[:, :2] - 0.5 * (want[:, 2:] - want[:, :2]), atol=0.03)
    with pytest.raises(InputError, match="vector 'lift' is a saved drag: replay it with drag:lift"):
        s2.apply(["vector:lift=1"])
    r = s2.render(st2)
    assert r.metrics["composite"] == "warp" and r.metrics["changed_outside_mask"] == 0


def test_a_saved_drag_replays_with_the_settings_it_was_made_with(tiny_gen, astronaut_path):
    """The settings a user chose (those not at their defaults) are saved with the pairs; a replay drags
    with them unless its own spec says otherwise (before, it dragged with the defaults: a 'z+coarse'
    drag replayed in 'z')."""
    s = _session(tiny_gen, astronaut_path, ASTRONAUT_BOX)
    made = s.apply([{**parse_spec(CHIN), "steps": 2, "space": "z+coarse", "lambda_mask": 0.5,
                     "save_vector": "lift_coarse"}])
    assert made.applied[0]["space"] == "z+coarse"
    [meta] = [v for v in V.list_vectors("tiny-dcgan") if v["name"] == "lift_coarse"]
    assert meta["options"] == {"steps": 2, "space": "z+coarse", "lambda_mask": 0.5}
    again = s.apply([{"kind": "drag", "vector": "lift_coarse"}]).applied[0]
    assert again["space"] == "z+coarse" and again["coarse_layer"] == made.applied[0]["coarse_layer"]
    assert again["steps_run"] <= 2
    other = s.apply([{"kind": "drag", "vector": "lift_coarse", "space": "z", "steps": 1}]).applied[0]
    assert other["space"] == "z" and other["coarse_layer"] is None and other["steps_run"] <= 1


def test_unknown_and_non_drag_vectors_are_refused(tiny_gen, astronaut_path):
    s = _session(tiny_gen, astronaut_path, ASTRONAUT_BOX)
    with pytest.raises(InputError, match="unknown vector 'nope'"):
        s.apply(["drag:nope"])
    V.save_vector("tiny-dcgan", "seg", s.apply([]).h * 0 + 1, {"kind": "segment", "split": s.projection.split})
    with pytest.raises(InputError, match="vector 'seg' is not a saved drag .* apply it with vector:seg"):
        s.apply(["drag:seg"])


def test_cli_save_vector_on_a_drag_then_replay_on_another_photo(tmp_path, astronaut_path):
    """End to end on the embedded model: --save-vector keeps the drag; drag:NAME moves another face."""
    from priorpaint.bench.fixtures import matplotlib_sample_path
    out, rep = tmp_path / "o.png", tmp_path / "r.json"
    rc = main(["edit", str(astronaut_path), "--box", "140,20,180,180", "--steps", "4", "--no-adapt",
               "--edit", "drag:230,150>230,138", "--save-vector", "chin_up", "-o", str(out), "--report", str(rep)])
    assert rc == 0
    saved = json.loads(rep.read_text())["edits"][0]
    assert saved["kind"] == "drag" and saved["saved_vector"].endswith("chin_up.safetensors")
    hopper = matplotlib_sample_path("grace_hopper.jpg")
    photo = Image.open(hopper).convert("RGB")
    out2, rep2 = tmp_path / "o2.png", tmp_path / "r2.json"
    box = "165,110,220,230"
    rc = main(["edit", str(hopper), "--box", box, "--steps", "4", "--no-adapt", "--edit", "drag:chin_up",
               "-o", str(out2), "--report", str(rep2)])
    assert rc == 0
    report = json.loads(rep2.read_text())
    [hx, hy, tx, ty] = report["edits"][0]["points"][0]
    assert hx == pytest.approx(tx, abs=0.05) and ty < hy      # still a lift, now in Grace Hopper's square
    assert report["changed_outside_mask"] == 0
    src, res = np.asarray(photo), np.asarray(Image.open(out2).convert("RGB"))
    outside = np.ones(src.shape[:2], bool)
    outside[110:340, 165:385] = False
    np.testing.assert_array_equal(res[outside], src[outside])
    assert main(["edit", str(hopper), "--box", box, "--edit", "direction:exposure=1", "--save-vector", "x",
                 "-o", str(out2)]) == 2


def test_save_vector_without_a_drag_or_segment_edit_is_a_one_line_error():
    with pytest.raises(InputError, match="--save-vector needs a segment or drag edit"):
        D.attach_save_vector(["direction:smile=1"], "x")
    assert json.loads(D.attach_save_vector(["drag:1,2>3,4", "direction:smile=1"], "x")[0]) == \
        {"kind": "drag", "points": [[1.0, 2.0, 3.0, 4.0]], "save_vector": "x"}
