"""The layers of StyleGAN2 (Karras et al. 2020) in the rosinality layout: equalised-lr
linear maps, modulated convolutions, noise, ToRGB with its skip image, the FIR filters, and
the blocks that :class:`priorpaint.models.stylegan2.StyleGAN2Generator` splits into."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)
BLUR_TAPS = (1, 3, 3, 1)


# -- building blocks ----------------------------------------------------------------------
def fir_kernel(taps: Sequence[float], gain: float = 1.0) -> torch.Tensor:
    """Separable 2-D FIR kernel from 1-D taps, normalised to sum ``gain``."""
    t = torch.tensor([float(v) for v in taps])
    k = torch.outer(t, t)
    return k * (gain / k.sum())


def fir_filter(x: torch.Tensor, kernel: torch.Tensor, pad: Sequence[int], up: int = 1) -> torch.Tensor:
    """Zero-insertion up-sampling by ``up``, padding ``(before, after)`` on both axes, then
    a depthwise 2-D convolution with ``kernel`` (true convolution: the kernel is flipped)."""
    n, c, hgt, wid = x.shape
    if up > 1:
        x = x.reshape(n, c, hgt, 1, wid, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(n, c, hgt * up, wid * up)
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    k = kernel.flip([0, 1]).to(dtype=x.dtype, device=x.device)
    weight = k[None, None].expand(c, 1, k.shape[0], k.shape[1])
    return F.conv2d(x, weight, groups=c)


class PixelNorm(nn.Module):
    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate: weights stored as ``N(0,1)/lr_mul`` and
    scaled by ``lr_mul/√in`` at run time; the bias by ``lr_mul``."""

    def __init__(self, in_dim: int, out_dim: int, lr_mul: float = 1.0, bias_init: float = 0.0,
                 activate: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.lr_mul = float(lr_mul)
        self.scale = self.lr_mul / math.sqrt(in_dim)
        self.activate = activate

    def forward(self, x):
        out = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return F.leaky_relu(out, 0.2) * SQRT2 if self.activate else out


class ConstantInput(nn.Module):
    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int):
        return self.input.expand(batch, -1, -1, -1)


class Blur(nn.Module):
    def __init__(self, pad: Sequence[int], gain: float):
        super().__init__()
        self.register_buffer("kernel", fir_kernel(BLUR_TAPS, gain))
        self.pad = tuple(pad)

    def forward(self, x):
        return fir_filter(x, self.kernel, self.pad)


class Upsample(nn.Module):
    """2x up-sampling of the skip images: zero insertion + FIR low-pass (gain 4)."""

    def __init__(self, factor: int = 2):
        super().__init__()
        self.register_buffer("kernel", fir_kernel(BLUR_TAPS, factor ** 2))
        self.factor = factor
        p = len(BLUR_TAPS) - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x):
        return fir_filter(x, self.kernel, self.pad, up=self.factor)


class ModulatedConv2d(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False):
        super().__init__()
        self.in_ch, self.out_ch, self.kernel_size = in_ch, out_ch, kernel_size
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1.0)
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size ** 2)
        self.demodulate = demodulate
        self.upsample = upsample
        if upsample:
            # transposed conv (stride 2) output is 2H + k - 2; the 4-tap filter with this
            # padding brings it back to exactly 2H
            p = (len(BLUR_TAPS) - 2) - (kernel_size - 1)
            self.blur = Blur(((p + 1) // 2 + 1, p // 2 + 1), gain=4.0)

    def _conv(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            return self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2))
        return F.conv2d(x, weight, padding=self.kernel_size // 2)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s = self.modulation(w)                                  # (N, in)
        weight = self.weight[0] * self.scale                    # (out, in, k, k)
        d = None
        if self.demodulate:
            d = torch.rsqrt(s.pow(2) @ weight.pow(2).sum(dim=(2, 3)).t() + 1e-8)  # (N, out)
        if x.shape[0] == 1 and s.shape[0] == 1:
            # one sample: scale the (small) weights rather than the (large) activations
            weight = weight * s[0][None, :, None, None]
            if d is not None:
                weight = weight * d[0][:, None, None, None]
            return self._conv(x, weight)
        out = self._conv(x * s[:, :, None, None], weight)
        return out if d is None else out * d[:, :, None, None]


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x, noise):
        return x + self.weight * noise


class BiasLeakyReLU(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        return F.leaky_relu(x + self.bias[None, :, None, None], 0.2) * SQRT2


class StyledConv(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int, upsample: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, kernel_size, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = BiasLeakyReLU(out_ch)

    def forward(self, x, w, noise):
        return self.activate(self.noise(self.conv(x, w), noise))


class ToRGB(nn.Module):
    def __init__(self, in_ch: int, style_dim: int, upsample: bool = True):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        if upsample:
            self.upsample = Upsample()

    def forward(self, x, w, skip=None):
        out = self.conv(x, w) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


# -- LayeredGenerator blocks --------------------------------------------------------------
def split_output(h: torch.Tensor):
    """``(features, skip_image)`` of a block output (the skip image is the last 3 channels)."""
    return h[:, :-3], h[:, -3:]


def _style(w: torch.Tensor, index: int, batch: int) -> torch.Tensor:
    s = w[:, index]
    return s.expand(batch, -1) if s.shape[0] == 1 and batch != 1 else s


class InputBlock(nn.Module):
    """``b4``: constant input, first conv, first ToRGB.  Reads styles 0, 1 and noise 0."""

    def __init__(self, const: ConstantInput, conv: StyledConv, to_rgb: ToRGB):
        super().__init__()
        self.const, self.conv, self.to_rgb = const, conv, to_rgb
        self.noise_indices = (0,)

    def forward(self, x, context):
        w = context["w"]
        n = w.shape[0]
        feat = self.conv(self.const(n), w[:, 0], context["noise"][0])
        rgb = self.to_rgb(feat, w[:, 1])
        return torch.cat([feat, rgb], dim=1)


class UpBlock(nn.Module):
    """``b<r>``: up-sampling conv, conv, ToRGB (+ up-sampled skip).  Styles i, i+1, i+2."""

    def __init__(self, conv_up: StyledConv, conv: StyledConv, to_rgb: ToRGB, index: int):
        super().__init__()
        self.conv_up, self.conv, self.to_rgb = conv_up, conv, to_rgb
        self.index = index  # style index of conv_up; noise indices are index, index + 1
        self.noise_indices = (index, index + 1)

    def forward(self, x, context):
        feat, skip = split_output(x)
        w, noise, i = context["w"], context["noise"], self.index
        n = x.shape[0]
        feat = self.conv_up(feat, _style(w, i, n), noise[i])
        feat = self.conv(feat, _style(w, i + 1, n), noise[i + 1])
        rgb = self.to_rgb(feat, _style(w, i + 2, n), skip)
        return torch.cat([feat, rgb], dim=1)


class ImageOut(nn.Module):
    """``rgb``: the image (the accumulated skip) from the last block's output."""

    noise_indices = ()

    def forward(self, x, context):
        return split_output(x)[1]


# -- configuration ------------------------------------------------------------------------
