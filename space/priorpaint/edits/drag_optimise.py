"""The drag's optimisation (DragGAN's motion supervision and point tracking, own code), for
:mod:`priorpaint.edits.drag`."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from .drag_space import DragLatent

#: the feature layer per architecture: StyleGAN2 after the 6th synthesis block (the paper's);
#: the embedded 64 px DCGAN at b32, its finest feature map (32 px, 64 channels): b16 is too coarse
#: to place a handle within a model pixel, and its RGB output matches colours, not content
FEATURE_LAYER = {"dcgan": "b32", "stylegan2": 5}
#: a handle this close to its target (model px) has arrived
STOP_PX = 1.0
#: optimisation defaults: Adam steps and rate; r1, r2 in model px; λ of the keep term outside the movable
#: region (1: at 0.3 one chin drag reached further, but the proxy turned into another face and its
#: "new content" pasted dark blobs into the photos, docs/method/drag.md); ``space``
#: ``None``: the architecture's (:mod:`priorpaint.edits.drag_space`); λ of the DragGAN-like target term
DEFAULTS = {"steps": 60, "lr": 0.1, "r1": 3.0, "r2": 3, "lambda_mask": 1.0, "space": None, "lambda_target": 0.0}
#: the tracker's cost of a move to the patch's radius, relative to the feature distance
TRACK_PRIOR = 0.02
#: cap each step's tracked handles by the generator's motion since the start (compositing/drag_motion.py)
CONFIRM = True
#: the tracker's search grid, model px
TRACK_STEP = 0.5


def feature_layer(gen, split: str) -> str:
    """The layer whose output the drag supervises and tracks (after ``split``)."""
    after = list(gen.layers_after(split))
    if not after:
        raise InputError(f"drag needs a layer after the split {split!r}; this model has none")
    own = getattr(gen, "drag_feature_layer", None)
    want = own if own is not None else FEATURE_LAYER.get(getattr(gen, "architecture", ""))
    if isinstance(want, int):   # the output of the N+1-th block, when the model has that many
        names = gen.layer_names
        want = names[want] if want < len(names) - 1 else None
    if want in after:
        return want
    # undeclared: the last feature map before the output (the output itself when none follows)
    return after[-2] if len(after) > 1 else after[-1]


def _sample(feat: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    """Bilinear samples (N, C) of ``feat`` (1, C, R, R) at model px ``pts`` (N, 2)."""
    r = feat.shape[-1]
    grid = ((pts + 0.5) / r * 2.0 - 1.0).view(1, -1, 1, 2)
    return F.grid_sample(feat, grid, mode="bilinear", padding_mode="border", align_corners=False)[0, :, :, 0].t()


def _disk(r1: float, device) -> torch.Tensor:
    k = int(math.floor(r1))
    offs = [(dx, dy) for dy in range(-k, k + 1) for dx in range(-k, k + 1) if dx * dx + dy * dy <= r1 * r1]
    return torch.tensor(offs, dtype=torch.float32, device=device)


def _track(feat: torch.Tensor, f0: torch.Tensor, p: torch.Tensor, r2: int) -> torch.Tensor:
    """Each handle's nearest neighbour (L1) of its ``f0`` within the square of radius ``r2`` around
    its current position, searched on a grid of :data:`TRACK_STEP` model px (bilinear samples, so
    a sub-pixel motion is seen); staying put is the grid's centre, and a move pays a small prior
    (:data:`TRACK_PRIOR` at the radius), so flat, ambiguous features do not make it jump."""
    r = feat.shape[-1]
    k = int(round(r2 / TRACK_STEP))
    steps = torch.arange(-k, k + 1, device=feat.device, dtype=feat.dtype) * TRACK_STEP
    oy, ox = torch.meshgrid(steps, steps, indexing="ij")
    offs = torch.stack([ox.reshape(-1), oy.reshape(-1)], 1)
    prior = TRACK_PRIOR * (offs ** 2).sum(1) / float(r2 * r2)
    out = p.clone()
    for i in range(p.shape[0]):
        cand = (p[i][None] + offs).clamp(0.0, r - 1.0)
        d = (_sample(feat, cand) - f0[i][None]).abs().mean(1) / f0[i].abs().mean().clamp_min(1e-6) + prior
        out[i] = cand[int(torch.argmin(d))]
    return out


def optimise(gen, z: torch.Tensor, h: torch.Tensor, split: str, handles: np.ndarray, targets: np.ndarray,
             movable: Optional[torch.Tensor] = None, interventions=None, steps: int = DEFAULTS["steps"],
             lr: float = DEFAULTS["lr"], r1: float = DEFAULTS["r1"], r2: int = DEFAULTS["r2"],
             lambda_mask: float = DEFAULTS["lambda_mask"], space: Optional[str] = None,
             lambda_target: float = DEFAULTS["lambda_target"], cancel=None, progress=None, to_photo=None):
    """``(z_e, h_e, tracked (N, 2) model px, info)``: drag ``handles`` toward ``targets`` (model px)."""
    from ..compositing.drag_motion import confirmed_positions, flow_at
    from ..jobs import checkpoint
    iv = interventions or None
    layer = feature_layer(gen, split)
    res = gen.resolution
    dev = h.device

    state = DragLatent(gen, z, h, split, space)

    def feats(snap=None):
        z_e, h_e = state.latent(snap)
        _, cap = gen.run(h_e, start=split, stop=layer, capture=[layer], z=z_e, interventions=iv)
        return F.interpolate(cap[layer], size=(res, res), mode="bilinear", align_corners=False)

    t = torch.as_tensor(np.asarray(targets, np.float32), device=dev)
    p = torch.as_tensor(np.asarray(handles, np.float32), device=dev)
    with torch.no_grad():
        f_init = feats(state.snapshot())
        f0 = _sample(f_init, p)
        render0 = state.render((None, None), iv) if CONFIRM else None
    p0 = np.asarray(handles, np.float64)
    disk = _disk(r1, dev)
    if lambda_target:   # DragGAN-like second term: the handle's initial patch, wanted at the target
        with torch.no_grad():
            patch0 = [_sample(f_init, p[i][None] + disk) for i in range(p.shape[0])]
    opt = torch.optim.Adam(state.params, lr=lr)
    keep = None if movable is None else (1.0 - movable)
    done, best, raw = 0, None, p
    goal = None if to_photo is None else [[round(float(v), 1) for v in q] for q in to_photo(np.asarray(targets))]
    with torch.enable_grad():
        for step in range(steps + 1):
            feat = feats()
            if step > 0:
                p = raw = _track(feat.detach(), f0, p, int(r2))
                if CONFIRM:   # no further than the generator's own render moved there (a jump is not motion)
                    with torch.no_grad():
                        m = flow_at(render0, state.render(None, iv), p0)
                    p = torch.as_tensor(confirmed_positions(p0, p.cpu().numpy(), m), dtype=p.dtype, device=dev)
            dist = (t - p).norm(dim=1)
            info = {"step": step, "distance_px": [round(float(d), 2) for d in dist]}
            if to_photo is not None:
                info["handles"] = [[round(float(v), 1) for v in q] for q in to_photo(p.cpu().numpy())]
                info["targets"] = goal
            checkpoint(cancel, progress, "drag", step / max(steps, 1), info)
            worst = float(dist.max())
            if best is None or worst <= best[0] + 1e-6:   # the tracker's quantised steps can overshoot:
                best = (worst, state.snapshot(), p.clone(), step, raw.clone())
            if bool((dist <= STOP_PX).all()) or step == steps:
                break
            loss = feat.new_zeros(())
            for i in range(p.shape[0]):
                if dist[i] <= STOP_PX:
                    continue
                d = (t[i] - p[i]) / dist[i]
                q = p[i][None] + disk
                loss = loss + (_sample(feat, q + d) - _sample(feat, q).detach()).abs().mean()
                if lambda_target:
                    loss = loss + lambda_target * (_sample(feat, t[i][None] + disk) - patch0[i]).abs().mean()
            if keep is not None:
                loss = loss + lambda_mask * ((feat - f_init).abs() * keep).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done = step + 1
    _, snap, p_best, at, raw = best
    with torch.no_grad():
        z_e, h_e = state.latent(snap, photo=True)
        # the generator's own motion at each handle (model px), which gates the photo's field
        motion = flow_at(state.render((None, None), iv), state.render(snap, iv), p0)
    return z_e.detach(), h_e.detach(), p_best.cpu().numpy().astype(np.float64), \
        {"steps_run": done, "kept_step": at, "layer": layer, "space": state.space,
                                                      "tracker_model": raw.cpu().numpy().round(3).tolist(),
                                                      "generator_motion": motion}
