"""Deriving named directions: grids to look at, and measured effects
(``priorpaint directions --derive``).  Naming the components is a human's job.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ...errors import InputError
from ...models.layered import LayeredGenerator
from ... import store

log = logging.getLogger(__name__)

from .base import GANSPACE_SAMPLES, Direction
from .pca import ganspace
from .kind import shift
from .named import get_direction, load_named
from .closedform import sefa
from .boundaries import ATTRIBUTES, attribute_direction


GRID_STRENGTHS = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)


def images_along(gen: LayeredGenerator, z: torch.Tensor, direction: Direction,
                  strengths: Sequence[float], split: Optional[str] = None) -> torch.Tensor:
    """(len(strengths) * n, 3, R, R): each latent of ``z`` moved along ``direction``."""
    split = split or gen.default_split
    with torch.no_grad():
        h = gen.forward_to(z, split)
        out = []
        for s in strengths:
            z_e, h_e, iv = shift(gen, z, h, split, direction, float(s))
            out.append(gen.forward_from(split, h_e, interventions=iv or None, z=z_e))
    return torch.cat(out)


def raw_direction(gen: LayeredGenerator, method: str, k: int, layer: Optional[str] = None,
                  samples: int = GANSPACE_SAMPLES, seed: int = 0) -> Direction:
    """Component ``k`` of a method as a :class:`Direction` (sign +1)."""
    lat = (1,) + tuple(gen.latent_shape)
    if method == "sefa":
        return Direction(name=f"sefa{k}", description="", method="sefa", space="z",
                         vector=sefa(gen)["vectors"][k].reshape(lat))
    if method in ("ganspace", "ganspace_z"):
        layer = layer or gen.default_split
        res = ganspace(gen, layer=layer, samples=samples, seed=seed)
        if method == "ganspace_z":
            return Direction(name=f"ganspace_z{k}", description="", method="ganspace", space="z",
                             vector=res["z_vectors"][k].reshape(lat))
        return Direction(name=f"ganspace{k}", description="", method="ganspace", space="h", layer=layer,
                         vector=res["vectors"][k].reshape((1,) + tuple(res["mean"].shape)),
                         scale=float(res["sigma"][k]))
    raise InputError(f"unknown method {method!r}")


def direction_grid(gen: LayeredGenerator, directions: Sequence[Direction], faces: int = 3, seed: int = 7,
                   strengths: Sequence[float] = GRID_STRENGTHS, gap: int = 4) -> np.ndarray:
    """A uint8 image: one row per direction; per face, one column per strength."""
    from ...compositing.blend import to_uint8
    z = gen.sample_latents(faces, seed=seed)
    r = gen.resolution
    ns = len(strengths)
    width = faces * ns * r + (faces - 1) * gap
    grid = np.full((len(directions) * (r + gap) - gap, width, 3), 255, np.uint8)
    for row, d in enumerate(directions):
        imgs = images_along(gen, z, d, strengths)          # strength-major
        for si in range(ns):
            for f in range(faces):
                x = f * (ns * r + gap) + si * r
                y = row * (r + gap)
                grid[y:y + r, x:x + r] = to_uint8(imgs[si * faces + f])
    return grid


def measure_direction(gen: LayeredGenerator, direction: Direction, samples: int = 64, seed: int = 11,
                      strength: float = 2.0) -> dict:
    """Effect of ``±strength`` on each attribute, in units of that attribute's spread over faces."""
    z = gen.sample_latents(samples, seed=seed)
    imgs = images_along(gen, z, direction, (-strength, 0.0, strength))
    lo, mid, hi = imgs[:samples], imgs[samples:2 * samples], imgs[2 * samples:]
    out = {"pixel_change": round(float((hi - lo).abs().mean()), 4)}
    for name, (fn, _) in ATTRIBUTES.items():
        spread = float(fn(mid).std().clamp_min(1e-6))
        out[name] = round(float((fn(hi) - fn(lo)).mean()) / spread, 3)
    return out


def derive(gen: LayeredGenerator, out_dir: Path, count: int = 8, samples: int = GANSPACE_SAMPLES,
           progress: Optional[Callable[[str], None]] = None) -> dict:
    """Grids (PNG) and measured effects (JSON) of the first ``count`` components of each method.

    Writes ``<model>-sefa.png``, ``<model>-ganspace.png`` and ``<model>-ganspace_z.png`` (rows =
    component, columns = strength −3..+3 for three faces) and ``<model>-measurements.json``.
    Naming the components is a human's job: look at the grids, read the measurements, and
    write ``weights_manifest/directions/<model>.json``.
    """
    from PIL import Image
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = store.model_key(gen)
    report = {"model": name, "strengths": list(GRID_STRENGTHS), "ganspace_samples": samples,
              "attributes": {k: v[1] for k, v in ATTRIBUTES.items()}, "components": {}}
    for method in ("sefa", "ganspace", "ganspace_z"):
        if progress:
            progress(f"{method}: computing")
        dirs = [raw_direction(gen, method, k, samples=samples) for k in range(count)]
        path = out_dir / f"{name}-{method}.png"
        Image.fromarray(direction_grid(gen, dirs)).save(path)
        report["components"][method] = [dict(component=k, **measure_direction(gen, d)) for k, d in enumerate(dirs)]
        if progress:
            progress(f"{method}: wrote {path}")
    for attr in ("brightness", "warmth", "left_right"):
        d = Direction(name=attr, description="", method="supervised", space="z",
                      vector=attribute_direction(gen, attr).reshape((1,) + tuple(gen.latent_shape)))
        report["components"].setdefault("supervised", []).append(dict(attribute=attr, **measure_direction(gen, d)))
    sup = [Direction(name=a, description="", method="supervised", space="z",
                     vector=attribute_direction(gen, a).reshape((1,) + tuple(gen.latent_shape)))
           for a in ("brightness", "warmth", "left_right")]
    Image.fromarray(direction_grid(gen, sup)).save(out_dir / f"{name}-supervised.png")
    # The named directions of the manifest, to check that their names are honest.
    model_id = store.model_key(gen)
    named = [get_direction(gen, d["name"], model_id) for d in load_named(model_id).get("directions", [])]
    if named:
        if progress:
            progress(f"named: {', '.join(d.name for d in named)}")
        Image.fromarray(direction_grid(gen, named)).save(out_dir / f"{name}-named.png")
        report["named"] = {d.name: measure_direction(gen, d) for d in named}
    (out_dir / f"{name}-measurements.json").write_text(json.dumps(report, indent=1))
    return report

