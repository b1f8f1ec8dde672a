"""Supervised directions (InterFaceGAN, Shen et al. 2020): a linear boundary (L2-regularised
logistic regression, fitted with L-BFGS in torch) between labelled latents — labels from a
measurable attribute of the generated images (:data:`ATTRIBUTES`) or from a user's positive
and negative examples; a *conditional* direction projects out other attributes' normals.
"""

from __future__ import annotations

import logging
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ...errors import InputError
from ...models.layered import LayeredGenerator

log = logging.getLogger(__name__)

from .base import cached


def _luma(img: torch.Tensor) -> torch.Tensor:
    return 0.299 * img[:, 0] + 0.587 * img[:, 1] + 0.114 * img[:, 2]


def _attr_brightness(img):
    return _luma(img).flatten(1).mean(1)


def _attr_warmth(img):
    return (img[:, 0] - img[:, 2]).flatten(1).mean(1)


def _attr_contrast(img):
    return _luma(img).flatten(1).std(1)


def _attr_left_right(img):
    y = _luma(img)
    w = y.shape[-1]
    return y[..., w // 2:].flatten(1).mean(1) - y[..., : w // 2].flatten(1).mean(1)


def _attr_top_bottom(img):
    y = _luma(img)
    r = y.shape[-2]
    return y[..., : r // 2, :].flatten(1).mean(1) - y[..., r // 2:, :].flatten(1).mean(1)


def _attr_asymmetry(img):
    return (img - img.flip(-1)).abs().flatten(1).mean(1)


def _attr_saturation(img):
    return (img.max(1).values - img.min(1).values).flatten(1).mean(1)


#: measurable attributes of generated images ((N, 3, R, R) in [-1, 1] -> (N,)); used to
#: label latents for supervised directions and to measure what a direction does
ATTRIBUTES: Dict[str, Tuple[Callable[[torch.Tensor], torch.Tensor], str]] = {
    "brightness": (_attr_brightness, "mean luminance"),
    "warmth": (_attr_warmth, "mean red minus blue"),
    "contrast": (_attr_contrast, "standard deviation of luminance"),
    "saturation": (_attr_saturation, "mean max-min over colour channels"),
    "left_right": (_attr_left_right, "luminance of the right half minus the left half"),
    "top_bottom": (_attr_top_bottom, "luminance of the top half minus the bottom half"),
    "asymmetry": (_attr_asymmetry, "mean difference between the image and its mirror image"),
}


def measure(img: torch.Tensor, names: Optional[Iterable[str]] = None) -> Dict[str, torch.Tensor]:
    return {n: ATTRIBUTES[n][0](img) for n in (names or ATTRIBUTES)}


def fit_boundary(latents: torch.Tensor, labels: torch.Tensor, l2: float = 1e-2,
                 steps: int = 100) -> Dict[str, torch.Tensor]:
    """A linear boundary between labelled latents (logistic regression, L-BFGS).

    ``latents`` (n, ...) any shape, flattened; ``labels`` (n,) in {0, 1}.  Returns the unit
    ``normal`` (pointing to the positives), ``bias`` (for the unit normal) and ``accuracy``
    on the training latents.
    """
    x = latents.detach().reshape(latents.shape[0], -1).double()
    y = labels.detach().reshape(-1).double().to(x.device)
    if x.shape[0] != y.shape[0]:
        raise InputError(f"{x.shape[0]} latents but {y.shape[0]} labels")
    if not ((y == 0) | (y == 1)).all():
        raise InputError("labels must be 0 (negative) or 1 (positive)")
    if int(y.sum()) == 0 or int(y.sum()) == y.numel():
        raise InputError("a supervised direction needs at least one positive and one negative example")
    if not torch.isfinite(x).all():
        raise InputError("the labelled latents contain NaN or infinite values")
    mu = x.mean(0, keepdim=True)
    xc = x - mu
    w = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, device=x.device, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logits = xc @ w + b
        loss = nn.functional.binary_cross_entropy_with_logits(logits, y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    w = w.detach()
    norm = w.norm().clamp_min(1e-30)
    with torch.no_grad():
        acc = (((xc @ w + b.detach()) > 0).double() == y).double().mean()
    return {"normal": (w / norm).float(), "bias": ((b.detach() - mu[0] @ w) / norm).float(),
            "accuracy": acc.float()}


def condition_direction(normal: torch.Tensor, others: Sequence[torch.Tensor]) -> torch.Tensor:
    """``normal`` with the components along ``others`` projected out (conditional editing)."""
    shape = normal.shape
    n = normal.reshape(-1).double()
    basis: List[torch.Tensor] = []
    for o in others:
        v = o.reshape(-1).double().to(n.device)
        for u in basis:
            v = v - (v @ u) * u
        if v.norm() > 1e-8:
            basis.append(v / v.norm())
    for u in basis:
        n = n - (n @ u) * u
    if n.norm() < 1e-6:
        raise InputError("the direction lies in the span of the attributes it is conditioned on: nothing is left")
    return (n / n.norm()).float().reshape(shape)


def labelled_direction(positives: torch.Tensor, negatives: torch.Tensor, l2: float = 1e-1) -> torch.Tensor:
    """A direction from a user's few positive and negative examples (their latents)."""
    if positives.shape[0] < 1 or negatives.shape[0] < 1:
        raise InputError("a supervised direction needs at least one positive and one negative example")
    lat = torch.cat([positives, negatives])
    lab = torch.cat([torch.ones(positives.shape[0]), torch.zeros(negatives.shape[0])])
    return fit_boundary(lat, lab, l2=l2)["normal"].reshape(positives.shape[1:])


def examples_direction(gen: LayeredGenerator, positives: Sequence, negatives: Sequence,
                       steps: int = 100, seed: int = 0) -> torch.Tensor:
    """A direction from a user's example images: each is projected (the whole image, centre-
    cropped to a square, at the model's resolution) and a boundary is fitted between the
    latents of the positives and of the negatives.  Returns a unit latent vector."""
    from ...compositing.crop import resize_rgb
    from ...images import load_photo
    from ...projection.project import ProjectionConfig, project

    def latent(img, what):
        rgb = load_photo(img, what).rgb
        side = min(rgb.shape[:2])
        y0, x0 = (rgb.shape[0] - side) // 2, (rgb.shape[1] - side) // 2
        small = np.array(resize_rgb(np.ascontiguousarray(rgb[y0:y0 + side, x0:x0 + side]), gen.resolution))
        target = torch.from_numpy(small).permute(2, 0, 1).float().div(127.5).sub(1.0)[None].to(gen.device)
        return project(gen, target, config=ProjectionConfig(steps=steps, seed=seed)).z

    if not positives or not negatives:
        raise InputError("a supervised direction needs at least one positive and one negative example")
    pos = torch.cat([latent(im, f"positive example {i + 1}") for i, im in enumerate(positives)])
    neg = torch.cat([latent(im, f"negative example {i + 1}") for i, im in enumerate(negatives)])
    return labelled_direction(pos, neg)


def compute_attribute_direction(gen: LayeredGenerator, attribute: str, samples: int = 2000,
                                seed: int = 0, quantile: float = 0.3, batch: int = 250) -> Dict[str, torch.Tensor]:
    """InterFaceGAN on labels from an attribute: top ``quantile`` vs bottom ``quantile``."""
    if attribute not in ATTRIBUTES:
        raise InputError(f"unknown attribute {attribute!r}; known: {', '.join(sorted(ATTRIBUTES))}")
    if not 0.0 < quantile <= 0.5:
        raise InputError("quantile must be in (0, 0.5]")
    fn = ATTRIBUTES[attribute][0]
    z = gen.sample_latents(samples, generator=torch.Generator().manual_seed(int(seed)))
    with torch.no_grad():
        scores = torch.cat([fn(gen(c)) for c in z.split(batch)])
    order = torch.argsort(scores)
    m = max(1, int(samples * quantile))
    idx = torch.cat([order[:m], order[-m:]])
    labels = torch.cat([torch.zeros(m), torch.ones(m)])
    fit = fit_boundary(z[idx], labels)
    return {"normal": fit["normal"].reshape(gen.latent_shape), "bias": fit["bias"].reshape(1),
            "accuracy": fit["accuracy"].reshape(1)}


def attribute_direction(gen: LayeredGenerator, attribute: str, samples: int = 2000, seed: int = 0,
                        quantile: float = 0.3, condition: Sequence[str] = ()) -> torch.Tensor:
    """The unit latent normal of ``attribute`` (cached), optionally conditioned on others."""
    def one(name):
        params = {"attribute": name, "samples": int(samples), "seed": int(seed), "quantile": float(quantile)}
        return cached(gen, "supervised", params,
                      lambda: compute_attribute_direction(gen, name, samples, seed, quantile))["normal"]
    n = one(attribute)
    if condition:
        n = condition_direction(n, [one(c) for c in condition])
    return n



def residual_scores(scores: torch.Tensor, nuisances: torch.Tensor) -> torch.Tensor:
    """``scores`` (n,) less their least-squares fit on ``nuisances`` (n, k) and a constant: the part
    of an attribute that head pose or lighting (the nuisances) do not explain."""
    s = scores.detach().reshape(-1).double()
    x = nuisances.detach().reshape(s.shape[0], -1).double().to(s.device)
    x = torch.cat([x, torch.ones(s.shape[0], 1, dtype=x.dtype, device=x.device)], dim=1)
    coef = torch.linalg.lstsq(x, s[:, None]).solution
    return (s - (x @ coef)[:, 0]).to(scores.dtype)


def orthogonal_boundary(latents: torch.Tensor, scores: torch.Tensor, nuisances: Dict[str, torch.Tensor],
                        quantile: float = 0.3, l2: float = 1e-2) -> Dict[str, object]:
    """An attribute's boundary that does not move the nuisances (InterFaceGAN's conditional editing).

    ``scores`` (n,) measure the attribute on the images of ``latents`` (n, ...); ``nuisances`` name
    other measures of the same images (head pose, lighting: each (n,)). The attribute's scores are
    first made independent of the nuisances (:func:`residual_scores`), the top and bottom
    ``quantile`` are labelled 1 and 0 and a boundary is fitted (:func:`fit_boundary`); each
    nuisance's own boundary (fitted the same way) is then projected out of its normal
    (:func:`condition_direction`). Samples with a non-finite score (no face found) are left out.
    Returns ``normal`` (unit, latents' shape), ``accuracy``, ``cosines`` (the cosine of the boundary
    fitted on the residual scores, before the projection, with each nuisance's boundary: what the
    residual alone left of each) and ``samples`` used.
    """
    if not 0.0 < quantile <= 0.5:
        raise InputError("quantile must be in (0, 0.5]")
    s = scores.detach().reshape(-1).double()
    cols = [v.detach().reshape(-1).double() for v in nuisances.values()]
    ok = torch.isfinite(s)
    for c in cols:
        ok &= torch.isfinite(c)
    x = latents.detach()[ok]
    n = int(ok.sum())
    m = int(n * quantile)
    if m < 2:
        raise InputError(f"a boundary needs more measured samples than {n}")

    def fit(v):
        order = torch.argsort(v)
        idx = torch.cat([order[:m], order[-m:]])
        return fit_boundary(x[idx], torch.cat([torch.zeros(m), torch.ones(m)]), l2=l2)

    target = residual_scores(s[ok], torch.stack([c[ok] for c in cols], 1)) if cols else s[ok]
    if float(target.std()) <= 1e-6 * max(float(s[ok].std()), 1e-30):
        raise InputError(f"the nuisances ({', '.join(nuisances)}) explain the attribute entirely: nothing of it is left")
    own = fit(target)
    others = {k: fit(c[ok])["normal"] for k, c in zip(nuisances, cols)}
    normal = condition_direction(own["normal"], list(others.values())) if others else own["normal"]
    return {"normal": normal.reshape(latents.shape[1:]), "accuracy": float(own["accuracy"]),
            "cosines": {k: round(float(own["normal"] @ o), 3) for k, o in others.items()}, "samples": n}
