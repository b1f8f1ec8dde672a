"""The StyleGAN2 generator (Karras et al., CVPR 2020, configs E/F) as a LayeredGenerator.

Plain PyTorch, no custom CUDA ops.  Module and parameter names follow the layout of the
widely used rosinality PyTorch port, so its ``g_ema`` state dicts load key for key::

    style.<1..n_mlp>.weight|bias            mapping network (after a pixel norm at index 0)
    input.input                              the learned 4x4 constant
    conv1.{conv.weight, conv.modulation.weight|bias, noise.weight, activate.bias}
    to_rgb1.{conv.weight, conv.modulation.weight|bias, bias}
    convs.<k>.*  (k even: 2x up-sampling conv with conv.blur.kernel; k odd: plain conv)
    to_rgbs.<j>.{..., upsample.kernel}
    noises.noise_<i>                         the fixed per-layer noise maps

The maths, from the paper:

* mapping ``f``: pixel norm, then ``n_mlp`` equalised-lr linear layers (learning-rate
  multiplier ``lr_mlp``, 0.01) with leaky ReLU(0.2)·√2;
* modulated convolution: per-sample input scales ``s = A(w)`` (affine, bias 1), weights
  ``w' = c·W·s`` with the equalised-lr constant ``c = 1/√(fan_in)``, demodulated by
  ``1/√(Σ w'² + 1e-8)`` per output channel.  Computed as ``conv(x·s, c·W)·d``, which is the
  same linear map as the per-sample (grouped) weights and runs as an ordinary convolution;
* up-sampling conv: transposed 3x3 convolution with stride 2 followed by the [1,3,3,1]
  FIR low-pass (gain 4); the ToRGB skip images are up-sampled by zero insertion and the
  same filter;
* noise: ``x + b·noise`` with a learned scalar ``b`` per layer, then bias + leaky ReLU·√2.

Layers for the LayeredGenerator are the synthesis blocks by resolution, ``b4``, ``b8``,
..., ``b<size>`` (each: its convolutions and its ToRGB skip), then ``rgb``.  The output of
a block carries the features **and** the running skip image: a tensor of ``C + 3``
channels whose last three channels are the ToRGB sum so far (see :func:`split_output`).
So ``forward_from(name, h, z=...)`` needs nothing but ``h`` and the latent, and
interventions / G′ act on features and skip alike; :meth:`StyleGAN2Generator.units` gives
a block's feature channels alone (what dissection ranks).  ``rgb`` returns the image.
The layers themselves are in :mod:`priorpaint.models.stylegan2_layers`.

Latent spaces: the generator's input is ``w+`` (``(N, n_latent, style_dim)``, one style
per modulated layer) or ``w`` (``(N, style_dim)``, broadcast); ``sample_latents`` draws
``z ~ N(0, I)`` and maps it.  The noise maps are fixed buffers by default;
:meth:`make_context` accepts replacements (projection can fit them).
"""

from __future__ import annotations

import logging
import math
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

from ..errors import InputError
from .layered import LayeredGenerator
from .stylegan2_layers import ConstantInput, EqualLinear, ImageOut, InputBlock, PixelNorm, StyledConv, ToRGB, UpBlock

LATENT_SPACES = ("w+", "w", "z")
log = logging.getLogger(__name__)

def default_channels(size: int, channel_multiplier: int) -> Dict[int, int]:
    """Channels per resolution of the official configs (512 up to 32x32, then halving)."""
    out = {}
    r = 4
    while r <= size:
        out[r] = 512 if r <= 32 else (16384 * channel_multiplier) // r
        r *= 2
    return out


_REQUIRED = ("style.1.weight", "style.1.bias", "input.input", "conv1.conv.weight",
             "conv1.conv.modulation.weight", "conv1.conv.modulation.bias", "conv1.noise.weight",
             "conv1.activate.bias", "to_rgb1.conv.weight", "to_rgb1.conv.modulation.weight",
             "to_rgb1.conv.modulation.bias", "to_rgb1.bias")
#: seed of the fixed noise maps made for checkpoints saved without ``noises.noise_N``
FALLBACK_NOISE_SEED = 0


def infer_config(sd: Dict[str, torch.Tensor]) -> dict:
    """Size, style_dim, n_mlp and channels of a rosinality ``g_ema`` state dict, from its
    key names and shapes.  Raises ValueError naming the missing keys for anything else."""
    missing = [k for k in _REQUIRED if k not in sd]
    if missing:
        shown = ", ".join(missing[:8]) + (f" (+{len(missing) - 8} more)" if len(missing) > 8 else "")
        raise ValueError(f"not a rosinality StyleGAN2 generator (g_ema) state dict: missing keys {shown}")
    mlp = sorted(int(m.group(1)) for k in sd if (m := re.fullmatch(r"style\.(\d+)\.weight", k)))
    if mlp != list(range(1, len(mlp) + 1)):
        raise ValueError(f"StyleGAN2 mapping layers are not style.1..style.N: found {mlp}")
    convs = sorted({int(m.group(1)) for k in sd if (m := re.fullmatch(r"convs\.(\d+)\.conv\.weight", k))})
    if convs != list(range(len(convs))) or len(convs) % 2:
        raise ValueError(f"StyleGAN2 synthesis convs must be convs.0..convs.2k-1, found {convs}")
    log_size = len(convs) // 2 + 2
    size = 2 ** log_size
    channels = {4: int(sd["input.input"].shape[1])}
    for j in range(log_size - 2):
        channels[2 ** (j + 3)] = int(sd[f"convs.{2 * j}.conv.weight"].shape[1])
    config = {"size": size, "style_dim": int(sd["style.1.weight"].shape[1]), "n_mlp": len(mlp)}
    for cm in (1, 2, 4, 8):
        if default_channels(size, cm) == channels:
            config["channel_multiplier"] = cm
            break
    else:
        config["channels"] = {str(r): c for r, c in channels.items()}
    return config


def describe_config(cfg: dict) -> str:
    ch = (f"channel_multiplier {cfg['channel_multiplier']}" if "channel_multiplier" in cfg
          else f"channels {cfg.get('channels')}")
    return f"size {cfg['size']}, style_dim {cfg['style_dim']}, n_mlp {cfg['n_mlp']}, {ch}"


# -- the generator ------------------------------------------------------------------------
class StyleGAN2Generator(LayeredGenerator):
    architecture = "stylegan2"
    # A synthesis pass costs 100-1000x the DCGAN's: score few random starts.
    projection_defaults = {"candidates": 16, "starts": 2}

    def __init__(self, size: int = 256, style_dim: int = 512, n_mlp: int = 8,
                 channel_multiplier: int = 2, channels: Optional[Dict] = None,
                 lr_mlp: float = 0.01, split: Optional[str] = None, latent_space: str = "w+"):
        log_size = int(round(math.log2(size))) if size > 0 else 0
        if 2 ** log_size != size or size < 8:
            raise ValueError(f"StyleGAN2 size must be a power of two >= 8, got {size}")
        if latent_space not in ("w+", "w"):
            raise ValueError(f"StyleGAN2 input latent space must be 'w+' or 'w', got {latent_space!r}")
        self.n_latent = 2 * log_size - 2
        self.style_dim = int(style_dim)
        shape = (self.n_latent, self.style_dim) if latent_space == "w+" else (self.style_dim,)
        split = split or f"b{min(32, size // 4)}"
        super().__init__(resolution=size, latent_shape=shape, default_split=split)
        self.latent_space = latent_space
        ch = default_channels(size, channel_multiplier)
        for r, c in (channels or {}).items():
            if int(r) not in ch:
                raise ValueError(f"channels given for resolution {r}, not in 4..{size}")
            ch[int(r)] = int(c)
        self.channels = ch
        self.config = {"size": size, "style_dim": self.style_dim, "n_mlp": int(n_mlp), "lr_mlp": float(lr_mlp)}
        if channels:
            self.config["channels"] = {str(r): c for r, c in ch.items()}
        else:
            self.config["channel_multiplier"] = int(channel_multiplier)

        self.style = nn.Sequential(PixelNorm(), *[
            EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activate=True) for _ in range(n_mlp)])
        self.input = ConstantInput(ch[4])
        self.conv1 = StyledConv(ch[4], ch[4], 3, style_dim)
        self.to_rgb1 = ToRGB(ch[4], style_dim, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        self.num_noise = 2 * log_size - 3
        for i in range(self.num_noise):
            r = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, r, r))
        prev = ch[4]
        for j in range(log_size - 2):
            c = ch[2 ** (j + 3)]
            self.convs.append(StyledConv(prev, c, 3, style_dim, upsample=True))
            self.convs.append(StyledConv(c, c, 3, style_dim))
            self.to_rgbs.append(ToRGB(c, style_dim))
            prev = c
        # the (optional) average w of the checkpoint; not part of the state dict
        self.register_buffer("latent_avg", None, persistent=False)
        self.load_notes: List[str] = []  # what loading had to make up (e.g. missing noise buffers)
        self._mean_cache: Dict[str, torch.Tensor] = {}

        named = [("b4", InputBlock(self.input, self.conv1, self.to_rgb1))]
        for j in range(log_size - 2):
            named.append((f"b{2 ** (j + 3)}", UpBlock(self.convs[2 * j], self.convs[2 * j + 1],
                                                     self.to_rgbs[j], index=1 + 2 * j)))
        named.append(("rgb", ImageOut()))
        self._set_layers(named)
        self.eval()

    @classmethod
    def from_config(cls, config: dict, split: Optional[str] = None) -> "StyleGAN2Generator":
        known = {"size", "style_dim", "n_mlp", "channel_multiplier", "channels", "lr_mlp", "latent_space"}
        unknown = set(config) - known - {"resolution"}
        if unknown:
            raise ValueError(f"unknown StyleGAN2 config keys {sorted(unknown)}; known: {sorted(known)}")
        size = int(config.get("size", config.get("resolution", 256)))
        return cls(size=size, style_dim=int(config.get("style_dim", 512)), n_mlp=int(config.get("n_mlp", 8)),
                   channel_multiplier=int(config.get("channel_multiplier", 2)),
                   channels=config.get("channels"), lr_mlp=float(config.get("lr_mlp", 0.01)),
                   split=split, latent_space=config.get("latent_space", "w+"))

    # -- state dict: exactly the rosinality g_ema keys ------------------------------------
    def state_dict(self, *args, **kwargs):
        sd = super().state_dict(*args, **kwargs)
        prefix = kwargs.get("prefix", args[1] if len(args) > 1 else "")
        return type(sd)((k, v) for k, v in sd.items() if not k[len(prefix):].startswith("layers."))

    def load_state_dict(self, state_dict: Dict[str, torch.Tensor], strict: bool = True, assign: bool = False):
        sd = dict(state_dict)
        latent_avg = sd.pop("latent_avg", None)
        found = infer_config(sd)
        mine = {"size": self.resolution, "style_dim": self.style_dim, "n_mlp": self.config["n_mlp"]}
        if any(found[k] != v for k, v in mine.items()) or \
                {int(r): c for r, c in self.channels.items()} != {
                    int(r): c for r, c in (found.get("channels") or
                                           default_channels(found["size"], found["channel_multiplier"])).items()}:
            raise ValueError(f"the weights are a StyleGAN2 with {describe_config(found)}; "
                             f"this model is configured for {describe_config(self.config)}")
        own = self.state_dict()
        self.load_notes = []
        if not any(k.startswith("noises.") for k in sd):
            # old rosinality checkpoints predate the saved noise buffers: fixed maps from a seed
            g = torch.Generator().manual_seed(FALLBACK_NOISE_SEED)
            for i in range(self.num_noise):
                sd[f"noises.noise_{i}"] = torch.randn(tuple(own[f"noises.noise_{i}"].shape), generator=g)
            self.load_notes.append(f"the weights have no noises.noise_N buffers (an older checkpoint): fixed noise "
                                   f"maps were drawn from seed {FALLBACK_NOISE_SEED}, so images differ in fine "
                                   "detail from the original training run's")
            log.warning("StyleGAN2 weights without noise buffers: %s", self.load_notes[-1])
        for k in own:  # the FIR kernels are constants: fill them in when a file leaves them out
            if k.endswith(("blur.kernel", "upsample.kernel")) and k not in sd:
                sd[k] = own[k]
        missing = sorted(set(own) - set(sd))
        unexpected = sorted(set(sd) - set(own))
        if strict and (missing or unexpected):
            raise ValueError(f"StyleGAN2 state dict does not match ({describe_config(found)}): "
                             f"missing {missing[:6]}{'...' if len(missing) > 6 else ''}, "
                             f"unexpected {unexpected[:6]}{'...' if len(unexpected) > 6 else ''}")
        for k, v in sd.items():
            if k in own and tuple(own[k].shape) != tuple(v.shape):
                raise ValueError(f"StyleGAN2 weight {k} has shape {tuple(v.shape)}, the config expects "
                                 f"{tuple(own[k].shape)}")
        result = nn.Module.load_state_dict(self, sd, strict=False, assign=assign)
        if latent_avg is not None:
            la = torch.as_tensor(latent_avg, dtype=torch.float32).reshape(-1)
            if la.numel() != self.style_dim:
                raise ValueError(f"latent_avg has {la.numel()} values, style_dim is {self.style_dim}")
            self.latent_avg = la.to(self.input.input.device)
        self._mean_cache.clear()
        return result

    # -- latents --------------------------------------------------------------------------
    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """``w = f(z)`` for ``z`` of shape (N, style_dim)."""
        return self.style(z)

    def latent_shape_of(self, space: Optional[str] = None):
        space = space or self.latent_space
        if space not in LATENT_SPACES:
            raise InputError(f"StyleGAN2 latent space must be one of {', '.join(LATENT_SPACES)}, got {space!r}")
        return (self.n_latent, self.style_dim) if space == "w+" else (self.style_dim,)

    def sample_latents(self, n: int, seed: Optional[int] = None,
                       generator: Optional[torch.Generator] = None,
                       space: Optional[str] = None) -> torch.Tensor:
        """``n`` latents: ``z ~ N(0, I)`` drawn on the CPU (same for a seed on every device),
        mapped to ``w`` and broadcast to ``w+`` (``space``: "w+" | "w" | "z", default: the
        generator's input space)."""
        space = space or self.latent_space
        self.latent_shape_of(space)
        if generator is None:
            generator = torch.Generator()
            if seed is not None:
                generator.manual_seed(int(seed))
        z = torch.randn((n, self.style_dim), generator=generator).to(self.device)
        if space == "z":
            return z
        w = self.mapping(z)
        return w if space == "w" else w.unsqueeze(1).repeat(1, self.n_latent, 1)

    def mean_latent(self, space: Optional[str] = None, n: int = 4096) -> torch.Tensor:
        """The mean ``w`` (the checkpoint's ``latent_avg`` when it had one, else the mean of
        ``n`` mapped samples, seed 0), shaped ``(1, *latent shape of space)``."""
        space = space or self.latent_space
        shape = self.latent_shape_of(space)
        if space == "z":
            return torch.zeros((1,) + shape, device=self.device)
        key = str(self.device)
        if self.latent_avg is not None:
            w = self.latent_avg.to(self.device)
        elif key in self._mean_cache:
            w = self._mean_cache[key]
        else:
            g = torch.Generator().manual_seed(0)
            with torch.no_grad():
                total = torch.zeros(self.style_dim, device=self.device)
                done = 0
                while done < n:
                    m = min(1024, n - done)
                    total += self.sample_latents(m, generator=g, space="w").sum(0)
                    done += m
            w = self._mean_cache[key] = total / n
        w = w.reshape(1, self.style_dim)
        return w.unsqueeze(1).repeat(1, self.n_latent, 1) if space == "w+" else w.clone()

    def to_wplus(self, latent: torch.Tensor) -> torch.Tensor:
        """``w`` (N, style_dim) or ``w+`` (N, n_latent, style_dim) as ``w+``."""
        if latent.dim() == 2 and latent.shape[1] == self.style_dim:
            return latent.unsqueeze(1).expand(-1, self.n_latent, -1)
        if latent.dim() == 3 and tuple(latent.shape[1:]) == (self.n_latent, self.style_dim):
            return latent
        raise InputError(f"StyleGAN2 latent must be w (N, {self.style_dim}) or w+ (N, {self.n_latent}, "
                         f"{self.style_dim}), got shape {tuple(latent.shape)}")

    # -- context: styles and noise of every layer -----------------------------------------
    def noise_inputs(self, upto: Optional[str] = None) -> Dict[str, torch.Tensor]:
        """The fixed noise maps ``{"noise_<i>": (1, 1, r, r)}`` of the layers up to and
        including ``upto`` (all layers when None)."""
        names = self.layer_names if upto is None else self.layer_names[:self.index(upto) + 1]
        out: Dict[str, torch.Tensor] = OrderedDict()
        for name in names:
            for i in self.layers[name].noise_indices:
                out[f"noise_{i}"] = getattr(self.noises, f"noise_{i}")
        return out

    def make_context(self, z: Optional[torch.Tensor], noise: Optional[Dict[str, torch.Tensor]] = None) -> dict:
        if z is None:
            raise InputError("StyleGAN2 layers read the latent: pass z= (w or w+) to forward_from")
        noises: List[torch.Tensor] = [getattr(self.noises, f"noise_{i}") for i in range(self.num_noise)]
        for key, value in (noise or {}).items():
            m = re.fullmatch(r"noise_(\d+)", key)
            if m is None or int(m.group(1)) >= self.num_noise:
                raise KeyError(f"no StyleGAN2 noise input {key!r}; there are noise_0..noise_{self.num_noise - 1}")
            i = int(m.group(1))
            if value.dim() != 4 or value.shape[1] != 1 or value.shape[-2:] != noises[i].shape[-2:]:
                raise InputError(f"noise input {key} must be (N, 1, {noises[i].shape[-2]}, {noises[i].shape[-1]}), "
                                 f"got {tuple(value.shape)}")
            noises[i] = value
        return {"w": self.to_wplus(z), "noise": noises}

    def _call_layer(self, name: str, module: nn.Module, x: torch.Tensor, context: dict) -> torch.Tensor:
        return module(x, context)

    def units(self, name: str, h: torch.Tensor) -> torch.Tensor:
        """A block's feature channels, without the 3 channels of the running skip image."""
        return h if name == "rgb" else h[:, :self.feature_channels(name)]

    def feature_channels(self, name: str) -> int:
        """Feature channels of a block's output (excluding the 3 skip-image channels)."""
        if name == "rgb":
            return 3
        return self.channels[int(name[1:])]

    def style_slots(self, names: Optional[Sequence[str]] = None) -> Dict[int, torch.Tensor]:
        """``{w+ index: A}``: the style affine weight ``A`` (in_ch, style_dim, equalised-lr
        scale applied) of each modulated conv (ToRGB excluded) of the given blocks."""
        out: Dict[int, torch.Tensor] = OrderedDict()
        for name in (self.layer_names if names is None else names):
            block = self.layers[name]
            if isinstance(block, InputBlock):
                convs = [(0, block.conv)]
            elif isinstance(block, UpBlock):
                convs = [(block.index, block.conv_up), (block.index + 1, block.conv)]
            else:
                convs = []
            for slot, conv in convs:
                m = conv.conv.modulation
                out[slot] = m.weight * m.scale
        return out

    def sefa_weight(self, names: Optional[Sequence[str]] = None) -> torch.Tensor:
        """SeFa's matrix ``A`` (out, latent dim) for this generator's input latent.

        The style affine maps of the modulated convs of ``names`` (all blocks when None),
        stacked: ``B`` (Σ in_ch, style_dim).  For ``w`` input, ``A = B``; for ``w+``,
        ``A = B·P`` with ``P = [I … I]/√k`` over the k style slots those convs read, so the
        leading eigenvectors of ``AᵀA`` are SeFa's ``w`` directions written into those slots
        (unit norm), with the same eigenvalues."""
        slots = self.style_slots(names)
        if not slots:
            raise InputError(f"no modulated convolutions in layers {list(names or [])}")
        b = torch.cat(list(slots.values()), dim=0).detach()
        if self.latent_space == "w":
            return b
        p = torch.zeros(self.style_dim, self.n_latent, self.style_dim, device=b.device, dtype=b.dtype)
        for slot in slots:
            p[:, slot] = torch.eye(self.style_dim, device=b.device, dtype=b.dtype)
        p /= math.sqrt(len(slots))
        return b @ p.reshape(self.style_dim, -1)
