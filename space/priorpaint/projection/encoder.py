"""The inverting network: an encoder ``E`` with ``E(x) ≈ (z, z_h)`` for a LayeredGenerator.

Of the three ways to project a photo — optimisation ``z* = argmin_z L(G(z), x)``, an
inverting network ``z = E(x)`` trained with the generator fixed, and the hybrid (``E(x)`` as
the start of the optimisation) — this module is the network.  Following Bau et al.'s
layer-wise idea it predicts both the latent ``z`` and the split-layer feature ``z_h``
directly: the latent alone cannot reach a real photo (a 100-d DCGAN latent reconstructs a
real face at ~15 dB), the feature can, and a good ``z_h`` is what makes the split-layer
refinement short.

Training (:func:`priorpaint.projection.encoder_training.train_encoder`) keeps ``G`` frozen and uses its own samples:

* latent regression on sampled pairs: ``‖E_z(G(z)) − z‖²`` and ``‖E_h(G(z)) − G_H(z)‖²``;
* reconstruction through ``G``: ``L(G_F(E_h(x)), x)`` and ``L(G(E_z(x)), x)`` (L1 + L2 on
  pixels, plus the perceptual loss when its weights are present);
* augmentations of the samples (random scale/shift/rotation crops, colour jitter, white
  balance, blur), on which only the reconstruction losses apply, so that real photo crops —
  not only generated faces — land near the generator's range.

Each step draws its randomness from a generator seeded by ``(seed, step)``, so a run is
deterministic for a seed on one device and a resumed run continues bit for bit.

:func:`encoder_for` finds the encoder of a generator (its manifest entry of kind
``encoder``, or one the user trained, under the priorpaint cache), and refuses one whose
recorded generator fingerprint differs from the loaded generator's.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .. import store
from ..errors import ModelError
from ..models.layered import LayeredGenerator

log = logging.getLogger(__name__)

FORMAT = "priorpaint-encoder"
FORMAT_VERSION = "1"
ARCHITECTURE = "conv-encoder"


# -- where encoders live -----------------------------------------------------------------------

def user_encoders_dir() -> Path:
    """Where ``priorpaint train-encoder`` writes by default; searched before the manifest."""
    return store.folder("encoders")


# -- the network ---------------------------------------------------------------------------------

class _Down(nn.Module):
    """A stride-2 convolution and a residual 3×3 convolution, LeakyReLU activations."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.down = nn.Conv2d(c_in, c_out, 4, 2, 1)
        self.conv = nn.Conv2d(c_out, c_out, 3, 1, 1)

    def forward(self, x):
        x = F.leaky_relu(self.down(x), 0.2)
        return x + F.leaky_relu(self.conv(x), 0.2)


class Encoder(nn.Module):
    """A small convolutional encoder: image (N, 3, R, R) in [-1, 1] -> ``(z, h)``.

    ``z`` has the generator's latent shape (of latent space ``space``), ``h`` the shape of
    the split layer's output.  Images larger than ``input_size`` are area-downsampled first.
    """

    def __init__(self, resolution: int, latent_shape, h_shape, split: str, space: Optional[str] = None,
                 width: int = 16, max_channels: int = 64, input_size: int = 128):
        super().__init__()
        self.config = {"resolution": int(resolution), "latent_shape": [int(v) for v in latent_shape],
                       "h_shape": [int(v) for v in h_shape], "split": str(split), "space": space,
                       "width": int(width), "max_channels": int(max_channels), "input_size": int(input_size)}
        c_h, s_h = int(h_shape[0]), int(h_shape[-1])
        size = min(int(resolution), int(input_size))
        if s_h > size or size % s_h or (size // s_h) & (size // s_h - 1):
            raise ModelError(f"encoder: split feature {s_h}x{s_h} does not divide the input size {size}")
        self.size = size
        self.stem = nn.Conv2d(3, width, 3, 1, 1)
        stages, c, res = [], width, size
        while res > s_h:
            c_next = min(c * 2, max_channels)
            stages.append(_Down(c, c_next))
            c, res = c_next, res // 2
        self.stages = nn.Sequential(*stages)
        self.h_head = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1), nn.LeakyReLU(0.2), nn.Conv2d(c, c_h, 1))
        zs, z_layers, cz = s_h, [], c
        while zs > 4:
            z_layers += [nn.Conv2d(cz, max(cz // 2, 16), 3, 2, 1), nn.LeakyReLU(0.2)]
            cz, zs = max(cz // 2, 16), zs // 2
        self.z_conv = nn.Sequential(*z_layers)
        self.z_head = nn.Linear(cz * zs * zs, int(math.prod(latent_shape)))
        self.latent_shape = tuple(int(v) for v in latent_shape)

    @classmethod
    def for_generator(cls, gen: LayeredGenerator, split: Optional[str] = None, space: Optional[str] = None,
                      **kwargs) -> "Encoder":
        split = split or gen.default_split
        with torch.no_grad():
            lat = gen.sample_latents(1, seed=0, space=space)
            h = gen.run(lat, stop=split)[0]
        return cls(gen.resolution, tuple(lat.shape[1:]), tuple(h.shape[1:]), split, space, **kwargs)

    @classmethod
    def from_config(cls, config: dict) -> "Encoder":
        c = dict(config)
        return cls(c["resolution"], c["latent_shape"], c["h_shape"], c["split"], c.get("space"),
                   width=c.get("width", 16), max_channels=c.get("max_channels", 64),
                   input_size=c.get("input_size", 128))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="area")
        f = self.stages(F.leaky_relu(self.stem(x), 0.2))
        h = self.h_head(f)
        z = self.z_head(self.z_conv(f).flatten(1)).view(x.shape[0], *self.latent_shape)
        return z, h

    def fits(self, gen: LayeredGenerator, split: Optional[str] = None) -> Optional[str]:
        """None when this encoder's shapes fit ``gen`` at ``split``, else the reason."""
        if self.config["resolution"] != gen.resolution:
            return f"the encoder works at {self.config['resolution']} px, the model at {gen.resolution} px"
        if split is not None and split != self.config["split"]:
            return f"the encoder predicts layer {self.config['split']}, the projection splits at {split}"
        return None


# -- files: safetensors + a manifest entry ---------------------------------------------------------

def save_encoder(enc: Encoder, path: Path, gen: LayeredGenerator, train: Optional[dict] = None,
                 manifest_path: Optional[Path] = None, half: bool = False) -> Tuple[Path, Path, dict]:
    """Write the encoder as safetensors (float32; ``half=True`` stores float16, half the
    size) and its manifest entry (kind ``encoder``, naming the generator by id and weights
    fingerprint).  Returns ``(weights_path, manifest_path, entry)``."""
    from safetensors.torch import save_file

    path = Path(path)
    manifest_path = Path(manifest_path) if manifest_path else path.with_suffix(".json")
    model_id = str(getattr(gen, "model_id", "") or gen.architecture)
    generator = {"id": model_id, "weights_fingerprint": store.weights_fingerprint(gen)}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": json.dumps(enc.config),
            "generator": json.dumps(generator)}
    if train is not None:
        meta["train"] = json.dumps(train)
    sd = {k: (v.detach().half() if half and v.is_floating_point() else v.detach()).cpu().contiguous()
          for k, v in enc.state_dict().items()}

    def write(tmp):
        save_file(sd, str(tmp), metadata=meta)
        os.chmod(tmp, 0o644)
    store.write_atomic(path, write)
    from ..models.weights import sha256_file
    try:
        rel = os.path.relpath(path.resolve(), manifest_path.resolve().parent)
    except ValueError:  # another drive (Windows)
        rel = str(path.resolve())
    entry = {
        "id": f"{model_id}-encoder",
        "kind": "encoder",
        "architecture": ARCHITECTURE,
        "resolution": gen.resolution,
        "generator": generator,
        "config": enc.config,
        "license": "MIT",
        "description": f"Inverting network for {model_id}: predicts the latent and the {enc.config['split']} "
                       "feature from a crop (the start of hybrid projection); written by priorpaint train-encoder.",
        "sources": [{"type": "file", "path": rel, "sha256": sha256_file(path), "format": "safetensors"}],
    }
    if train is not None:
        entry["train"] = {k: v for k, v in train.items() if k != "history"}
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    store.write_atomic(manifest_path, lambda tmp: tmp.write_text(json.dumps(entry, indent=2) + "\n"))
    return path, manifest_path, entry


def read_encoder_file(path: Path, src=None) -> Tuple[Encoder, dict]:
    """An encoder and its metadata from a safetensors file (no code runs: tensors + JSON)."""
    from ..models.weights import read_state_dict
    from ..models.manifest import Source
    from safetensors import safe_open

    path = Path(path)
    sd = read_state_dict(path, src or Source(type="file", path=str(path), format="safetensors"))
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
        config = json.loads(meta["config"])
        meta["generator"] = json.loads(meta.get("generator", "{}"))
        meta["train"] = json.loads(meta["train"]) if "train" in meta else None
    except Exception as e:
        raise ModelError(f"encoder {path} has no readable priorpaint metadata: {type(e).__name__}: {e}") from None
    if meta.get("format") != FORMAT:
        raise ModelError(f"{path} is not a priorpaint encoder (format {meta.get('format')!r})")
    enc = Encoder.from_config(config)
    try:
        enc.load_state_dict({k: v.float() for k, v in sd.items()})
    except RuntimeError as e:
        raise ModelError(f"encoder {path} does not fit its own config: {str(e).splitlines()[0]}") from None
    enc.eval()
    for p in enc.parameters():
        p.requires_grad_(False)
    return enc, meta


# -- finding the encoder of a generator ------------------------------------------------------------

@dataclass
class EncoderLookup:
    encoder: Optional[Encoder]
    entry_id: Optional[str] = None
    note: Optional[str] = None     # why there is none (or was refused), for the user


def encoder_entries(model_id: str) -> list:
    """Encoder entries naming ``model_id``: the user's (``<cache>/encoders``) first, then the manifest's."""
    from ..models.manifest import load_manifest
    found = []
    user = user_encoders_dir()
    for dirs in ([user] if user.is_dir() else [], None):
        try:
            entries = load_manifest(dirs) if dirs is not None else load_manifest()
        except ModelError as e:
            log.warning("%s", e)
            continue
        for e in entries.values():
            if e.kind == "encoder" and (e.extra.get("generator") or {}).get("id") == model_id:
                found.append(e)
        if dirs is None:
            break
    return found


_cache: Dict[tuple, Encoder] = {}
_lock = threading.Lock()


def encoder_for(gen: LayeredGenerator, split: Optional[str] = None, space: Optional[str] = None) -> EncoderLookup:
    """The encoder for ``gen`` if one exists, fits and matches its weights; else a note why not.

    An entry whose generator fingerprint differs from ``gen``'s is refused; a file that
    fails its sha256 or is not valid safetensors is reported; both leave the caller to
    fall back to the multi-start search.
    """
    from ..models.weights import load_weights

    model_id = str(getattr(gen, "model_id", "") or "")
    hint = f"train one with `priorpaint train-encoder --model {model_id}`" if model_id else "train one"
    if not model_id:
        return EncoderLookup(None, note="no encoder for a generator outside the manifest: multi-start search")
    entries = encoder_entries(model_id)
    if not entries:
        return EncoderLookup(None, note=f"no encoder for {model_id}: multi-start search ({hint})")
    fp = store.weights_fingerprint(gen)
    notes = []
    for entry in entries:
        want = (entry.extra.get("generator") or {}).get("weights_fingerprint")
        if want != fp:
            notes.append(f"encoder {entry.id} was trained for other {model_id} weights "
                         f"(fingerprint {str(want)[:12]}, loaded {fp[:12]}); refused")
            continue
        key = (entry.id, str(entry.manifest_path), str(gen.device))
        with _lock:
            enc = _cache.get(key)
        if enc is None:
            try:
                _, src, path = load_weights(entry)
                enc, meta = read_encoder_file(path, src)
            except ModelError as e:
                notes.append(f"encoder {entry.id} unusable: {e}")
                continue
            if (meta.get("generator") or {}).get("weights_fingerprint") != fp:
                notes.append(f"encoder {entry.id}: its file was trained for other {model_id} weights; refused")
                continue
            enc = enc.to(gen.device)
            with _lock:
                _cache[key] = enc
        why = enc.fits(gen, split)
        if why is None and (enc.config.get("space") or None) != (space or None):
            why = f"the encoder predicts latent space {enc.config.get('space') or 'default'}, " \
                  f"the projection asks for {space}"
        if why:
            notes.append(f"encoder {entry.id} not used: {why}")
            continue
        return EncoderLookup(enc, entry_id=entry.id)
    return EncoderLookup(None, note="; ".join(notes) + f": multi-start search ({hint})")


def clear_cache() -> None:
    with _lock:
        _cache.clear()
