"""Drag editing (edits/drag.py): the spec, bad input, the optimisation's reports, the warp render
that keeps every pixel outside the edit mask, the CLI and the API's generic ``edit``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from priorpaint.cli import main
from priorpaint.edits import EDIT_KINDS, parse_spec
from priorpaint.edits import drag as D
from priorpaint.errors import InputError
from priorpaint.jobs import CancelToken, Cancelled

pytestmark = pytest.mark.usefixtures("tmp_cache")

# the astronaut's chin, lifted by 12 px (~7 % of the 180 px face box)
CHIN = "drag:230,150>230,138"


def test_the_spec_parses_pairs_and_a_mask():
    s = parse_spec("drag:230,150>230,138; 200.5,100>205,96@m.png")
    assert s == {"kind": "drag", "points": [[230.0, 150.0, 230.0, 138.0], [200.5, 100.0, 205.0, 96.0]],
                 "mask": "m.png"}
    assert EDIT_KINDS["drag"].composite == "warp"


@pytest.mark.parametrize("spec, message", [
    ("drag:", "drag edit is drag:HX,HY>TX,TY"),
    ("drag:1,2", "drag edit is drag:HX,HY>TX,TY"),
    ("drag:1,2>3", "drag edit is drag:HX,HY>TX,TY"),
    ("drag:a,2>3,4", "is not a number"),
    ("drag:nan,2>3,4", "coordinates must be finite numbers"),
    ("drag:1,inf>3,4", "coordinates must be finite numbers"),
    ("drag:5,5>5,5", "is its own target"),
    ("drag:" + ";".join(f"{i},1>{i},2" for i in range(17)), "at most 16 handle/target pairs, got 17"),
])
def test_bad_specs_are_one_line_errors(spec, message):
    with pytest.raises(InputError, match=message) as e:
        parse_spec(spec)
    assert "\n" not in str(e.value)


def test_json_specs_are_checked_alike():
    from priorpaint.edits import check_specs
    for points, message in [([[1, 2, 3, float("nan")]], "not a finite number"), ([[1, 2, 3]], "must be"),
                            ([], "needs 'points'"), ([[1, 2, 1, 2]], "is its own target")]:
        with pytest.raises(InputError, match=message):
            check_specs(None, [{"kind": "drag", "points": points}])


@pytest.mark.parametrize("spec, message", [
    ("drag:600,150>230,138", "handle 1 .* is outside the photo"),
    ("drag:230,150>230,-3", "target 1 .* is outside the photo"),
    ("drag:20,400>25,400", "handle 1 .* is outside the selection"),
    ("drag:230,150>10,500", "target 1 .* is outside the selection"),
])
def test_points_outside_the_photo_or_the_selection_are_refused(tiny_session, spec, message):
    with pytest.raises(InputError, match=message):
        tiny_session.apply([spec])


def test_points_map_between_photo_and_model_pixels(tiny_session):
    crop = tiny_session.crop
    pts = np.array([[230.0, 150.0], [150.5, 30.25]])
    back = D.model_to_photo(crop, D.photo_to_model(crop, pts))
    np.testing.assert_allclose(back, pts, atol=1e-9)
    # the square's corner pixel centre is the model's first pixel centre scaled
    x0, y0, side = crop.square
    m = D.photo_to_model(crop, [[x0 + side / crop.resolution / 2 - 0.5, y0 + side / crop.resolution / 2 - 0.5]])
    np.testing.assert_allclose(m, [[0.0, 0.0]], atol=1e-9)


def test_a_drag_reports_each_step_with_the_handles_and_renders_with_the_warp(tiny_session):
    s = tiny_session
    events = []
    state = s.apply([CHIN + ";200,100>204,96"], progress=lambda st, f, info: events.append((st, f, info)))
    steps = [e for e in events if e[0] == "drag"]
    assert steps and all(len(e[2]["handles"]) == 2 and len(e[2]["distance_px"]) == 2 for e in steps)
    fr = [e[1] for e in steps]
    assert fr == sorted(fr)
    d = state.applied[0]
    assert d["kind"] == "drag" and len(d["tracked"]) == 2 and d["layer"] in s.gen.layer_names
    assert 0 <= d["steps_run"] <= D.DEFAULTS["steps"]
    r = s.render(state)                          # "detail" asked: a drag renders with the warp
    assert r.metrics["composite"] == "warp" and r.metrics["composite_info"]["motion"] == "drag"
    assert r.metrics["changed_outside_mask"] == 0
    # every pixel outside the edit mask (a capsule around the drag, inside the selection) is the photo's
    src = s.photo.rgb
    mask = s.edit_mask(state)
    full = np.zeros(src.shape[:2], np.uint8)
    x0, y0, side = s.crop.square
    ys, xs = np.mgrid[0:side, 0:side]
    inside = (ys + y0 >= 0) & (ys + y0 < src.shape[0]) & (xs + x0 >= 0) & (xs + x0 < src.shape[1])
    full[(ys + y0)[inside], (xs + x0)[inside]] = mask[inside]
    assert full.any() and (full == 0).any()
    np.testing.assert_array_equal(r.photo.rgb[full == 0], src[full == 0])
    # the mask is a neighbourhood of the drag, not the whole selection
    assert (mask > 0).sum() < (s.crop.region_mask > 0).sum()
    # replace stays replace
    assert s.render(state, composite="replace").metrics["composite"] == "replace"


def test_a_drag_that_cannot_move_says_how_far_it_got(tiny_session):
    state = tiny_session.apply([{"kind": "drag", "points": [[230, 150, 230, 138]], "steps": 0}])
    assert any("could not move far: it got 0% of the way" in n for n in state.notes)
    assert state.applied[0]["reach_model"] == [0.0]


def test_a_drag_is_cancellable(tiny_session):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        tiny_session.apply([CHIN], cancel=token)


def test_a_movable_mask_bounds_the_edit(tiny_session, tmp_path):
    W, H = tiny_session.photo.size
    m = np.zeros((H, W), np.uint8)
    m[120:170, 200:260] = 255
    path = tmp_path / "movable.png"
    Image.fromarray(m).save(path)
    state = tiny_session.apply([f"{CHIN}@{path}"])
    mask = tiny_session.edit_mask(state)
    x0, y0, _ = tiny_session.crop.square
    assert mask[150 - y0, 230 - x0] > 0 and mask[60 - y0, 160 - x0] == 0
    empty = tmp_path / "empty.png"
    Image.fromarray(np.zeros((H, W), np.uint8)).save(empty)
    with pytest.raises(InputError, match="drag mask is empty"):
        tiny_session.apply([f"{CHIN}@{empty}"])


def test_the_optimisation_on_the_embedded_model_reports_and_keeps_the_closest_state():
    """On the embedded model at its resolution: the declared feature layer, finite latents, a first
    report at the start's distance, and the state returned is the closest the tracker saw (how far
    the content really moves is bench's drag section, with an independent tracker)."""
    from priorpaint.models.registry import load_generator
    gen = load_generator(None)
    z = gen.sample_latents(1, seed=3)
    split = gen.default_split
    with torch.no_grad():
        h = gen.forward_to(z, split)
    p, t = np.array([[32.0, 44.0]]), np.array([[32.0, 40.0]])
    events = []
    z_e, h_e, tracked, info = D.optimise(gen, z, h, split, p, t, steps=20,
                                         progress=lambda *a: events.append(a[2]))
    assert info["layer"] == "b32" and torch.isfinite(h_e).all() and torch.isfinite(z_e).all()
    assert events[0]["distance_px"] == [4.0] and events[0]["step"] == 0
    seen = [e["distance_px"][0] for e in events]
    assert np.linalg.norm(tracked - t) == pytest.approx(min(seen), abs=0.01)
    with pytest.raises(InputError, match="drag space must be"):
        D.optimise(gen, z, h, split, p, t, space="w")


def test_cli_drag_on_the_embedded_model_keeps_the_photo_outside(tmp_path, astronaut_path):
    out, rep = tmp_path / "o.png", tmp_path / "r.json"
    rc = main(["edit", str(astronaut_path), "--box", "140,20,180,180", "--steps", "4", "--no-adapt",
               "--edit", CHIN, "-o", str(out), "--report", str(rep)])
    assert rc == 0
    report = json.loads(rep.read_text())
    assert report["edits"][0]["kind"] == "drag" and report["composite"] == "warp"
    assert report["changed_outside_mask"] == 0
    src = np.asarray(Image.open(astronaut_path).convert("RGB"))
    res = np.asarray(Image.open(out).convert("RGB"))
    outside = np.ones(src.shape[:2], bool)
    outside[20:200, 140:320] = False
    np.testing.assert_array_equal(res[outside], src[outside])


def test_the_api_edit_takes_a_drag_spec(tiny_session):
    from priorpaint.app.api import Backend
    b = Backend()
    sid = b.store.put(tiny_session)
    *_, last = b.edit(sid, json.dumps([{"kind": "drag", "points": [[230, 150, 230, 138]], "steps": 5}]))
    status = json.loads(last[0])
    assert status["done"] and status["composite"] == "warp" and status["edits"][0]["kind"] == "drag"
    assert status["changed_outside_mask"] == 0
    bad = b.edit(sid, json.dumps([{"kind": "drag", "points": [[230, 150, 230, 150]]}]))
    with pytest.raises(InputError, match="is its own target"):
        list(bad)


def test_a_drag_render_takes_no_appearance_change_where_nothing_moved():
    """The warp composite with the drag's appearance share: a changed generator but no motion and no
    new content leaves the photo's square as it was (a share of 1 would add the change)."""
    from priorpaint.compositing.warp import warp_composite
    from skimage import data
    region = np.ascontiguousarray(data.astronaut()[40:296, 120:376])
    mask = np.full((256, 256), 255, np.uint8)
    base = np.full((64, 64, 3), 120, np.uint8)
    edited = np.full((64, 64, 3), 160, np.uint8)
    zero, none = np.zeros((64, 64, 2), np.float32), np.zeros((64, 64), np.float32)
    kept = warp_composite(region, base, edited, zero, none, mask, 6, appearance=D.APPEARANCE)
    np.testing.assert_array_equal(kept.region, region)
    assert (warp_composite(region, base, edited, zero, none, mask, 6, appearance=1.0).region.astype(int)
            - region).mean() > 20


def test_the_feature_layer_is_declared_per_architecture():
    from priorpaint.models.dcgan import DCGANGenerator
    from priorpaint.models.stylegan2 import StyleGAN2Generator
    assert D.feature_layer(DCGANGenerator(nz=8, ngf=4, resolution=64, split="b8"), "b8") == "b32"
    big = StyleGAN2Generator(size=256, style_dim=32, n_mlp=1, channel_multiplier=1, channels={
        k: 8 for k in (4, 8, 16, 32, 64, 128, 256)})
    assert D.feature_layer(big, big.default_split) == big.layer_names[5] == "b128"   # after the 6th block
    small = StyleGAN2Generator(size=32, style_dim=32, n_mlp=1, channel_multiplier=1)
    assert D.feature_layer(small, "b8") == "b32"        # no 6th block: the last feature map before the output
    small.drag_feature_layer = "b16"                    # a generator's own declaration wins
    assert D.feature_layer(small, "b8") == "b16"
