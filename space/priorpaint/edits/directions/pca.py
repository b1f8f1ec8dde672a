"""GANSpace (Härkönen et al. 2020): PCA of the split-layer feature ``h = G_H(z)`` over sampled
latents (randomised SVD, features kept in float16, one pass of the generator), plus the
latent-space directions found, as GANSpace does for BigGAN, by regressing the PCA coordinates on ``z``.
"""

from __future__ import annotations

import logging
import math
from typing import Dict, Optional

import torch

from ...errors import InputError
from ...jobs import CancelToken, ProgressFn, checkpoint
from ...models.layered import LayeredGenerator

log = logging.getLogger(__name__)

from .base import GANSPACE_COMPONENTS, GANSPACE_SAMPLES, cached


def compute_ganspace(gen: LayeredGenerator, layer: Optional[str] = None, samples: int = GANSPACE_SAMPLES,
                     components: int = GANSPACE_COMPONENTS, seed: int = 0, batch: int = 500,
                     oversample: int = 20, power_iterations: int = 2,
                     progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None
                     ) -> Dict[str, torch.Tensor]:
    """PCA of ``G_H(z)`` at ``layer`` over ``samples`` latents (randomised SVD).

    Returns ``vectors`` (k × feature_dim, unit rows), ``sigma`` (standard deviation of the
    samples along each), ``explained`` (fraction of the total variance), ``mean``, and the
    latent-space directions ``z_vectors`` (k × latent_dim, unit rows) found by regressing
    each component's coordinate on ``z``, with that regression's ``z_r2``.
    """
    layer = layer or gen.default_split
    gen.index(layer)
    if samples < 2:
        raise InputError("GANSpace needs at least 2 samples")
    dev = gen.device
    gcpu = torch.Generator().manual_seed(int(seed))
    z_all = gen.sample_latents(samples, generator=gcpu)
    with torch.no_grad():
        shape = tuple(gen.forward_to(z_all[:1], layer).shape[1:])
    dim = math.prod(shape)
    k = max(1, min(components, samples - 1, dim))
    width = min(k + oversample, samples, dim)
    # One pass of the generator; features stored in float16 (20 000 × 16 384 = 650 MB for
    # the embedded model), sums in float64.
    store_dtype = torch.float16 if samples * dim > 2 ** 24 else torch.float32
    x = torch.empty((samples, dim), dtype=store_dtype, device=dev)
    total = torch.zeros(dim, dtype=torch.float64, device=dev)
    total_sq = torch.zeros((), dtype=torch.float64, device=dev)
    with torch.no_grad():
        for i in range(0, samples, batch):
            checkpoint(cancel, progress, "ganspace", 0.8 * i / samples)
            f = gen.forward_to(z_all[i:i + batch], layer).reshape(-1, dim)
            x[i:i + f.shape[0]] = f.to(store_dtype)
            f64 = f.double()
            total += f64.sum(0)
            total_sq += (f64 * f64).sum()
        mean = total / samples
        total_var = float((total_sq - samples * (mean * mean).sum()) / (samples - 1))
        mean32 = mean.float()

        def xc_mul(m: torch.Tensor) -> torch.Tensor:          # (X − 1μᵀ) @ m
            out = torch.cat([x[i:i + batch].float() @ m for i in range(0, samples, batch)])
            return out - (mean32 @ m)[None]

        def xct_mul(q: torch.Tensor) -> torch.Tensor:         # (X − 1μᵀ)ᵀ @ q
            acc = torch.zeros((dim, q.shape[1]), device=dev)
            for i in range(0, samples, batch):
                acc += x[i:i + batch].float().t() @ q[i:i + batch]
            return acc - mean32[:, None] * q.sum(0)[None]

        omega = torch.randn((dim, width), generator=torch.Generator().manual_seed(int(seed) + 1)).to(dev)
        y = xc_mul(omega)
        for it in range(power_iterations):
            checkpoint(cancel, progress, "ganspace", 0.8 + 0.15 * it / max(power_iterations, 1))
            q, _ = torch.linalg.qr(y)
            p, _ = torch.linalg.qr(xct_mul(q))
            y = xc_mul(p)
        q, _ = torch.linalg.qr(y)
        b = xct_mul(q).t()                                      # (width × dim) = Qᵀ Xc
        ub, s, vt = torch.linalg.svd(b.double(), full_matrices=False)
        vt = vt[:k]
        signs = torch.sign(vt.gather(1, vt.abs().argmax(1, keepdim=True)))
        signs[signs == 0] = 1
        vt = vt * signs
        coords = (q.double() @ ub[:, :k]) * s[:k][None] * signs.t()   # (samples × k) = Xc Vᵀ
        sigma = s[:k] / math.sqrt(samples - 1)
        # Latent directions: least squares z-coefficients of each component's coordinate.
        zf = z_all.reshape(samples, -1).double()
        zc = zf - zf.mean(0, keepdim=True)
        coef = torch.linalg.lstsq(zc, coords - coords.mean(0, keepdim=True)).solution   # (latent_dim × k)
        pred = zc @ coef
        resid = ((coords - coords.mean(0)) - pred).pow(2).sum(0)
        r2 = 1.0 - resid / (coords - coords.mean(0)).pow(2).sum(0).clamp_min(1e-30)
        zvec = coef.t() / coef.t().norm(dim=1, keepdim=True).clamp_min(1e-30)
    checkpoint(cancel, progress, "ganspace", 1.0)
    return {
        "vectors": vt.float().contiguous(),
        "sigma": sigma.float(),
        "explained": (sigma.pow(2) / max(total_var, 1e-30)).float(),
        "mean": mean32.reshape(shape).contiguous(),
        "z_vectors": zvec.float().contiguous(),
        "z_r2": r2.float(),
    }


def ganspace(gen: LayeredGenerator, layer: Optional[str] = None, samples: int = GANSPACE_SAMPLES,
             components: int = GANSPACE_COMPONENTS, seed: int = 0,
             progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None) -> Dict[str, torch.Tensor]:
    """GANSpace components of ``gen`` at ``layer`` (cached)."""
    layer = layer or gen.default_split
    params = {"layer": layer, "samples": int(samples), "components": int(components), "seed": int(seed)}
    return cached(gen, "ganspace", params,
                  lambda: compute_ganspace(gen, layer, samples, components, seed, progress=progress, cancel=cancel))

