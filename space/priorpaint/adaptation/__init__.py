"""Adapting the generator to one photo: G′, and rendering edits through it.

:func:`render_adapted` is what :meth:`priorpaint.session.EditSession.render` calls with
``adapt=True``: given the generator, the projection, the crop's target and the edit mask,
it fits G′ on the pixels of the crop that the edit leaves alone (or reuses a G′ from the
``cache`` dict the caller keeps), runs ``G′(z_h_e)`` and returns the image to composite
plus the metrics of the report.

Which pixels G′ is fitted to:

* a state with an edit: every pixel of the crop outside the edit mask (at model
  resolution, weight ``1 − mask``);
* a state without an edit (a reconstruction, ``priorpaint project --adapt``): the whole
  crop — nothing is edited, so every pixel is a pixel to reproduce;
* an edit mask that covers the whole crop: nothing is left to fit to; the render uses
  ``G`` alone and says so in the notes;
* an empty edit mask: nothing is rendered (the output is the input); no fit.

With ``fit="reconstruction"`` (an option, not the paper's rule) G′ is instead fitted once
per session so that ``G′(z_h)`` reproduces the whole crop, and every edit is rendered
through that G′ without a fit of its own.  For edits whose edit mask is the whole
selection (latent directions), the paper's rule leaves only the context margin to fit
to, so the selection is rendered by an almost unadapted G; the reconstruction fit renders
it as the photo with the edit applied, an edit mask covering the whole crop included.

The cache keeps one fitted G′ per method: it is reused as it is for the same
latent and an edit region inside the one it was fitted for, fine-tuned from its δ's
(warm start, usually a few dozen steps) for a new latent inside that region, and refitted
from δ = 0 when the edit region grows beyond it (its δ's would have learnt the photo's
old pixels there and erase the edit).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Dict, Optional

import numpy as np
import torch

from ..errors import InputError
from ..jobs import CancelToken, ProgressFn
from ..compositing.crop import Crop
from ..metrics import check_finite, pearson, psnr
from ..models.layered import LayeredGenerator
from ..projection.project import Projection
from .gprime import REFUSE, METHODS, PARAMETRISATIONS, AdaptConfig, GPrime, fit_gprime, naive_config

__all__ = ["AdaptConfig", "GPrime", "METHODS", "PARAMETRISATIONS", "fit_gprime", "naive_config",
           "render_adapted", "adapt_config", "gprime_for"]

CACHE_KEY = "adaptation"


def adapt_config(options=None) -> AdaptConfig:
    """An :class:`AdaptConfig` from None, a config, ``"weights"``/``"multiplicative"`` or a dict."""
    if options is None or options is True:
        return AdaptConfig()
    if isinstance(options, AdaptConfig):
        return options.validate()
    if isinstance(options, str):
        return AdaptConfig(method=options).validate()
    if isinstance(options, dict):
        known = set(asdict(AdaptConfig()))
        bad = sorted(set(options) - known)
        if bad:
            raise InputError(f"unknown adaptation options {', '.join(bad)}; known: {', '.join(sorted(known))}")
        return AdaptConfig(**options).validate()
    raise InputError(f"adaptation options must be a method name or a dict, got {type(options).__name__}")


def _cache_key(cfg: AdaptConfig) -> str:
    return (f"{CACHE_KEY}:{cfg.fit}:{cfg.method}:"
            f"{cfg.parametrisation if cfg.method == 'multiplicative' else ''}")


def gprime_for(cache: dict, options=None) -> Optional[GPrime]:
    """The cached G′ of this method (None before a render with ``adapt=True``)."""
    return cache.get(_cache_key(adapt_config(options)))


def _same(a: Optional[torch.Tensor], b: Optional[torch.Tensor]) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and bool(torch.equal(a, b))


def _has_edit(p: Projection, state) -> bool:
    return bool(state.interventions) or not (_same(state.h, p.h) and _same(state.z, p.z))


def render_adapted(gen: LayeredGenerator, projection: Projection, target: torch.Tensor, crop: Crop,
                   edit_np: np.ndarray, state, cache: dict, options=None,
                   progress: Optional[ProgressFn] = None,
                   cancel: Optional[CancelToken] = None, return_base: bool = False) -> tuple:
    """``(image, metrics, seconds)``: ``G′(z_h_e)`` at model resolution, the report's figures
    and the time spent adapting.

    ``return_base=True`` returns ``(image, metrics, seconds, base)`` with ``base`` the same
    generator's rendering of the unedited state (``G′(z_h)``, or ``G(z_h)`` where G′ was
    not used): the reference the ``detail`` composite takes the change from.

    ``target`` is the crop at model resolution; ``edit_np`` the square-region edit mask of
    ``state`` (uint8); ``cache`` a dict the caller keeps per projection (fitted G′s live there).

    Metrics: ``psnr_adapted`` (dB, G′(z_h_e) against the crop on the unedited pixels at
    model resolution), ``psnr_unadapted`` (the same for G), ``edit_fidelity`` (when an
    edit is present: Pearson correlation inside the edit mask between
    ``G′(z_h_e) − G′(z_h)`` and ``G(z_h_e) − G(z_h)``), ``adaptation`` (what was done: method, action, steps).
    ``notes`` (when present) are this stage's own notes.
    """
    image, metrics, seconds, base = _render_adapted(gen, projection, target, crop, edit_np, state, cache,
                                                    options, progress, cancel)
    if not return_base:
        return image, metrics, seconds
    if base is None:  # rendered by G alone: its own unedited rendering is the reference
        with torch.no_grad():
            base = gen.forward_from(projection.split, projection.h, z=projection.z)
    return image, metrics, seconds, base


def _render_adapted(gen, projection, target, crop, edit_np, state, cache, options, progress, cancel):
    """``(image, metrics, seconds, base)``; ``base`` is None where the image is G's own (no G′)."""
    cfg = adapt_config(options)
    proj = projection
    check_finite(state.h, "the edited split-layer latent", REFUSE)
    check_finite(state.z, "the edited latent", REFUSE)
    dev = gen.device
    split = proj.split
    t0 = time.perf_counter()
    edit_mask = crop.model_mask(dev, edit_np)          # (1, 1, R, R) in [0, 1]
    edit_region = (edit_mask[0, 0] > 0).cpu().numpy()
    edited = _has_edit(proj, state)
    inter = state.interventions or None
    metrics: Dict[str, object] = {"psnr_adapted": None, "edit_fidelity": None}
    info: Dict[str, object] = {"method": cfg.method, "parametrisation": cfg.parametrisation
                               if cfg.method == "multiplicative" else None}
    metrics["adaptation"] = info
    notes = []

    with torch.no_grad():
        plain = gen.forward_from(split, state.h, interventions=inter, z=state.z)
    if not edit_np.any():
        info["action"] = "skipped: empty edit mask"
        return plain, metrics, 0.0, None
    if edited:
        weight = 1.0 - edit_mask
        fitted_edit = edit_region
    else:
        weight = torch.ones_like(edit_mask)
        fitted_edit = np.zeros_like(edit_region)
    if cfg.fit == "reconstruction":
        return _render_reconstruction_fit(gen, proj, target, cache, state, cfg, plain, weight, edit_mask,
                                          edited, metrics, info, t0, progress, cancel)
    if float(weight.sum()) <= 0:
        notes.append("the edit mask covers the whole crop, so no unedited pixels are left to fit G′ to: "
                      "rendered with G alone (select a larger area or a smaller edit region to adapt)")
        metrics["notes"] = notes   # the render's notes (the caller's state is not modified)
        info["action"] = "skipped: edit mask covers the whole crop"
        return plain, metrics, 0.0, None

    key = _cache_key(cfg)
    cached: Optional[GPrime] = cache.get(key)
    if cached is not None and cached.config != cfg:
        cached = None  # other options: fit afresh
    grown = cached is None or bool((fitted_edit & ~cached.fitted_edit).any())
    if cached is not None and not grown and _same(cached.fitted_h, state.h.to(dev)) \
            and _same(cached.fitted_z, state.z.to(dev)) and not inter:
        gp = cached
        info["action"] = "reused"
    else:
        init = None if grown else cached
        gp = fit_gprime(gen, split, state.h, state.z, target, weight, cfg, interventions=inter,
                        init=init, progress=progress, cancel=cancel)
        # The region whose photo pixels the δ's have never learnt: a warm start happens only
        # inside the cached one, so it is the new edit region in both cases.
        gp.fitted_edit = fitted_edit
        cache[key] = gp
        info["action"] = "warm-started" if init is not None else "fitted"
        info["steps"] = gp.steps
        info["stopped_early"] = gp.stopped_early
        info["final_loss"] = gp.losses[-1] if gp.losses else None
    return _finish(gen, proj, target, state, gp, plain, weight, edit_mask, edited, metrics, t0)


def _finish(gen, proj, target, state, gp: GPrime, plain, weight, edit_mask, edited, metrics, t0):
    image = gp(state.h, state.z, state.interventions or None)
    seconds = time.perf_counter() - t0
    if float(weight.sum()) > 0:
        metrics["psnr_adapted"] = psnr(image, target, weight)
        metrics["psnr_unadapted"] = psnr(plain, target, weight)
    if edited:
        with torch.no_grad():
            base = gen.forward_from(proj.split, proj.h, z=proj.z)
            base_adapted = gp(proj.h, proj.z)
        metrics["edit_fidelity"] = pearson(image - base_adapted, plain - base, edit_mask)
    else:
        base_adapted = image
    return image, metrics, seconds, base_adapted


def _render_reconstruction_fit(gen, proj, target, cache, state, cfg, plain, weight, edit_mask, edited,
                               metrics, info, t0, progress, cancel):
    """``fit="reconstruction"``: G′ fitted once per session so that ``G′(z_h)`` reproduces the
    whole crop, then every edit is rendered through it (no fit per edit)."""
    key = _cache_key(cfg)
    gp: Optional[GPrime] = cache.get(key)
    if gp is not None and gp.config == cfg:
        info["action"] = "reused"
    else:
        gp = fit_gprime(gen, proj.split, proj.h, proj.z, target,
                        torch.ones_like(edit_mask), cfg, progress=progress, cancel=cancel)
        gp.fitted_edit = np.zeros(tuple(edit_mask.shape[-2:]), bool)
        cache[key] = gp
        info.update(action="fitted", steps=gp.steps, stopped_early=gp.stopped_early,
                    final_loss=gp.losses[-1] if gp.losses else None)
    info["fit"] = "reconstruction"
    return _finish(gen, proj, target, state, gp, plain, weight, edit_mask, edited, metrics, t0)
