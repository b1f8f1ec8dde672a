"""An editable proxy closer to the photo: the projection's ``z`` refined towards the photo's low band,
with a penalty that keeps it near where it started (e4e's distortion–editability trade-off, taken in
the generator's own input space, so ``G(z_r)`` stays on the manifold and a direction still moves it
as it moves the generator's samples).

The structural composite (:mod:`priorpaint.compositing.warp`) takes its motion from the proxy
``G(z)`` → ``G(z_e)``; with :func:`refine_proxy_z` the proxy is ``G(z_r)`` → ``G(z_r + (z_e − z))``
(:func:`proxy_features`). Bounded: a fixed number of Adam steps on a 64-dimensional problem.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

#: Adam steps, the penalty on ``mean((z_r − z)²)``, the low band's Gaussian sigma (model px), the rate
STEPS, PENALTY, SIGMA, LR = 60, 0.05, 1.5, 0.03


def _low(x: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma <= 0:
        return x
    k = int(2 * round(3 * sigma) + 1)
    t = torch.arange(k, dtype=x.dtype, device=x.device) - k // 2
    g = torch.exp(-t * t / (2 * sigma * sigma))
    g = g / g.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (k // 2,) * 4, mode="replicate"), g.view(1, 1, 1, k).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, g.view(1, 1, k, 1).repeat(c, 1, 1, 1), groups=c)


def refine_proxy_z(gen, z: torch.Tensor, target: torch.Tensor, steps: int = STEPS, penalty: float = PENALTY,
                   sigma: float = SIGMA, lr: float = LR, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``z_r``: ``z`` after ``steps`` Adam steps on ``mean((low(G(z_r)) − low(target))²)`` (weighted by
    ``mask`` if given) ``+ penalty · mean((z_r − z)²)``. On ``z``'s device; the generator is not changed."""
    z0 = z.detach()
    zr = z0.clone().requires_grad_(True)
    goal = _low(target.to(z0.device), sigma).detach()
    w = None if mask is None else mask.to(z0.device)
    opt = torch.optim.Adam([zr], lr=lr)
    for _ in range(max(0, int(steps))):
        diff = (_low(gen(zr), sigma) - goal).pow(2)
        fit = (diff * w).sum() / (w.sum() * diff.shape[1]).clamp_min(1e-8) if w is not None else diff.mean()
        loss = fit + penalty * (zr - z0).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return zr.detach()


@torch.no_grad()
def proxy_features(gen, split: str, z: torch.Tensor, z_r: torch.Tensor, z_e: torch.Tensor,
                   h: torch.Tensor, h_e: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(h_p, h_pe, z_pe)``: the proxy's split feature ``G_H(z_r)``, its edited feature and latent. The
    edit's part in ``z`` (``z_e − z``) is taken again at ``z_r``; its part added at or after the split
    (``h_e − h`` minus what the ``z`` move made there) is kept as it is."""
    z_pe = z_r + (z_e - z)
    h_p = gen.forward_to(z_r, split)
    in_h = (h_e - h) - (gen.forward_to(z_e, split) - gen.forward_to(z, split))
    return h_p, gen.forward_to(z_pe, split) + in_h, z_pe
