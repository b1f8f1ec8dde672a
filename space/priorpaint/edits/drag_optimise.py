"""The drag's optimisation (DragGAN's motion supervision and point tracking, own code), for
:mod:`priorpaint.edits.drag`.

The handles are grouped by nearness (:func:`~priorpaint.edits.drag_region.group_handles`) and each
group optimises a latent of its own, all as one batch through the generator (one forward a step):
a group's motion supervision, its keep term (outside its own capsule) and its gate (the generator's
motion in its own render) see only its own row, so handles far apart no longer pull one latent three
ways. The photo's one state is the rows combined on the split's grid (:meth:`DragLatent.combined`);
the photo's field runs through every handle's confirmed position (one thin-plate spline: smooth).
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from .drag_frame import from_frame, proxy_frame, to_frame  # noqa: F401  (the frame's maps, re-exported)
from .drag_space import DragLatent

#: the feature layer per architecture: StyleGAN2 after the 6th synthesis block (the paper's);
#: the embedded 64 px DCGAN at b32, its finest feature map (32 px, 64 channels): b16 is too coarse
#: to place a handle within a model pixel, and its RGB output matches colours, not content
FEATURE_LAYER = {"dcgan": "b32", "stylegan2": 5}
#: a handle this close to its target (model px) has arrived
STOP_PX = 1.0
#: optimisation defaults: Adam steps and rate (40 at 0.15, with the gate every 2nd step, :data:`GATE_EVERY`:
#: over three runs of the 14 bench drags it reached further than 60 at 0.1 (mean 0.56 against 0.52, worst
#: pair's mean 0.13 against 0.06) in about half the CPU time; safe since the render pastes generated pixels
#: only near the handles' paths (:func:`priorpaint.edits.drag_region.paste_bound`), docs/method/drag.md,
#: "A guard on where a drag pastes"); r1, r2 in model px; λ of the keep term outside the movable
#: region (1: at 0.3 one chin drag reached further, but the proxy turned into another face and its
#: "new content" pasted dark blobs into the photos, docs/method/drag.md); ``space``
#: ``None``: the architecture's (:mod:`priorpaint.edits.drag_space`); λ of the DragGAN-like target term
#: ``latents``: one latent per group of nearby handles (:func:`priorpaint.edits.drag_region.group_handles`);
#: ``escalate``: lower a stalled latent's λ (:data:`ESCALATE`; off: on the seven bench photos it moved
#: Grace Hopper's chin 0.06 → 0.14 but cost the held-out Grace Hopper 0.74 → 0.50, docs/method/drag.md);
#: ``register``: drag in the proxy's frame (:mod:`priorpaint.edits.drag_frame`: ``"ecc"`` / ``True``, or
#: ``"landmarks"``; off: the ECC fit lost the astronaut's chin, 0.95 → 0.00, docs/method/drag.md);
#: ``coarse_layer``: the layer a ``"z+coarse"`` drag offsets (``None``: the architecture's,
#: :func:`priorpaint.edits.drag_space.coarse_layer`)
DEFAULTS = {"steps": 40, "lr": 0.15, "r1": 3.0, "r2": 3, "lambda_mask": 1.0, "space": None, "lambda_target": 0.0,
            "latents": "group", "escalate": False, "register": False, "coarse_layer": None}
#: a latent whose handles got no closer by ``gain`` × the way in ``patience`` steps has stalled: its keep
#: term's λ is multiplied by ``factor``, down to ``floor`` × λ (a keep term too strong for that face holds
#: it still). A drag that escalated adds no generated pixels (the render's new content is off): a proxy
#: let loose can drift to another face, whose pixels must not be pasted in (docs/method/drag.md)
ESCALATE = {"patience": 8, "gain": 0.03, "factor": 0.5, "floor": 0.25}
#: the tracker's cost of a move to the patch's radius, relative to the feature distance
TRACK_PRIOR = 0.02
#: cap each step's tracked handles by the generator's motion since the start (compositing/drag_motion.py)
CONFIRM = True
#: the tracker's search grid, model px
TRACK_STEP = 0.5
#: the gate (a render's optical flow per row, about a third of a step) runs every this many steps and at
#: the last; between gates a tracked shift is confirmed by the last gate's motion (no further than it goes),
#: and only a gated step may be kept or stop the drag. 2: with the defaults' 40 steps at ``lr`` 0.15 it took
#: 54 % / 47 % less CPU time than the former 60 steps at 0.1 (k = 1) for three pairs / five points, reaching further
#: over three runs (docs/method/drag.md, "A guard on where a drag pastes"); k = 1 reads at every step
GATE_EVERY = 2


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


class _Upsample(torch.autograd.Function):
    """Bilinear enlargement (``align_corners=False``) in channels-last memory, forward and backward: the
    same numbers bit for bit as ``F.interpolate`` on the channels-first map (tested), several times faster
    on the CPU for a 64-channel map (torch's channels-first kernels walk one plane at a time, its
    channels-last ones vectorise over the channels). The enlarged map stays channels-last, so the keep
    term's elementwise gradient arrives in that layout (a conversion of the enlarged map costs as much as
    the enlargement saves); the gradient it returns is channels-first, as its input."""

    @staticmethod
    def forward(ctx, feat, res):
        ctx.size = list(feat.shape)
        return F.interpolate(feat.contiguous(memory_format=torch.channels_last), size=(res, res), mode="bilinear",
                             align_corners=False)

    @staticmethod
    def backward(ctx, grad):
        res = grad.shape[-1]
        back = torch.ops.aten.upsample_bilinear2d_backward(grad.contiguous(memory_format=torch.channels_last),
                                                           [res, res], ctx.size, False, None, None)
        return back.contiguous(), None


class _Keep(torch.autograd.Function):
    """The keep term's per-row ``mean |F − F0|·K`` (rows,) with its gradient in one pass, ``sgn(F − F0)·(g/n)·K``:
    the numbers autograd's chain of subtraction, absolute value, product and mean gives, bit for bit
    (tested), without its three whole-map intermediate gradients; the gradient keeps ``F``'s memory layout."""

    @staticmethod
    def forward(ctx, feat, target, keep):
        diff = feat - target
        ctx.save_for_backward(diff, keep)
        return (diff.abs() * keep).mean(dim=(1, 2, 3))

    @staticmethod
    def backward(ctx, grad):
        diff, keep = ctx.saved_tensors
        scale = (grad / diff[0].numel()).view(-1, *([1] * (diff.dim() - 1)))
        return torch.sgn(diff).mul_(scale * keep), None, None


def keep_term(feat: torch.Tensor, target: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """(rows,): each row's mean ``|feat − target|`` weighted by ``keep`` (:class:`_Keep`)."""
    return _Keep.apply(feat, target, keep)


def upsample(feat: torch.Tensor, res: int) -> torch.Tensor:
    """``feat`` (N, C, r, r) enlarged bilinearly to (N, C, res, res), in channels-last memory
    (:class:`_Upsample`; the same values as ``F.interpolate``)."""
    return _Upsample.apply(feat, res)


def _disk(r1: float, device) -> torch.Tensor:
    k = int(math.floor(r1))
    offs = [(dx, dy) for dy in range(-k, k + 1) for dx in range(-k, k + 1) if dx * dx + dy * dy <= r1 * r1]
    return torch.tensor(offs, dtype=torch.float32, device=device)


def _track(feat: torch.Tensor, f0: torch.Tensor, p: torch.Tensor, r2: int, groups=None) -> torch.Tensor:
    """Each handle's nearest neighbour (L1) of its ``f0`` within the square of radius ``r2`` around
    its current position, in its group's feature map (``feat[groups[i]]``; ``feat`` (G, C, R, R)),
    searched on a grid of :data:`TRACK_STEP` model px (bilinear samples, so a sub-pixel motion is
    seen); staying put is the grid's centre, and a move pays a small prior (:data:`TRACK_PRIOR` at
    the radius), so flat, ambiguous features do not make it jump."""
    r = feat.shape[-1]
    k = int(round(r2 / TRACK_STEP))
    steps = torch.arange(-k, k + 1, device=feat.device, dtype=feat.dtype) * TRACK_STEP
    oy, ox = torch.meshgrid(steps, steps, indexing="ij")
    offs = torch.stack([ox.reshape(-1), oy.reshape(-1)], 1)
    prior = TRACK_PRIOR * (offs ** 2).sum(1) / float(r2 * r2)
    out = p.clone()
    for i in range(p.shape[0]):
        g = 0 if groups is None else int(groups[i])
        cand = (p[i][None] + offs).clamp(0.0, r - 1.0)
        d = (_sample(feat[g:g + 1], cand) - f0[i][None]).abs().mean(1) / f0[i].abs().mean().clamp_min(1e-6) + prior
        out[i] = cand[int(torch.argmin(d))]
    return out


def _keep(movable, handles: np.ndarray, targets: np.ndarray, members, res: int, dev):
    """(rows or 1, 1, R, R): where each latent's features are held (the keep term), or ``None``: a
    given movable region (1, 1, R, R) is the same for all; ``"capsule"``: each latent the capsules of
    its own handles (``members[row]``: their indices)."""
    from .drag_region import movable_region
    if movable is None:
        return None
    if isinstance(movable, str):
        if movable != "capsule":
            raise ValueError(f"movable must be a tensor, 'capsule' or None, got {movable!r}")
        caps = [movable_region(handles[m], targets[m], res) for m in members]
        return 1.0 - torch.from_numpy(np.stack(caps))[:, None].to(dev)
    return 1.0 - movable


def motion_loss(feat: torch.Tensor, p: torch.Tensor, t: torch.Tensor, groups, disk: torch.Tensor,
                active=None, patch0=None, lambda_target: float = 0.0) -> torch.Tensor:
    """The motion supervision: for each handle ``i`` (``active[i]``; all when ``None``), in its
    group's feature map, ``mean_q |F(q + d) − sg(F(q))|₁`` over the disk around ``p_i``, ``d`` the unit
    step toward ``t_i``; with ``lambda_target``, the handle's initial patch ``patch0[i]`` wanted at the target.

    All handles' disks are sampled in one ``grid_sample`` over the batch (each row its own handles' points),
    not one per handle: each per-handle sample's backward filled and added a gradient the size of the
    whole batch's feature map, a tenth of a five-point step; the loss is the same up to float rounding
    (tests/test_drag_speed.py)."""
    on = [i for i in range(p.shape[0]) if active is None or bool(active[i])]
    if not on:
        return feat.new_zeros(())
    rows, k = feat.shape[0], disk.shape[0]
    row = [int(groups[i]) for i in on]
    slot = [row[:j].count(row[j]) for j in range(len(on))]   # each handle's place among its row's
    width = max(slot) + 1
    idx = torch.as_tensor(on, device=p.device)
    step = t[idx] - p[idx]
    d = step / step.norm(dim=1, keepdim=True).clamp_min(1e-6)
    q = p[idx][:, None] + disk[None]                          # (M, K, 2): each handle's disk
    r = feat.shape[-1]
    grid = feat.new_zeros((2, rows, width, k, 2))             # [ahead, here]; unused slots sample (0, 0)
    at_row, at_slot = torch.as_tensor(row, device=p.device), torch.as_tensor(slot, device=p.device)
    grid[0, at_row, at_slot] = (q + d[:, None] + 0.5) / r * 2.0 - 1.0
    grid[1, at_row, at_slot] = (q + 0.5) / r * 2.0 - 1.0
    grid = grid.view(2, rows, width * k, 1, 2)
    ahead = F.grid_sample(feat, grid[0], mode="bilinear", padding_mode="border", align_corners=False)
    with torch.no_grad():
        here = F.grid_sample(feat, grid[1], mode="bilinear", padding_mode="border", align_corners=False)
    ahead, here = (v[..., 0].view(rows, -1, width, k)[at_row, :, at_slot] for v in (ahead, here))   # (M, C, K)
    loss = (ahead - here).abs().mean(dim=(1, 2)).sum()
    if lambda_target:
        for i in on:
            f = feat[int(groups[i]):int(groups[i]) + 1]
            loss = loss + lambda_target * (_sample(f, t[i][None] + disk) - patch0[i]).abs().mean()
    return loss


def _gate_due(step: int, steps: int, every: int) -> bool:
    """Whether step ``step`` (1..``steps``) runs the gate: every ``every``-th step, and the last."""
    return every <= 1 or step % every == 0 or step == steps


def _motion(render0, renders, p0: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """(N, 2): the generator's motion at each handle since the start, in its group's render."""
    from ..compositing.drag_motion import WINDOW, flow_at
    m = np.zeros((len(p0), 2))
    for g, img in enumerate(renders):
        idx = groups == g
        if idx.any():
            m[idx] = flow_at(render0, img, p0[idx], window=WINDOW)
    return m


def optimise(gen, z: torch.Tensor, h: torch.Tensor, split: str, handles: np.ndarray, targets: np.ndarray,
             movable=None, interventions=None, steps: int = DEFAULTS["steps"],
             lr: float = DEFAULTS["lr"], r1: float = DEFAULTS["r1"], r2: int = DEFAULTS["r2"],
             lambda_mask: float = DEFAULTS["lambda_mask"], space: Optional[str] = None,
             lambda_target: float = DEFAULTS["lambda_target"], latents: str = DEFAULTS["latents"],
             escalate: bool = DEFAULTS["escalate"], register=DEFAULTS["register"],
             coarse_layer: Optional[str] = DEFAULTS["coarse_layer"],
             cancel=None, progress=None, to_photo=None, photo_points=None):
    """``(z_e, h_e, tracked (N, 2) model px, info)``: drag ``handles`` toward ``targets`` (model px).
    ``movable``: the movable region (1, 1, R, R), ``"capsule"`` (each latent its own handles'
    capsules) or ``None`` (no keep term); ``latents``: how the handles share latents
    (:data:`~priorpaint.edits.drag_region.LATENTS`); ``photo_points``: the photo's landmarks (model px)
    for ``register="landmarks"`` (:func:`~priorpaint.edits.drag_frame.photo_landmarks`).

    With G > 1 groups the batch has G + 1 rows: a latent per group (its own handles) and a *shared*
    one that drags every handle (the single-latent drag), all in one forward a step; each row tracks
    and gates its own handles. Each group then takes whichever of its own row and the shared row got
    its handles closer (the generator's motions are not local: on the embedded model one mouth corner
    alone does not move, both corners together do); ``info["rows"]``: ``"own"`` or ``"shared"`` per group."""
    from ..compositing.blend import to_uint8
    from ..compositing.drag_motion import confirmed_positions
    from ..jobs import checkpoint
    from .drag_region import group_handles, group_weights
    iv = interventions or None
    layer = feature_layer(gen, split)
    res = gen.resolution
    dev = h.device
    handles, targets = np.asarray(handles, np.float64), np.asarray(targets, np.float64)
    n = len(handles)
    groups = group_handles(handles, targets, r1, latents)
    n_groups = int(groups.max()) + 1
    # the rows of the batch and their entries (a handle tracked in a row): each group's own row, then
    # the shared row of all handles when there are several groups
    members = [np.flatnonzero(groups == g) for g in range(n_groups)] + ([np.arange(n)] if n_groups > 1 else [])
    ent_row = np.concatenate([np.full(len(m), r) for r, m in enumerate(members)])
    ent_h = np.concatenate(members)
    state = DragLatent(gen, z, h, split, space, batch=len(members), coarse=coarse_layer)

    def run(snap=None, render=True):
        """The features (rows, C, R, R) and the renders (rows, 3, R, R) of the batch: one forward
        (without ``render`` it stops at the feature layer and gives no render)."""
        z_e, h_e = state.latent(snap)
        x, cap = gen.run(h_e, start=split, stop=None if render else layer, capture=[layer], z=z_e, interventions=iv)
        return upsample(cap[layer], res), (x if render else None)

    with torch.no_grad():
        f_init, x0 = run(state.snapshot())
        f_init = f_init[:1]
        render0 = to_uint8(x0[0])
        # the proxy's frame: where the photo's points are on the generator's own render
        frame = proxy_frame(gen, z, h, split, iv, render0, "landmarks" if register == "landmarks" else "ecc",
                            handles, dev, photo_points) if register else None
    handles, targets = to_frame(frame, handles), to_frame(frame, targets)
    if frame is not None and movable is not None and not isinstance(movable, str):
        import cv2
        mv = cv2.warpAffine(movable[0, 0].cpu().numpy().astype(np.float32), frame, (res, res), flags=cv2.INTER_LINEAR)
        movable = torch.from_numpy(mv)[None, None].to(dev, h.dtype)
    t = torch.as_tensor(targets[ent_h].astype(np.float32), device=dev)
    p = torch.as_tensor(handles[ent_h].astype(np.float32), device=dev)
    with torch.no_grad():
        f0 = _sample(f_init, p)
    p0 = handles[ent_h]
    disk = _disk(r1, dev)
    patch0 = None
    if lambda_target:   # DragGAN-like second term: the handle's initial patch, wanted at the target
        with torch.no_grad():
            patch0 = [_sample(f_init, p[e][None] + disk) for e in range(p.shape[0])]
    keep = _keep(movable, handles, targets, members, res, dev)
    opt = torch.optim.Adam(state.param_groups(lr))
    done, raw = 0, p
    lam = torch.full((len(members),), float(lambda_mask), device=dev)   # each row's keep λ (escalated apart)
    stalled_since = [0] * len(members)
    span = [float(np.linalg.norm(targets[m] - handles[m], axis=1).max()) for m in members]
    best = [None] * len(members)   # per row: (worst distance, its rows of the snapshot, its entries, step, raw)
    rows_of = [torch.as_tensor(ent_row == r, device=dev) for r in range(len(members))]
    last_motion = np.zeros((len(p0), 2))   # the last gate's reading (model px per entry)
    if to_photo is not None:   # the progress reports the photo's frame
        shown = to_photo
        to_photo = lambda q: shown(from_frame(frame, q))   # noqa: E731
    goal = None if to_photo is None else [[round(float(v), 1) for v in q] for q in to_photo(targets)]
    with torch.enable_grad():
        for step in range(steps + 1):
            gated = not CONFIRM or step == 0 or _gate_due(step, steps, GATE_EVERY)
            # the render is read by the gate only (the features end the forward otherwise: the same features)
            feat, x = run(render=CONFIRM and gated and step > 0)
            if step > 0:
                p = raw = _track(feat.detach(), f0, p, int(r2), ent_row)
                if CONFIRM:   # no further than the generator's own render moved there (a jump is not motion)
                    if gated:     # between gates: as far as the last gate's reading goes
                        last_motion = _motion(render0, [to_uint8(x[r].detach()) for r in range(len(members))],
                                              p0, ent_row)
                    p = torch.as_tensor(confirmed_positions(p0, p.cpu().numpy(), last_motion),
                                        dtype=p.dtype, device=dev)
            dist = (t - p).norm(dim=1)
            near = _nearest(dist, ent_h, n)   # each handle's entry closest to its target
            info = {"step": step, "distance_px": [round(float(dist[e]), 2) for e in near]}
            if to_photo is not None:
                info["handles"] = [[round(float(v), 1) for v in q] for q in to_photo(p[near].cpu().numpy())]
                info["targets"] = goal
            checkpoint(cancel, progress, "drag", step / max(steps, 1), info)
            snap = state.snapshot() if gated else None
            for r in range(len(members) if gated else 0):   # each row keeps its closest (the tracker can overshoot)
                worst = float(dist[rows_of[r]].max())
                if best[r] is None or worst < best[r][0] - ESCALATE["gain"] * span[r]:
                    stalled_since[r] = step
                elif escalate and keep is not None and step - stalled_since[r] >= ESCALATE["patience"] \
                        and lam[r] > ESCALATE["floor"] * lambda_mask + 1e-9:
                    lam[r] = max(float(lam[r]) * ESCALATE["factor"], ESCALATE["floor"] * lambda_mask)
                    stalled_since[r] = step
                if best[r] is None or worst <= best[r][0] + 1e-6:
                    best[r] = (worst, tuple(None if v is None else v[r].clone() for v in snap),
                               p[rows_of[r]].clone(), step, raw[rows_of[r]].clone())
            arrived = (dist <= STOP_PX).cpu().numpy()
            if gated and all(any(arrived[(ent_row == r) & np.isin(ent_h, members[g])].all()
                                 for r in (g, len(members) - 1)) for g in range(n_groups)) or step == steps:
                break
            loss = motion_loss(feat, p, t, ent_row, disk, dist > STOP_PX, patch0, lambda_target)
            if keep is not None:
                loss = loss + (lam * keep_term(feat, f_init, keep)).sum()
            if state.dc is not None:   # "z+coarse": the offset's own penalties
                loss = loss + state.penalty()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done = step + 1
    # each group: its own row, or the shared row where that got its handles closer
    chosen, p_best, raw_best = [], np.zeros((n, 2)), np.zeros((n, 2))
    for g in range(n_groups):
        cands = [g] if n_groups == 1 else [g, len(members) - 1]
        worst = []
        for r in cands:
            at = torch.as_tensor(np.isin(ent_h[ent_row == r], members[g]), device=dev)
            worst.append(float((t[rows_of[r]][at] - best[r][2][at]).norm(dim=1).max()))
        r = cands[int(np.argmin(worst))]
        at = torch.as_tensor(np.isin(ent_h[ent_row == r], members[g]), device=dev)
        chosen.append(r)
        p_best[members[g]] = best[r][2][at].cpu().numpy()
        raw_best[members[g]] = best[r][4][at].cpu().numpy()
    snap = tuple(None if best[0][1][k] is None else torch.stack([best[r][1][k] for r in chosen]) for k in range(2))
    with torch.no_grad():
        side = h.shape[-1] if h.dim() == 4 else 1
        w = None if h.dim() != 4 else torch.from_numpy(
            group_weights(handles, targets, groups, res, side))[:, None].to(dev, h.dtype)
        pick = DragLatent(gen, z, h, split, state.space, basis=state.basis, batch=n_groups, coarse=state.coarse)
        z_e, h_e = pick.combined(snap, w)
        # the generator's own motion at each handle (model px) in its group's render, which gates the photo's field
        motion = _motion(pick.renders((None, None), iv)[0], pick.renders(snap, iv), handles, groups)
    if frame is not None:   # back to the photo's frame: the points, and the motion by the linear part
        p_best, raw_best = from_frame(frame, p_best), from_frame(frame, raw_best)
        motion = motion @ np.linalg.inv(frame[:, :2].astype(np.float64)).T
    return z_e.detach(), h_e.detach(), p_best, \
        {"steps_run": done, "kept_step": max(best[r][3] for r in chosen), "layer": layer, "space": state.space,
         "coarse_layer": state.coarse,
         "groups": groups.tolist(), "rows": ["shared" if r >= n_groups else "own" for r in chosen],
         "lambda_rows": [round(float(lam[r]), 4) for r in chosen],
         "proxy_frame": None if frame is None else np.round(frame, 4).tolist(),
         "escalated": bool(any(float(lam[r]) < lambda_mask - 1e-9 for r in chosen)),
         "tracker_model": raw_best.round(3).tolist(), "generator_motion": motion,
         "group_z": pick.moved_z(snap[0]).detach() if snap[0] is not None else None,
         "row_z": None if snap[0] is None else state.moved_z(torch.stack([b[1][0] for b in best])).detach()}


def _nearest(dist: torch.Tensor, ent_h: np.ndarray, n: int):
    """For each handle, the index of its entry (over the rows it is tracked in) closest to its target."""
    d = dist.detach().cpu().numpy()
    out = []
    for i in range(n):
        e = np.flatnonzero(ent_h == i)
        out.append(int(e[np.argmin(d[e])]))
    return out
