"""Portrait sliders found with supervised boundaries (issue 23, item 5): the boundary fitting and its
independence from nuisances on synthetic data, the landmark-anchored attribute measures, and each
shipped ``boundary`` direction moving its declared measure the right way on the embedded model's
own samples (and the check failing where the attribute did not change)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from priorpaint.edits import directions as D
from priorpaint.edits.directions.boundaries import orthogonal_boundary, residual_scores
from priorpaint.errors import InputError, ModelError
from priorpaint.measures.attributes import (CANVAS, EYES, PORTRAIT_ATTRIBUTES, measure_canonical,
                                            portrait_attributes)
from priorpaint.measures.effect import attribute, direction_measure


# -- boundary fitting, on synthetic data ----------------------------------------------------------
def _synthetic(n=2000, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    pose = x[:, 1] + 0.1 * torch.randn(n, generator=g)           # a nuisance the attribute leans on
    attr = x[:, 0] + 0.9 * x[:, 1]                               # the attribute: its own axis + the pose
    return x, attr, pose


def test_residual_scores_remove_what_the_nuisances_explain():
    x, attr, pose = _synthetic()
    r = residual_scores(attr, pose[:, None])
    assert abs(float(torch.corrcoef(torch.stack([r, pose]))[0, 1])) < 1e-6
    assert float(torch.corrcoef(torch.stack([r, x[:, 0]]))[0, 1]) > 0.95


def test_orthogonal_boundary_finds_the_attribute_and_not_the_pose():
    x, attr, pose = _synthetic()
    plain = orthogonal_boundary(x, attr, {})["normal"]
    assert float(plain[1]) > 0.4                                  # unconditioned, it also turns the "head"
    fit = orthogonal_boundary(x, attr, {"pose": pose})
    n = fit["normal"]
    assert n.shape == (6,) and abs(float(n.norm()) - 1) < 1e-5
    assert float(n[0]) > 0.95 and abs(float(n[1])) < 0.05        # along its own axis, none of the pose
    assert abs(fit["cosines"]["pose"]) < 0.1 and fit["samples"] == 2000 and fit["accuracy"] > 0.8


def test_orthogonal_boundary_leaves_out_unmeasured_samples_and_refuses_bad_input():
    x, attr, pose = _synthetic(400)
    attr[:50] = float("nan")                                      # no face found on those
    assert orthogonal_boundary(x, attr, {"pose": pose})["samples"] == 350
    with pytest.raises(InputError, match="quantile"):
        orthogonal_boundary(x, attr, {}, quantile=0.7)
    with pytest.raises(InputError, match="more measured samples"):
        orthogonal_boundary(x[:5], attr[50:55], {})
    with pytest.raises(InputError, match="explain the attribute entirely"):   # the attribute is the nuisance
        orthogonal_boundary(x, x[:, 2], {"same": x[:, 2]})


# -- the attribute measures ------------------------------------------------------------------------
def _canvas_face(mouth_dark=0.0, mouth_half_width=10.0):
    """A synthetic canonical face: skin 0.6, eyes at :data:`EYES`, a mouth line 48 px below them."""
    light = np.full((CANVAS, CANVAS), 0.6, np.float32)
    (lx, ly), (rx, ry) = EYES
    for x in (lx, rx):
        light[int(ly) - 2:int(ly) + 3, int(x) - 6:int(x) + 7] = 0.15
    my = ly + 48
    cx = 0.5 * (lx + rx)
    light[int(my) - 3:int(my) + 4, int(cx - mouth_half_width):int(cx + mouth_half_width)] -= mouth_dark
    pts = np.array([[lx, ly], [rx, ry], [cx, ly + 26], [cx - mouth_half_width, my], [cx + mouth_half_width, my]])
    return light, pts


def test_the_measures_see_their_attribute_and_nothing_where_it_did_not_change():
    base = measure_canonical(*_canvas_face())
    assert set(base) == set(PORTRAIT_ATTRIBUTES)
    assert measure_canonical(*_canvas_face()) == base            # unchanged face: every attribute unchanged
    wide = measure_canonical(*_canvas_face(mouth_half_width=16))
    assert wide["mouth_width"] > base["mouth_width"] + 0.25
    open_ = measure_canonical(*_canvas_face(mouth_dark=0.4))
    assert open_["mouth_open"] > base["mouth_open"] + 0.2
    assert open_["eyes_open"] == pytest.approx(base["eyes_open"])  # the eyes did not change


def test_no_face_measures_none_and_the_effect_measure_reads_the_portrait_attributes():
    flat = np.full((96, 96, 3), 128, np.uint8)
    assert portrait_attributes(flat) is None and attribute(flat, "mouth_width") is None
    assert direction_measure(None, "smile") == "mouth_width" and direction_measure(None, "surprise") == "mouth_open"


# -- the shipped sliders -----------------------------------------------------------------------------
def _boundaries():
    return [d for d in D.load_named(None)["directions"] if d["method"] == "boundary"]


def test_the_portrait_sliders_are_declared_once_with_range_measure_and_recipe():
    found = {d["name"]: d for d in _boundaries()}
    assert {"smile", "surprise"} <= set(found)
    for d in found.values():
        assert d["measure"] in PORTRAIT_ATTRIBUTES and d["min"] <= 0 < d["max"]
        assert len(d["vector"]) == 100 and d["derived"]["independent_of"][:3] == ["yaw", "pitch", "roll"]
    # surprise is not carried on real photos (the model's render of a projected photo barely opens the
    # mouth); smile is, through the mouth warp, from 0 up (below 0 the corners droop: no minus side)
    assert "preview only on this model" in found["surprise"]["description"]
    assert "real photos" in found["surprise"]["preview_only"]
    assert "preview_only" not in found["smile"] and found["smile"]["min"] == 0
    assert "profile is not carried" in found["smile"]["description"]
    listed = {r["name"]: r for r in D.list_directions(None)}
    # smile renders through the mouth-local warp (it moves the photo's own mouth); surprise stays detail
    assert listed["smile"]["method"] == "boundary" and listed["smile"]["structural"]
    assert listed["surprise"]["method"] == "boundary" and not listed["surprise"]["structural"]


def _measure_change(gen, name, strength, samples=12, seed=5, control=None):
    """The per-sample change of ``name``'s declared measure when ``name`` (or the ``control``
    direction instead) is applied at ``strength`` to the model's samples."""
    from priorpaint.edits.directions.derive import images_along
    d = D.get_direction(gen, control or name)
    z = gen.sample_latents(samples, seed=seed)
    imgs = images_along(gen, z, d, (0.0, strength))
    u8 = ((imgs.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    m = direction_measure(None, name)
    out = []
    for a, b in zip(u8[:samples], u8[samples:]):
        va, vb = attribute(a, m), attribute(b, m)
        if va is not None and vb is not None:
            out.append(vb - va)
    assert len(out) >= samples // 2
    return np.array(out)


def moved_up(changes: np.ndarray) -> bool:
    """The check: the measure rose on most samples, and clearly in the median."""
    return bool(np.mean(changes > 0) >= 0.75 and np.median(changes) > 0.02)


@pytest.mark.parametrize("name, both_ways", [("smile", True), ("surprise", False)])
def test_each_slider_moves_its_measure_the_right_way_on_the_models_samples(default_gen, one_thread, name, both_ways):
    assert moved_up(_measure_change(default_gen, name, 2.0))
    if both_ways:                                                 # surprise's - side mostly darkens the face
        assert moved_up(-_measure_change(default_gen, name, -2.0))
    unchanged = _measure_change(default_gen, name, 0.0)           # the attribute did not change: the check fails
    assert not moved_up(unchanged) and np.all(unchanged == 0)
    # nor does it pass where the face changed but its mouth did not (the background direction)
    other = _measure_change(default_gen, name, 2.0, control="background")
    assert not moved_up(other) and not moved_up(-other)


def test_a_boundary_without_a_proper_vector_is_refused(tmp_path, monkeypatch, default_gen):
    from conftest import default_manifest_entry
    (tmp_path / "directions").mkdir()
    (tmp_path / "dcgan-digiface-64.json").write_text(json.dumps(default_manifest_entry()))
    bad = {"model": "dcgan-digiface-64", "directions": [
        {"name": "short", "method": "boundary", "vector": [0.1] * 7, "description": "too short a vector"},
        {"name": "zero", "method": "boundary", "vector": [0.0] * 100, "description": "all zeros"}]}
    (tmp_path / "directions" / "dcgan-digiface-64.json").write_text(json.dumps(bad))
    monkeypatch.setenv("PRIORPAINT_MANIFEST_DIR", str(tmp_path))
    with pytest.raises(ModelError, match="needs a 'vector' of 100 numbers"):
        D.get_direction(default_gen, "short", "dcgan-digiface-64")
    with pytest.raises(ModelError, match="finite and non-zero"):
        D.get_direction(default_gen, "zero", "dcgan-digiface-64")


def test_one_detection_gives_the_attributes_and_the_same_pose_as_the_effect_measure(default_gen):
    from priorpaint.measures.effect import face_geometry
    img = ((default_gen(default_gen.sample_latents(1, seed=2)).clamp(-1, 1) + 1) * 127.5).round().byte()
    img = img[0].permute(1, 2, 0).cpu().numpy()
    found = portrait_attributes(img, pose=True)
    assert found is not None and set(found) == set(PORTRAIT_ATTRIBUTES) | {"yaw", "pitch", "roll"}
    pose = face_geometry(img)
    assert {k: found[k] for k in ("yaw", "pitch", "roll")} == {k: pose[k] for k in ("yaw", "pitch", "roll")}
    assert portrait_attributes(img) == {k: found[k] for k in PORTRAIT_ATTRIBUTES}
