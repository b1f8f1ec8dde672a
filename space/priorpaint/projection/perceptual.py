"""An optional perceptual loss: LPIPS-style distances on VGG-16 features.

Used only when a manifest entry of ``"kind": "perceptual"`` (architecture ``vgg16``)
has its weights present; otherwise :func:`get_perceptual` logs a notice once and
returns None, and callers use pixel losses alone.  Weights are a VGG-16 ``features``
state dict (torchvision key names ``features.<i>.weight``), optionally with LPIPS
linear heads ``lin<k>.model.1.weight`` (shape (1, C, 1, 1)).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Dict, List, Optional

import torch
from torch import nn
import torch.nn.functional as F

from ..device import as_device
from ..errors import ModelError
from ..models.manifest import load_manifest
from ..models.weights import load_weights, weights_status

log = logging.getLogger(__name__)
_VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
_TAPS = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 in torchvision's numbering


class VGGPerceptual(nn.Module):
    def __init__(self):
        super().__init__()
        layers: List[nn.Module] = []
        c_in = 3
        for v in _VGG16:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU(inplace=False)]
                c_in = v
        self.features = nn.Sequential(*layers)
        chans = [64, 128, 256, 512, 512]
        self.lins = nn.ParameterList([nn.Parameter(torch.ones(1, c, 1, 1) / c) for c in chans])
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def load_weights(self, sd: Dict[str, torch.Tensor]) -> None:
        feats = {k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")}
        missing = [k for k in self.features.state_dict() if k not in feats]
        if missing:
            raise ModelError(f"perceptual weights lack VGG-16 keys such as features.{missing[0]}")
        self.features.load_state_dict(feats)
        for i in range(5):
            w = sd.get(f"lin{i}.model.1.weight")
            if w is not None:
                self.lins[i].data.copy_(w.reshape(self.lins[i].shape))

    def _taps(self, x: torch.Tensor) -> List[torch.Tensor]:
        x = ((x + 1.0) / 2.0 - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _TAPS:
                out.append(x)
                if len(out) == len(_TAPS):
                    break
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Per-sample distance between images ``a`` and ``b`` in [-1, 1] (optionally masked)."""
        fa, fb = self._taps(a), self._taps(b)
        total = 0.0
        for lin, x, y in zip(self.lins, fa, fb):
            x = x / (x.norm(dim=1, keepdim=True) + 1e-10)
            y = y / (y.norm(dim=1, keepdim=True) + 1e-10)
            d = ((x - y) ** 2 * lin).sum(1, keepdim=True)
            if mask is not None:
                m = F.interpolate(mask, size=d.shape[-2:], mode="area")
                total = total + (d * m).flatten(1).sum(1) / m.flatten(1).sum(1).clamp_min(1e-6)
            else:
                total = total + d.flatten(1).mean(1)
        return total


_cache: Dict[str, Optional[VGGPerceptual]] = {}
_lock = threading.Lock()


def get_perceptual(device=None) -> Optional[VGGPerceptual]:
    """The perceptual loss network if the manifest provides present weights, else None.

    ``PRIORPAINT_PERCEPTUAL=off`` disables it.
    """
    if os.environ.get("PRIORPAINT_PERCEPTUAL", "").lower() in ("0", "off", "no", "false"):
        return None
    dev = as_device(device)
    with _lock:
        if str(dev) in _cache:
            return _cache[str(dev)]
        net = None
        entries = [e for e in load_manifest().values() if e.kind == "perceptual" and e.architecture == "vgg16"]
        for entry in entries:
            if weights_status(entry)[0]:
                sd, _, _ = load_weights(entry)
                net = VGGPerceptual()
                net.load_weights(sd)
                net = net.eval().to(dev)
                for p in net.parameters():
                    p.requires_grad_(False)
                log.info("perceptual loss: using %s", entry.id)
                break
        if net is None:
            log.info("perceptual loss skipped: no 'perceptual' manifest entry with weights present "
                     "(%s); using pixel losses only", ", ".join(e.id for e in entries) or "none listed")
        _cache[str(dev)] = net
        return net


def clear_cache() -> None:
    with _lock:
        _cache.clear()
