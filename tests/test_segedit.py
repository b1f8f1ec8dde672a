"""Segmentation head, label maps, segmentation edits (EditGAN) and editing vectors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from priorpaint.edits import seghead as SH
from priorpaint.edits import vectors as V
from priorpaint.edits.segedit import attach_save_vector, parse_segment, region_to_model_labels
from priorpaint.errors import InputError


LEGEND = {"sky": (0, 0, 255), "skin": (255, 200, 150), "hair": (90, 50, 0)}


# -- legends and label pictures ---------------------------------------------------------------

def test_colours_not_in_the_legend_are_named():
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[:] = (0, 0, 255)
    rgb[0, :3] = (1, 2, 3)
    rgb[3, 4] = (255, 0, 0)
    with pytest.raises(InputError, match=r"2 colour\(s\) not in the legend: \[1, 2, 3\] \(3 px\), \[255, 0, 0\] \(1 px\)"
                                         r".*sky \[0, 0, 255\]"):
        SH.classes_from_rgb(rgb, LEGEND, list(LEGEND))
    rgb2 = rgb.copy()
    valid = np.ones((4, 5), bool)
    valid[0, :3] = valid[3, 4] = False          # transparent pixels are not checked
    out = SH.classes_from_rgb(rgb2, LEGEND, list(LEGEND), valid=valid)
    assert out[1, 1] == 0 and out[0, 0] == -1


def test_snapping_sets_painted_colours_to_the_nearest_legend_colour():
    legend = {"bg": [0, 0, 255], "face": [255, 0, 0]}
    rgb = np.array([[[200, 30, 60], [255, 0, 0], [9, 9, 9]]], np.uint8)   # antialiased, exact, "keep"
    valid = np.array([[True, True, False]])
    out, changed = SH.snap_to_legend(rgb, legend, valid)
    assert out.tolist() == [[[255, 0, 0], [255, 0, 0], [9, 9, 9]]] and changed == 1
    assert rgb[0, 0].tolist() == [200, 30, 60]                          # the input is not modified


def test_a_snap_segment_spec_accepts_antialiased_paint_and_says_so(session):
    labels, legend = session.segment()
    painted = labels.copy()
    face = legend[list(legend)[1]]
    painted[10:14, 10:14] = np.clip(np.array(face) + 7, 0, 255)        # between legend colours
    with pytest.raises(InputError, match="not in the legend"):
        session.apply([{"kind": "segment", "labels": painted, "steps": 1}])
    state = session.apply([{"kind": "segment", "labels": painted, "steps": 1, "snap": True}])
    assert any("snapped to the nearest legend colour" in n for n in state.notes)
    assert parse_segment("x.png#snap=1")["snap"] is True
    with pytest.raises(InputError, match="snap must be 0 or 1"):
        parse_segment("x.png#snap=yes")


def test_legend_parsing_refuses_bad_legends(tmp_path):
    p = tmp_path / "l.json"
    p.write_text(json.dumps({"legend": {"a": [1, 2, 3]}}))
    assert SH.parse_legend(p) == {"a": (1, 2, 3)}
    with pytest.raises(InputError, match="same colour"):
        SH.parse_legend({"a": [1, 2, 3], "b": [1, 2, 3]})
    with pytest.raises(InputError, match=r"\[r, g, b\]"):
        SH.parse_legend({"a": [1, 2, 300]})
    with pytest.raises(InputError, match="does not exist"):
        SH.parse_legend(tmp_path / "missing.json")
    with pytest.raises(InputError, match="not classes of this model"):
        SH.classes_from_rgb(np.zeros((2, 2, 3), np.uint8), {"beard": (0, 0, 0)}, ["hair"])


def test_head_scores_and_training_on_a_tiny_generator(tiny_gen, tmp_path, monkeypatch):
    monkeypatch.setenv("PRIORPAINT_CACHE", str(tmp_path))
    z = tiny_gen.sample_latents(8, seed=0)
    # a labelling the head's input determines: which of two b8 units is the stronger
    from priorpaint.edits.parts import normalised_features
    with torch.no_grad():
        x = normalised_features(tiny_gen.features(z, ["b8"]), ["b8"], 16)
    labels = (x[:, 0] > x[:, 1]).long()
    head = SH.train_head(tiny_gen, z, labels, ["dark", "red"], [(0, 0, 0), (255, 0, 0)],
                         SH.HeadConfig(train_images=8, steps=150, size=16))
    pred = head.predict_z(tiny_gen, z, size=16)
    s = SH.confusion_scores(pred, labels, 2)
    assert s["pixel_accuracy"] > 0.8
    assert SH.confusion_scores(labels, labels, 2)["miou"] == 1.0
    # differentiable in h: what the segmentation edit needs
    h = tiny_gen.forward_to(z[:1], "b8").clone().requires_grad_(True)
    logits, _ = head.logits(tiny_gen, h, z[:1], "b8")
    logits[:, 1].mean().backward()
    assert float(h.grad.abs().sum()) > 0
    # save / load round trip
    SH.save_head(head, tmp_path / "h.safetensors")
    again = SH.load_head(tmp_path / "h.safetensors")
    assert again.names == head.names and again.colours == head.colours
    assert torch.equal(again.predict_z(tiny_gen, z, size=16), pred)
    with pytest.raises(InputError, match="at most 16"):
        SH.train_head(tiny_gen, tiny_gen.sample_latents(17), torch.zeros(17, 16, 16, dtype=torch.long),
                      ["a"], [(0, 0, 0)])


def test_nearest_downsampling_inverts_the_label_map_upsampling():
    rng = np.random.default_rng(0)
    small = rng.integers(0, 5, (64, 64))
    for side in (64, 100, 216, 333):
        big = np.asarray(Image.fromarray(small.astype(np.uint8)).resize((side, side), Image.NEAREST)).astype(np.int64)
        assert np.array_equal(region_to_model_labels(big, 64), small)


def test_segment_spec_forms_and_save_vector_flag():
    assert parse_segment("L.png#save=big-mouth,steps=5") == {"labels": "L.png", "save_vector": "big-mouth", "steps": 5}
    assert parse_segment("L.png#legend=x.json#save=a") == {"labels": "L.png", "legend": "x.json", "save_vector": "a"}
    with pytest.raises(InputError, match="unknown segment option"):
        parse_segment("L.png#colour=1")
    assert attach_save_vector(["direction:smile=1", "segment:L.png"], "v1") == ["direction:smile=1", "segment:L.png#save=v1"]
    assert attach_save_vector(["segment:L.png#steps=3"], "v1") == ["segment:L.png#steps=3,save=v1"]
    assert json.loads(attach_save_vector(['{"kind": "segment", "labels": "L.png"}'], "v1")[0])["save_vector"] == "v1"
    with pytest.raises(InputError, match="needs a segment edit"):
        attach_save_vector(["direction:smile=1"], "v1")
    with pytest.raises(InputError, match="vector name"):
        attach_save_vector(["segment:L.png"], "../evil")


# -- the embedded model ---------------------------------------------------------------------------

@pytest.mark.slow
def test_segment_gives_a_layer_box_rgb_map_in_legend_colours(session):
    labels, legend = session.segment()
    lx, ly, lw, lh = session.crop.layer_box
    assert labels.shape == (lh, lw, 3) and labels.dtype == np.uint8
    colours = {tuple(c) for c in legend.values()}
    assert {tuple(int(v) for v in px) for px in labels.reshape(-1, 3)} <= colours
    q = SH.evaluate_head(session.gen, SH.get_head(session.gen), samples=16)
    assert q["miou"] >= 0.6


@pytest.mark.slow
def test_unchanged_label_map_is_a_bit_identical_no_op(session, tmp_path):
    labels, _ = session.segment()
    p = tmp_path / "same.png"
    Image.fromarray(labels).save(p)
    state = session.apply([f"segment:{p}"])
    assert torch.equal(state.h, session.projection.h)
    r = session.render(state)
    assert np.array_equal(r.photo.rgb, session.photo.rgb)


@pytest.mark.slow
def test_bad_label_maps_are_refused_or_resized(session, tmp_path):
    labels, legend = session.segment()
    bad = labels.copy()
    bad[:5, :5] = (1, 2, 3)
    with pytest.raises(InputError, match=r"colour\(s\) not in the legend: \[1, 2, 3\] \(25 px\)"):
        session.apply([{"kind": "segment", "labels": bad}])
    before = labels.copy()
    # another size: resized nearest-neighbour to the layer box, with a note; same content -> no change
    half = np.asarray(Image.fromarray(labels).resize((labels.shape[1] // 2, labels.shape[0] // 2), Image.NEAREST))
    state = session.apply([{"kind": "segment", "labels": half}])
    assert any("nearest-neighbour" in n for n in state.notes)
    assert np.array_equal(labels, before)                  # the user's data is not modified
    # RGBA: transparent pixels keep their labels, and their colour is not checked
    rgba = np.dstack([bad, np.full(bad.shape[:2], 255, np.uint8)])
    rgba[:5, :5, 3] = 0
    state = session.apply([{"kind": "segment", "labels": rgba}])
    assert torch.equal(state.h, session.projection.h)


@pytest.mark.slow
def test_segment_edit_saves_a_vector_that_applies_to_other_images(session, shared_cache, tmp_path):
    labels, legend = session.segment()
    lx, ly, lw, lh = session.crop.layer_box
    edited = labels.copy()
    c = np.array(legend["eyes-nose-mouth"], np.uint8)
    edited[lh // 3:lh * 2 // 3, lw // 3:lw * 2 // 3] = c          # grow the central face
    p = tmp_path / "edited.png"
    Image.fromarray(edited).save(p)
    state = session.apply([f"segment:{p}#save=grow-face"])
    res = state.applied[-1]["result"]
    assert res["changed_pixels"] > 0 and res["achieved_fraction"] >= 0.7, res
    assert res["seconds"] > 0  # reported; how long it takes is measured by `priorpaint bench`
    assert (shared_cache / "vectors" / "dcgan-digiface-64" / "grow-face.safetensors").exists()
    meta = json.loads((shared_cache / "vectors" / "dcgan-digiface-64" / "grow-face.json").read_text())
    assert meta["split"] == "b8" and meta["achieved_fraction"] == res["achieved_fraction"]
    r = session.render(state)
    assert r.metrics["changed_outside_mask"] == 0
    assert [v["name"] for v in V.list_vectors("dcgan-digiface-64")] == ["grow-face"]
    # the vector reproduces the edit on the same image and applies to others with a strength
    again = session.apply(["vector:grow-face=1"])
    assert torch.allclose(again.h, state.h, atol=1e-6)
    zero = session.apply(["vector:grow-face=0"])
    assert np.array_equal(session.render(zero).photo.rgb, session.photo.rgb)
    from priorpaint.projection.project import ProjectionConfig
    from priorpaint.session import EditSession
    from priorpaint.compositing.blend import to_uint8
    with torch.no_grad():
        other = to_uint8(session.gen(session.gen.sample_latents(1, seed=9)))
    s2 = EditSession.open(np.asarray(Image.fromarray(other).resize((128, 128))), box=(8, 8, 112, 112), gen=session.gen)
    s2.project(ProjectionConfig(steps=10, candidates=16, starts=2, perceptual=False))
    half = s2.apply(["vector:grow-face=0.5"])
    assert torch.allclose(half.h - s2.projection.h, 0.5 * (state.h - session.projection.h), atol=1e-6)
    assert s2.render(half).metrics["changed_outside_mask"] == 0
    with pytest.raises(InputError, match=r"unknown vector 'nope'.*saved vectors: grow-face"):
        s2.apply(["vector:nope=1"])
    with pytest.raises(InputError, match="strength must be a number"):
        s2.apply(["vector:grow-face=lots"])


@pytest.mark.slow
def test_segment_cli_writes_an_rgb_png_and_its_legend(shared_cache, astronaut_path, tmp_path, capsys):
    from priorpaint.cli import main
    out = tmp_path / "labels.png"
    assert main(["segment", str(astronaut_path), "--box", "140,20,180,180", "--steps", "4", "-o", str(out),
                 "--legend", str(tmp_path / "legend.json")]) == 0
    im = Image.open(out)
    assert im.mode == "RGB"
    legend = json.loads((tmp_path / "legend.json").read_text())
    assert "hair" in legend and all(len(c) == 3 for c in legend.values())
    assert main(["edit", str(astronaut_path), "--box", "140,20,180,180", "--steps", "4", "-o", str(tmp_path / "o.png"),
                 "--edit", "vector:never-saved=1"]) == 2
    assert "unknown vector 'never-saved'" in capsys.readouterr().err


@pytest.mark.slow
def test_head_from_painted_labels_via_the_cli(shared_cache, tmp_path, capsys):
    from priorpaint.cli import main
    folder = tmp_path / "paint"
    assert main(["concepts", "--samples", str(folder), "--n", "2"]) == 0
    legend = json.loads((folder / "legend.json").read_text())
    legend["glasses"] = [0, 255, 0]
    (folder / "legend.json").write_text(json.dumps(legend))
    lab = np.array(Image.open(folder / "labels_00.png"))
    lab[100:130, 60:200] = (0, 255, 0)
    Image.fromarray(lab).save(folder / "labels_00.png")
    bad = lab.copy()
    bad[0, 0] = (7, 7, 7)
    Image.fromarray(bad).save(folder / "labels_01.png")
    assert main(["concepts", "--train-head", str(folder)]) == 2
    assert "labels_01.png has 1 colour(s) not in the legend: [7, 7, 7]" in capsys.readouterr().err
    (folder / "labels_01.png").unlink()
    capsys.readouterr()
    assert main(["concepts", "--train-head", str(folder)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 1 and report["classes"][-1] == "glasses"
    assert report["training_pixel_accuracy"] > 0.8
    assert main(["concepts", "--json"]) == 0
    assert "glasses" in [c["name"] for c in json.loads(capsys.readouterr().out)["concepts"]]
    assert main(["concepts", "--reset-head"]) == 0
    capsys.readouterr()
    assert main(["concepts", "--json"]) == 0
    assert "glasses" not in [c["name"] for c in json.loads(capsys.readouterr().out)["concepts"]]
