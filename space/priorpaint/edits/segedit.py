"""Segmentation edits (EditGAN, Ling et al. 2021) and the label map of a projected selection.

1. :func:`segment_labels` runs the segmentation head (:mod:`priorpaint.edits.seghead`) on
   the projection ``G_F(h)`` and returns the label map for the *layer box* (the part of
   the crop's square inside the photo) as a plain RGB picture, with its legend
   ``{name: [r, g, b]}``.  ``priorpaint segment`` writes it as a PNG (+ legend JSON).
2. The user edits that picture (grows the mouth, paints hair away, ...) and passes it
   back as ``segment:EDITED.png``.  Sizes: the layer box or the whole photo; any other
   size is resized to the layer box **nearest-neighbour** (labels are never blended),
   with a note.  Every colour must be a legend colour (the error names the others),
   unless the spec asks for ``snap`` (what the web page and the GIMP plug-in send: their
   brushes antialias), which snaps every painted colour to the nearest legend colour with
   a note; fully transparent pixels (alpha 0) mean "keep the current label".
3. The edited region is where the requested label differs from the current one (at the
   model's resolution), dilated by ``dilate`` px.  Starting from the projection, ``h`` is
   optimised (Adam) so that the head predicts the requested labels inside the region
   (cross-entropy) while the image outside it stays as it was (L1 + L2 and, when its
   weights are present, the perceptual loss, against the image before the edit), with a
   small pull towards the starting ``h``.  Only the split cells whose footprint reaches
   the region move, so the image far from the edit does not change at all.
4. ``Δ = h_edited − h`` is an editing vector: ``#save=NAME`` (or the CLI's
   ``--save-vector NAME``, which adds exactly that to the spec) stores it for
   ``vector:NAME=STRENGTH`` (:mod:`priorpaint.edits.vectors`).

The spec's ``result`` (filled in by the edit and kept in the report's ``edits``) says
how much of the requested change was reached (``achieved_fraction``), in how many steps
and seconds.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import InputError
from ..jobs import checkpoint
from ..compositing.regions import model_to_region
from ..compositing.texture import check_low, declared, part_map
from ..images import read_image_array
from ..models.footprint import footprint_radius
from ..store import model_key
from .registry import EditContext, EditState, PreviewCost, register_edit
from .seghead import SegHead, classes_from_rgb, colour_labels, get_head, parse_legend, snap_to_legend

log = logging.getLogger(__name__)


@dataclass
class SegEditConfig:
    steps: int = 80
    lr: float = 0.01
    dilate: int = 2              # px at model resolution around the changed labels
    lambda_outside: float = 10.0  # weight of the image-outside term
    lambda_perceptual: float = 1.0
    lambda_h: float = 0.001       # pull towards the starting h
    stop_at: float = 0.95         # stop early once this fraction of the requested change is reached ...
    min_steps: int = 20           # ... but not before this many steps (the outside term needs them)


# -- the label map of a session -------------------------------------------------------------

def state_classes(ctx: EditContext, state: EditState, head: Optional[SegHead] = None) -> torch.Tensor:
    """Class per pixel (R, R) of a state's image at model resolution."""
    head = head or get_head(ctx.gen)
    return head.predict(ctx.gen, state.h, state.z, ctx.split)[0]


def segment_labels(ctx: EditContext, state: EditState) -> Tuple[np.ndarray, Dict[str, List[int]]]:
    """The label map of the projected selection for the layer box, and its legend.

    Returns ``(labels, legend)``: ``labels`` is an (h, w, 3) uint8 RGB picture sized like
    the layer box (:attr:`priorpaint.compositing.crop.Crop.layer_box`), one legend colour per
    class, upsampled nearest-neighbour from the model's resolution; ``legend`` maps
    class name -> [r, g, b].
    """
    head = get_head(ctx.gen)
    cls = state_classes(ctx, state, head).cpu().numpy()
    rgb = colour_labels(cls, head.colours)
    side = ctx.crop.square[2]
    big = np.asarray(Image.fromarray(rgb, "RGB").resize((side, side), Image.NEAREST))
    labels = ctx.crop.to_layer(big, nearest=True)
    return labels, {n: list(c) for n, c in head.legend.items()}


def region_to_model_labels(region: np.ndarray, resolution: int) -> np.ndarray:
    """(side, side) int class map (−1 = keep) -> (R, R), nearest-neighbour (pixel centres)."""
    side = region.shape[0]
    if side == resolution:
        return region
    idx = np.minimum(((np.arange(resolution) + 0.5) * side / resolution).astype(np.int64), side - 1)
    return region[idx][:, idx]


def requested_labels(ctx: EditContext, spec: dict, head: SegHead, current: torch.Tensor) -> Tuple[torch.Tensor, List[str]]:
    """The requested class map (R, R) from the spec's label picture; pixels it keeps take ``current``."""
    legend = parse_legend(spec["legend"]) if spec.get("legend") else head.legend
    arr = read_image_array(spec.get("labels"), "label map")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    keep_alpha = None
    if arr.shape[2] in (2, 4):
        keep_alpha = arr[..., -1]
        arr = arr[..., :3] if arr.shape[2] == 4 else np.repeat(arr[..., :1], 3, axis=2)
    region, valid, notes = ctx.place(np.ascontiguousarray(arr), "label map", nearest=True)
    if keep_alpha is not None:
        a_region, _, _ = ctx.place(keep_alpha, "label map", nearest=True)
        valid &= a_region > 0
    if spec.get("snap"):
        region, changed = snap_to_legend(region, legend, valid)
        if changed:
            notes.append(f"label map: {changed} painted pixel(s) between legend colours were snapped to the "
                         "nearest legend colour")
    classes = classes_from_rgb(region, legend, head.names, "label map", valid=valid)
    small = torch.from_numpy(region_to_model_labels(classes, ctx.gen.resolution)).to(current.device)
    return torch.where(small >= 0, small, current), notes


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    if radius <= 0:
        return mask
    m = mask.float()[None, None]
    return F.max_pool2d(m, 2 * radius + 1, stride=1, padding=radius)[0, 0] > 0


def optimise_labels(gen, head: SegHead, z: torch.Tensor, h0: torch.Tensor, split: str, target: torch.Tensor,
                    region: torch.Tensor, changed: torch.Tensor, config: Optional[SegEditConfig] = None,
                    progress=None, cancel=None) -> Tuple[torch.Tensor, Dict[str, object]]:
    """EditGAN's optimisation of ``h`` (see the module docstring). Returns (h_edited, result)."""
    from ..projection.perceptual import get_perceptual
    from ..metrics import pixel_loss
    cfg = config or SegEditConfig()
    t0 = time.perf_counter()
    dev = h0.device
    with torch.no_grad():
        ref = gen.forward_from(split, h0, z=z)
    inside = region.float()[None, None].to(dev)
    outside = 1.0 - inside
    tgt = target[None].to(dev)
    percept = get_perceptual(dev)
    scale = h0.pow(2).mean().clamp_min(1e-8)
    # only the split cells whose footprint reaches the region may move: far from the edit
    # the image stays exactly as it was
    reach = dilate(region.to(dev), footprint_radius(gen, split))
    cells = (F.adaptive_max_pool2d(reach.float()[None, None], h0.shape[-2:]) > 0).to(h0.dtype)
    delta = torch.zeros_like(h0, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=cfg.lr)
    n_changed = int(changed.sum())
    achieved, steps = 0.0, 0
    for step in range(cfg.steps):
        checkpoint(cancel, progress, "segment", step / max(cfg.steps, 1))
        h = h0 + delta * cells
        logits, img = head.logits(gen, h, z, split)
        with torch.no_grad():
            pred = logits.argmax(1)[0]
            achieved = float((pred[changed] == target[changed]).float().mean()) if n_changed else 1.0
        if achieved >= cfg.stop_at and step >= min(cfg.min_steps, cfg.steps):
            break
        ce = F.cross_entropy(logits, tgt, reduction="none")[:, None]
        loss = (ce * inside).sum() / inside.sum().clamp_min(1)
        if float(outside.sum()) > 0:
            rec = pixel_loss(img, ref, outside)[0]
            if percept is not None:
                rec = rec + cfg.lambda_perceptual * percept(img, ref, outside)[0]
            loss = loss + cfg.lambda_outside * rec
        loss = loss + cfg.lambda_h * (h - h0).pow(2).mean() / scale
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps = step + 1
    h = (h0 + delta * cells).detach()
    with torch.no_grad():
        logits, img = head.logits(gen, h, z, split)
        pred = logits.argmax(1)[0]
        achieved = float((pred[changed] == target[changed]).float().mean()) if n_changed else 1.0
        moved = (to8(img) != to8(ref)).any(1)[0]
        out_px = ~region.to(dev)
        diff_out = moved[out_px]
    result = {"achieved_fraction": round(achieved, 4), "changed_pixels": n_changed,
              "region_pixels": int(region.sum()), "steps": steps,
              "seconds": round(time.perf_counter() - t0, 3),
              # 8-bit pixels outside the region that changed at all, before compositing
              "outside_changed_fraction": round(float(diff_out.float().mean()) if diff_out.numel() else 0.0, 5),
              "perceptual": percept is not None}
    return h, result


def to8(img: torch.Tensor) -> torch.Tensor:
    return img.detach().clamp(-1, 1).add(1).mul(127.5).round()


# -- the edit -------------------------------------------------------------------------------

def parse_segment(args: str) -> dict:
    """``EDITED_LABELS.png[#save=NAME][#legend=L.json][#steps=N][#snap=1][#texture=source]`` (options also
    comma-separated; ``snap=1``: colours between the legend's are snapped to the nearest, as for antialiased
    brushes; ``texture``: the asked part's texture from the photo's own, :mod:`priorpaint.compositing.texture`)."""
    path, _, opts = args.partition("#")
    if not path.strip():
        raise InputError("segment spec must be segment:EDITED_LABELS.png[#save=NAME]")
    spec: dict = {"labels": path.strip()}
    for opt in filter(None, (o.strip() for o in opts.replace("#", ",").split(","))):
        k, eq, v = opt.partition("=")
        k = k.strip()
        if not eq:
            raise InputError(f"segment option {opt!r} must be KEY=VALUE (keys: save, legend, steps, snap)")
        if k == "save":
            spec["save_vector"] = v.strip()
        elif k == "legend":
            spec["legend"] = v.strip()
        elif k == "steps":
            try:
                spec["steps"] = int(v)
            except ValueError:
                raise InputError(f"segment option steps must be an integer, got {v!r}") from None
        elif k == "texture":
            spec["texture"] = check_low(v, "segment")
        elif k == "snap":
            if v.strip() not in ("0", "1"):
                raise InputError(f"segment option snap must be 0 or 1, got {v!r}")
            spec["snap"] = v.strip() == "1"
        else:
            raise InputError(f"unknown segment option {k!r} (keys: save, legend, steps, snap, texture)")
    return spec


def attach_save_vector(edits: List[str], name: Optional[str]) -> List[str]:
    """The CLI's ``--save-vector NAME``: add ``#save=NAME`` to the (last) segment edit."""
    if not name:
        return list(edits)
    from .vectors import check_name
    check_name(name)
    out = list(edits)
    for i in range(len(out) - 1, -1, -1):
        text = out[i].strip()
        if text.startswith("segment:"):
            out[i] = text + ("," if "#" in text else "#") + f"save={name}"
            return out
        if text.startswith("{") and '"segment"' in text:
            import json
            try:
                spec = json.loads(text)
            except json.JSONDecodeError:
                break
            spec["save_vector"] = name
            out[i] = json.dumps(spec)
            return out
    raise InputError("--save-vector needs a segment edit (--edit segment:EDITED_LABELS.png) to save")


@register_edit("segment", parse_segment, preview=PreviewCost.SLOW, file_fields=("labels", "legend"),
               inline_fields=("legend",), composite=declared,
               help="segment:EDITED_LABELS.png[#save=NAME] — make the image follow an edited label map "
                    "(from `priorpaint segment`); #save=NAME keeps the change as an editing vector")
def apply_segment(ctx: EditContext, state: EditState, spec: dict) -> EditState:
    gen = ctx.gen
    head = get_head(gen)
    split = ctx.split
    save = spec.get("save_vector")
    if spec.get("texture"):
        spec["texture"] = check_low(spec["texture"], "segment")
    if save:
        from .vectors import check_name
        check_name(save)
    cfg = SegEditConfig()
    if spec.get("steps") is not None:
        try:
            cfg.steps = int(spec["steps"])
        except (TypeError, ValueError, OverflowError):
            raise InputError(f"segment steps must be an integer, got {str(spec['steps'])[:40]!r}") from None
        if not 1 <= cfg.steps <= 2000:
            raise InputError(f"segment steps must be between 1 and 2000, got {cfg.steps}")
    current = state_classes(ctx, state, head)
    target, notes = requested_labels(ctx, spec, head, current)
    new = state.evolve()
    new.notes.extend(notes)
    changed = target != current
    if not changed.any():
        new.notes.append("the label map asks for no change: nothing to edit")
        new.edit_mask = ctx.merged_mask(state, np.zeros_like(ctx.crop.region_mask))
        spec["result"] = {"achieved_fraction": 1.0, "changed_pixels": 0, "steps": 0, "seconds": 0.0}
        return new
    region = dilate(changed, cfg.dilate)
    h, result = optimise_labels(gen, head, state.z, state.h, split, target, region, changed, cfg,
                                progress=ctx.progress, cancel=ctx.cancel)
    moves: Dict[str, int] = {}
    cur, tgt = current[changed].tolist(), target[changed].tolist()
    for a, b in zip(cur, tgt):
        key = f"{head.names[a]}->{head.names[b]}"
        moves[key] = moves.get(key, 0) + 1
    result["requested"] = moves
    new.h = h
    # render: the edited region, grown a little so the feathered blend has room
    mask_model = dilate(region, 2)
    new.edit_mask = ctx.merged_mask(state, model_to_region(mask_model.float(), ctx.crop.square[2]))
    if save:
        from .vectors import save_vector, saved_effect
        path = save_vector(model_key(gen), save, h - state.h,
                           {"split": split, "kind": "segment", "requested": moves,
                            "achieved_fraction": result["achieved_fraction"], "steps": result["steps"],
                            "classes": head.names, "effect": saved_effect(gen, split, state.z, state.h, h, new.edit_mask)},
                           namespace=ctx.vector_namespace)
        # the app's clients get the name only (never a server path); the CLI reports the file
        result["saved_vector"] = save if ctx.vector_namespace is not None else str(path)
    spec["result"] = result
    # where the label map asks for a part: the texture composite fills it from the photo's own part
    from .photo_parts import PARTS, part_of, photo_parts
    before = photo_parts(ctx.crop.region, gen.resolution)
    asked = np.array([part_of(n) for n in head.names])[target.cpu().numpy()]
    after = np.where(changed.cpu().numpy(), asked, before)
    spec["part_map"] = part_map(before, after, list(PARTS))
    return new
