"""Semantic latent directions: SeFa, GANSpace and supervised (InterFaceGAN) boundaries.

Three ways to find directions for any :class:`~priorpaint.models.layered.LayeredGenerator`:

* **SeFa** (closed form, no sampling): the eigenvectors of ``AᵀA`` where ``A`` is the
  generator's first affine map from the latent (for the DCGAN: the first
  ConvTranspose2d and its eval-mode BatchNorm, 100 → 512×4×4).  A generator may supply
  its own matrix with a method ``sefa_weight() -> (out_features, latent_dim)`` (StyleGAN2:
  the stacked style-modulation weights); otherwise the prefix of the first layer up to its
  first non-linearity is read off numerically and checked to be affine.
* **GANSpace**: PCA of the split-layer feature ``h = G_H(z)`` over sampled latents
  (randomised SVD, features kept in float16, one pass of the generator), plus the
  latent-space directions found, as GANSpace does for BigGAN, by regressing the PCA
  coordinates on ``z``.
* **Supervised** (InterFaceGAN): a linear boundary (L2-regularised logistic regression,
  fitted with L-BFGS in torch) between labelled latents — labels from a measurable
  attribute of the generated images (:data:`ATTRIBUTES`) or from a user's positive and
  negative examples; a *conditional* direction projects out other attributes' normals.

How a direction edits a state (documented in the README):

* a **latent** (``z``) direction ``d`` (unit norm; SeFa, supervised) moves ``z_e = z + α·d``
  and the split feature keeps its projection residual:
  ``h_e = h + G_H(z_e) − G_H(z)``.  Repeated directions therefore add up exactly in ``z``;
* a **feature** direction ``v`` (unit norm; GANSpace) is applied at its layer:
  ``h_e = h + α·σ·v`` where ``σ`` is the standard deviation of the sampled features along
  ``v`` (a layer before the split is mapped through with its residual kept; a layer after
  it becomes an intervention of ``G_F``).

Strength ``α`` is in standard deviations of the prior along the direction (for a latent
direction, ``z ~ N(0, I)`` has unit deviation along every unit vector), so −3..3 covers the
range the generator saw while training.

Computed directions are cached as safetensors files in
``${PRIORPAINT_CACHE:-~/.cache/priorpaint}/directions/<model>-<method>-v<version>-<key>.safetensors``;
the key hashes the method's parameters and a fingerprint of the generator's weights, and
the version in :data:`METHOD_VERSIONS` changes whenever a method's computation does, so
an old file is never reused for a new computation.  Every computation is deterministic
for its seed.

Named directions of a model live in ``weights_manifest/directions/<model>.json`` (see
``priorpaint directions --derive``): a method, a component index and a sign, or an
attribute for a supervised direction, a description of what it really does, and the
strength range.  Raw components are always available as ``sefa<K>`` and ``ganspace<K>``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..errors import InputError, ModelError
from ..jobs import CancelToken, ProgressFn, checkpoint
from ..models.layered import LayeredGenerator
from .registry import EditState, register_edit

log = logging.getLogger(__name__)

#: bump a method's version whenever its computation changes: cached files of the old
#: version are then ignored and recomputed
METHOD_VERSIONS = {"sefa": 1, "ganspace": 1, "supervised": 1}
#: strength range of raw components (``sefaK``, ``ganspaceK``) and of named directions
#: that do not give one
DEFAULT_RANGE = (-3.0, 3.0)
#: GANSpace defaults (the benchmark's figure is for 20 000 samples)
GANSPACE_SAMPLES = 20000
GANSPACE_COMPONENTS = 20
RAW_PATTERN = re.compile(r"^(sefa|ganspace)(\d+)$")


# =======================================================================================
# The cache
# =======================================================================================
def cache_root() -> Path:
    """``$PRIORPAINT_CACHE`` or ``~/.cache/priorpaint`` (shared with the other caches)."""
    env = os.environ.get("PRIORPAINT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "priorpaint"


def directions_cache_dir() -> Path:
    return cache_root() / "directions"


_fingerprints: Dict[tuple, str] = {}
_memo: Dict[Tuple[str, str], Dict[str, torch.Tensor]] = {}
_memo_lock = threading.Lock()


def fingerprint(gen: nn.Module) -> str:
    """sha256 of the generator's parameters and buffers (memoised until one changes)."""
    tensors = list(gen.state_dict().items())
    key = tuple((k, v.data_ptr(), v._version, tuple(v.shape)) for k, v in tensors)
    fp = _fingerprints.get(key)
    if fp is None:
        h = hashlib.sha256()
        for k, v in sorted(tensors):
            h.update(k.encode())
            h.update(str(tuple(v.shape)).encode())
            h.update(v.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        fp = _fingerprints[key] = h.hexdigest()
    return fp


def model_name(gen: nn.Module) -> str:
    name = getattr(gen, "model_id", None) or getattr(gen, "architecture", "") or "generator"
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(name))


def cache_path(gen: nn.Module, method: str, params: dict) -> Path:
    if method not in METHOD_VERSIONS:
        raise ValueError(f"unknown direction method {method!r}")
    version = METHOD_VERSIONS[method]
    blob = json.dumps({"method": method, "version": version, "params": params,
                       "weights": fingerprint(gen)}, sort_keys=True)
    key = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return directions_cache_dir() / f"{model_name(gen)}-{method}-v{version}-{key}.safetensors"


def cached(gen: nn.Module, method: str, params: dict,
           compute: Callable[[], Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """The tensors of ``compute()``, from memory, from the cache folder, or computed and saved."""
    from safetensors.torch import load_file, save_file

    path = cache_path(gen, method, params)
    dev = str(getattr(gen, "device", "cpu"))
    with _memo_lock:
        hit = _memo.get((str(path), dev))
    if hit is not None:
        return hit
    tensors = None
    if path.is_file():
        try:
            tensors = load_file(str(path), device="cpu")
        except Exception as e:  # a truncated or foreign file: recompute, never trust it
            log.warning("ignoring unreadable direction cache %s (%s); recomputing", path, e)
    if tensors is None:
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in compute().items()}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            meta = {"method": method, "version": str(METHOD_VERSIONS[method]),
                    "params": json.dumps(params, sort_keys=True), "model": model_name(gen)}
            save_file(tensors, str(tmp), metadata=meta)
            os.replace(tmp, path)
        except OSError as e:  # a read-only home: still usable, just not cached
            log.warning("cannot write the direction cache %s: %s", path, e)
    on_dev = {k: v.to(dev) for k, v in tensors.items()}
    with _memo_lock:
        _memo[(str(path), dev)] = on_dev
    return on_dev


def clear_memory_cache() -> None:
    """Forget the in-process copies (the files stay)."""
    with _memo_lock:
        _memo.clear()
    _resolved.clear()


def _canonical_sign(vectors: torch.Tensor) -> torch.Tensor:
    """Flip each row so that its entry of largest magnitude is positive (deterministic signs)."""
    idx = vectors.abs().argmax(dim=1, keepdim=True)
    signs = torch.sign(vectors.gather(1, idx))
    signs[signs == 0] = 1
    return vectors * signs


# =======================================================================================
# SeFa
# =======================================================================================
_NONLINEAR = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.ELU, nn.PReLU,
              nn.Softplus, nn.Hardtanh, nn.ReLU6, nn.Mish, nn.Softmax, nn.Hardswish, nn.SELU, nn.CELU)


def _leaves(module: nn.Module) -> List[nn.Module]:
    kids = list(module.children())
    if not kids:
        return [module]
    out: List[nn.Module] = []
    for k in kids:
        out += _leaves(k)
    return out


def sefa_weight(gen: LayeredGenerator) -> torch.Tensor:
    """The matrix ``A`` (out_features × latent_dim) of the generator's first affine map.

    ``gen.sefa_weight()`` when the generator defines it (StyleGAN2: its style modulation
    weights); else the first layer's modules up to the first non-linearity, which must
    be affine in the latent (checked).
    """
    own = getattr(gen, "sefa_weight", None)
    if callable(own):
        a = own()
        if a.dim() != 2 or a.shape[1] != math.prod(gen.latent_shape):
            raise ModelError(f"{model_name(gen)}.sefa_weight() must be (out, {math.prod(gen.latent_shape)}), "
                             f"got {tuple(a.shape)}")
        return a.detach().float()
    first = gen.layers[gen.layer_names[0]]
    prefix: List[nn.Module] = []
    for m in _leaves(first):
        if isinstance(m, _NONLINEAR):
            break
        prefix.append(m)
    if not any(p.numel() for m in prefix for p in m.parameters()):
        raise ModelError(f"{model_name(gen)}: the first layer has no affine map of the latent before its "
                         "first non-linearity; give the generator a sefa_weight() method")
    f = nn.Sequential(*prefix).eval()
    d = math.prod(gen.latent_shape)
    dev = gen.device
    with torch.no_grad():
        eye = torch.eye(d, device=dev).reshape((d,) + tuple(gen.latent_shape))
        zero = torch.zeros((1,) + tuple(gen.latent_shape), device=dev)
        base = f(zero).reshape(1, -1)
        a = (f(eye).reshape(d, -1) - base)
        twice = f(2 * eye).reshape(d, -1) - base
    if not torch.allclose(twice, 2 * a, rtol=1e-3, atol=1e-4 * float(a.abs().max().clamp_min(1e-12))):
        raise ModelError(f"{model_name(gen)}: the first layer's map before its first non-linearity is not "
                         "affine; give the generator a sefa_weight() method")
    return a.t().contiguous()


def compute_sefa(gen: LayeredGenerator) -> Dict[str, torch.Tensor]:
    """All SeFa directions: unit latent vectors (rows), by decreasing eigenvalue."""
    a = sefa_weight(gen).double()
    evals, evecs = torch.linalg.eigh(a.t() @ a)
    order = torch.argsort(evals, descending=True)
    vectors = _canonical_sign(evecs[:, order].t().contiguous())
    return {"vectors": vectors.float(), "eigenvalues": evals[order].float()}


def sefa(gen: LayeredGenerator) -> Dict[str, torch.Tensor]:
    """SeFa directions of ``gen`` (cached)."""
    return cached(gen, "sefa", {}, lambda: compute_sefa(gen))


# =======================================================================================
# GANSpace
# =======================================================================================
def compute_ganspace(gen: LayeredGenerator, layer: Optional[str] = None, samples: int = GANSPACE_SAMPLES,
                     components: int = GANSPACE_COMPONENTS, seed: int = 0, batch: int = 500,
                     oversample: int = 20, power_iterations: int = 2,
                     progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None
                     ) -> Dict[str, torch.Tensor]:
    """PCA of ``G_H(z)`` at ``layer`` over ``samples`` latents (randomised SVD).

    Returns ``vectors`` (k × feature_dim, unit rows), ``sigma`` (standard deviation of the
    samples along each), ``explained`` (fraction of the total variance), ``mean``, and the
    latent-space directions ``z_vectors`` (k × latent_dim, unit rows) found by regressing
    each component's coordinate on ``z``, with that regression's ``z_r2``.
    """
    layer = layer or gen.default_split
    gen.index(layer)
    if samples < 2:
        raise InputError("GANSpace needs at least 2 samples")
    dev = gen.device
    gcpu = torch.Generator().manual_seed(int(seed))
    z_all = gen.sample_latents(samples, generator=gcpu)
    with torch.no_grad():
        shape = tuple(gen.forward_to(z_all[:1], layer).shape[1:])
    dim = math.prod(shape)
    k = max(1, min(components, samples - 1, dim))
    width = min(k + oversample, samples, dim)
    # One pass of the generator; features stored in float16 (20 000 × 16 384 = 650 MB for
    # the embedded model), sums in float64.
    store_dtype = torch.float16 if samples * dim > 2 ** 24 else torch.float32
    x = torch.empty((samples, dim), dtype=store_dtype, device=dev)
    total = torch.zeros(dim, dtype=torch.float64, device=dev)
    total_sq = torch.zeros((), dtype=torch.float64, device=dev)
    with torch.no_grad():
        for i in range(0, samples, batch):
            checkpoint(cancel, progress, "ganspace", 0.8 * i / samples)
            f = gen.forward_to(z_all[i:i + batch], layer).reshape(-1, dim)
            x[i:i + f.shape[0]] = f.to(store_dtype)
            f64 = f.double()
            total += f64.sum(0)
            total_sq += (f64 * f64).sum()
        mean = total / samples
        total_var = float((total_sq - samples * (mean * mean).sum()) / (samples - 1))
        mean32 = mean.float()

        def xc_mul(m: torch.Tensor) -> torch.Tensor:          # (X − 1μᵀ) @ m
            out = torch.cat([x[i:i + batch].float() @ m for i in range(0, samples, batch)])
            return out - (mean32 @ m)[None]

        def xct_mul(q: torch.Tensor) -> torch.Tensor:         # (X − 1μᵀ)ᵀ @ q
            acc = torch.zeros((dim, q.shape[1]), device=dev)
            for i in range(0, samples, batch):
                acc += x[i:i + batch].float().t() @ q[i:i + batch]
            return acc - mean32[:, None] * q.sum(0)[None]

        omega = torch.randn((dim, width), generator=torch.Generator().manual_seed(int(seed) + 1)).to(dev)
        y = xc_mul(omega)
        for it in range(power_iterations):
            checkpoint(cancel, progress, "ganspace", 0.8 + 0.15 * it / max(power_iterations, 1))
            q, _ = torch.linalg.qr(y)
            p, _ = torch.linalg.qr(xct_mul(q))
            y = xc_mul(p)
        q, _ = torch.linalg.qr(y)
        b = xct_mul(q).t()                                      # (width × dim) = Qᵀ Xc
        ub, s, vt = torch.linalg.svd(b.double(), full_matrices=False)
        vt = vt[:k]
        signs = torch.sign(vt.gather(1, vt.abs().argmax(1, keepdim=True)))
        signs[signs == 0] = 1
        vt = vt * signs
        coords = (q.double() @ ub[:, :k]) * s[:k][None] * signs.t()   # (samples × k) = Xc Vᵀ
        sigma = s[:k] / math.sqrt(samples - 1)
        # Latent directions: least squares z-coefficients of each component's coordinate.
        zf = z_all.reshape(samples, -1).double()
        zc = zf - zf.mean(0, keepdim=True)
        coef = torch.linalg.lstsq(zc, coords - coords.mean(0, keepdim=True)).solution   # (latent_dim × k)
        pred = zc @ coef
        resid = ((coords - coords.mean(0)) - pred).pow(2).sum(0)
        r2 = 1.0 - resid / (coords - coords.mean(0)).pow(2).sum(0).clamp_min(1e-30)
        zvec = coef.t() / coef.t().norm(dim=1, keepdim=True).clamp_min(1e-30)
    checkpoint(cancel, progress, "ganspace", 1.0)
    return {
        "vectors": vt.float().contiguous(),
        "sigma": sigma.float(),
        "explained": (sigma.pow(2) / max(total_var, 1e-30)).float(),
        "mean": mean32.reshape(shape).contiguous(),
        "z_vectors": zvec.float().contiguous(),
        "z_r2": r2.float(),
    }


def ganspace(gen: LayeredGenerator, layer: Optional[str] = None, samples: int = GANSPACE_SAMPLES,
             components: int = GANSPACE_COMPONENTS, seed: int = 0,
             progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None) -> Dict[str, torch.Tensor]:
    """GANSpace components of ``gen`` at ``layer`` (cached)."""
    layer = layer or gen.default_split
    params = {"layer": layer, "samples": int(samples), "components": int(components), "seed": int(seed)}
    return cached(gen, "ganspace", params,
                  lambda: compute_ganspace(gen, layer, samples, components, seed, progress=progress, cancel=cancel))


# =======================================================================================
# Supervised (InterFaceGAN)
# =======================================================================================
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
    from ..compositing.crop import resize_rgb
    from ..images import load_photo
    from ..projection.project import ProjectionConfig, project

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


# =======================================================================================
# Directions as edits
# =======================================================================================
@dataclass
class Direction:
    name: str
    description: str
    method: str                       # "sefa", "ganspace", "supervised"
    space: str                        # "z" (latent) or "h" (feature at ``layer``)
    vector: torch.Tensor              # unit, shaped (1, *latent_shape) or (1, *feature_shape)
    scale: float = 1.0                # σ: strength α moves α·σ along ``vector``
    layer: Optional[str] = None
    min: float = DEFAULT_RANGE[0]
    max: float = DEFAULT_RANGE[1]
    default: float = 0.0
    info: dict = field(default_factory=dict)


def directions_manifest_path(model_id: str) -> Optional[Path]:
    from ..models.manifest import manifest_dirs
    for d in manifest_dirs():
        p = Path(d) / "directions" / f"{model_id}.json"
        if p.is_file():
            return p
    return None


def load_named(model_id: Optional[str]) -> dict:
    """The named-directions manifest of a model (``{}`` when it has none)."""
    from ..models.manifest import DEFAULT_MODEL
    path = directions_manifest_path(model_id or DEFAULT_MODEL)
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ModelError(f"directions manifest {path} is not valid JSON: {e}") from None
    names = [d.get("name") for d in data.get("directions", [])]
    if len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
        raise ModelError(f"directions manifest {path}: every direction needs a unique name")
    return data


def _raw_entries(count: int = 5) -> List[dict]:
    out = []
    for method, what in (("sefa", "SeFa component"), ("ganspace", "GANSpace component")):
        for k in range(count):
            out.append({"name": f"{method}{k}", "method": method, "component": k, "sign": 1,
                        "description": f"{what} {k} (unnamed)",
                        "min": DEFAULT_RANGE[0], "max": DEFAULT_RANGE[1], "default": 0.0})
    return out


def list_directions(model_id: Optional[str] = None) -> List[dict]:
    """``[{name, description, min, max, default, method}]`` for a model (no generator needed).

    The named directions of its manifest; a model without one lists its first raw SeFa
    and GANSpace components.  This is what the app shows as sliders.
    """
    data = load_named(model_id)
    entries = data.get("directions") or _raw_entries()
    return [{"name": d["name"], "description": d.get("description", ""),
             "min": float(d.get("min", DEFAULT_RANGE[0])), "max": float(d.get("max", DEFAULT_RANGE[1])),
             "default": float(d.get("default", 0.0)), "method": d.get("method", "")}
            for d in entries]


def _entry_for(model_id: str, name: str, data: dict) -> dict:
    for d in data.get("directions", []):
        if d["name"] == name:
            return d
    m = RAW_PATTERN.match(name)
    if m:
        return {"name": name, "method": m.group(1), "component": int(m.group(2)), "sign": 1,
                "description": f"{'SeFa' if m.group(1) == 'sefa' else 'GANSpace'} component {m.group(2)}"}
    known = [d["name"] for d in data.get("directions", [])]
    raise InputError(f"unknown direction {name!r} for model {model_id}; known: "
                     f"{', '.join(known) if known else 'none named'}"
                     f"{'; ' if known else ', but '}raw components are sefa0, sefa1, ... and ganspace0, ganspace1, ...")


_resolved: Dict[tuple, "Direction"] = {}


def get_direction(gen: LayeredGenerator, name: str, model_id: Optional[str] = None) -> Direction:
    """The named (or raw ``sefaK`` / ``ganspaceK``) direction of ``gen``, computed or cached.

    Resolved directions are remembered per weights, device, name and manifest version, so a
    live preview pays for the lookup once.
    """
    from ..models.manifest import DEFAULT_MODEL
    model_id = model_id or getattr(gen, "model_id", None) or DEFAULT_MODEL
    path = directions_manifest_path(model_id)
    stamp = path.stat().st_mtime_ns if path is not None else None
    key = (fingerprint(gen), str(gen.device), model_id, name, str(path), stamp, str(directions_cache_dir()))
    hit = _resolved.get(key)
    if hit is None:
        hit = _resolve_direction(gen, name, model_id)
        if len(_resolved) > 256:
            _resolved.clear()
        _resolved[key] = hit
    return hit


def _resolve_direction(gen: LayeredGenerator, name: str, model_id: str) -> Direction:
    data = load_named(model_id)
    e = _entry_for(model_id, name, data)
    methods = data.get("methods", {})
    method = e.get("method")
    sign = float(e.get("sign", 1))
    if sign not in (1.0, -1.0):
        raise ModelError(f"direction {name!r}: sign must be 1 or -1")
    common = dict(name=name, description=e.get("description", ""), method=method,
                  min=float(e.get("min", DEFAULT_RANGE[0])), max=float(e.get("max", DEFAULT_RANGE[1])),
                  default=float(e.get("default", 0.0)))
    lat = (1,) + tuple(gen.latent_shape)
    if method == "sefa":
        vecs = sefa(gen)["vectors"]
        k = _component(e, vecs.shape[0], name)
        return Direction(space="z", vector=(sign * vecs[k]).reshape(lat), info={"component": k}, **common)
    if method == "ganspace":
        cfg = dict(methods.get("ganspace", {}))
        cfg.update({k: e[k] for k in ("layer", "samples", "components", "seed") if k in e})
        layer = cfg.get("layer") or gen.default_split
        res = ganspace(gen, layer=layer, samples=int(cfg.get("samples", GANSPACE_SAMPLES)),
                       components=int(cfg.get("components", GANSPACE_COMPONENTS)), seed=int(cfg.get("seed", 0)))
        k = _component(e, res["vectors"].shape[0], name)
        if e.get("space", "h") == "z":
            return Direction(space="z", vector=(sign * res["z_vectors"][k]).reshape(lat),
                             info={"component": k}, **common)
        shape = (1,) + tuple(res["mean"].shape)
        return Direction(space="h", layer=layer, vector=(sign * res["vectors"][k]).reshape(shape),
                         scale=float(res["sigma"][k]), info={"component": k}, **common)
    if method == "supervised":
        cfg = dict(methods.get("supervised", {}))
        cfg.update({k: e[k] for k in ("samples", "seed", "quantile") if k in e})
        if "attribute" not in e:
            raise ModelError(f"supervised direction {name!r} names no attribute")
        n = attribute_direction(gen, e["attribute"], samples=int(cfg.get("samples", 2000)),
                                seed=int(cfg.get("seed", 0)), quantile=float(cfg.get("quantile", 0.3)),
                                condition=tuple(e.get("condition", ())))
        return Direction(space="z", vector=(sign * n).reshape(lat), **common)
    raise ModelError(f"direction {name!r} has unknown method {method!r}")


def _component(e: dict, count: int, name: str) -> int:
    k = int(e.get("component", 0))
    if not 0 <= k < count:
        raise InputError(f"direction {name!r}: component {k} does not exist (there are {count})")
    return k


_base: List[tuple] = []          # small LRU of (gen id, split, z copy, G_H(z)) for live previews
_base_lock = threading.Lock()


def _features_of(gen: LayeredGenerator, z: torch.Tensor, split: str) -> torch.Tensor:
    """``G_H(z)`` at ``split``, remembered for the last few latents (a preview moves one
    slider many times from the same starting latent, so this halves a frame's cost)."""
    versions = tuple(p._version for p in gen.parameters())
    with _base_lock:
        for i, (ref, ver, sp, zc, hz) in enumerate(_base):
            if ref() is gen and ver == versions and sp == split and zc.shape == z.shape \
                    and zc.device == z.device and torch.equal(zc, z):
                _base.insert(0, _base.pop(i))
                return hz
    hz = gen.forward_to(z, split)
    with _base_lock:
        _base.insert(0, (weakref.ref(gen), versions, split, z.detach().clone(), hz))
        del _base[4:]
    return hz


def shift(gen: LayeredGenerator, z: torch.Tensor, h: torch.Tensor, split: str,
          direction: Direction, strength: float,
          interventions: Optional[Dict[str, Callable]] = None):
    """``(z_e, h_e, interventions_e)`` after moving ``strength`` along ``direction``."""
    interventions = dict(interventions or {})
    with torch.no_grad():
        if direction.space == "z":
            dz = (strength * direction.scale) * direction.vector.to(z.device, z.dtype)
            z_e = z + dz
            h_e = h + (gen.forward_to(z_e, split) - _features_of(gen, z, split))
            return z_e, h_e, interventions
        layer = direction.layer or split
        delta = (strength * direction.scale) * direction.vector.to(h.device, h.dtype)
        if layer == split:
            return z, h + delta, interventions
        if gen.index(layer) < gen.index(split):
            a = gen.forward_to(z, layer)
            h_e = h + (gen.run(a + delta, start=layer, stop=split, z=z)[0] - gen.run(a, start=layer, stop=split, z=z)[0])
            return z, h_e, interventions
        prev = interventions.get(layer)
        interventions[layer] = (lambda x, p=prev, d=delta: (p(x) if p else x) + d)
        return z, h, interventions


def apply_direction(gen: LayeredGenerator, state: EditState, split: str, direction: Direction,
                    strength: float) -> EditState:
    """A new state with ``direction`` applied at ``strength`` (clamped to its range, with a note)."""
    s = float(strength)
    if not math.isfinite(s):
        raise InputError(f"strength of direction {direction.name!r} must be a finite number, got {strength!r}")
    new = state.evolve()
    if s < direction.min or s > direction.max:
        c = min(max(s, direction.min), direction.max)
        note = (f"strength {s:g} of direction {direction.name!r} is outside its range "
                f"[{direction.min:g}, {direction.max:g}]; clamped to {c:g}")
        log.warning(note)
        new.notes.append(note)
        s = c
    z, h, iv = shift(gen, state.z, state.h, split, direction, s, state.interventions)
    new.z, new.h, new.interventions = z, h, iv
    return new


# -- the edit kind ----------------------------------------------------------------------
def parse_direction(args: str) -> dict:
    name, sep, value = args.rpartition("=")
    name = name.strip()
    if not sep or not name:
        raise InputError(f"direction edit must be direction:NAME=STRENGTH, got direction:{args}")
    try:
        strength = float(value)
    except ValueError:
        raise InputError(f"direction {name!r}: strength {value!r} is not a number") from None
    return {"name": name, "strength": strength}


def check_direction(gen: LayeredGenerator, spec: dict) -> None:
    """Refuse an unknown direction name (listing the known ones) without computing anything."""
    from ..models.manifest import DEFAULT_MODEL
    model_id = getattr(gen, "model_id", None) or DEFAULT_MODEL
    _entry_for(model_id, str(spec.get("name", "")), load_named(model_id))


@register_edit("direction", parse_direction, check=check_direction,
               help="direction:NAME=STRENGTH — move along a named latent direction (see `priorpaint directions`); "
                    "repeatable, combined additively; strengths outside the range are clamped with a note")
def apply_direction_edit(session, state: EditState, spec: dict) -> EditState:
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise InputError("direction edit needs a 'name'")
    strength = spec.get("strength", 1.0)
    if isinstance(strength, bool) or not isinstance(strength, (int, float)):
        try:
            strength = float(strength)
        except (TypeError, ValueError):
            raise InputError(f"direction {name!r}: strength {strength!r} is not a number") from None
    direction = get_direction(session.gen, name, session.model_id)
    new = apply_direction(session.gen, state, session.require_projection().split, direction, float(strength))
    spec["applied_strength"] = min(max(float(strength), direction.min), direction.max) \
        if math.isfinite(float(strength)) else None
    return new


# =======================================================================================
# Deriving named directions: grids to look at, and measured effects
# =======================================================================================
GRID_STRENGTHS = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)


def _images_along(gen: LayeredGenerator, z: torch.Tensor, direction: Direction,
                  strengths: Sequence[float], split: Optional[str] = None) -> torch.Tensor:
    """(len(strengths) * n, 3, R, R): each latent of ``z`` moved along ``direction``."""
    split = split or gen.default_split
    with torch.no_grad():
        h = gen.forward_to(z, split)
        out = []
        for s in strengths:
            z_e, h_e, iv = shift(gen, z, h, split, direction, float(s))
            out.append(gen.forward_from(split, h_e, interventions=iv or None, z=z_e))
    return torch.cat(out)


def raw_direction(gen: LayeredGenerator, method: str, k: int, layer: Optional[str] = None,
                  samples: int = GANSPACE_SAMPLES, seed: int = 0) -> Direction:
    """Component ``k`` of a method as a :class:`Direction` (sign +1)."""
    lat = (1,) + tuple(gen.latent_shape)
    if method == "sefa":
        return Direction(name=f"sefa{k}", description="", method="sefa", space="z",
                         vector=sefa(gen)["vectors"][k].reshape(lat))
    if method in ("ganspace", "ganspace_z"):
        layer = layer or gen.default_split
        res = ganspace(gen, layer=layer, samples=samples, seed=seed)
        if method == "ganspace_z":
            return Direction(name=f"ganspace_z{k}", description="", method="ganspace", space="z",
                             vector=res["z_vectors"][k].reshape(lat))
        return Direction(name=f"ganspace{k}", description="", method="ganspace", space="h", layer=layer,
                         vector=res["vectors"][k].reshape((1,) + tuple(res["mean"].shape)),
                         scale=float(res["sigma"][k]))
    raise InputError(f"unknown method {method!r}")


def direction_grid(gen: LayeredGenerator, directions: Sequence[Direction], faces: int = 3, seed: int = 7,
                   strengths: Sequence[float] = GRID_STRENGTHS, gap: int = 4) -> np.ndarray:
    """A uint8 image: one row per direction; per face, one column per strength."""
    from ..compositing.blend import to_uint8
    z = gen.sample_latents(faces, seed=seed)
    r = gen.resolution
    ns = len(strengths)
    width = faces * ns * r + (faces - 1) * gap
    grid = np.full((len(directions) * (r + gap) - gap, width, 3), 255, np.uint8)
    for row, d in enumerate(directions):
        imgs = _images_along(gen, z, d, strengths)          # strength-major
        for si in range(ns):
            for f in range(faces):
                x = f * (ns * r + gap) + si * r
                y = row * (r + gap)
                grid[y:y + r, x:x + r] = to_uint8(imgs[si * faces + f])
    return grid


def measure_direction(gen: LayeredGenerator, direction: Direction, samples: int = 64, seed: int = 11,
                      strength: float = 2.0) -> dict:
    """Effect of ``±strength`` on each attribute, in units of that attribute's spread over faces."""
    z = gen.sample_latents(samples, seed=seed)
    imgs = _images_along(gen, z, direction, (-strength, 0.0, strength))
    lo, mid, hi = imgs[:samples], imgs[samples:2 * samples], imgs[2 * samples:]
    out = {"pixel_change": round(float((hi - lo).abs().mean()), 4)}
    for name, (fn, _) in ATTRIBUTES.items():
        spread = float(fn(mid).std().clamp_min(1e-6))
        out[name] = round(float((fn(hi) - fn(lo)).mean()) / spread, 3)
    return out


def derive(gen: LayeredGenerator, out_dir: Path, count: int = 8, samples: int = GANSPACE_SAMPLES,
           progress: Optional[Callable[[str], None]] = None) -> dict:
    """Grids (PNG) and measured effects (JSON) of the first ``count`` components of each method.

    Writes ``<model>-sefa.png``, ``<model>-ganspace.png`` and ``<model>-ganspace_z.png`` (rows =
    component, columns = strength −3..+3 for three faces) and ``<model>-measurements.json``.
    Naming the components is a human's job: look at the grids, read the measurements, and
    write ``weights_manifest/directions/<model>.json``.
    """
    from PIL import Image
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = model_name(gen)
    report = {"model": name, "strengths": list(GRID_STRENGTHS), "ganspace_samples": samples,
              "attributes": {k: v[1] for k, v in ATTRIBUTES.items()}, "components": {}}
    for method in ("sefa", "ganspace", "ganspace_z"):
        if progress:
            progress(f"{method}: computing")
        dirs = [raw_direction(gen, method, k, samples=samples) for k in range(count)]
        path = out_dir / f"{name}-{method}.png"
        Image.fromarray(direction_grid(gen, dirs)).save(path)
        report["components"][method] = [dict(component=k, **measure_direction(gen, d)) for k, d in enumerate(dirs)]
        if progress:
            progress(f"{method}: wrote {path}")
    for attr in ("brightness", "warmth", "left_right"):
        d = Direction(name=attr, description="", method="supervised", space="z",
                      vector=attribute_direction(gen, attr).reshape((1,) + tuple(gen.latent_shape)))
        report["components"].setdefault("supervised", []).append(dict(attribute=attr, **measure_direction(gen, d)))
    sup = [Direction(name=a, description="", method="supervised", space="z",
                     vector=attribute_direction(gen, a).reshape((1,) + tuple(gen.latent_shape)))
           for a in ("brightness", "warmth", "left_right")]
    Image.fromarray(direction_grid(gen, sup)).save(out_dir / f"{name}-supervised.png")
    # The named directions of the manifest, to check that their names are honest.
    model_id = getattr(gen, "model_id", None)
    named = [get_direction(gen, d["name"], model_id) for d in load_named(model_id).get("directions", [])]
    if named:
        if progress:
            progress(f"named: {', '.join(d.name for d in named)}")
        Image.fromarray(direction_grid(gen, named)).save(out_dir / f"{name}-named.png")
        report["named"] = {d.name: measure_direction(gen, d) for d in named}
    (out_dir / f"{name}-measurements.json").write_text(json.dumps(report, indent=1))
    return report


def prepare(gen: LayeredGenerator, model_id: Optional[str] = None) -> Dict[str, float]:
    """Compute (or load) every named direction of a model; seconds per name."""
    import time
    out = {}
    for d in list_directions(model_id or getattr(gen, "model_id", None)):
        t0 = time.perf_counter()
        get_direction(gen, d["name"], model_id)
        out[d["name"]] = round(time.perf_counter() - t0, 3)
    return out


# =======================================================================================
# Command line: ``priorpaint directions``
# =======================================================================================
def cmd_directions(args) -> int:
    from ..models.manifest import DEFAULT_MODEL, get_entry
    model_id = get_entry(args.model).id if args.model else DEFAULT_MODEL
    if args.derive or args.compute:
        from ..models.registry import load_generator
        gen = load_generator(model_id, allow_download=args.download)
        if args.compute:
            for name, sec in prepare(gen, model_id).items():
                print(f"{name:<22} ready ({sec:.2f} s)")
        if args.derive:
            report = derive(gen, Path(args.out), count=args.count, samples=args.samples,
                            progress=lambda m: print(f"[directions] {m}"))
            print(f"wrote grids and {model_name(gen)}-measurements.json to {args.out}")
            for method, rows in report["components"].items():
                for row in rows:
                    tag = row.get("component", row.get("attribute"))
                    top = sorted(((k, v) for k, v in row.items() if k in ATTRIBUTES), key=lambda kv: -abs(kv[1]))[:3]
                    print(f"  {method:<11} {tag!s:<11} " + ", ".join(f"{k} {v:+.2f}" for k, v in top))
        return 0
    rows = list_directions(model_id)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not load_named(model_id):
        print(f"{model_id} has no named directions; its raw components:")
    for r in rows:
        print(f"{r['name']:<20} [{r['min']:+g}, {r['max']:+g}]  {r['method']:<10} {r['description']}")
    print("use: --edit direction:NAME=STRENGTH (strength in standard deviations; outside the range it is "
          "clamped, with a note); raw components: sefaK, ganspaceK")
    return 0


def add_cli(sub) -> None:
    p = sub.add_parser("directions", help="list a model's named latent directions, what each does and its strength range")
    p.add_argument("--model", default=None, help="manifest model id (default: the embedded default)")
    p.add_argument("--json", action="store_true", help="print JSON: [{name, description, min, max, default, method}]")
    p.add_argument("--derive", action="store_true",
                   help="compute SeFa, GANSpace and supervised directions and write grids (rows = component, "
                        "columns = strength -3..+3) and measured effects, to name them")
    p.add_argument("--compute", action="store_true", help="compute and cache every named direction now")
    p.add_argument("--out", default="artifacts/directions", help="folder for --derive (default artifacts/directions)")
    p.add_argument("--count", type=int, default=8, help="components per method in the grids (default 8)")
    p.add_argument("--samples", type=int, default=GANSPACE_SAMPLES, help="GANSpace samples (default 20000)")
    p.add_argument("--download", action="store_true", help="allow downloading a hub model's weights")
    p.set_defaults(func=cmd_directions)
