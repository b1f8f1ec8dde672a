"""Training the inverting network of :mod:`priorpaint.projection.encoder` with the generator
frozen, on its own samples: latent regression on sampled pairs, reconstruction through ``G``
(pixel, plus the perceptual loss when its weights are present), and augmentations (crops,
shifts, small rotations, colour jitter, white balance, blur) on which only the
reconstruction losses apply.  Deterministic for a seed on one device; resumable bit for bit
from a checkpoint.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F

from ..errors import InputError, ModelError
from ..models.layered import LayeredGenerator
from .. import store
from .encoder import Encoder
from .perceptual import get_perceptual

log = logging.getLogger(__name__)


# -- augmentations -------------------------------------------------------------------------------

def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Per-sample random crop/scale/shift/rotation, colour jitter, white balance and blur of
    images in [-1, 1]; all parameters drawn (on the CPU) from ``g``."""
    n, dev = x.shape[0], x.device

    def u(lo, hi, *shape):
        return (torch.rand((n,) + shape, generator=g) * (hi - lo) + lo).to(dev)

    scale, angle = u(0.8, 1.1), u(-0.12, 0.12)      # zoom in up to 25 %, out 10 %; ±7°
    tx, ty = u(-0.12, 0.12), u(-0.12, 0.12)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    rgb = (x + 1) / 2
    gray = (rgb * torch.tensor([0.299, 0.587, 0.114], device=dev).view(1, 3, 1, 1)).sum(1, keepdim=True)
    rgb = gray + (rgb - gray) * u(0.5, 1.4, 1, 1, 1)                               # saturation
    mean = rgb.mean(dim=(1, 2, 3), keepdim=True)
    rgb = mean + (rgb - mean) * u(0.7, 1.35, 1, 1, 1)                              # contrast
    rgb = rgb * u(0.88, 1.12, 3, 1, 1) + u(-0.12, 0.12, 1, 1, 1)                  # white balance, brightness
    x = rgb.clamp(0, 1) * 2 - 1
    sigma = float(torch.rand((), generator=g)) * 1.0 + 0.3
    blur = (torch.rand(n, generator=g) < 0.35).to(dev).view(n, 1, 1, 1).float()
    k = torch.arange(5, dtype=x.dtype, device=dev) - 2
    k = torch.exp(-k * k / (2 * sigma * sigma))
    k = (k / k.sum())
    pad = F.pad(x, (2, 2, 2, 2), mode="reflect")
    blurred = F.conv2d(pad, k.view(1, 1, 1, 5).repeat(3, 1, 1, 1), groups=3)
    blurred = F.conv2d(blurred, k.view(1, 1, 5, 1).repeat(3, 1, 1, 1), groups=3)
    return blur * blurred + (1 - blur) * x


# -- training ------------------------------------------------------------------------------------

@dataclass
class EncoderTrainConfig:
    steps: int = 600
    batch: int = 16
    lr: float = 2e-3             # Adam, cosine decay to 5 % over the run
    seed: int = 0
    width: int = 16
    max_channels: int = 64
    augmented: float = 0.75      # fraction of each batch augmented (reconstruction losses only)
    lambda_z: float = 1.0        # latent regression of z (clean samples)
    lambda_h: float = 1.0        # latent regression of z_h, relative to its mean square (clean samples)
    lambda_rec_h: float = 1.0    # L(G_F(E_h(x)), x)
    lambda_rec_z: float = 0.5    # L(G(E_z(x)), x), on a quarter of the batch (a full pass through G)
    lambda_perceptual: float = 1.0
    perceptual: bool = True      # use the perceptual loss when its weights are present
    split: Optional[str] = None
    space: Optional[str] = None
    checkpoint_every: int = 100

    def key(self) -> dict:
        """What a checkpoint must agree on to be resumed (everything but the bookkeeping)."""
        d = asdict(self)
        d.pop("checkpoint_every")
        return d


@dataclass
class TrainResult:
    encoder: Encoder
    history: List[Dict[str, float]] = field(default_factory=list)  # per step: loss terms
    seconds: float = 0.0          # training time of this run (resumed runs: all runs together)
    resumed_from: int = 0
    perceptual_used: bool = False


def _pixel(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    diff = out - target
    return (diff.abs() + diff * diff).mean()


def _step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + int(step) * 7919 + 17) % (2 ** 63))


def _lr(cfg: EncoderTrainConfig, step: int) -> float:
    warm = min(1.0, (step + 1) / 50)
    return cfg.lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / max(cfg.steps, 1))))


def train_encoder(gen: LayeredGenerator, config: Optional[EncoderTrainConfig] = None,
                  checkpoint_path: Optional[Path] = None,
                  on_step: Optional[Callable[[int, int, Dict[str, float]], None]] = None) -> TrainResult:
    """Train an encoder for ``gen`` (frozen) on its own samples; see the module docstring.

    With ``checkpoint_path`` the state is saved every ``checkpoint_every`` steps and a run
    finding a checkpoint of the same settings and generator resumes from it (bit for bit on
    the same device).  ``on_step(step, steps, losses)`` is called after every step.
    """
    cfg = config or EncoderTrainConfig()
    if cfg.steps < 1 or cfg.batch < 2:
        raise InputError("encoder training needs steps >= 1 and batch >= 2")
    dev = gen.device
    split = cfg.split or gen.default_split
    gen.index(split)
    torch.manual_seed(int(cfg.seed))  # the encoder's initial weights
    enc = Encoder.for_generator(gen, split=split, space=cfg.space, width=cfg.width,
                                max_channels=cfg.max_channels).to(dev)
    opt = torch.optim.Adam(enc.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
    percept = get_perceptual(dev) if cfg.perceptual else None
    fingerprint = store.weights_fingerprint(gen)
    with torch.no_grad():
        ref = gen.run(gen.sample_latents(64, generator=_step_generator(cfg.seed, -1), space=cfg.space), stop=split)[0]
        h_scale = float(ref.pow(2).mean().clamp_min(1e-8))
    history: List[Dict[str, float]] = []
    start, seconds_before = 0, 0.0
    key = json.dumps({"train": cfg.key(), "generator": fingerprint}, sort_keys=True)
    if checkpoint_path is not None and Path(checkpoint_path).is_file():
        ck = _read_checkpoint(Path(checkpoint_path))
        if ck.get("key") != key:
            raise InputError(f"checkpoint {checkpoint_path} was written for other settings or another generator; "
                             "delete it (or train with --fresh) to start over")
        enc.load_state_dict(ck["encoder"])
        opt.load_state_dict(ck["optimizer"])
        history = list(ck["history"])
        start, seconds_before = int(ck["step"]), float(ck["seconds"])
        log.info("encoder training: resuming %s at step %d", checkpoint_path, start)
    n_aug = int(round(cfg.batch * cfg.augmented))
    n_clean = cfg.batch - n_aug
    t0 = time.perf_counter()
    enc.train()
    for step in range(start, cfg.steps):
        g = _step_generator(cfg.seed, step)
        with torch.no_grad():
            lat = gen.sample_latents(cfg.batch, generator=g, space=cfg.space)
            h_true = gen.run(lat, stop=split)[0]
            x = gen.forward_from(split, h_true, z=lat)
            if n_aug:
                x = torch.cat([x[:n_clean], augment(x[n_clean:], g)])
        for pg in opt.param_groups:
            pg["lr"] = _lr(cfg, step)
        z_pred, h_pred = enc(x)
        terms: Dict[str, torch.Tensor] = {}
        if n_clean:
            terms["z"] = cfg.lambda_z * (z_pred[:n_clean] - lat[:n_clean]).pow(2).mean()
            terms["h"] = cfg.lambda_h * (h_pred[:n_clean] - h_true[:n_clean]).pow(2).mean() / h_scale
        rec_h = gen.forward_from(split, h_pred, z=z_pred.detach())
        terms["rec_h"] = cfg.lambda_rec_h * _pixel(rec_h, x)
        if cfg.lambda_rec_z > 0:
            k = max(1, cfg.batch // 4)
            rec_z = gen(z_pred[-k:])
            terms["rec_z"] = cfg.lambda_rec_z * _pixel(rec_z, x[-k:])
        if percept is not None:
            terms["perceptual"] = cfg.lambda_perceptual * percept(rec_h, x).mean()
        loss = sum(terms.values())
        if not torch.isfinite(loss):
            raise ModelError(f"encoder training diverged at step {step} (loss {float(loss)}); try a lower lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        row = {k: float(v.detach()) for k, v in terms.items()}
        row["loss"] = float(loss.detach())
        with torch.no_grad():
            row["psnr_rec_h"] = float(10 * torch.log10(4.0 / (rec_h.detach().clamp(-1, 1) - x).pow(2).mean().clamp_min(1e-12)))
        history.append(row)
        done = step + 1
        if checkpoint_path is not None and (done % max(cfg.checkpoint_every, 1) == 0 or done == cfg.steps):
            _write_checkpoint(Path(checkpoint_path), key, enc, opt, history, done,
                              seconds_before + time.perf_counter() - t0)
        if on_step is not None:
            on_step(done, cfg.steps, row)
    enc.eval()
    for p in enc.parameters():
        p.requires_grad_(False)
    return TrainResult(encoder=enc, history=history, seconds=seconds_before + time.perf_counter() - t0,
                       resumed_from=start, perceptual_used=percept is not None)


def _write_checkpoint(path: Path, key: str, enc: Encoder, opt, history, step: int, seconds: float) -> None:
    state = {"key": key, "encoder": enc.state_dict(), "optimizer": opt.state_dict(),
             "history": history, "step": step, "seconds": seconds}
    store.write_atomic(path, lambda tmp: torch.save(state, str(tmp)))


def _read_checkpoint(path: Path) -> dict:
    from ..models.weights import safe_torch_load
    ck = safe_torch_load(path)
    if not isinstance(ck, dict) or not {"key", "encoder", "optimizer", "history", "step"} <= set(ck):
        raise ModelError(f"{path} is not an encoder training checkpoint")
    return ck
