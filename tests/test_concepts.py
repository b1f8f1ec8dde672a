"""Concept painting (GAN Dissection units at the split): the math on a tiny generator, the
edit on the embedded model through a session, its bad inputs, and ``priorpaint concepts``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from priorpaint.compositing.regions import split_weights
from priorpaint.edits import concepts as C
from priorpaint.models.footprint import footprint_radius
from priorpaint.edits import parts as P
from priorpaint.errors import InputError


# -- math on a tiny generator --------------------------------------------------------------

def test_split_weights_strict_and_fallbacks():
    m = torch.zeros(64, 64)
    m[16:48, 16:48] = 1
    w, level = split_weights(m, 8, erode=7)
    assert level == 3
    assert torch.equal(torch.nonzero(w > 0).unique(dim=0)[:, 0].unique(), torch.tensor([3, 4]))
    assert float(w.sum()) == 4.0                              # the 2x2 cells whose footprint fits
    small = torch.zeros(64, 64)
    small[20:34, 20:34] = 1                                  # 14 px: eroded to nothing by 7 px
    w, level = split_weights(small, 8, erode=7)
    assert level == 0 and float(w.max()) > 0
    w, level = split_weights(torch.zeros(64, 64), 8, erode=7)
    assert level == 0 and float(w.max()) == 0


def test_footprint_radius_of_a_transposed_convolution(tiny_gen):
    # b8 -> rgb is one 4x4 stride-2 transposed convolution: a cell (2 px) reaches 1 px further.
    assert footprint_radius(tiny_gen, "b8") == 1


def test_strict_paint_leaves_the_output_outside_the_region_exactly(tiny_gen):
    z = tiny_gen.sample_latents(1, seed=3)
    with torch.no_grad():
        h = tiny_gen.forward_to(z, "b8")
        base = tiny_gen.forward_from("b8", h)
    m = torch.zeros(16, 16)
    m[2:12, 4:14] = 1
    w, level = split_weights(m, h.shape[-1], footprint_radius(tiny_gen, "b8"))
    assert level == 3
    units = torch.tensor([0, 2])
    he = C.paint_h(h, units, torch.full((2,), 4.0), "add", w)
    with torch.no_grad():
        out = tiny_gen.forward_from("b8", he)
    changed = (out - base).abs().amax(1)[0] > 0
    assert changed.any() and not (changed & (m == 0)).any()
    others = torch.ones(h.shape[1], dtype=torch.bool)
    others[units] = False
    assert torch.equal(he[:, others], h[:, others])
    removed = C.paint_h(h, units, torch.zeros(2), "remove", w)
    assert float(removed[:, units][..., w > 0].abs().max()) == 0.0


def test_dissection_ranks_every_unit_for_every_class(tiny_gen, tmp_path, monkeypatch):
    monkeypatch.setenv("PRIORPAINT_CACHE", str(tmp_path))
    from priorpaint.edits.seghead import get_head
    head = get_head(tiny_gen)
    d = C.dissect(tiny_gen, head, C.DissectConfig(samples=16, size=16))
    U = tiny_gen.forward_to(tiny_gen.sample_latents(1), "b8").shape[1]
    assert d.iou.shape == (len(head.names), U) and d.order.shape == (len(head.names), U)
    for i in range(len(head.names)):
        ranked = d.iou[i, d.order[i]]
        assert torch.all(ranked[:-1] >= ranked[1:])
    assert torch.all(d.high >= d.threshold - 1e-6)
    cached = C.get_dissection(tiny_gen, C.DissectConfig(samples=16, size=16))
    assert torch.equal(cached.order, d.order)
    assert list((tmp_path / "concepts" / "tiny-dcgan").glob("units2-*.safetensors"))


# -- the edit on the embedded model -----------------------------------------------------------

def _paint_mask(session, box_like: bool = True, size=None):
    lx, ly, lw, lh = session.crop.layer_box
    if size is not None:
        m = np.zeros(size[::-1], np.uint8)
        m[size[1] // 4:size[1] * 3 // 4, size[0] // 4:size[0] * 3 // 4] = 255
        return m
    if box_like:
        m = np.zeros((lh, lw), np.uint8)
        m[lh // 4:lh * 3 // 4, lw // 4:lw * 3 // 4] = 255
        return m
    W, H = session.photo.size
    m = np.zeros((H, W), np.uint8)
    m[ly + lh // 4:ly + lh * 3 // 4, lx + lw // 4:lx + lw * 3 // 4] = 255
    return m


@pytest.mark.slow
def test_paint_changes_only_the_concept_units_inside_the_region(session):
    d = C.get_dissection(session.gen)
    state = session.apply([{"kind": "paint", "concept": "hair", "mode": "add", "mask": _paint_mask(session)}])
    h0 = session.projection.h
    moved_units = (state.h - h0).abs().amax(dim=(0, 2, 3)) > 0
    assert set(torch.nonzero(moved_units).flatten().tolist()) <= set(d.top_units("hair", C.DEFAULT_K).tolist())
    moved_cells = (state.h - h0).abs().amax(dim=(0, 1)) > 0
    assert moved_cells.any() and not moved_cells.all()
    # the edit mask is the painted region (square-region coordinates)
    assert state.edit_mask is not None and state.edit_mask.shape == session.crop.region_mask.shape
    r = session.render(state)
    assert r.metrics["changed_outside_mask"] == 0
    assert not np.array_equal(r.photo.rgb, session.photo.rgb)
    # the same region given image-sized paints the same thing
    full = session.apply([f"paint:hair=add@{_save(_paint_mask(session, box_like=False))}"])
    assert torch.equal(full.h, state.h)


def _save(arr, path=[0]):
    import tempfile
    from PIL import Image
    path[0] += 1
    p = f"{tempfile.mkdtemp()}/paint{path[0]}.png"
    Image.fromarray(arr).save(p)
    return p


@pytest.mark.slow
def test_empty_paint_mask_is_a_bit_identical_no_op(session):
    before = session.photo.rgb.copy()
    state = session.apply([{"kind": "paint", "concept": "hair", "mode": "remove",
                            "mask": np.zeros((10, 10), np.uint8)}])
    assert torch.equal(state.h, session.projection.h)
    assert any("empty" in n for n in state.notes)
    r = session.render(state)
    assert np.array_equal(r.photo.rgb, session.photo.rgb) and np.array_equal(session.photo.rgb, before)
    assert r.metrics["changed_outside_mask"] == 0


@pytest.mark.slow
def test_paint_mask_of_another_size_is_resized_with_a_note(session):
    state = session.apply([{"kind": "paint", "concept": "forehead", "mode": "remove",
                            "mask": _paint_mask(session, size=(50, 40))}])
    assert any("resized" in n and "50x40" in n for n in state.notes)
    assert not torch.equal(state.h, session.projection.h)


@pytest.mark.slow
def test_unknown_concept_and_bad_mode_are_refused_with_the_known_names(session):
    with pytest.raises(InputError, match=r"unknown concept 'beard'.*hair.*eyes-nose-mouth"):
        session.apply([{"kind": "paint", "concept": "beard", "mode": "add", "mask": _paint_mask(session)}])
    with pytest.raises(InputError, match="add or remove"):
        session.apply([{"kind": "paint", "concept": "hair", "mode": "grow", "mask": _paint_mask(session)}])
    with pytest.raises(InputError, match="paint:CONCEPT=add"):
        session.apply(["paint:hair"])


@pytest.mark.slow
def test_list_concepts_and_the_cli(session, capsys):
    info = C.list_concepts(gen=session.gen)
    names = [c["name"] for c in info["concepts"]]
    shipped = P.read_parts_file("dcgan-digiface-64")
    assert names == list(shipped["legend"])
    assert all(len(c["top_units"]) == 5 for c in info["concepts"])
    assert isinstance(info["vectors"], list)
    from priorpaint.cli import main
    assert main(["concepts", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in out["concepts"]] == names
    assert main(["concepts"]) == 0
    assert "hair" in capsys.readouterr().out
