"""The DCGAN generator (Radford et al.; the PyTorch tutorial layout) as a LayeredGenerator.

``z (nz) -> b4 -> b8 -> b16 -> b32 -> rgb``: four transposed-convolution blocks
(ConvTranspose2d, BatchNorm, ReLU), each doubling the resolution from 4×4, and a last
transposed convolution with tanh.  Layer names carry the output resolution.  State-dict
keys match the tutorial's ``main.<i>.*`` keys, so its checkpoints load as they are.
"""

from __future__ import annotations

import math
from typing import Dict

import torch
from torch import nn

from .layered import LayeredGenerator


class _Flat(nn.Module):
    """Presents the flat latent ``(N, nz)`` to the first transposed convolution."""

    def forward(self, z):
        return z.reshape(z.shape[0], -1, 1, 1)


class DCGANGenerator(LayeredGenerator):
    architecture = "dcgan"

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3, resolution: int = 64,
                 split: str = "b8"):
        n_up = int(round(math.log2(resolution))) - 2
        if 2 ** (n_up + 2) != resolution or n_up < 2:
            raise ValueError(f"DCGAN resolution must be a power of two >= 16, got {resolution}")
        super().__init__(resolution=resolution, latent_shape=(nz,), default_split=split)
        self.config = {"nz": nz, "ngf": ngf, "nc": nc, "resolution": resolution}
        chans = [ngf * 2 ** (n_up - 1 - i) for i in range(n_up)]  # 512, 256, 128, 64 for 64 px
        # Keep the tutorial's flat nn.Sequential numbering: main.0 = ConvT, main.1 = BN, ...
        main = []
        prev = nz
        for i, c in enumerate(chans):
            stride, pad = (1, 0) if i == 0 else (2, 1)
            main += [nn.ConvTranspose2d(prev, c, 4, stride, pad, bias=False), nn.BatchNorm2d(c), nn.ReLU(True)]
            prev = c
        main += [nn.ConvTranspose2d(prev, nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*main)
        named = []
        for i in range(n_up):
            block = nn.Sequential(*(self.main[3 * i + j] for j in range(3)))
            if i == 0:
                block = nn.Sequential(_Flat(), block)
            named.append((f"b{4 * 2 ** i}", block))
        named.append(("rgb", nn.Sequential(self.main[-2], self.main[-1])))
        self._set_layers(named)
        self.eval()

    def state_dict(self, *args, **kwargs):
        # Only the tutorial's keys: the named blocks share the same modules.
        sd = super().state_dict(*args, **kwargs)
        prefix = kwargs.get("prefix", "")
        return type(sd)((k, v) for k, v in sd.items() if k[len(prefix):].startswith("main."))

    def load_state_dict(self, state_dict: Dict[str, torch.Tensor], strict: bool = True, assign: bool = False):
        sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state_dict.items()}
        expected = set(self.state_dict().keys())
        missing = sorted(expected - set(sd))
        unexpected = sorted(set(sd) - expected)
        if strict and (missing or unexpected):
            raise ValueError(
                "not a DCGAN generator state dict of this configuration: "
                f"missing {missing[:6]}{'...' if len(missing) > 6 else ''}, "
                f"unexpected {unexpected[:6]}{'...' if len(unexpected) > 6 else ''}")
        own = self.state_dict()
        for k, v in sd.items():
            if k in own and tuple(own[k].shape) != tuple(v.shape):
                raise ValueError(f"DCGAN weight {k} has shape {tuple(v.shape)}, the config expects "
                                 f"{tuple(own[k].shape)}")
        # The named blocks share their modules with ``main``, so loading ``main.*`` fills both.
        return nn.Module.load_state_dict(self, sd, strict=False, assign=assign)

    @classmethod
    def from_config(cls, config: dict, split: str = "b8") -> "DCGANGenerator":
        return cls(nz=int(config.get("nz", 100)), ngf=int(config.get("ngf", 64)),
                   nc=int(config.get("nc", 3)), resolution=int(config.get("resolution", 64)),
                   split=split)
