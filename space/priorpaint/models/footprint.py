"""How far a change of one split-layer cell reaches in the output image: the generator's
footprint, measured once per weights (exact for any generator made of local operations)."""

from __future__ import annotations

from typing import Dict

import torch

from ..store import model_key, weights_fingerprint
from .layered import LayeredGenerator

_footprints: Dict[tuple, int] = {}


def footprint_radius(gen: LayeredGenerator, split: str) -> int:
    """How many output pixels beyond a split cell's own area a change of that cell reaches.

    Measured by perturbing the central cell of a sampled ``h`` (exact for any generator
    made of local operations)."""
    key = (weights_fingerprint(gen), model_key(gen), split)
    if key in _footprints:
        return _footprints[key]
    with torch.no_grad():
        z = gen.sample_latents(1, seed=0)
        h = gen.forward_to(z, split)
        base = gen.forward_from(split, h, z=z)
        s = h.shape[-1]
        c = s // 2
        h2 = h.clone()
        h2[..., c, c] += 10.0 * (h.abs().max() + 1)
        diff = (gen.forward_from(split, h2, z=z) - base).abs().amax(1)[0] > 0
    R = diff.shape[-1]
    cell = R / s
    ys, xs = torch.nonzero(diff, as_tuple=True)
    lo, hi = c * cell, (c + 1) * cell - 1
    r = 0
    if ys.numel():
        r = int(max(lo - float(ys.min()), float(ys.max()) - hi, lo - float(xs.min()), float(xs.max()) - hi, 0))
    _footprints[key] = r
    return r
