"""A saved vector carries its effect onto another photo (``priorpaint.measures.vectors``): the measure
fails on nothing carried, on the opposite change and on a change elsewhere, and passes on the same
change; end to end, a saved vector that carries an edit passes and one that carries nothing fails."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from priorpaint.measures.vectors import MIN_CARRIED, effect_map, vector_carried

from conftest import ASTRONAUT_BOX, FAST_PROJECTION, skimage_data

SIDE = 256


def square(path, box) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB").crop(box).resize((SIDE, SIDE), Image.LANCZOS)).copy()


def shaded(img: np.ndarray, rows: slice, amount: float) -> np.ndarray:
    out = img.astype(np.float32)
    out[rows] *= amount
    return np.clip(out, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photos():
    a = square(skimage_data("astronaut.png"), (140, 20, 320, 200))
    b = square(skimage_data("coffee.png"), (100, 50, 350, 300))
    return a, b


def test_the_same_change_passes_nothing_the_opposite_or_elsewhere_fail(photos):
    a, b = photos
    top = slice(20, 110)
    saved = effect_map(shaded(a, top, 0.6), a)
    good = vector_carried(saved, effect_map(shaded(b, top, 0.6), b))
    assert good["failed"] == [] and good["carried"] > MIN_CARRIED, good
    nothing = vector_carried(saved, effect_map(b.copy(), b))
    assert nothing["failed"] == ["carried", "agreement"] and nothing["carried"] == 0.0, nothing
    opposite = vector_carried(saved, effect_map(shaded(b, top, 1.4), b))
    assert "carried" in opposite["failed"] and opposite["carried"] < 0, opposite
    elsewhere = vector_carried(saved, effect_map(shaded(b, slice(150, 240), 0.6), b))
    assert "agreement" in elsewhere["failed"], elsewhere


def test_an_invisible_saved_effect_is_not_judged(photos):
    a, b = photos
    out = vector_carried(effect_map(a.copy(), a), effect_map(shaded(b, slice(0, 50), 0.5), b))
    assert out["carried"] is None and out["failed"] == []


def test_a_saved_vector_carries_its_edit_and_an_empty_one_does_not(default_gen, tmp_cache, astronaut_path):
    """Bench-style (the render's change against the source's) and in the render's report (against the
    effect kept in the vector's metadata): a vector that carries nothing fails both."""
    from priorpaint.edits.vectors import save_vector, saved_effect
    from priorpaint.projection.project import ProjectionConfig
    from priorpaint.session import EditSession

    def session(path, box):
        s = EditSession.open(path, box=box, gen=default_gen)
        s.project(ProjectionConfig(steps=10, **FAST_PROJECTION))
        return s

    src = session(astronaut_path, ASTRONAUT_BOX)
    p = src.projection
    edited = src.apply(["direction:exposure=-2"])
    saved = effect_map(_sq(src, src.render(edited)), _sq(src, None))
    effect = saved_effect(default_gen, p.split, edited.z, p.h, edited.h)
    model = default_gen.model_id
    save_vector(model, "darker", edited.h - p.h, {"split": p.split, "effect": effect})
    save_vector(model, "nothing", torch.zeros_like(p.h), {"split": p.split, "effect": effect})
    from priorpaint.bench.photo import matplotlib_sample_path
    other = session(matplotlib_sample_path("grace_hopper.jpg"), (165, 110, 220, 230))   # another face
    for name, works in (("darker", True), ("nothing", False)):
        ro = other.render(other.apply([f"vector:{name}=1"]))
        m = vector_carried(saved, effect_map(_sq(other, ro), _sq(other, None)))
        assert (m["failed"] == []) is works, (name, m)
        kind, verdict = ro.metrics["structure"]["kind"], ro.metrics["verdict"]
        assert all("saved_effect" not in e for e in ro.metrics["edits"])   # the reader gets the spec, not the grid
        assert kind["kind"] == "vector" and (kind["failed"] == []) is works, (name, kind)
        if not works:
            assert verdict["carried"] is False and "carried" in verdict["message"], verdict
    from priorpaint.edits.vectors import list_vectors, load_vector
    assert "effect" in load_vector(model, "darker")[1] and all("effect" not in v for v in list_vectors(model))
    # at strength −1 the darkening vector is judged against the opposite change, and carries it
    ro = other.render(other.apply(["vector:darker=-1"]))
    assert ro.metrics["structure"]["kind"]["failed"] == [], ro.metrics["structure"]["kind"]


def _sq(s, render) -> np.ndarray:
    from priorpaint.compositing.crop import cut_square
    return cut_square((render.photo if render is not None else s.photo).rgb, s.crop.square, pad="edge")
