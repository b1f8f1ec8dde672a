"""Shared fixtures: real photos from scikit-image, tiny generators, CI-aware skips."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(condition: bool, reason: str) -> None:
    """Skip when ``condition`` is false — except under CI=true, where it is a failure.

    End-to-end tests (real GIMP, browser, gradio_client, hub client) must run in CI;
    on a developer laptop without root or a browser they may skip with the reason.
    """
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required under CI=true: {reason}")
    pytest.skip(reason)


def default_manifest_entry(**changes) -> dict:
    """The default model's packaged manifest entry with ``changes``, its file sources made
    absolute: the copy names the shipped weights from whatever folder it is written to."""
    import json
    from priorpaint.models import manifest as mf
    folder = mf.packaged_dir()
    raw = json.loads((folder / "dcgan-digiface-64.json").read_text())
    raw["sources"] = [dict(s, path=str(folder / s["path"])) if s.get("type") == "file" and not Path(s["path"]).is_absolute()
                      else s for s in raw["sources"]]
    raw.update(changes)
    return raw


def skimage_data(name: str) -> Path:
    import skimage
    path = Path(skimage.__file__).parent / "data" / name
    assert path.is_file(), f"scikit-image ships no {name}"
    return path


@pytest.fixture(scope="session")
def astronaut_path() -> Path:
    return skimage_data("astronaut.png")


@pytest.fixture
def tiny_gen():
    """A tiny random-weight DCGAN (16×16) for fast math tests."""
    from priorpaint.models.dcgan import DCGANGenerator
    torch.manual_seed(0)
    gen = DCGANGenerator(nz=8, ngf=4, resolution=16, split="b8")
    for p in gen.parameters():
        p.requires_grad_(False)
    gen.model_id = "tiny-dcgan"
    return gen.eval()


@pytest.fixture
def tiny_stylegan2():
    """A tiny random-weight StyleGAN2 (32×32, 8 channels a layer) for fast math tests."""
    from priorpaint.models.stylegan2 import StyleGAN2Generator
    torch.manual_seed(0)
    gen = StyleGAN2Generator(size=32, style_dim=16, n_mlp=1, channel_multiplier=1,
                             channels={k: 8 for k in (4, 8, 16, 32)})
    for p in gen.parameters():
        p.requires_grad_(False)
    gen.model_id = "tiny-stylegan2"
    return gen.eval()


@pytest.fixture(scope="session")
def default_gen():
    from priorpaint.models.registry import load_generator
    return load_generator()


def two_handle_loss(gen, lat, split: str = "b8"):
    """The motion supervision of a two-row drag latent ``lat`` on a 16 px tiny generator: handle 0
    (row 0) pulled up, handle 1 (row 1) at rest, so only row 0's tensors may get a gradient."""
    import numpy as np
    from priorpaint.edits import drag_optimise as O
    z_e, h_e = lat.latent()
    layer = O.feature_layer(gen, split)
    _, cap = gen.run(h_e, start=split, capture=[layer], z=z_e)
    feat = torch.nn.functional.interpolate(cap[layer], size=(16, 16), mode="bilinear", align_corners=False)
    p = torch.tensor([[4.0, 4.0], [11.0, 11.0]])
    t = torch.tensor([[4.0, 1.0], [11.0, 14.0]])
    return O.motion_loss(feat, p, t, np.array([0, 1]), O._disk(2.0, "cpu"), active=[True, False])


#: projection settings for tests that need a projection, not its quality
FAST_PROJECTION = dict(candidates=16, starts=2, perceptual=False)
ASTRONAUT_BOX = (140, 20, 180, 180)


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """An empty derived-data cache (directions, parts, heads, vectors) for one test."""
    from priorpaint.edits import directions
    monkeypatch.setenv("PRIORPAINT_CACHE", str(tmp_path / "cache"))
    directions.clear_memory_cache()
    yield tmp_path / "cache"
    directions.clear_memory_cache()


@pytest.fixture
def tiny_session(tiny_gen, astronaut_path):
    """The astronaut's face projected (briefly) into the tiny generator."""
    from priorpaint.projection.project import ProjectionConfig
    from priorpaint.session import EditSession
    s = EditSession.open(astronaut_path, box=ASTRONAUT_BOX, gen=tiny_gen)
    s.project(ProjectionConfig(steps=8, **FAST_PROJECTION))
    return s


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module: small networks stall when threads oversubscribe a shared machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One derived-data cache per module, shared by the modules that use it, so the embedded
    model's segmentation head is trained once per test run."""
    path = tmp_path_factory.getbasetemp() / "concepts-cache"
    mp = pytest.MonkeyPatch()
    mp.setenv("PRIORPAINT_CACHE", str(path))
    yield path
    mp.undo()


@pytest.fixture(scope="module")
def session(shared_cache, astronaut_path):
    """The astronaut's face projected into the embedded model, with the shared cache."""
    from priorpaint.projection.project import ProjectionConfig
    from priorpaint.session import EditSession
    s = EditSession.open(astronaut_path, box=ASTRONAUT_BOX)
    s.project(ProjectionConfig(steps=20, candidates=32, starts=2, perceptual=False))
    return s
