"""Edits on a tiny random-weight StyleGAN2 (64x64): SeFa on the modulation weights, GANSpace
(features and w), supervised directions, G′ on the fine synthesis layers, part discovery on
synthesis features, colour scribbles and interpolation.  Segmentation head, concept
painting, segmentation edits and editing vectors: ``test_stylegan2_concepts.py``."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from priorpaint.adaptation.gprime import AdaptConfig, fit_gprime
from priorpaint.compositing.blend import to_uint8
from priorpaint.edits import directions as D
from priorpaint.edits.parts import get_parts
from priorpaint.models.stylegan2 import StyleGAN2Generator, infer_config
from priorpaint.models.stylegan2_layers import split_output
from priorpaint.projection.project import ProjectionConfig
from priorpaint.session import EditSession

from test_stylegan2 import STYLE_DIM, tiny_generator

BOX = (16, 16, 64, 64)


pytestmark = pytest.mark.usefixtures("one_thread")


def session_env(cache_dir):
    """A tiny StyleGAN2, a photo holding one of its images, a projected session; the derived
    data (directions, parts, heads) cached in ``cache_dir``.  A generator: yields
    ``(gen, state_dict, session)`` and restores ``PRIORPAINT_CACHE`` afterwards."""
    old = os.environ.get("PRIORPAINT_CACHE")
    os.environ["PRIORPAINT_CACHE"] = str(cache_dir)
    D.clear_memory_cache()
    gen, sd = tiny_generator()
    gen.model_id = "stylegan2-tiny-test"
    with torch.no_grad():
        img = gen(gen.sample_latents(1, seed=21))[0]
    photo = np.full((96, 96, 3), 128, np.uint8)
    photo[16:80, 16:80] = to_uint8(img)
    s = EditSession.open(photo, box=BOX, gen=gen)
    s.project(ProjectionConfig(steps=8, candidates=8, starts=2, perceptual=False))
    yield gen, sd, s
    D.clear_memory_cache()
    if old is None:
        os.environ.pop("PRIORPAINT_CACHE", None)
    else:
        os.environ["PRIORPAINT_CACHE"] = old


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    yield from session_env(tmp_path_factory.mktemp("cache"))


# -- latent directions ----------------------------------------------------------------------
def test_sefa_on_the_modulation_weights(env):
    gen, sd, s = env
    res = D.sefa(gen)
    assert res["vectors"].shape == (gen.n_latent * STYLE_DIM,) * 2
    # reference: eigen-decomposition of the stacked style affines of the convs, from the state dict
    keys = ["conv1.conv.modulation.weight"] + sorted(
        (k for k in sd if k.startswith("convs.") and k.endswith(".conv.modulation.weight")),
        key=lambda k: int(k.split(".")[1]))
    b = torch.cat([sd[k] for k in keys]).double() / math.sqrt(STYLE_DIM)
    evals, evecs = torch.linalg.eigh(b.t() @ b)
    assert torch.allclose(res["eigenvalues"][:5].double(), evals.flip(0)[:5], rtol=1e-4)
    v = res["vectors"][0].reshape(gen.n_latent, STYLE_DIM)
    # a w direction written into every slot a conv reads (the last slot feeds only the last ToRGB)
    assert torch.allclose(v[:-1], v[0].expand_as(v[:-1]), atol=1e-5) and float(v[-1].abs().max()) < 1e-5
    top = evecs[:, -1].float()
    assert abs(float(top @ v[0])) * math.sqrt(gen.n_latent - 1) == pytest.approx(1.0, abs=1e-4)
    # as an edit: moves z (w+) and changes the preview
    before = s.generate()
    state = s.apply(["direction:sefa0=2"])
    assert not torch.equal(state.z, s.projection.z)
    assert (s.generate(state) - before).abs().mean() > 1e-3
    # a generator whose input is w: SeFa's A is the plain stack
    wgen = StyleGAN2Generator.from_config(dict(infer_config(sd), latent_space="w"))
    wgen.load_state_dict(sd)
    assert torch.allclose(wgen.sefa_weight().double(), b, atol=1e-6)


def test_ganspace_in_features_and_in_w(env):
    gen, _, s = env
    d_h = D.raw_direction(gen, "ganspace", 0, samples=256)
    assert d_h.space == "h" and d_h.layer == gen.default_split and d_h.scale > 0
    d_w = D.raw_direction(gen, "ganspace_z", 0, samples=256)
    v = d_w.vector.reshape(gen.n_latent, STYLE_DIM)
    # regressed on w+ latents that are one w broadcast: the direction is a w direction in every slot
    assert torch.allclose(v, v[0].expand_as(v), atol=1e-4)
    state = s.initial_state()
    for d in (d_h, d_w):
        new = D.apply_direction(gen, state, s.projection.split, d, 2.0)
        assert (s.generate(new) - s.generate(state)).abs().mean() > 1e-3


def test_supervised_direction(env):
    gen, _, _ = env
    n = D.attribute_direction(gen, "brightness", samples=200)
    assert n.shape == gen.latent_shape and float(n.norm()) == pytest.approx(1.0, abs=1e-4)
    z = gen.sample_latents(8, seed=99)
    d = D.Direction(name="bright", description="", method="supervised", space="z", vector=n[None])
    up, down = (D.images_along(gen, z, d, [s]) for s in (2.0, -2.0))
    bright = D.ATTRIBUTES["brightness"][0]
    assert float((bright(up) - bright(down)).mean()) > 0


# -- G′ on the fine synthesis layers ------------------------------------------------------------
def test_gprime_on_the_fine_layers(env):
    gen, _, s = env
    p = s.projection
    weight = torch.ones(1, 1, 64, 64)
    gp = fit_gprime(gen, p.split, p.h, p.z, s.target, weight,
                    AdaptConfig(steps=12, perceptual=False, early_stop=False))
    assert gp.layers == ["b32", "b64"]
    assert gp.losses[-1] < gp.losses[0]
    assert {k: tuple(v.shape) for k, v in gp.deltas().items()} == {"b32": (1, 19, 32, 32), "b64": (1, 11, 64, 64)}
    out = gp(p.h, p.z)
    assert out.shape == (1, 3, 64, 64) and not torch.allclose(out, s.generate())
    # PTI-style weight tuning runs on a private copy: the shared generator is untouched
    before = {k: v.clone() for k, v in gen.state_dict().items()}
    gw = fit_gprime(gen, p.split, p.h, p.z, s.target, weight,
                    AdaptConfig(method="weights", steps=3, perceptual=False, early_stop=False))
    assert gw.steps == 3 and all(torch.equal(before[k], v) for k, v in gen.state_dict().items())
    # through the session: composited, nothing outside the selection changes
    r = s.render(s.apply(["direction:sefa1=1.5"]), adapt=True,
                 adapt_options={"steps": 5, "perceptual": False, "early_stop": False})
    assert r.metrics["psnr_adapted"] is not None and r.metrics["changed_outside_mask"] == 0


# -- part discovery on synthesis features -----------------------------------------------------
def test_parts_on_synthesis_features(env):
    gen, _, s = env
    parts = get_parts(gen)
    assert parts.recipe.layers == ["b32", "b64"] and parts.centroids.shape[0] == parts.recipe.k
    labels, _ = parts.labels(gen, gen.sample_latents(2, seed=5))
    assert labels.shape == (2, 32, 32) and int(labels.max()) < len(parts.names)


def test_skip_channels_are_part_of_the_split_feature(env):
    gen, _, s = env
    feat, skip = split_output(s.projection.h)
    assert feat.shape[1] == gen.feature_channels(s.projection.split) and skip.shape[1] == 3
    # G_F reads the skip image: the edit space includes the coarse colours rendered so far
    bumped = torch.cat([feat, skip + 0.5], 1)
    assert (gen.forward_from(s.projection.split, bumped, z=s.projection.z) - s.generate()).mean() > 0.1


# -- scribbles, interpolation, segmentation edits and editing vectors ----------------------------
def test_scribble(env):
    gen, _, s = env
    strokes = np.zeros((96, 96, 4), np.uint8)
    strokes[30:40, 20:76] = (255, 0, 0, 255)
    before = s.generate()
    state = s.apply([{"kind": "scribble", "strokes": strokes, "steps": 8}])
    after = s.generate(state)
    x0, y0, side = s.crop.square  # the stroke at model resolution (inner pixels)
    rows = [int(math.ceil((v - y0) * 64 / side)) for v in (30, 40)]
    cols = [int(math.ceil((v - x0) * 64 / side)) for v in (20, 76)]
    red = torch.zeros(1, 1, 64, 64, dtype=torch.bool)
    red[..., rows[0]:rows[1] - 1, cols[0]:cols[1] - 1] = True
    assert int(red.sum()) > 100
    colour = torch.tensor([1.0, -1.0, -1.0])[None, :, None, None]  # red in [-1, 1]

    def err(img):
        return float(((img - colour) ** 2).sum(1)[red[:, 0]].mean())

    assert err(after) < err(before)


def test_interpolate(env):
    gen, _, s = env
    with torch.no_grad():
        other = to_uint8(gen(gen.sample_latents(1, seed=77))[0])
    state = s.apply([{"kind": "interpolate", "other": other, "t": 0.5, "steps": 4}])
    assert state.z.shape == s.projection.z.shape and not torch.equal(state.h, s.projection.h)
    assert (s.generate(state) - s.generate()).abs().mean() > 1e-3
