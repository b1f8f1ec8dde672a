"""Projecting a photo crop into a LayeredGenerator: hybrid (layer-wise) inversion.

1. **z search** (iGAN-style multi-start): sample ``candidates`` latents, keep the
   ``starts`` best, and refine them together with Adam as one batch; keep the best.
2. **Feature refinement** (as in "Seeing What a GAN Cannot Generate"): optimise the
   split-layer feature ``h``, starting from ``G_H(z)``, so that ``G_F(h)`` matches the
   crop, with a penalty that keeps ``h`` near ``G_H(z)``.

Loss: L1 + L2 on pixels (weighted by the selection mask when ``masked``), plus the
perceptual loss when its weights are available.  Deterministic for a seed on one device.

Options for generators with several latent spaces and noise inputs (StyleGAN2):
``latent_space`` ("w" or "w+"), ``init="mean"`` (the mean latent is always one of the
starts), and ``optimize_noise`` (the StyleGAN2 projector's noise fitting: the noise maps of
the layers up to the split are optimised with the z search, kept decorrelated by the
multi-scale autocorrelation penalty ``lambda_noise`` and re-normalised after every step;
their effect is baked into ``h``, later layers keep their fixed noise).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F

from ..errors import InputError
from ..jobs import CancelToken, ProgressFn, checkpoint
from ..metrics import check_finite, pixel_loss, psnr
from ..models.layered import LayeredGenerator
from .perceptual import get_perceptual

log = logging.getLogger(__name__)


@dataclass
class ProjectionConfig:
    steps: int = 300             # total optimisation steps: a quarter in z, the rest refining h
    candidates: Optional[int] = None  # random latents scored before the search (None: the generator's default)
    starts: Optional[int] = None      # restarts optimised together as one batch (None: the generator's default)
    lr_z: float = 0.05
    lr_h: float = 0.05
    lambda_h: float = 0.01       # ‖h − G_H(z)‖² penalty (mean over elements)
    lambda_perceptual: float = 1.0
    masked: bool = False         # weight the loss by the selection mask
    seed: int = 0
    split: Optional[str] = None  # default: the generator's split layer
    perceptual: bool = True      # use the perceptual loss when its weights are available
    latent_space: Optional[str] = None  # e.g. "w" / "w+" (StyleGAN2); None: the generator's input space
    init: str = "sample"         # "mean": the generator's mean latent is always one of the starts
    optimize_noise: bool = False  # also fit the noise inputs up to the split (StyleGAN2 projector)
    lambda_noise: float = 1e5    # weight of the noise autocorrelation penalty

    @property
    def z_steps(self) -> int:
        return max(1, self.steps // 4) if self.steps > 0 else 0

    @property
    def refine_steps(self) -> int:
        return max(0, self.steps - self.z_steps)


@dataclass
class Projection:
    z: torch.Tensor              # (1, *latent_shape)
    h: torch.Tensor              # refined split-layer feature
    split: str
    psnr_z: float                # dB on the crop at model resolution, G(z)
    psnr: float                  # dB after refinement, G_F(h)
    seconds: Dict[str, float] = field(default_factory=dict)
    losses: List[float] = field(default_factory=list)
    perceptual_used: bool = False
    noise: Dict[str, torch.Tensor] = field(default_factory=dict)  # fitted noise inputs (baked into h)


def noise_regularization(noises: List[torch.Tensor]) -> torch.Tensor:
    """Per-sample sum over maps and scales (down to 8x8) of the squared mean products of
    each noise map with itself shifted by one pixel in x and in y: zero for white noise."""
    total = noises[0].new_zeros(noises[0].shape[0])
    for v in noises:
        while True:
            total = total + (v * v.roll(1, dims=3)).mean(dim=(1, 2, 3)).pow(2) \
                + (v * v.roll(1, dims=2)).mean(dim=(1, 2, 3)).pow(2)
            if v.shape[-1] <= 8:
                break
            v = F.avg_pool2d(v, 2)
    return total


def project(gen: LayeredGenerator, target: torch.Tensor, mask: Optional[torch.Tensor] = None,
            config: Optional[ProjectionConfig] = None, progress: Optional[ProgressFn] = None,
            cancel: Optional[CancelToken] = None) -> Projection:
    """Project ``target`` (1, 3, R, R) in [-1, 1] into ``gen``; see the module docstring."""
    cfg = config or ProjectionConfig()
    dev = gen.device
    target = target.to(dev)
    check_finite(target, "target image")
    if target.shape[-1] != gen.resolution:
        raise InputError(f"target is {target.shape[-1]} px, the model works at {gen.resolution} px")
    weight = None
    if mask is not None:
        mask = mask.to(dev)
        if cfg.masked:
            if float(mask.sum()) <= 0:
                raise InputError("the selection mask is empty: nothing to project")
            weight = mask
    split = cfg.split or gen.default_split
    gen.index(split)
    if cfg.init not in ("sample", "mean"):
        raise InputError(f"projection init must be 'sample' or 'mean', got {cfg.init!r}")
    percept = get_perceptual(dev) if cfg.perceptual else None

    def loss_fn(out):
        loss = pixel_loss(out, target, weight)
        if percept is not None:
            loss = loss + cfg.lambda_perceptual * percept(out, target.expand_as(out), weight)
        return loss

    seconds: Dict[str, float] = {}
    losses: List[float] = []
    total = max(cfg.z_steps + cfg.refine_steps, 1)
    t0 = time.perf_counter()
    # --- 1. multi-start z search --------------------------------------------------------
    defaults = dict(gen.projection_defaults)
    n_candidates = int(cfg.candidates if cfg.candidates is not None else defaults["candidates"])
    n_starts = int(cfg.starts if cfg.starts is not None else defaults["starts"])
    gcpu = torch.Generator().manual_seed(int(cfg.seed))
    with torch.no_grad():
        cands = gen.sample_latents(max(n_candidates, n_starts), generator=gcpu, space=cfg.latent_space)
        if cfg.init == "mean":
            cands = torch.cat([gen.mean_latent(space=cfg.latent_space).to(cands), cands])
        scores = torch.cat([loss_fn(gen(chunk)) for chunk in cands.split(64)])
        best = scores.argsort()[:n_starts]
        if cfg.init == "mean" and not bool((best == 0).any()):
            best = torch.cat([best.new_zeros(1), best[:-1]])
    z = cands[best].clone().requires_grad_(True)
    noise: Dict[str, torch.Tensor] = {}
    if cfg.optimize_noise:
        noise = {k: v.detach().expand(len(best), *v.shape[1:]).clone().requires_grad_(True)
                 for k, v in gen.noise_inputs(split).items()}

    def synth(lat, noise_in, stop=None):
        if not noise_in:
            return gen.run(lat, stop=stop)[0]
        return gen.run(lat, stop=stop, context=gen.make_context(lat, noise=noise_in))[0]

    opt = torch.optim.Adam([z] + list(noise.values()), lr=cfg.lr_z)
    per = scores[best]
    for i in range(cfg.z_steps):
        checkpoint(cancel, progress, "project", i / total, {"phase": "z"})
        per = loss_fn(synth(z, noise))
        loss = per.sum()
        if noise:
            loss = loss + cfg.lambda_noise * noise_regularization(list(noise.values())).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if noise:
            with torch.no_grad():
                for v in noise.values():
                    v -= v.mean(dim=(1, 2, 3), keepdim=True)
                    v *= v.pow(2).mean(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12).rsqrt()
        losses.append(float(per.detach().min()))
    with torch.no_grad():
        per = loss_fn(synth(z, noise))
        k = int(per.argmin())
        z_best = z[k:k + 1].detach().clone()
        noise_best = {name: v[k:k + 1].detach().clone() for name, v in noise.items()}
        h0 = synth(z_best, noise_best, stop=split).detach()
        psnr_z = psnr(gen.forward_from(split, h0, z=z_best), target, mask if cfg.masked else None)
    seconds["z_search"] = time.perf_counter() - t0
    # --- 2. split-layer refinement -------------------------------------------------------
    t1 = time.perf_counter()
    h = h0.clone().requires_grad_(True)
    opt = torch.optim.Adam([h], lr=cfg.lr_h)
    scale = h0.detach().pow(2).mean().clamp_min(1e-8)
    # Keep the best feature seen (by the data loss), so refinement never ends worse than
    # it started, even when the z search already matched the target.
    best_h, best_fit = h0, float("inf")
    for i in range(cfg.refine_steps + 1):
        out = gen.forward_from(split, h, z=z_best)
        fit = loss_fn(out)[0]
        if float(fit.detach()) < best_fit:
            best_fit, best_h = float(fit.detach()), h.detach().clone()
        if i == cfg.refine_steps:
            break
        checkpoint(cancel, progress, "project", (cfg.z_steps + i) / total, {"phase": "refine"})
        loss = fit + cfg.lambda_h * (h - h0).pow(2).mean() / scale
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    h = best_h
    with torch.no_grad():
        final = psnr(gen.forward_from(split, h, z=z_best), target, mask if cfg.masked else None)
    seconds["refine"] = time.perf_counter() - t1
    checkpoint(cancel, progress, "project", 1.0, {"phase": "done"})
    return Projection(z=z_best, h=h, split=split, psnr_z=psnr_z, psnr=final, seconds=seconds,
                      losses=losses, perceptual_used=percept is not None, noise=noise_best)
