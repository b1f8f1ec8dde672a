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


@pytest.fixture(scope="session")
def default_gen():
    from priorpaint.models.registry import load_generator
    return load_generator()
