"""``priorpaint convert IN OUT.safetensors``: a StyleGAN2 checkpoint -> safetensors.

``IN`` is a rosinality ``.pt`` checkpoint or an NVIDIA network pickle (``.pkl``:
stylegan2-ada-pytorch / stylegan3 snapshots, or the original TensorFlow StyleGAN2 ``(G, D, Gs)``
pickles).  A network pickle is read by :mod:`.nvidia_pickle`'s restricted unpickler: no code
embedded in it runs, and ``G_ema`` / ``Gs`` (with ``w_avg`` / ``dlatent_avg`` as ``latent_avg``)
is mapped to the rosinality layout.

The input is read with ``torch.load(weights_only=True)``: only tensors, numbers, strings
and plain containers are accepted, so a pickle that would run code (any class or function
reference other than PyTorch's tensor rebuilders) is refused before anything runs.  It is
either a ``g_ema`` state dict itself or a dict holding one under ``g_ema`` (the usual
rosinality checkpoint: ``{"g_ema": ..., "latent_avg": ...}``, training checkpoints also
``g``, ``d``, optimiser states).  The generator's configuration is inferred from key names
and shapes and checked by loading the tensors into :class:`StyleGAN2Generator`.

Writes ``OUT.safetensors`` (the ``g_ema`` tensors, plus ``latent_avg`` when the checkpoint
had one) and ``OUT.json`` beside it: architecture, config, resolution, the sha256 of both
files and a ``sources`` entry for the new file.  The JSON is a complete manifest entry
(id: the output's file name without extension), so the pair can be dropped into a
manifest folder (``PRIORPAINT_MANIFEST_DIR``) and used as a model at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch

from ..errors import InputError, ModelError
from .weights import safe_torch_load

log = logging.getLogger(__name__)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_checkpoint(path) -> object:
    """``torch.load(path, weights_only=True)`` with one-line errors for every failure."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such checkpoint file: {path}")
    return safe_torch_load(path)


def extract_g_ema(obj, where: str = "checkpoint") -> Tuple[Dict[str, torch.Tensor], Optional[torch.Tensor]]:
    """``(g_ema state dict, latent_avg or None)`` of a loaded rosinality checkpoint."""
    if not isinstance(obj, dict):
        raise ModelError(f"{where} is a {type(obj).__name__}, not a dict: not a rosinality StyleGAN2 checkpoint")
    latent_avg = obj.get("latent_avg")
    sd = obj["g_ema"] if "g_ema" in obj else obj
    if not isinstance(sd, dict):
        raise ModelError(f"{where}: 'g_ema' is a {type(sd).__name__}, not a state dict")
    tensors = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor) and k != "latent_avg"}
    if "latent_avg" in sd and latent_avg is None:
        latent_avg = sd["latent_avg"]
    if latent_avg is not None:
        if not isinstance(latent_avg, (torch.Tensor, float, int)):
            raise ModelError(f"{where}: latent_avg is a {type(latent_avg).__name__}, expected a tensor")
        latent_avg = torch.as_tensor(latent_avg, dtype=torch.float32).reshape(-1)
    return tensors, latent_avg


def check_generator(sd: Dict[str, torch.Tensor], latent_avg: Optional[torch.Tensor], where: str):
    """The inferred config, after proving the tensors load into the generator."""
    from .stylegan2 import StyleGAN2Generator, infer_config
    try:
        config = infer_config(sd)
        gen = StyleGAN2Generator.from_config(config)
        payload = dict(sd)
        if latent_avg is not None:
            payload["latent_avg"] = latent_avg
        gen.load_state_dict(payload)
    except ValueError as e:
        raise ModelError(f"{where}: {str(e).splitlines()[0]}") from None
    return config


def convert(src, dst, overwrite: bool = False) -> dict:
    """Convert ``src`` (.pt) to ``dst`` (.safetensors) and its config JSON; returns the config record."""
    from safetensors.torch import save_file
    src, dst = Path(src), Path(dst)
    if dst.suffix != ".safetensors":
        raise InputError(f"output must end in .safetensors, got {dst}")
    meta_path = dst.with_suffix(".json")
    for p in (dst, meta_path):
        if p.exists() and not overwrite:
            raise InputError(f"{p} exists; pass --force to overwrite it")
    from .nvidia_pickle import is_network_pickle, load_network_pickle
    info = None
    if is_network_pickle(src):
        sd, latent_avg, info = load_network_pickle(src)
    else:
        sd, latent_avg = extract_g_ema(load_checkpoint(src), where=str(src))
    if latent_avg is not None and "style.1.weight" in sd and latent_avg.numel() != sd["style.1.weight"].shape[1]:
        log.warning("%s: latent_avg has %d values, not style_dim; it is left out", src, latent_avg.numel())
        latent_avg = None
    config = check_generator(sd, latent_avg, str(src))
    if info and info.get("lr_mlp") not in (None, 0.01):
        config["lr_mlp"] = info["lr_mlp"]
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in sd.items()}
    if latent_avg is not None:
        tensors["latent_avg"] = latent_avg.contiguous()
    dst.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(dst), metadata={"architecture": "stylegan2", "config": json.dumps(config)})
    digest = _sha256(dst)
    model_id = re.sub(r"[^A-Za-z0-9._-]", "-", dst.stem).lstrip("._-")[:96] or "stylegan2"
    record = {
        "id": model_id,
        "kind": "generator",
        "architecture": "stylegan2",
        "config": config,
        "resolution": config["size"],
        "description": f"StyleGAN2 converted by priorpaint convert from {src.name}",
        "latent_avg": latent_avg is not None,
        "notes": ([] if any(k.startswith("noises.") for k in sd) else
                  ["no noises.noise_N buffers in the checkpoint (an older file): the loader draws fixed noise maps "
                   "from seed 0, so fine detail differs from the original run's"]),
        "tensors": len(tensors),
        "converted_from": {"file": src.name, "sha256": _sha256(src),
                           **({"pickle": info["kind"], "network": info["network"]} if info else {})},
        "sources": [{"type": "file", "path": dst.name, "sha256": digest, "format": "safetensors"}],
    }
    meta_path.write_text(json.dumps(record, indent=2) + "\n")
    return record
