"""What every direction method shares: the :class:`Direction` type, the method versions,
strength ranges, and the cache of computed vectors (in the one store, :mod:`priorpaint.store`).

Computed directions are cached as safetensors files in
``${PRIORPAINT_CACHE:-~/.cache/priorpaint}/directions/<model>-<method>-v<version>-<key>.safetensors``;
the key hashes the method's parameters and the generator's weight fingerprint, and the version
in :data:`METHOD_VERSIONS` changes whenever a method's computation does, so an old file is
never reused for a new computation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import nn

from ... import store

log = logging.getLogger(__name__)

#: bump a method's version whenever its computation changes: cached files of the old
#: version are then ignored and recomputed
METHOD_VERSIONS = {"sefa": 1, "ganspace": 1, "supervised": 1}
#: strength range of raw components (``sefaK``, ``ganspaceK``) and of named directions
#: that do not give one
DEFAULT_RANGE = (-3.0, 3.0)
#: GANSpace defaults (the benchmark's figure is for 20 000 samples)
GANSPACE_SAMPLES = 20000
GANSPACE_COMPONENTS = 20
RAW_PATTERN = re.compile(r"^(sefa|ganspace)(\d+)$")



def directions_cache_dir() -> Path:
    return store.folder("directions")


def cache_path(gen: nn.Module, method: str, params: dict) -> Path:
    if method not in METHOD_VERSIONS:
        raise ValueError(f"unknown direction method {method!r}")
    version = METHOD_VERSIONS[method]
    blob = json.dumps({"method": method, "version": version, "params": params,
                       "weights": store.weights_fingerprint(gen)}, sort_keys=True)
    key = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return directions_cache_dir() / f"{store.model_key(gen)}-{method}-v{version}-{key}.safetensors"


def cached(gen: nn.Module, method: str, params: dict,
           compute: Callable[[], Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """The tensors of ``compute()``, from memory, from the cache folder, or computed and saved."""
    meta = {"method": method, "version": str(METHOD_VERSIONS[method]),
            "params": json.dumps(params, sort_keys=True), "model": store.model_key(gen)}
    return store.load_or_compute(cache_path(gen, method, params), compute, metadata=meta,
                                 device=getattr(gen, "device", "cpu"))


@dataclass
class Setpoint:
    """A published GANSpace edit of ``w`` that *sets* the latent's coordinate along a component
    (Härkönen et al. 2020, as encoder4editing's ``editings/ganspace.py`` applies it).

    For a latent ``w`` (``(N, L, D)`` styles, or ``(N, D)``): ``coord = ((w[0] − mean)·u) / σ``
    read from the first style; the edit adds ``(value − coord)·σ·u`` to styles
    ``layers[0] .. layers[1] − 1``.  A user's strength ``α`` takes that fraction of it
    (``α = 1``: exactly the published edit; ``0``: none); a negative ``α`` aims at
    ``value_negative`` instead when the entry publishes one (the car viewpoint's ±2), and
    otherwise moves the same way away from ``value``.
    """
    mean: torch.Tensor                # (D,)
    unit: torch.Tensor                # (D,) the component (unit norm)
    std: float                        # σ of the component
    value: float                      # the published coordinate
    layers: Tuple[int, int]           # styles [first, last) the edit writes
    value_negative: Optional[float] = None

    def delta(self, z: torch.Tensor, strength: float) -> torch.Tensor:
        """The change of ``z`` for ``strength`` (same shape as ``z``)."""
        dim = self.unit.numel()
        n = z.shape[0]
        styles = z.reshape(n, -1, dim)
        mean = self.mean.to(z.device, z.dtype)
        unit = self.unit.to(z.device, z.dtype)
        coord = ((styles[:, 0] - mean) * unit).sum(dim=1) / self.std       # (N,)
        if strength < 0 and self.value_negative is not None:
            target, fraction = self.value_negative, -float(strength)
        else:
            target, fraction = self.value, float(strength)
        amount = (fraction * ((target - coord) * self.std))                 # (N,)
        out = torch.zeros_like(styles)
        a, b = self.layers
        out[:, a:b] = amount[:, None, None] * unit
        return out.reshape(z.shape)


@dataclass
class Direction:
    name: str
    description: str
    method: str                       # "sefa", "ganspace", "supervised"
    space: str                        # "z" (latent) or "h" (feature at ``layer``)
    vector: torch.Tensor              # unit, shaped (1, *latent_shape) or (1, *feature_shape)
    scale: float = 1.0                # σ: strength α moves α·σ along ``vector``
    layer: Optional[str] = None
    min: float = DEFAULT_RANGE[0]
    max: float = DEFAULT_RANGE[1]
    default: float = 0.0
    info: dict = field(default_factory=dict)
    #: a latent edit that depends on the latent (a published GANSpace coordinate set);
    #: ``vector`` then shows where it acts (the unit component on its styles)
    setpoint: Optional[Setpoint] = None

    def latent_delta(self, z: torch.Tensor, strength: float) -> torch.Tensor:
        """How a latent (``space == "z"``) direction moves ``z`` at ``strength``: ``α·σ·v``,
        or the set-point edit of :class:`Setpoint`."""
        if self.setpoint is not None:
            return self.setpoint.delta(z, strength)
        return (strength * self.scale) * self.vector.to(z.device, z.dtype)

