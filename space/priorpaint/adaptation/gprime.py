"""The image-specific generator G′ (Bau et al., "Semantic Photo Manipulation with a
Generative Image Prior", SIGGRAPH 2019).

``G = G_F ∘ G_H`` is split at the projection's layer ``h``.  G′ keeps ``G_H`` exactly and
changes only ``G_F`` so that ``G′(z_h_e)`` reproduces the photo on the pixels the user
did not edit, while the edit itself (the difference ``z_h_e − z_h``) keeps the meaning
it has in ``G``.  Two ways of changing ``G_F``:

``multiplicative`` (the paper's, the default)
    the output of every layer of ``G_F`` before the image layer is multiplied by
    ``(1 + δ_i)``, ``δ_i`` shaped like that layer's output (channels × height × width),
    inserted with LayeredGenerator interventions.  ``δ`` is either a set of free tensors
    (``parametrisation="free"``, the default here) or the output of a small network ``R``
    with no input (``"network"``, as in the paper): a learned constant code at the first
    perturbed layer's resolution, upsampled with 3×3 convolutions, one zero-initialised
    1×1 head per layer.  Both start at ``δ = 0``, where G′ equals G exactly.
``weights`` (PTI-style, "Pivotal Tuning")
    a private copy of ``G_F``'s layers is fine-tuned with a small learning rate, with a
    locality regulariser: on random latents of the prior (moved part of the way towards
    the photo's latent) the tuned ``G_F`` must still produce what ``G_F`` produces.  The
    shared, cached generator is never modified.

Loss, minimised with Adam: L1 on the pixels outside the edit mask (weights ``w`` in
[0, 1] at model resolution), plus the perceptual loss on the same pixels when its weights
are present, plus ``λ_reg · Σ_i mean(c_i · δ_i²)`` (per-element mean, so one λ fits layers
of any size; for ``weights``: the locality term).  ``c_i = 1 + inside_penalty · m_i``
where ``m_i`` is the share of the edit region each position of layer ``i`` covers (the
edit mask area-resized to the layer): a δ inside the edit region has no pixel to match
and would only learn, through the convolutions' reach across the mask border, to undo
the edit there.  This edit-region weight is our addition to the paper's loss: it keeps the
edit's fidelity high for a small cost in PSNR outside (``priorpaint bench --only adaptation``).

Split and layers for the DCGAN: the paper perturbs the last five layers of a 15-layer
ProGAN (``h = n − 5``: the layers that render fine detail, not layout).  The embedded
64-px DCGAN has five layers ``b4 b8 b16 b32 rgb``; its split is ``b8`` (the projection's
layer), so ``G_F = b16, b32, rgb`` and G′ perturbs ``b16`` (128×16×16) and ``b32``
(64×32×32): the same share of the network (the part after the projection's layer, up to
but excluding the image layer), and the two layers that decide texture and colour, not
pose or layout.

Speed (the paper's recipe is Adam lr 0.1 for 1000 steps, :func:`naive_config`): the first
perturbed layer's input does not depend on ``δ``, so its output is computed once and each
step runs only the rest of ``G_F`` (a forward pass saved); the pixel loss is
Charbonnier (``sqrt(d² + ε²) − ε``, ε = 0.01: L1 away from zero, smooth at it, which Adam
converges on faster than on the kink of L1); the rate is held at 0.15 then decays (cosine)
over the last 30 % of 120 steps; the fit stops earlier when the loss has not improved by
``min_improvement`` (relative) over the last ``patience`` steps (typical of warm starts).
The benchmark compares it with the naive recipe at equal PSNR.

Which parametrisation: free δ's are the default; the network ``R`` (smooth δ's, fewer
parameters) and the weight tuning (tuned weights change how the edit renders too) reach
less in the same steps at a higher cost per step (figures: docs/method/adaptation.md).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..jobs import CancelToken, ProgressFn, checkpoint
from ..metrics import check_finite, pixel_loss
from ..models.layered import LayeredGenerator

REFUSE = "refusing to adapt the generator"

METHODS = ("multiplicative", "weights")
PARAMETRISATIONS = ("free", "network")


@dataclass
class AdaptConfig:
    method: str = "multiplicative"        # "multiplicative" (paper) or "weights" (PTI-style)
    fit: str = "unedited"                 # rendering: fit G′(z_h_e) on the unedited pixels (paper),
                                          # or "reconstruction": G′(z_h) on the whole crop, once
    parametrisation: str = "free"         # multiplicative only: "free" tensors or "network" R
    layers: Optional[Sequence[str]] = None  # perturbed layers; default: G_F's layers before the image layer
    steps: int = 120                      # most optimisation steps (early stopping may end sooner)
    lr: Optional[float] = None            # default per method (see default_lr)
    warmup: int = 0                       # linear learning-rate warm-up steps
    lambda_reg: float = 0.05              # λ_reg · Σ mean(δ²) (multiplicative)
    inside_penalty: float = 30.0          # δ² weighs (1 + this) where a layer sees the edit region
    lambda_locality: float = 1.0          # weights: ‖G_F'(h_r) − G_F(h_r)‖₁ on random latents
    locality_batch: int = 2               # weights: random latents per step
    locality_mix: float = 0.5             # weights: h_r = h + mix·(G_H(z_r) − h)
    pixel_loss: str = "charbonnier"       # smoothed L1 (default), "l1" (the paper's) or "l1+l2"
    l2_weight: float = 1.0                # the L2 term's weight in "l1+l2"
    lambda_perceptual: float = 1.0
    perceptual: bool = True               # use the perceptual term when its weights are present
    patience: int = 25                    # early stopping window (steps)
    min_improvement: float = 2e-3         # relative loss improvement the window must show
    min_steps: int = 40                   # never stop before this many steps
    early_stop: bool = True
    cache_first: bool = True              # compute the first perturbed layer's input once (it has no δ)
    schedule: str = "hold"                # "hold" (constant, cosine at the end), "cosine" or "constant"
    decay: float = 0.3                    # "hold": the share of the steps that decays
    seed: int = 0                         # the weights variant's random latents

    def default_lr(self) -> float:
        if self.lr is not None:
            return float(self.lr)
        if self.method == "weights":
            return 2e-3
        return 0.15 if self.parametrisation == "free" else 0.03

    def validate(self) -> "AdaptConfig":
        if self.method not in METHODS:
            raise InputError(f"adaptation method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.parametrisation not in PARAMETRISATIONS:
            raise InputError(f"adaptation parametrisation must be one of {', '.join(PARAMETRISATIONS)}, "
                             f"got {self.parametrisation!r}")
        if self.fit not in ("unedited", "reconstruction"):
            raise InputError(f"adaptation fit must be unedited or reconstruction, got {self.fit!r}")
        if self.steps < 0:
            raise InputError("adaptation steps must be 0 or more")
        if self.schedule not in ("cosine", "hold", "constant"):
            raise InputError(f"adaptation schedule must be cosine, hold or constant, got {self.schedule!r}")
        if self.pixel_loss not in ("l1", "l1+l2", "charbonnier"):
            raise InputError(f"adaptation pixel loss must be l1, l1+l2 or charbonnier, got {self.pixel_loss!r}")
        return self


def naive_config(**changes) -> AdaptConfig:
    """The paper's recipe as stated: Adam lr 0.1, 1000 steps, constant rate, L1, no early
    stop, the whole ``G_F`` run every step (same δ regulariser as the default)."""
    base = AdaptConfig(steps=1000, lr=0.1, warmup=0, schedule="constant", early_stop=False,
                       cache_first=False, pixel_loss="l1")
    return replace(base, **changes)


def perturbed_layers(gen: LayeredGenerator, split: str, layers: Optional[Sequence[str]] = None) -> List[str]:
    """The layers of ``G_F`` that G′ perturbs (default: all but the image layer)."""
    after = gen.layers_after(split)
    if not after:
        raise InputError(f"split layer {split!r} is the generator's last layer: nothing to adapt")
    if layers is None:
        return after[:-1]
    layers = list(layers)
    bad = [n for n in layers if n not in after[:-1]]
    if bad:
        raise InputError(f"G′ can perturb only the layers after the split and before the image layer "
                         f"({', '.join(after[:-1]) or 'none'}), not {', '.join(bad)}")
    return sorted(layers, key=gen.index)


# -- parametrisations of δ -------------------------------------------------------------------
class FreeDeltas(nn.Module):
    """One free tensor per layer, shaped like that layer's output (batch 1)."""

    def __init__(self, shapes: Dict[str, Sequence[int]], device):
        super().__init__()
        self.names = list(shapes)
        self.deltas = nn.ParameterList([nn.Parameter(torch.zeros((1,) + tuple(shapes[n]), device=device))
                                        for n in self.names])

    def forward(self) -> Dict[str, torch.Tensor]:
        return dict(zip(self.names, self.deltas))


class DeltaNet(nn.Module):
    """The paper's ``R``: a network with no input whose outputs are the δ's.

    A learned constant code at the first perturbed layer's resolution; for each later
    layer the code is upsampled (bilinear) to that layer's size and passed through a 3×3
    convolution + LeakyReLU; every layer's δ is a 1×1 head of the code at its size.  The
    heads start at zero, so ``δ = 0`` and G′ = G before the fit.
    """

    def __init__(self, shapes: Dict[str, Sequence[int]], device, width: int = 32, seed: int = 0):
        super().__init__()
        self.names = list(shapes)
        first = shapes[self.names[0]]
        g = torch.Generator().manual_seed(int(seed))
        self.code = nn.Parameter((0.1 * torch.randn((1, width) + tuple(first[1:]), generator=g)).to(device))
        self.sizes = [tuple(shapes[n][1:]) for n in self.names]
        self.body = nn.ModuleList()
        self.heads = nn.ModuleList()
        for i, n in enumerate(self.names):
            self.body.append(nn.Identity() if i == 0 else nn.Conv2d(width, width, 3, padding=1))
            head = nn.Conv2d(width, int(shapes[n][0]), 1)
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
            self.heads.append(head)
        self.to(device)

    def forward(self) -> Dict[str, torch.Tensor]:
        out = {}
        x = self.code
        for i, n in enumerate(self.names):
            if i > 0:
                if x.shape[-2:] != self.sizes[i]:
                    x = F.interpolate(x, size=self.sizes[i], mode="bilinear", align_corners=False)
                x = F.leaky_relu(self.body[i](x), 0.2)
            out[n] = self.heads[i](x)
        return out


# -- G′ ---------------------------------------------------------------------------------------
@dataclass
class GPrime:
    """A fitted image-specific generator for one split; call it like ``G_F``."""
    gen: LayeredGenerator
    split: str
    method: str
    layers: List[str]
    module: nn.Module                     # FreeDeltas / DeltaNet, or the tuned G_F layers (ModuleDict)
    config: AdaptConfig
    steps: int = 0
    seconds: float = 0.0
    losses: List[float] = field(default_factory=list)
    psnrs: List[float] = field(default_factory=list)  # dB on the fitted pixels before each step
    stopped_early: bool = False
    fitted_edit: Optional[np.ndarray] = None   # (R, R) bool: the edit region the fit avoided
    fitted_h: Optional[torch.Tensor] = None
    fitted_z: Optional[torch.Tensor] = None

    # The deltas as plain tensors (no graph), for rendering.
    def deltas(self) -> Dict[str, torch.Tensor]:
        if self.method != "multiplicative":
            return {}
        with torch.no_grad():
            return {k: v.detach() for k, v in self.module().items()}

    def __call__(self, h: torch.Tensor, z: Optional[torch.Tensor] = None,
                 interventions: Optional[Dict[str, Callable]] = None) -> torch.Tensor:
        with torch.no_grad():
            if self.method == "multiplicative":
                return run_multiplicative(self.gen, self.split, h, z, self.deltas(), interventions)
            return run_tuned(self.gen, self.split, h, z, self.module, interventions)

    def nbytes(self) -> int:
        n = sum(p.numel() * p.element_size() for p in self.module.parameters())
        for t in (self.fitted_h, self.fitted_z):
            n += 0 if t is None else t.numel() * t.element_size()
        return n


def _compose(delta: torch.Tensor, edit: Optional[Callable]) -> Callable:
    # G′'s layer is "layer, then × (1 + δ)"; an edit's own intervention acts on G′'s output.
    if edit is None:
        return lambda x: x * (1.0 + delta)
    return lambda x: edit(x * (1.0 + delta))


def run_multiplicative(gen: LayeredGenerator, split: str, h: torch.Tensor, z: Optional[torch.Tensor],
                       deltas: Dict[str, torch.Tensor],
                       interventions: Optional[Dict[str, Callable]] = None) -> torch.Tensor:
    """``G′_F(h)``: ``G_F`` with each perturbed layer's output multiplied by ``(1 + δ)``."""
    inter = dict(interventions or {})
    for name, d in deltas.items():
        inter[name] = _compose(d, inter.get(name))
    return gen.forward_from(split, h, interventions=inter, z=z)


def run_tuned(gen: LayeredGenerator, split: str, h: torch.Tensor, z: Optional[torch.Tensor],
              tuned: nn.ModuleDict, interventions: Optional[Dict[str, Callable]] = None) -> torch.Tensor:
    """``G_F`` with its layers replaced by the private tuned copies (the shared ``gen`` is untouched)."""
    return gen.run_with(dict(tuned.items()), h, start=split, interventions=interventions, z=z)


def _lr_at(cfg: AdaptConfig, base: float, step: int) -> float:
    if cfg.warmup > 0 and step < cfg.warmup:
        return base * (step + 1) / cfg.warmup
    if cfg.schedule == "constant" or cfg.steps <= cfg.warmup:
        return base
    t = (step - cfg.warmup) / max(cfg.steps - cfg.warmup, 1)
    if cfg.schedule == "hold":  # constant, then a cosine over the last `decay` of the steps
        t = max(0.0, (t - (1.0 - cfg.decay)) / max(cfg.decay, 1e-6))
    return base * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0))))


def fit_gprime(gen: LayeredGenerator, split: str, h: torch.Tensor, z: Optional[torch.Tensor],
               target: torch.Tensor, weight: torch.Tensor, config: Optional[AdaptConfig] = None,
               interventions: Optional[Dict[str, Callable]] = None, init: Optional[GPrime] = None,
               progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None,
               stage: str = "adapt") -> GPrime:
    """Fit G′ so that ``G′(h)`` matches ``target`` where ``weight`` > 0.

    ``h``: the (edited) split-layer feature ``z_h_e``; ``z``: its latent (context of later
    layers); ``target`` (1, 3, R, R) in [-1, 1]; ``weight`` (1, 1, R, R) in [0, 1], the
    unedited pixels.  ``init``: a fitted G′ of the same kind to warm-start from (it is
    copied, not modified).  Calls :func:`priorpaint.jobs.checkpoint` every step.
    """
    cfg = (config or AdaptConfig()).validate()
    dev = gen.device
    h = h.detach().to(dev)
    z = None if z is None else z.detach().to(dev)
    target = target.detach().to(dev)
    weight = weight.detach().to(dev).float()
    check_finite(h, "the split-layer latent", REFUSE)
    if z is not None:
        check_finite(z, "the latent", REFUSE)
    check_finite(target, "the target image", REFUSE)
    if float(weight.sum()) <= 0:
        raise InputError("the edit mask covers the whole crop: no unedited pixels are left to fit G′ to")
    layers = perturbed_layers(gen, split, cfg.layers)
    percept = None
    if cfg.perceptual and cfg.lambda_perceptual > 0:
        from ..projection.perceptual import get_perceptual
        percept = get_perceptual(dev)

    t0 = time.perf_counter()
    inter = dict(interventions or {})
    with torch.no_grad():
        _, feats = gen.run(h, start=split, stop=layers[-1], capture=layers, interventions=inter, z=z)
    shapes = {n: tuple(feats[n].shape[1:]) for n in layers}

    if cfg.method == "multiplicative":
        if init is not None and init.method == "multiplicative" and init.layers == layers \
                and init.config.parametrisation == cfg.parametrisation:
            module = copy.deepcopy(init.module)
        elif cfg.parametrisation == "free":
            module = FreeDeltas(shapes, dev)
        else:
            module = DeltaNet(shapes, dev, seed=cfg.seed)
        # δ² is weighed up where a layer sees the edit region (1 − weight), if asked.
        reg_maps = {}
        for n in layers:
            inside = F.interpolate(1.0 - weight, size=shapes[n][-2:], mode="area") \
                if len(shapes[n]) == 3 else torch.zeros(())
            reg_maps[n] = 1.0 + cfg.inside_penalty * inside.to(dev)
        # The first perturbed layer's output does not depend on δ: compute it once (without
        # that layer's own edit intervention, which acts after the × (1 + δ)).
        first = layers[0]
        context = gen.make_context(z)
        first_edit = inter.pop(first, None)
        rest_edit = inter
        if cfg.cache_first:
            with torch.no_grad():
                base_first = gen.run(h, start=split, stop=first, interventions=rest_edit, z=z,
                                     context=context)[0]

        def forward():
            d = module()
            if cfg.cache_first:
                x = base_first
            else:
                x = gen.run(h, start=split, stop=first, interventions=rest_edit, z=z, context=context)[0]
            x = x * (1.0 + d[first])
            if first_edit is not None:
                x = first_edit(x)
            rest = dict(rest_edit)
            for n in layers[1:]:
                rest[n] = _compose(d[n], rest.get(n))
            out = gen.run(x, start=first, interventions=rest, z=z, context=context)[0]
            reg = sum((v.pow(2) * reg_maps[n]).mean() for n, v in d.items())
            return out, cfg.lambda_reg * reg
    else:
        names = gen.layers_after(split)
        if init is not None and init.method == "weights":
            module = copy.deepcopy(init.module)
        else:
            module = nn.ModuleDict({n: copy.deepcopy(gen.layers[n]) for n in names})
        module.eval()  # keep normalisation layers on their running statistics
        for p in module.parameters():
            p.requires_grad_(True)
        g = torch.Generator().manual_seed(int(cfg.seed))

        def forward():
            out = run_tuned(gen, split, h, z, module, interventions)
            zr = gen.sample_latents(cfg.locality_batch, generator=g)
            with torch.no_grad():
                hr = gen.forward_to(zr, split)
                hr = h + cfg.locality_mix * (hr - h)
                ref = gen.forward_from(split, hr, z=zr)
            # The random latents are independent of the photo, so a batch of them shares
            # nothing with ``z``: run them with their own context.
            loc = (run_tuned(gen, split, hr, zr, module) - ref).abs().mean()
            return out, cfg.lambda_locality * loc

    params = list(module.parameters())
    for p in params:  # a warm start copies a fitted (frozen) module
        p.requires_grad_(True)
    base_lr = cfg.default_lr()
    opt = torch.optim.Adam(params, lr=base_lr)
    losses: List[float] = []
    psnrs: List[float] = []
    best = float("inf")
    stopped = False
    steps_done = 0
    for step in range(cfg.steps):
        checkpoint(cancel, progress, stage, step / max(cfg.steps, 1), {"method": cfg.method})
        for group in opt.param_groups:
            group["lr"] = _lr_at(cfg, base_lr, step)
        out, reg = forward()
        loss = pixel_loss(out, target, weight, cfg.pixel_loss, cfg.l2_weight, per_sample=False)
        if percept is not None:
            loss = loss + cfg.lambda_perceptual * percept(out, target, weight)[0]
        total = loss + reg
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        value = float(total.detach())
        losses.append(value)
        with torch.no_grad():
            err = ((out.detach().clamp(-1, 1) - target) ** 2 * weight).sum() / (weight.sum() * out.shape[1])
            psnrs.append(float(10.0 * torch.log10(4.0 / err.clamp_min(1e-12))))
        steps_done = step + 1
        best = min(best, value)
        if cfg.early_stop and steps_done >= max(cfg.min_steps, cfg.patience + 1):
            before = min(losses[:-cfg.patience])
            if before - best <= cfg.min_improvement * abs(before):
                stopped = True
                break
    checkpoint(cancel, progress, stage, 1.0, {"method": cfg.method, "steps": steps_done})
    for p in module.parameters():
        p.requires_grad_(False)
    return GPrime(gen=gen, split=split, method=cfg.method, layers=layers, module=module, config=cfg,
                  steps=steps_done, seconds=time.perf_counter() - t0, losses=losses, psnrs=psnrs,
                  stopped_early=stopped,
                  fitted_h=h, fitted_z=z)


