"""Drag editing (DragGAN-style handles): ``drag:HX,HY>TX,TY[;HX,HY>TX,TY...][@MASK.png]``.

The user puts *handle* points on the photo and a *target* for each (photo pixels); the content
under each handle moves to its target. The method follows the DragGAN paper's facts (own code):

* **Features** ``F``: the generator's feature map at one layer after the split
  (:func:`feature_layer`: declared per architecture in :data:`FEATURE_LAYER`, or by a generator's
  own ``drag_feature_layer`` attribute), upsampled bilinearly to the model's resolution.
* **Motion supervision**: for each handle ``p`` with target ``t``, ``d = (t − p)/|t − p|`` and
  ``Σ_q |F(q + d) − sg(F(q))|₁`` over the disk of radius :data:`DEFAULTS` ``r1`` around ``p``
  (bilinear sampling, the right-hand side detached), plus ``λ·|(F − F0)·(1 − M)|₁`` for an optional
  movable-region mask ``M``: the features one pixel ahead are pulled onto the current ones, so the
  content moves one small step toward the target.
* **Optimisation**: Adam on the latent state (:mod:`priorpaint.edits.drag_space`: ``δz`` on the
  generator's proxy for the DCGAN, the first layers' ``w+`` for StyleGAN2). Without a mask the
  movable region is a capsule around each handle's path (:func:`movable_region`).
* **Point tracking**: after each step each handle moves to the nearest neighbour (L1) of its initial
  feature ``f0`` within the square of radius ``r2`` (half-pixel grid), then no further than the
  generator's render moved there (:data:`CONFIRM`, :mod:`priorpaint.compositing.drag_motion`).
* **Stopping**: every handle within :data:`STOP_PX` model px of its target, or ``steps``.  Each step
  checks ``ctx.cancel`` and reports ``ctx.progress`` with the handles' current photo positions.

A render with a drag uses the ``warp`` composite: the photo's own pixels move along a thin-plate field
through the *confirmed* handles (:func:`drag_field`), so a tracker's jump cannot move the photo.
"""

from __future__ import annotations

import math
import re
from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from .drag_space import DragLatent
from .registry import EditContext, EditState, PreviewCost, register_edit

#: the feature layer per architecture: StyleGAN2 after the 6th synthesis block (the paper's);
#: the embedded 64 px DCGAN at b32, its finest feature map (32 px, 64 channels): b16 is too coarse
#: to place a handle within a model pixel, and its RGB output matches colours, not content
FEATURE_LAYER = {"dcgan": "b32", "stylegan2": 5}
#: at most this many handle/target pairs per drag
MAX_PAIRS = 16
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
#: a drag that gets a handle less than this share of the way says so in a note
STUCK_SHARE = 0.5
#: without a mask the movable region is the capsule around each handle's path of this many times the
#: path's length (at least :data:`MIN_SPREAD` of the model's side): the rest of the face stays put
#: (DragGAN's unmasked drag moves the whole image; a photo edit should not)
SPREAD, MIN_SPREAD = 2.5, 0.08
#: the share of the generator's low-band appearance change a drag's render adds where the content is
#: matched: none — a drag moves content; on the embedded model the optimisation also shifts the
#: face's colours (Grace Hopper's cheeks went grey-blue), which the photo should not take
APPEARANCE = 0.0


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


def _num(text: str, what: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise InputError(f"drag: {what} {text.strip()[:20]!r} is not a number") from None
    if not math.isfinite(v):
        raise InputError(f"drag: {what} is {text.strip()[:20]}; coordinates must be finite numbers")
    return v


def check_points(points) -> List[List[float]]:
    """``[[hx, hy, tx, ty], ...]`` checked: 1..16 pairs of finite numbers, no handle on its target."""
    if not isinstance(points, (list, tuple)) or not points:
        raise InputError("drag needs 'points': a list of [hx, hy, tx, ty] (photo pixels)")
    if len(points) > MAX_PAIRS:
        raise InputError(f"drag takes at most {MAX_PAIRS} handle/target pairs, got {len(points)}")
    out = []
    for i, p in enumerate(points):
        if not isinstance(p, (list, tuple)) or len(p) != 4:
            raise InputError(f"drag pair {i + 1} must be [hx, hy, tx, ty], got {str(p)[:40]!r}")
        vals = [_num(str(v), f"pair {i + 1} coordinate") if not isinstance(v, (int, float)) or isinstance(v, bool)
                else float(v) for v in p]
        if any(not math.isfinite(v) for v in vals):
            raise InputError(f"drag pair {i + 1} has a coordinate that is not a finite number: {p}")
        if vals[0] == vals[2] and vals[1] == vals[3]:
            raise InputError(f"drag pair {i + 1}: the handle ({vals[0]:g}, {vals[1]:g}) is its own target; "
                             "nothing would move")
        out.append(vals)
    return out


def parse_drag(args: str) -> dict:
    text = args.strip()
    usage = "drag edit is drag:HX,HY>TX,TY[;HX,HY>TX,TY...][@MASK.png] in photo pixels, or drag:NAME[=STRENGTH]"
    body, _, mask = text.partition("@")
    if not body.strip():
        raise InputError(usage)
    saved = _SAVED.match(body.strip())
    if saved:                                    # a saved drag (``--save-vector``), replayed on this photo
        spec = {"vector": saved.group(1)}
        if saved.group(2) is not None:
            spec["strength"] = _num(saved.group(2), "strength")
    else:
        points = []
        for part in body.split(";"):
            if not part.strip():
                continue
            h, sep, t = part.partition(">")
            hs, ts = h.split(","), t.split(",")
            if not sep or len(hs) != 2 or len(ts) != 2:
                raise InputError(f"{usage}; got {part.strip()[:40]!r}")
            points.append([_num(v, "coordinate") for v in hs + ts])
        spec = {"points": check_points(points)}
    if mask.strip():
        spec["mask"] = mask.strip()
    return spec


def _check(gen, spec: dict) -> None:
    if spec.get("vector") is not None:
        strength(spec)
        if gen is not None:
            saved_drag(gen, spec, None)
        return
    spec["points"] = check_points(spec.get("points"))


# -- a saved drag: the pairs relative to the selection's (aligned) square ------------------
#: ``drag:NAME[=STRENGTH]``: a name as vector names are (see :func:`priorpaint.edits.vectors.check_name`)
_SAVED = re.compile(r"^([A-Za-z][A-Za-z0-9._-]{0,63})\s*(?:=\s*(\S+))?$")
#: a saved drag's strength scales each handle's move; at most this much either way
MAX_STRENGTH = 3.0


def strength(spec: dict) -> float:
    try:
        s = float(spec.get("strength", 1.0))
    except (TypeError, ValueError):
        raise InputError(f"drag strength must be a number, got {str(spec.get('strength'))[:20]!r}") from None
    if not math.isfinite(s) or s == 0.0 or abs(s) > MAX_STRENGTH:
        raise InputError(f"drag strength must be a non-zero number in [-{MAX_STRENGTH:g}, {MAX_STRENGTH:g}], got {s:g}")
    return s


def saved_drag(gen, spec: dict, namespace: Optional[str]) -> dict:
    """The metadata of the saved drag ``spec["vector"]``; an unknown name lists the saved vectors, a
    vector that is not a drag says how to apply it."""
    from ..store import model_key
    from .vectors import load_vector
    name = str(spec.get("vector"))
    _, meta = load_vector(model_key(gen), name, namespace)
    if meta.get("kind") != "drag" or not meta.get("points_square"):
        raise InputError(f"vector {name!r} is not a saved drag (it is a {meta.get('kind', 'latent')} edit's): "
                         f"apply it with vector:{name}")
    return meta


def replay_points(crop, meta: dict, s: float, res: int) -> List[List[float]]:
    """A saved drag's pairs on this photo: stored as fractions of the (aligned) square, mapped through
    this crop; ``s`` scales each move (the handle stays)."""
    sq = np.asarray(meta["points_square"], np.float64).reshape(-1, 4)
    h = model_to_photo(crop, sq[:, :2] * res - 0.5)
    t = model_to_photo(crop, sq[:, 2:] * res - 0.5)
    return np.round(np.concatenate([h, h + s * (t - h)], 1), 2).tolist()


def _save(ctx: EditContext, state: EditState, new: EditState, name: str, handles, targets, info, share) -> str:
    from ..store import model_key
    from .vectors import save_vector
    res = float(ctx.gen.resolution)
    square = np.concatenate([handles, targets], 1) + 0.5
    path = save_vector(model_key(ctx.gen), name, new.h - state.h,
                       {"split": ctx.split, "kind": "drag", "points_square": np.round(square / res, 5).tolist(),
                        "reach_model": [round(float(v), 3) for v in share], "steps": info["steps_run"]},
                       delta_z=new.z - state.z, namespace=ctx.vector_namespace)
    # the app's clients get the name only (never a server path); the CLI reports the file
    return name if ctx.vector_namespace is not None else str(path)


def attach_save_vector(edits: List[str], name: str) -> List[str]:
    """The CLI's ``--save-vector NAME`` on a drag: ``save_vector`` set on the last drag edit."""
    import json
    from .vectors import check_name
    check_name(name)
    out = list(edits)
    for i in range(len(out) - 1, -1, -1):
        text = out[i].strip()
        if text.startswith("drag:") or (text.startswith("{") and '"drag"' in text):
            from .registry import parse_spec
            spec = parse_spec(text)
            spec["save_vector"] = name
            out[i] = json.dumps(spec)
            return out
    raise InputError("--save-vector needs a segment or drag edit to save")


# -- geometry: photo pixels <-> model pixels ---------------------------------------------
def photo_to_model(crop, pts: np.ndarray) -> np.ndarray:
    """Photo pixel coordinates (N, 2) -> model pixel coordinates (pixel centres map to centres)."""
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    side = crop.square[2]
    if crop.alignment is not None:
        from ..compositing import align as al_
        sq = al_.apply(al_.invert(crop.alignment.to_photo), pts + 0.5)
    else:
        sq = pts + 0.5 - np.array(crop.square[:2], np.float64)
    return sq * (crop.resolution / float(side)) - 0.5


def model_to_photo(crop, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    sq = (pts + 0.5) * (crop.square[2] / float(crop.resolution))
    if crop.alignment is not None:
        from ..compositing import align as al_
        return al_.apply(crop.alignment.to_photo, sq) - 0.5
    return sq + np.array(crop.square[:2], np.float64) - 0.5


def _inside_selection(crop, pts: np.ndarray, what: str) -> None:
    W, H = crop.image_size
    side = crop.square[2]
    for i, (x, y) in enumerate(pts):
        if not (0 <= x <= W - 1 and 0 <= y <= H - 1):
            raise InputError(f"drag {what} {i + 1} ({x:g}, {y:g}) is outside the photo ({W}x{H})")
    sq = (photo_to_model(crop, pts) + 0.5) * (side / float(crop.resolution))
    for i, (x, y) in enumerate(sq):
        xi, yi = int(np.floor(x)), int(np.floor(y))
        if not (0 <= xi < side and 0 <= yi < side) or crop.region_mask[yi, xi] == 0:
            raise InputError(f"drag {what} {i + 1} ({pts[i][0]:g}, {pts[i][1]:g}) is outside the selection")


# -- the method ---------------------------------------------------------------------------
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


def _segment_distance(res: int, handles: np.ndarray, targets: np.ndarray, radii: np.ndarray,
                      side: Optional[int] = None) -> np.ndarray:
    """(R, R): the least ``distance to the path p→t / radius`` over the pairs, model px; on a
    ``side``×``side`` grid over the same square when given (the photo's square)."""
    n = side or res
    gy, gx = (np.mgrid[0:n, 0:n].astype(np.float64) + 0.5) * (res / float(n)) - 0.5
    best = np.full((n, n), np.inf)
    for p, t, r in zip(handles, targets, radii):
        v = t - p
        u = np.clip(((gx - p[0]) * v[0] + (gy - p[1]) * v[1]) / max(float(v @ v), 1e-9), 0.0, 1.0)
        d = np.hypot(gx - (p[0] + u * v[0]), gy - (p[1] + u * v[1])) / r
        best = np.minimum(best, d)
    return best


def spread_radii(handles: np.ndarray, targets: np.ndarray, res: int) -> np.ndarray:
    return np.maximum(SPREAD * np.linalg.norm(targets - handles, axis=1), MIN_SPREAD * res)


def movable_region(handles: np.ndarray, targets: np.ndarray, res: int) -> np.ndarray:
    """(R, R) float32 in {0, 1}: the default movable region (capsules around the handles' paths)."""
    return (_segment_distance(res, handles, targets, spread_radii(handles, targets, res)) <= 1.0).astype(np.float32)


def _movable(ctx: EditContext, spec: dict) -> Tuple[Optional[np.ndarray], List[str]]:
    src = spec.get("mask")
    if src is None or (isinstance(src, str) and not src.strip()):
        return None, []
    from ..compositing.regions import mask_channel
    from ..images import read_image_array
    arr = read_image_array(src, "drag mask")
    region, _, notes = ctx.place(mask_channel(arr), "drag mask", nearest=False)
    if not isinstance(src, str):
        spec["mask"] = f"<{type(src).__name__}>"
    return region, notes


@register_edit("drag", parse_drag, check=_check, composite="warp", preview=PreviewCost.SLOW, file_fields=("mask",),
               help="drag:HX,HY>TX,TY[;...][@MASK.png] — move each handle point to its target (photo pixels, "
                    "at most 16 pairs); MASK: the movable region (optional); drag:NAME[=STRENGTH] replays a "
                    "drag saved with --save-vector NAME")
def apply_drag(ctx: EditContext, state: EditState, spec: dict) -> EditState:
    if spec.get("vector") is not None:
        meta = saved_drag(ctx.gen, spec, ctx.vector_namespace)
        spec["points"] = replay_points(ctx.crop, meta, strength(spec), ctx.gen.resolution)
    save = spec.get("save_vector")
    if save:
        from .vectors import check_name
        check_name(save)
    pts = np.asarray(check_points(spec.get("points")), np.float64)
    spec["points"] = pts.tolist()
    crop = ctx.crop
    _inside_selection(crop, pts[:, :2], "handle")
    _inside_selection(crop, pts[:, 2:], "target")
    opts = {k: spec.get(k, v) for k, v in DEFAULTS.items()}
    try:
        opts["steps"], opts["r2"] = int(opts["steps"]), int(opts["r2"])
        for k in ("lr", "r1", "lambda_mask", "lambda_target"):
            opts[k] = float(opts[k])
    except (TypeError, ValueError, OverflowError):
        raise InputError("drag: steps and r2 must be integers, lr, r1, lambda_mask, lambda_target numbers") from None
    if not 0 <= opts["steps"] <= 1000 or not 0 < opts["r1"] <= 16 or not 1 <= opts["r2"] <= 16 \
            or not all(0 <= opts[k] <= 10 for k in ("lr", "lambda_mask", "lambda_target")):
        raise InputError("drag: steps must be 0..1000, r1 in (0, 16], r2 in 1..16, lr, lambda_mask and "
                         "lambda_target in [0, 10]")
    new = state.evolve()
    region, notes = _movable(ctx, spec)
    new.notes.extend(notes)
    handles, targets = photo_to_model(crop, pts[:, :2]), photo_to_model(crop, pts[:, 2:])
    res = ctx.gen.resolution
    if region is not None:
        if not region.any():
            raise InputError("the drag mask is empty: nothing may move")
        movable = crop.model_mask(ctx.gen.device, mask=region)
    else:
        movable = torch.from_numpy(movable_region(handles, targets, res))[None, None].to(ctx.gen.device)
        # the render may change the photo where the field is not yet zero (twice the capsule)
        near = _segment_distance(res, handles, targets, spread_radii(handles, targets, res), side=crop.square[2])
        region = np.where(near <= 2.2, 255, 0).astype(np.uint8)
    new.edit_mask = ctx.merged_mask(state, region)
    z_e, h_e, tracked, info = optimise(ctx.gen, state.z, state.h, ctx.split, handles, targets, movable,
                                  state.interventions, cancel=ctx.cancel, progress=ctx.progress,
                                  to_photo=lambda q: model_to_photo(crop, q), **opts)
    new.z, new.h = z_e, h_e
    from ..compositing.drag_motion import confirmed_positions
    motion = info.pop("generator_motion")
    confirmed = confirmed_positions(handles, tracked, motion)
    tracked = np.asarray(info.pop("tracker_model"), np.float64)   # where the feature tracker itself put them
    before = np.linalg.norm(targets - handles, axis=1)
    tracked_share = 1.0 - np.linalg.norm(targets - tracked, axis=1) / np.maximum(before, 1e-6)
    after = np.linalg.norm(targets - confirmed, axis=1)
    share = 1.0 - after / np.maximum(before, 1e-6)
    for i in np.flatnonzero(share < STUCK_SHARE):
        jump = (f"; the tracker put it {max(tracked_share[i], 0.0):.0%} of the way, the generator did not follow"
                if tracked_share[i] - share[i] > 0.1 else "")
        new.notes.append(f"drag handle {i + 1} could not move far: it got {max(share[i], 0.0):.0%} of the way "
                         f"({after[i]:.1f} of {before[i]:.1f} model px left after {info['steps_run']} steps{jump})")
    if save:
        spec["saved_vector"] = _save(ctx, state, new, save, handles, targets, info, share)
    spec.update(handles_model=np.round(handles, 3).tolist(), tracked_model=np.round(tracked, 3).tolist(),
                confirmed_model=np.round(confirmed, 3).tolist(), generator_motion=np.round(motion, 3).tolist(),
                tracked=np.round(model_to_photo(crop, tracked), 1).tolist(),
                confirmed=np.round(model_to_photo(crop, confirmed), 1).tolist(),
                reach_model=[round(float(s), 3) for s in share],
                reach_tracked=[round(float(s), 3) for s in tracked_share], **info)
    return new


def drag_field(applied: List[dict], res: int) -> Optional[np.ndarray]:
    """The backward field (R, R, 2) of the applied drags for the warp composite: a thin-plate spline
    from where each handle is in the edited content (the tracked position as far as the generator's
    own motion confirms it, ``confirmed_model``) to where it was, tapered to zero from the
    movable capsule (radius 1) to twice it, so the photo outside does not move; ``None`` without a drag."""
    from ..compositing.warp import thin_plate_field
    src, dst = [], []
    for s in applied:
        moved = s.get("confirmed_model", s.get("tracked_model"))
        if s.get("kind") == "drag" and moved is not None:
            src.extend(moved)
            dst.extend(s["handles_model"])
    if not src:
        return None
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    flow = thin_plate_field(src, dst, res)
    d = _segment_distance(res, dst, src, spread_radii(dst, src, res))
    x = np.clip(2.0 - d, 0.0, 1.0)
    taper = (x * x * (3.0 - 2.0 * x)).astype(np.float32)
    return flow * taper[..., None]
