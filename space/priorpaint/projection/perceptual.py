"""The perceptual loss: LPIPS-VGG from the ``lpips`` package, backbone from the Hub.

The manifest entry ``lpips-vgg`` (``"kind": "perceptual"``, ``"architecture": "lpips-vgg"``)
names the torchvision ImageNet VGG-16 weights as published in the Hub repo
``timm/vgg16.tv_in1k`` (``model.safetensors``, pinned; ``priorpaint download lpips-vgg``).
Only its ``features.N.*`` tensors are read (``safetensors.safe_open``, key by key), so the
classifier (~470 MB of the 553 MB) never reaches memory.  The LPIPS linear heads come from
the ``lpips`` wheel itself (``lpips/weights/v0.1/vgg.pth``, read with
``torch.load(weights_only=True)``); ``lpips.LPIPS`` is built with ``pretrained=False,
pnet_rand=True`` so that neither lpips nor torchvision downloads anything.

Projection, G′ and segmentation edits call :func:`get_perceptual`; when the entry's
weights are not present it logs a notice once (with the download command) and returns
None, and callers use pixel losses alone.  ``PRIORPAINT_PERCEPTUAL=off`` disables it.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from pathlib import Path
from typing import Dict, Optional

import torch
from torch import nn

from ..device import as_device
from ..errors import ModelError
from ..models.manifest import ModelEntry, load_manifest
from ..models.weights import locate, verify

log = logging.getLogger(__name__)

ARCHITECTURE = "lpips-vgg"
#: torchvision ``features`` index -> the lpips slice holding it (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3)
_SLICES = ((1, range(0, 4)), (2, range(4, 9)), (3, range(9, 16)), (4, range(16, 23)), (5, range(23, 30)))


def _lpips_lin_weights() -> Dict[str, torch.Tensor]:
    import lpips
    path = Path(lpips.__file__).parent / "weights" / "v0.1" / "vgg.pth"
    if not path.is_file():
        raise ModelError(f"the lpips package has no {path.name} linear-layer weights at {path}")
    return torch.load(str(path), map_location="cpu", weights_only=True)


class LPIPSVGG(nn.Module):
    """``lpips.LPIPS(net="vgg")`` with the given backbone; ``forward(a, b, mask)`` is the
    per-sample distance of images in [-1, 1], averaged over the mask when one is given."""

    def __init__(self, features: Dict[str, torch.Tensor]):
        super().__init__()
        import lpips
        with warnings.catch_warnings():  # torchvision's 'pretrained' deprecation notices
            warnings.simplefilter("ignore")
            self.lpips = lpips.LPIPS(net="vgg", pretrained=False, pnet_rand=True, spatial=True, verbose=False)
        lins = _lpips_lin_weights()
        result = self.lpips.load_state_dict(lins, strict=False)
        if any(k.startswith("lin") for k in result.unexpected_keys) or not lins:
            raise ModelError("the lpips package's vgg.pth does not fit lpips.LPIPS(net='vgg')")
        mapped = {}
        for k, v in features.items():
            idx = int(k.split(".")[1])
            for s, rng in _SLICES:
                if idx in rng:
                    mapped[f"slice{s}.{k.split('.', 1)[1]}"] = v
        own = self.lpips.net.state_dict()
        missing = sorted(set(own) - set(mapped))
        if missing:
            raise ModelError(f"perceptual weights lack VGG-16 keys such as features.{missing[0].split('.', 1)[1]}")
        for k, v in mapped.items():
            if k in own and tuple(own[k].shape) != tuple(v.shape):
                raise ModelError(f"VGG-16 weight features.{k.split('.', 1)[1]} has shape {tuple(v.shape)}, "
                                 f"expected {tuple(own[k].shape)}")
        self.lpips.net.load_state_dict({k: v for k, v in mapped.items() if k in own})
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, a: torch.Tensor, b: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        d = self.lpips(a, b)  # (N, 1, H, W): spatial LPIPS, each layer upsampled to the input size
        if mask is None:
            return d.flatten(1).mean(1)
        m = mask if mask.shape[-2:] == d.shape[-2:] else nn.functional.interpolate(mask, size=d.shape[-2:],
                                                                                   mode="area")
        return (d * m).flatten(1).sum(1) / m.flatten(1).sum(1).clamp_min(1e-6)


def read_features(path: Path) -> Dict[str, torch.Tensor]:
    """Only the ``features.N.*`` tensors of a VGG-16 safetensors file (key by key)."""
    from safetensors import safe_open
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {k: f.get_tensor(k) for k in f.keys() if k.startswith("features.")}
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise ModelError(f"cannot read VGG-16 weights {path} as safetensors: {type(e).__name__}: {first}") from None


def build_from_entry(entry: ModelEntry, device=None) -> Optional[LPIPSVGG]:
    """The loss network of a perceptual entry whose file is here (verified), else None."""
    for src in entry.sources:
        path = locate(src, entry, allow_download=False)
        if path is None:
            continue
        verify(path, src.sha256, f"{entry.id} ({src.describe()})", size=src.size)
        return LPIPSVGG(read_features(path)).to(as_device(device))
    return None


_cache: Dict[str, Optional[LPIPSVGG]] = {}
_lock = threading.Lock()


def get_perceptual(device=None) -> Optional[LPIPSVGG]:
    """The LPIPS-VGG loss if a perceptual manifest entry has its weights present, else None."""
    if os.environ.get("PRIORPAINT_PERCEPTUAL", "").lower() in ("0", "off", "no", "false"):
        return None
    dev = as_device(device)
    with _lock:
        if str(dev) in _cache:
            return _cache[str(dev)]
        net = None
        entries = [e for e in load_manifest().values() if e.kind == "perceptual" and e.architecture == ARCHITECTURE]
        for entry in entries:
            net = build_from_entry(entry, dev)
            if net is not None:
                log.info("perceptual loss: LPIPS-VGG from %s", entry.id)
                break
        if net is None:
            hint = "; ".join(f"`priorpaint download {e.id}`" for e in entries) or "no perceptual entry is listed"
            log.info("perceptual loss skipped: its weights are not downloaded (%s); using pixel losses only", hint)
        _cache[str(dev)] = net
        return net


def clear_cache() -> None:
    with _lock:
        _cache.clear()
