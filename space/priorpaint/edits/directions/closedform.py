"""SeFa (Shen & Zhou 2021): closed-form directions, the eigenvectors of ``AᵀA`` where ``A``
is the generator's first affine map from the latent.

For the DCGAN ``A`` is the first ConvTranspose2d and its eval-mode BatchNorm (100 → 512×4×4).
A generator may supply its own matrix with ``sefa_weight() -> (out_features, latent_dim)``
(StyleGAN2: the stacked style-modulation weights); otherwise the prefix of the first layer
up to its first non-linearity is read off numerically and checked to be affine.
"""

from __future__ import annotations

import logging
import math
from typing import Dict, List

import torch
from torch import nn

from ...errors import ModelError
from ...models.layered import LayeredGenerator
from ... import store

log = logging.getLogger(__name__)

from .base import cached


def _canonical_sign(vectors: torch.Tensor) -> torch.Tensor:
    """Flip each row so that its entry of largest magnitude is positive (deterministic signs)."""
    idx = vectors.abs().argmax(dim=1, keepdim=True)
    signs = torch.sign(vectors.gather(1, idx))
    signs[signs == 0] = 1
    return vectors * signs


# =======================================================================================
# SeFa
# =======================================================================================
_NONLINEAR = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.ELU, nn.PReLU,
              nn.Softplus, nn.Hardtanh, nn.ReLU6, nn.Mish, nn.Softmax, nn.Hardswish, nn.SELU, nn.CELU)


def _leaves(module: nn.Module) -> List[nn.Module]:
    kids = list(module.children())
    if not kids:
        return [module]
    out: List[nn.Module] = []
    for k in kids:
        out += _leaves(k)
    return out


def sefa_weight(gen: LayeredGenerator) -> torch.Tensor:
    """The matrix ``A`` (out_features × latent_dim) of the generator's first affine map.

    ``gen.sefa_weight()`` when the generator defines it (StyleGAN2: its style modulation
    weights); else the first layer's modules up to the first non-linearity, which must
    be affine in the latent (checked).
    """
    own = getattr(gen, "sefa_weight", None)
    if callable(own):
        a = own()
        if a.dim() != 2 or a.shape[1] != math.prod(gen.latent_shape):
            raise ModelError(f"{store.model_key(gen)}.sefa_weight() must be (out, {math.prod(gen.latent_shape)}), "
                             f"got {tuple(a.shape)}")
        return a.detach().float()
    first = gen.layers[gen.layer_names[0]]
    prefix: List[nn.Module] = []
    for m in _leaves(first):
        if isinstance(m, _NONLINEAR):
            break
        prefix.append(m)
    if not any(p.numel() for m in prefix for p in m.parameters()):
        raise ModelError(f"{store.model_key(gen)}: the first layer has no affine map of the latent before its "
                         "first non-linearity; give the generator a sefa_weight() method")
    f = nn.Sequential(*prefix).eval()
    d = math.prod(gen.latent_shape)
    dev = gen.device
    with torch.no_grad():
        eye = torch.eye(d, device=dev).reshape((d,) + tuple(gen.latent_shape))
        zero = torch.zeros((1,) + tuple(gen.latent_shape), device=dev)
        base = f(zero).reshape(1, -1)
        a = (f(eye).reshape(d, -1) - base)
        twice = f(2 * eye).reshape(d, -1) - base
    if not torch.allclose(twice, 2 * a, rtol=1e-3, atol=1e-4 * float(a.abs().max().clamp_min(1e-12))):
        raise ModelError(f"{store.model_key(gen)}: the first layer's map before its first non-linearity is not "
                         "affine; give the generator a sefa_weight() method")
    return a.t().contiguous()


def compute_sefa(gen: LayeredGenerator) -> Dict[str, torch.Tensor]:
    """All SeFa directions: unit latent vectors (rows), by decreasing eigenvalue."""
    a = sefa_weight(gen).double()
    evals, evecs = torch.linalg.eigh(a.t() @ a)
    order = torch.argsort(evals, descending=True)
    vectors = _canonical_sign(evecs[:, order].t().contiguous())
    return {"vectors": vectors.float(), "eigenvalues": evals[order].float()}


def sefa(gen: LayeredGenerator) -> Dict[str, torch.Tensor]:
    """SeFa directions of ``gen`` (cached)."""
    return cached(gen, "sefa", {}, lambda: compute_sefa(gen))

