"""Concept painting and segmentation on a tiny random-weight StyleGAN2 (64x64): the
segmentation head on synthesis features, GAN Dissection units at the split, concept
painting, segmentation edits and the editing vectors they save."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from priorpaint.edits.concepts import get_dissection
from priorpaint.edits.parts import get_parts
from priorpaint.edits.seghead import get_head, head_layers

from test_stylegan2_edits import session_env


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    yield from session_env(tmp_path_factory.mktemp("cache"))


def test_segmentation_head_on_synthesis_features(env):
    gen, _, s = env
    parts = get_parts(gen)
    head = get_head(gen)
    assert head.layers == head_layers(gen) == ["b16", "b32", "b64"]
    assert head.names == parts.names
    p = s.projection
    h = p.h.clone().requires_grad_(True)
    logits, img = head.logits(gen, h, p.z, p.split)
    assert logits.shape == (1, len(parts.names), 64, 64) and img.shape == (1, 3, 64, 64)
    logits.logsumexp(1).mean().backward()  # the segmentation edit optimises h through the head
    assert float(h.grad.abs().sum()) > 0


def test_concept_painting(env):
    gen, _, s = env
    d = get_dissection(gen)
    # only the block's feature channels are units: the 3 channels of the skip image are not ranked
    assert d.split == s.projection.split and d.iou.shape[1] == gen.feature_channels("b16")
    assert int(d.order.max()) < gen.feature_channels("b16")
    concept = d.names[0]
    paint = np.zeros((96, 96), np.uint8)
    paint[40:72, 40:72] = 255
    state = s.apply([{"kind": "paint", "concept": concept, "mode": "add", "mask": paint, "k": 4}])
    changed = (state.h - s.projection.h).abs().amax(dim=(0, 1)) > 0
    assert changed.any() and not changed.all()
    units = d.top_units(concept, 4)
    others = torch.ones(state.h.shape[1], dtype=torch.bool)
    others[units] = False
    assert torch.equal(state.h[:, others], s.projection.h[:, others])
    r = s.render(state)
    assert r.metrics["changed_outside_mask"] == 0


def test_segment_edit_and_editing_vector(env):
    gen, _, s = env
    labels, legend = s.segment()
    lx, ly, lw, lh = s.crop.layer_box
    assert labels.shape == (lh, lw, 3) and labels.dtype == np.uint8
    colours = [tuple(c) for c in legend.values()]
    present = {tuple(int(v) for v in px) for px in labels.reshape(-1, 3)}
    centre = tuple(int(v) for v in labels[lh // 2, lw // 2])
    new_colour = next((c for c in colours if c not in present), None) or next(c for c in colours if c != centre)
    edited = labels.copy()
    edited[lh // 3:lh // 2, lw // 3:lw // 2] = new_colour
    state = s.apply([{"kind": "segment", "labels": edited, "steps": 10, "save_vector": "sg2-tiny-vec"}])
    result = state.applied[-1]["result"]
    assert result["steps"] >= 1 and result["changed_pixels"] > 0 and "saved_vector" in result
    assert float((state.h - s.projection.h).abs().sum()) > 0
    again = s.apply([{"kind": "vector", "name": "sg2-tiny-vec", "strength": 1.0}])
    assert torch.allclose(again.h, state.h, atol=1e-6)
    r = s.render(again)
    assert r.metrics["changed_outside_mask"] == 0
