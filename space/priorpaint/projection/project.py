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

**Hybrid projection** (``init="encoder"``; the default ``"auto"`` uses it whenever the model
has an encoder that matches its weights, see :mod:`priorpaint.projection.encoder`): the
inverting network's ``E(x) = (z, z_h)`` replaces the multi-start search — ``E_z(x)`` and a
few cheap perturbations of it are the starts of a short z optimisation, and ``E_h(x)`` (or
``G_H(z)``, whichever fits better) starts the split-layer refinement.  The 256 scored
candidates and all but 5 of the 75 z steps are gone; the refinement takes 112 steps instead
of 225, its rate warmed up from a fifth of ``lr_h`` over the first third of them (full-size
steps at once would throw away much of the good start), with Adam's second-moment average
over ~100 steps (β₂ 0.99) instead of ~1000 (see :class:`ProjectionConfig` for why).
Without a usable encoder the search runs and the projection carries a note saying why.
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

#: ProjectionConfig.init values ("sample" is the search's old name)
INITS = ("auto", "encoder", "search", "sample", "mean")
#: the values a user chooses from (CLI, API, page); "sample" and "mean" are the bench's
PUBLIC_INITS = ("auto", "encoder", "search")
#: the served app's default steps: a web page waits for them, so fewer than the command line's
SERVED_STEPS = 200


def setting(name: str):
    """The declared field of a projection setting (its default, and its metadata: ``help``,
    ``choices``, ``served``): the CLI, the app and the bench read their defaults from here."""
    from dataclasses import fields as _fields
    return next(f for f in _fields(ProjectionConfig) if f.name == name)


@dataclass
class ProjectionConfig:
    # total optimisation steps: a quarter in z, the rest refining h ("served": the app's default)
    steps: int = field(default=300, metadata={"help": "projection optimisation steps", "served": SERVED_STEPS})
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
    #: "auto": the model's encoder when one matches its weights, else the search (with a note);
    #: "encoder": hybrid (falls back to the search with a note); "search" (alias "sample"): the
    #: multi-start search; "mean": the search with the generator's mean latent always a start
    init: str = field(default="auto", metadata={"choices": PUBLIC_INITS})
    encoder_starts: int = 2      # hybrid: E_z(x) and encoder_starts - 1 perturbations of it
    encoder_sigma: float = 0.3   # hybrid: scale of those perturbations (the prior's std is 1)
    encoder_beta2: float = 0.99  # hybrid refinement: Adam's beta2 (the search keeps 0.999)
    encoder_lr_start: float = 0.2  # hybrid refinement: the rate starts at this share of lr_h ...
    encoder_warmup: float = 1 / 3  # ... and reaches lr_h linearly over this share of its steps
    optimize_noise: bool = False  # also fit the noise inputs up to the split (StyleGAN2 projector)
    lambda_noise: float = 1e5    # weight of the noise autocorrelation penalty

    @property
    def z_steps(self) -> int:
        return max(1, self.steps // 4) if self.steps > 0 else 0

    @property
    def refine_steps(self) -> int:
        return max(0, self.steps - self.z_steps)

    # Hybrid: the encoder replaces the 256-candidate scoring and shrinks the z phase to a
    # sixtieth of ``steps`` (5 of 300, 2 starts instead of 8: z only anchors the refinement
    # and z-space edits, the refinement starts from E_h(x)), and the refinement to three
    # eighths of ``steps`` (112 of 300 instead of 225).  Its rate is warmed up, from
    # ``encoder_lr_start`` · lr_h to lr_h over the first ``encoder_warmup`` of its steps: at
    # the full rate from the start, Adam's first steps (each element moves by about lr_h)
    # undo most of what E_h(x) got right (astronaut: 20.2 dB at the start, 21.2 dB after 5
    # steps at lr 0.05, 23.8 dB at 0.01), and by step 40 a refinement from E_h(x) is no
    # better than one from the search's G_H(z).  Held at the small rate it fits closer still,
    # but G′ then fits the photo's detail into its renderings and edits through it keep less
    # of the photo (docs/method/projection.md).  Adam's β₂ is ``encoder_beta2`` 0.99:
    # over a run this short the bias-corrected second moment with 0.999 is nearly the plain
    # mean of all squared gradients so far, the early (larger) ones included; 0.99 averages
    # over the last ~100.
    @property
    def encoder_z_steps(self) -> int:
        return max(1, self.steps // 60) if self.steps > 0 else 0

    @property
    def encoder_refine_steps(self) -> int:
        return max(1, 3 * self.steps // 8) if self.steps > 0 else 0

    def encoder_lr(self, step: int) -> float:
        """The hybrid refinement's rate at ``step``: the warm-up, then ``lr_h``."""
        warm = self.encoder_warmup * self.encoder_refine_steps
        if warm <= 0 or step >= warm:
            return self.lr_h
        return self.lr_h * (self.encoder_lr_start + (1 - self.encoder_lr_start) * step / warm)


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
    init: str = "search"         # what started the optimisation: "search" or "encoder"
    encoder: Optional[str] = None  # the encoder's manifest id (hybrid)
    psnr_encoder: Optional[float] = None  # dB of the encoder alone, G_F(E_h(x)) (hybrid)
    notes: List[str] = field(default_factory=list)  # e.g. why the encoder was not used


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
    if cfg.init not in INITS:
        raise InputError(f"projection init must be one of {', '.join(INITS)}, got {cfg.init!r}")
    percept = get_perceptual(dev) if cfg.perceptual else None
    notes: List[str] = []
    enc = enc_id = None
    if cfg.init in ("auto", "encoder"):
        from .encoder import encoder_for
        found = encoder_for(gen, split=split, space=cfg.latent_space)
        enc, enc_id = found.encoder, found.entry_id
        if enc is None and found.note:
            notes.append(found.note)
            log.info("projection: %s", found.note)
    use_encoder = enc is not None and not cfg.optimize_noise
    if enc is not None and cfg.optimize_noise:
        notes.append("the encoder does not predict noise inputs: multi-start search (optimize_noise)")
        enc_id = None

    def loss_fn(out):
        loss = pixel_loss(out, target, weight)
        if percept is not None:
            loss = loss + cfg.lambda_perceptual * percept(out, target.expand_as(out), weight)
        return loss

    seconds: Dict[str, float] = {}
    losses: List[float] = []
    z_steps = cfg.encoder_z_steps if use_encoder else cfg.z_steps
    refine_steps = cfg.encoder_refine_steps if use_encoder else cfg.refine_steps
    total = max(z_steps + refine_steps, 1)
    t0 = time.perf_counter()
    gcpu = torch.Generator().manual_seed(int(cfg.seed))
    h_enc, psnr_enc = None, None
    if use_encoder:
        # --- 1a. the inverting network: E(x) and a few perturbations are the starts -------
        with torch.no_grad():
            z_e, h_enc = enc(target)
            psnr_enc = psnr(gen.forward_from(split, h_enc, z=z_e), target, mask if cfg.masked else None)
            k = max(1, int(cfg.encoder_starts))
            jitter = torch.randn((k - 1,) + tuple(z_e.shape[1:]), generator=gcpu).to(z_e)
            z_start = torch.cat([z_e, z_e + cfg.encoder_sigma * jitter])
        seconds["encoder"] = time.perf_counter() - t0
    else:
        # --- 1b. multi-start z search ------------------------------------------------------
        defaults = dict(gen.projection_defaults)
        n_candidates = int(cfg.candidates if cfg.candidates is not None else defaults["candidates"])
        n_starts = int(cfg.starts if cfg.starts is not None else defaults["starts"])
        with torch.no_grad():
            cands = gen.sample_latents(max(n_candidates, n_starts), generator=gcpu, space=cfg.latent_space)
            if cfg.init == "mean":
                cands = torch.cat([gen.mean_latent(space=cfg.latent_space).to(cands), cands])
            scores = torch.cat([loss_fn(gen(chunk)) for chunk in cands.split(64)])
            best = scores.argsort()[:n_starts]
            if cfg.init == "mean" and not bool((best == 0).any()):
                best = torch.cat([best.new_zeros(1), best[:-1]])
        z_start = cands[best]
    z = z_start.clone().requires_grad_(True)
    noise: Dict[str, torch.Tensor] = {}
    if cfg.optimize_noise:
        noise = {k: v.detach().expand(len(z_start), *v.shape[1:]).clone().requires_grad_(True)
                 for k, v in gen.noise_inputs(split).items()}

    def synth(lat, noise_in, stop=None):
        if not noise_in:
            return gen.run(lat, stop=stop)[0]
        return gen.run(lat, stop=stop, context=gen.make_context(lat, noise=noise_in))[0]

    opt = torch.optim.Adam([z] + list(noise.values()), lr=cfg.lr_z)
    for i in range(z_steps):
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
        h_start = h0
        if h_enc is not None and float(loss_fn(gen.forward_from(split, h_enc, z=z_best))[0]) < float(per[k]):
            h_start = h_enc  # the layer-wise prediction fits better than G_H(z): refine from it
    seconds["z_search"] = time.perf_counter() - t0
    # --- 2. split-layer refinement -------------------------------------------------------
    t1 = time.perf_counter()
    h = h_start.clone().requires_grad_(True)
    opt = torch.optim.Adam([h], lr=cfg.lr_h, betas=(0.9, cfg.encoder_beta2 if use_encoder else 0.999))
    scale = h0.detach().pow(2).mean().clamp_min(1e-8)
    # Keep the best feature seen (by the data loss), so refinement never ends worse than
    # it started, even when the z search already matched the target.
    best_h, best_fit = h_start, float("inf")
    for i in range(refine_steps + 1):
        out = gen.forward_from(split, h, z=z_best)
        fit = loss_fn(out)[0]
        if float(fit.detach()) < best_fit:
            best_fit, best_h = float(fit.detach()), h.detach().clone()
        if i == refine_steps:
            break
        checkpoint(cancel, progress, "project", (z_steps + i) / total, {"phase": "refine"})
        if use_encoder:
            for group in opt.param_groups:
                group["lr"] = cfg.encoder_lr(i)
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
                      losses=losses, perceptual_used=percept is not None, noise=noise_best,
                      init="encoder" if use_encoder else "search", encoder=enc_id if use_encoder else None,
                      psnr_encoder=psnr_enc, notes=notes)
