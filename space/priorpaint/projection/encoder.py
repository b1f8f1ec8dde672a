"""The inverting network: an encoder ``E`` with ``E(x) ≈ (z, z_h)`` for a LayeredGenerator.

Of the three ways to project a photo — optimisation ``z* = argmin_z L(G(z), x)``, an
inverting network ``z = E(x)`` trained with the generator fixed, and the hybrid (``E(x)`` as
the start of the optimisation) — this module is the network.  Following Bau et al.'s
layer-wise idea it predicts both the latent ``z`` and the split-layer feature ``z_h``
directly: the latent alone cannot reach a real photo (a 100-d DCGAN latent reconstructs a
real face at ~15 dB), the feature can, and a good ``z_h`` is what makes the split-layer
refinement short.

Training (:func:`train_encoder`) keeps ``G`` frozen and uses its own samples:

* latent regression on sampled pairs: ``‖E_z(G(z)) − z‖²`` and ``‖E_h(G(z)) − G_H(z)‖²``;
* reconstruction through ``G``: ``L(G_F(E_h(x)), x)`` and ``L(G(E_z(x)), x)`` (L1 + L2 on
  pixels, plus the perceptual loss when its weights are present);
* augmentations of the samples (random scale/shift/rotation crops, colour jitter, white
  balance, blur), on which only the reconstruction losses apply, so that real photo crops —
  not only generated faces — land near the generator's range.

Each step draws its randomness from a generator seeded by ``(seed, step)``, so a run is
deterministic for a seed on one device and a resumed run continues bit for bit.

:func:`encoder_for` finds the encoder of a generator (its manifest entry of kind
``encoder``, or one the user trained, under the priorpaint cache), and refuses one whose
recorded generator fingerprint differs from the loaded generator's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError, ModelError
from ..models.layered import LayeredGenerator
from .perceptual import get_perceptual

log = logging.getLogger(__name__)

FORMAT = "priorpaint-encoder"
FORMAT_VERSION = "1"
ARCHITECTURE = "conv-encoder"


# -- fingerprints ------------------------------------------------------------------------------

def weights_fingerprint(gen: nn.Module) -> str:
    """sha256 over the generator's state dict (names and float32 bytes, sorted by name): the
    identity of the weights an encoder was trained against, whatever file they came from."""
    cached = getattr(gen, "_priorpaint_sha256", None)
    if cached is not None:
        return cached
    h = hashlib.sha256()
    for name, t in sorted(gen.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    fp = h.hexdigest()
    gen._priorpaint_sha256 = fp
    return fp


def cache_root() -> Path:
    """``$PRIORPAINT_CACHE`` or ``~/.cache/priorpaint`` (shared with the other caches)."""
    env = os.environ.get("PRIORPAINT_CACHE", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "priorpaint"


def user_encoders_dir() -> Path:
    """Where ``priorpaint train-encoder`` writes by default; searched before the manifest."""
    return cache_root() / "encoders"


# -- the network ---------------------------------------------------------------------------------

class _Down(nn.Module):
    """A stride-2 convolution and a residual 3×3 convolution, LeakyReLU activations."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.down = nn.Conv2d(c_in, c_out, 4, 2, 1)
        self.conv = nn.Conv2d(c_out, c_out, 3, 1, 1)

    def forward(self, x):
        x = F.leaky_relu(self.down(x), 0.2)
        return x + F.leaky_relu(self.conv(x), 0.2)


class Encoder(nn.Module):
    """A small convolutional encoder: image (N, 3, R, R) in [-1, 1] -> ``(z, h)``.

    ``z`` has the generator's latent shape (of latent space ``space``), ``h`` the shape of
    the split layer's output.  Images larger than ``input_size`` are area-downsampled first.
    """

    def __init__(self, resolution: int, latent_shape, h_shape, split: str, space: Optional[str] = None,
                 width: int = 16, max_channels: int = 64, input_size: int = 128):
        super().__init__()
        self.config = {"resolution": int(resolution), "latent_shape": [int(v) for v in latent_shape],
                       "h_shape": [int(v) for v in h_shape], "split": str(split), "space": space,
                       "width": int(width), "max_channels": int(max_channels), "input_size": int(input_size)}
        c_h, s_h = int(h_shape[0]), int(h_shape[-1])
        size = min(int(resolution), int(input_size))
        if s_h > size or size % s_h or (size // s_h) & (size // s_h - 1):
            raise ModelError(f"encoder: split feature {s_h}x{s_h} does not divide the input size {size}")
        self.size = size
        self.stem = nn.Conv2d(3, width, 3, 1, 1)
        stages, c, res = [], width, size
        while res > s_h:
            c_next = min(c * 2, max_channels)
            stages.append(_Down(c, c_next))
            c, res = c_next, res // 2
        self.stages = nn.Sequential(*stages)
        self.h_head = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1), nn.LeakyReLU(0.2), nn.Conv2d(c, c_h, 1))
        zs, z_layers, cz = s_h, [], c
        while zs > 4:
            z_layers += [nn.Conv2d(cz, max(cz // 2, 16), 3, 2, 1), nn.LeakyReLU(0.2)]
            cz, zs = max(cz // 2, 16), zs // 2
        self.z_conv = nn.Sequential(*z_layers)
        self.z_head = nn.Linear(cz * zs * zs, int(math.prod(latent_shape)))
        self.latent_shape = tuple(int(v) for v in latent_shape)

    @classmethod
    def for_generator(cls, gen: LayeredGenerator, split: Optional[str] = None, space: Optional[str] = None,
                      **kwargs) -> "Encoder":
        split = split or gen.default_split
        with torch.no_grad():
            lat = gen.sample_latents(1, seed=0, space=space)
            h = gen.run(lat, stop=split)[0]
        return cls(gen.resolution, tuple(lat.shape[1:]), tuple(h.shape[1:]), split, space, **kwargs)

    @classmethod
    def from_config(cls, config: dict) -> "Encoder":
        c = dict(config)
        return cls(c["resolution"], c["latent_shape"], c["h_shape"], c["split"], c.get("space"),
                   width=c.get("width", 16), max_channels=c.get("max_channels", 64),
                   input_size=c.get("input_size", 128))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="area")
        f = self.stages(F.leaky_relu(self.stem(x), 0.2))
        h = self.h_head(f)
        z = self.z_head(self.z_conv(f).flatten(1)).view(x.shape[0], *self.latent_shape)
        return z, h

    def fits(self, gen: LayeredGenerator, split: Optional[str] = None) -> Optional[str]:
        """None when this encoder's shapes fit ``gen`` at ``split``, else the reason."""
        if self.config["resolution"] != gen.resolution:
            return f"the encoder works at {self.config['resolution']} px, the model at {gen.resolution} px"
        if split is not None and split != self.config["split"]:
            return f"the encoder predicts layer {self.config['split']}, the projection splits at {split}"
        return None


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
    fingerprint = weights_fingerprint(gen)
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({"key": key, "encoder": enc.state_dict(), "optimizer": opt.state_dict(),
                "history": history, "step": step, "seconds": seconds}, str(tmp))
    os.replace(tmp, path)


def _read_checkpoint(path: Path) -> dict:
    from ..models.weights import safe_torch_load
    ck = safe_torch_load(path)
    if not isinstance(ck, dict) or not {"key", "encoder", "optimizer", "history", "step"} <= set(ck):
        raise ModelError(f"{path} is not an encoder training checkpoint")
    return ck


# -- files: safetensors + a manifest entry ---------------------------------------------------------

def save_encoder(enc: Encoder, path: Path, gen: LayeredGenerator, train: Optional[dict] = None,
                 manifest_path: Optional[Path] = None, half: bool = False) -> Tuple[Path, Path, dict]:
    """Write the encoder as safetensors (float32; ``half=True`` stores float16, half the
    size) and its manifest entry (kind ``encoder``, naming the generator by id and weights
    fingerprint).  Returns ``(weights_path, manifest_path, entry)``."""
    from safetensors.torch import save_file

    path = Path(path)
    manifest_path = Path(manifest_path) if manifest_path else path.with_suffix(".json")
    model_id = str(getattr(gen, "model_id", "") or gen.architecture)
    generator = {"id": model_id, "weights_fingerprint": weights_fingerprint(gen)}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": json.dumps(enc.config),
            "generator": json.dumps(generator)}
    if train is not None:
        meta["train"] = json.dumps(train)
    sd = {k: (v.detach().half() if half and v.is_floating_point() else v.detach()).cpu().contiguous()
          for k, v in enc.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file(sd, str(tmp), metadata=meta)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    from ..models.weights import sha256_file
    try:
        rel = os.path.relpath(path.resolve(), manifest_path.resolve().parent)
    except ValueError:  # another drive (Windows)
        rel = str(path.resolve())
    entry = {
        "id": f"{model_id}-encoder",
        "kind": "encoder",
        "architecture": ARCHITECTURE,
        "resolution": gen.resolution,
        "generator": generator,
        "config": enc.config,
        "license": "MIT",
        "description": f"Inverting network for {model_id}: predicts the latent and the {enc.config['split']} "
                       "feature from a crop (the start of hybrid projection); written by priorpaint train-encoder.",
        "sources": [{"type": "file", "path": rel, "sha256": sha256_file(path), "format": "safetensors"}],
    }
    if train is not None:
        entry["train"] = {k: v for k, v in train.items() if k != "history"}
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = manifest_path.with_name(f".{manifest_path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(entry, indent=2) + "\n")
    os.replace(tmp, manifest_path)
    return path, manifest_path, entry


def read_encoder_file(path: Path, src=None) -> Tuple[Encoder, dict]:
    """An encoder and its metadata from a safetensors file (no code runs: tensors + JSON)."""
    from ..models.weights import read_state_dict
    from ..models.manifest import Source
    from safetensors import safe_open

    path = Path(path)
    sd = read_state_dict(path, src or Source(type="file", path=str(path), format="safetensors"))
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
        config = json.loads(meta["config"])
        meta["generator"] = json.loads(meta.get("generator", "{}"))
        meta["train"] = json.loads(meta["train"]) if "train" in meta else None
    except Exception as e:
        raise ModelError(f"encoder {path} has no readable priorpaint metadata: {type(e).__name__}: {e}") from None
    if meta.get("format") != FORMAT:
        raise ModelError(f"{path} is not a priorpaint encoder (format {meta.get('format')!r})")
    enc = Encoder.from_config(config)
    try:
        enc.load_state_dict({k: v.float() for k, v in sd.items()})
    except RuntimeError as e:
        raise ModelError(f"encoder {path} does not fit its own config: {str(e).splitlines()[0]}") from None
    enc.eval()
    for p in enc.parameters():
        p.requires_grad_(False)
    return enc, meta


# -- finding the encoder of a generator ------------------------------------------------------------

@dataclass
class EncoderLookup:
    encoder: Optional[Encoder]
    entry_id: Optional[str] = None
    note: Optional[str] = None     # why there is none (or was refused), for the user


def encoder_entries(model_id: str) -> list:
    """Encoder entries naming ``model_id``: the user's (``<cache>/encoders``) first, then the manifest's."""
    from ..models.manifest import load_manifest
    found = []
    user = user_encoders_dir()
    for dirs in ([user] if user.is_dir() else [], None):
        try:
            entries = load_manifest(dirs) if dirs is not None else load_manifest()
        except ModelError as e:
            log.warning("%s", e)
            continue
        for e in entries.values():
            if e.kind == "encoder" and (e.extra.get("generator") or {}).get("id") == model_id:
                found.append(e)
        if dirs is None:
            break
    return found


_cache: Dict[tuple, Encoder] = {}
_lock = threading.Lock()


def encoder_for(gen: LayeredGenerator, split: Optional[str] = None, space: Optional[str] = None) -> EncoderLookup:
    """The encoder for ``gen`` if one exists, fits and matches its weights; else a note why not.

    An entry whose generator fingerprint differs from ``gen``'s is refused; a file that
    fails its sha256 or is not valid safetensors is reported; both leave the caller to
    fall back to the multi-start search.
    """
    from ..models.weights import load_weights

    model_id = str(getattr(gen, "model_id", "") or "")
    hint = f"train one with `priorpaint train-encoder --model {model_id}`" if model_id else "train one"
    if not model_id:
        return EncoderLookup(None, note="no encoder for a generator outside the manifest: multi-start search")
    entries = encoder_entries(model_id)
    if not entries:
        return EncoderLookup(None, note=f"no encoder for {model_id}: multi-start search ({hint})")
    fp = weights_fingerprint(gen)
    notes = []
    for entry in entries:
        want = (entry.extra.get("generator") or {}).get("weights_fingerprint")
        if want != fp:
            notes.append(f"encoder {entry.id} was trained for other {model_id} weights "
                         f"(fingerprint {str(want)[:12]}, loaded {fp[:12]}); refused")
            continue
        key = (entry.id, str(entry.manifest_path), str(gen.device))
        with _lock:
            enc = _cache.get(key)
        if enc is None:
            try:
                _, src, path = load_weights(entry)
                enc, meta = read_encoder_file(path, src)
            except ModelError as e:
                notes.append(f"encoder {entry.id} unusable: {e}")
                continue
            if (meta.get("generator") or {}).get("weights_fingerprint") != fp:
                notes.append(f"encoder {entry.id}: its file was trained for other {model_id} weights; refused")
                continue
            enc = enc.to(gen.device)
            with _lock:
                _cache[key] = enc
        why = enc.fits(gen, split)
        if why is None and (enc.config.get("space") or None) != (space or None):
            why = f"the encoder predicts latent space {enc.config.get('space') or 'default'}, " \
                  f"the projection asks for {space}"
        if why:
            notes.append(f"encoder {entry.id} not used: {why}")
            continue
        return EncoderLookup(enc, entry_id=entry.id)
    return EncoderLookup(None, note="; ".join(notes) + f": multi-start search ({hint})")


def clear_cache() -> None:
    with _lock:
        _cache.clear()
