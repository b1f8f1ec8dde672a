"""Losses and measurements shared by projection, G′ and the edits: pixel loss, PSNR,
correlation, finite checks (images are tensors in [-1, 1]); and the Lab change of an image on a
coarse grid, which a saved vector keeps and :mod:`priorpaint.measures.vectors` compares."""

from __future__ import annotations

from typing import Optional

import torch

from .errors import InputError


def psnr(a: torch.Tensor, b: torch.Tensor, mask: Optional[torch.Tensor] = None) -> float:
    """PSNR in dB between images in [-1, 1] (peak-to-peak 2), optionally over a mask."""
    err = (a.detach().float().clamp(-1, 1) - b.detach().float()) ** 2
    if mask is not None:
        m = mask.expand_as(err)
        if m.sum() <= 0:
            return float("nan")
        mse = (err * m).sum() / m.sum()
    else:
        mse = err.mean()
    return float(10.0 * torch.log10(4.0 / mse.clamp_min(1e-12)))


def pixel_loss(out: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor] = None,
               kind: str = "l1+l2", l2_weight: float = 1.0, eps: float = 0.01,
               per_sample: bool = True) -> torch.Tensor:
    """Weighted pixel loss: ``kind`` "l1", "l1+l2" (L1 + ``l2_weight``·L2) or "charbonnier"
    (L1 away from zero, quadratic within ``eps`` of it).

    ``per_sample=True`` gives one value per sample (N,), else one scalar over the batch;
    ``weight`` (N or 1, 1, R, R) weights the pixels (None: all equally)."""
    diff = out - target
    if kind == "l1":
        per = diff.abs()
    elif kind == "l1+l2":
        per = diff.abs() + l2_weight * diff * diff
    elif kind == "charbonnier":
        per = torch.sqrt(diff * diff + eps * eps) - eps
    else:
        raise ValueError(f"unknown pixel loss {kind!r}")
    if weight is None:
        return per.flatten(1).mean(1) if per_sample else per.mean()
    w = weight.expand_as(per)
    if per_sample:
        return (per * w).flatten(1).sum(1) / w.flatten(1).sum(1).clamp_min(1e-6)
    return (per * w).sum() / w.sum().clamp_min(1e-6)


def pearson(a: torch.Tensor, b: torch.Tensor, weight: Optional[torch.Tensor] = None) -> float:
    """Weighted Pearson correlation of two images (over channels and the weighted pixels)."""
    a = a.detach().double()
    b = b.detach().double()
    w = torch.ones_like(a) if weight is None else weight.detach().double().expand_as(a)
    sw = w.sum()
    if float(sw) <= 0:
        return float("nan")
    ma, mb = (a * w).sum() / sw, (b * w).sum() / sw
    da, db = a - ma, b - mb
    cov = (w * da * db).sum()
    va, vb = (w * da * da).sum(), (w * db * db).sum()
    if float(va) <= 0 or float(vb) <= 0:
        return float("nan")
    return float(cov / torch.sqrt(va * vb))


def check_finite(t: torch.Tensor, what: str, consequence: str = "") -> None:
    """Refuse NaN/inf with a one-line :class:`InputError` (``consequence`` is appended)."""
    if not torch.isfinite(t).all():
        raise InputError(f"{what} contains NaN or infinite values" + (f"; {consequence}" if consequence else ""))


#: the cells per side of the grid :func:`lab_change_grid` averages onto
CHANGE_GRID = 16


def lab_change_grid(result, photo, mask=None, grid: int = CHANGE_GRID):
    """(grid, grid, 3) float32: the CIE Lab change of ``result`` from ``photo`` (H×W×3 uint8 arrays of
    one size) averaged over each cell of a ``grid`` × ``grid`` grid; ``mask`` (H×W, 0..255), when
    given, weighs the change."""
    import cv2
    import numpy as np
    lab = [cv2.cvtColor(np.ascontiguousarray(x, np.float32) / 255.0, cv2.COLOR_RGB2Lab) for x in (result, photo)]
    change = lab[0] - lab[1]
    if mask is not None:
        change = change * (mask.astype(np.float32) / 255.0)[..., None]
    return cv2.resize(change, (grid, grid), interpolation=cv2.INTER_AREA).astype(np.float32)
