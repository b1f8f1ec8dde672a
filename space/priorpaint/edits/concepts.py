"""Concept painting (GAN Dissection, Bau et al. 2019; GANPaint).

**Dissection.** Over sampled latents, every unit (channel) ``u`` of the split layer is
thresholded at its own top quantile ``t_u`` (activations upsampled to the segmentation
size), and compared with each concept's masks — the classes of the segmentation head
(:mod:`priorpaint.edits.seghead`), i.e. the discovered parts unless a user trained the
head on painted labels.  ``IoU(u, c) = Σ|A_u ∩ M_c| / Σ|A_u ∪ M_c|`` ranks the units of
each concept.  Rankings, thresholds and the ``add`` values are cached as safetensors
under ``${PRIORPAINT_CACHE}/concepts/<model>/`` and recomputed (seconds) when missing.

**Painting.** ``add`` sets the concept's top-k units to their high quantile inside the
painted region, ``remove`` sets them to zero there.  The units live at the split layer,
so the edit is applied to ``state.h`` directly (``h_e = h·(1−w) + v·w`` per unit, with
``w`` the painted region at split resolution) rather than as a G_F intervention: the
result is an ordinary hybrid latent that later edits, editing vectors and the adapted
generator G′ all take as it is.

The painted mask (sized like the photo or the layer box; other sizes are resized to the
layer box) is the edit mask for rendering.  At split resolution only the cells whose
whole *footprint* lies inside the painted region move: the mask is eroded by the
generator's footprint (how far a change of one split cell spreads in the output, measured
once per model by perturbing one cell: 7 px at 64 px for the DCGAN) and a cell's weight
is the eroded mask's minimum over the cell.  The generated image then does not change at
all outside the painted region, even before compositing.  A region too small to hold a
whole footprint falls back to the eroded (or plain) mask's coverage, with a note.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..models.layered import LayeredGenerator
from .. import store
from ..store import DERIVE_LOCK, model_key, weights_fingerprint
from ..compositing.regions import mask_channel, region_to_model, split_weights
from ..compositing.texture import check_low, declared, part_map
from ..images import read_image_array
from ..models.footprint import footprint_radius
from .registry import EditContext, EditState, PreviewCost, register_edit
from .seghead import SegHead, get_head

log = logging.getLogger(__name__)


# -- dissection -------------------------------------------------------------------------------

@dataclass
class DissectConfig:
    samples: int = 128
    seed: int = 2
    quantile: float = 0.99       # per-unit threshold (top 1 % of activations)
    add_quantile: float = 0.995  # the value ``add`` writes
    size: int = 32               # resolution of the comparison

    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.__dict__, sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class Dissection:
    names: List[str]             # concepts (the head's classes)
    iou: torch.Tensor            # (C, U)
    order: torch.Tensor          # (C, U) units by decreasing IoU
    threshold: torch.Tensor      # (U,)
    high: torch.Tensor           # (U,) the value ``add`` writes
    split: str

    def top_units(self, concept: str, k: int) -> torch.Tensor:
        return self.order[self.names.index(concept), :k]

    def summary(self, k: int = 5) -> Dict[str, List[dict]]:
        return {n: [{"unit": int(u), "iou": round(float(self.iou[i, u]), 4)} for u in self.order[i, :k]]
                for i, n in enumerate(self.names)}


def dissect(gen: LayeredGenerator, head: SegHead, config: Optional[DissectConfig] = None,
            batch: int = 32) -> Dissection:
    """Rank the split layer's units for every class of ``head`` (see the module docstring)."""
    cfg = config or DissectConfig()
    split = head.layers[0]
    z = gen.sample_latents(cfg.samples, seed=cfg.seed)
    acts, labels = [], []
    with torch.no_grad():
        for chunk in z.split(batch):
            h = gen.forward_to(chunk, split)
            acts.append(gen.units(split, h).float())   # real units only (no skip image)
            labels.append(head.logits(gen, h, chunk, split, cfg.size)[0].argmax(1))
    acts_t = torch.cat(acts)                           # (N, U, s, s)
    lab = torch.cat(labels)                            # (N, S, S)
    U, C = acts_t.shape[1], len(head.names)
    flat = acts_t.transpose(0, 1).reshape(U, -1)
    threshold = torch.quantile(flat, cfg.quantile, dim=1)
    high = torch.quantile(flat, cfg.add_quantile, dim=1)
    inter = torch.zeros(C, U, dtype=torch.float64, device=acts_t.device)
    area_a = torch.zeros(U, dtype=torch.float64, device=acts_t.device)
    area_m = torch.zeros(C, dtype=torch.float64, device=acts_t.device)
    for a, l in zip(acts_t.split(batch), lab.split(batch)):
        up = F.interpolate(a, size=(cfg.size, cfg.size), mode="bilinear", align_corners=False)
        A = (up > threshold[None, :, None, None]).flatten(2).float()       # (n, U, P)
        M = F.one_hot(l.flatten(1), C).float()                               # (n, P, C)
        inter += torch.einsum("nup,npc->cu", A, M).double()
        area_a += A.sum((0, 2)).double()
        area_m += M.sum((0, 1)).double()
    union = area_a[None, :] + area_m[:, None] - inter
    iou = (inter / union.clamp_min(1)).float()
    return Dissection(names=list(head.names), iou=iou.cpu(), order=iou.argsort(1, descending=True).cpu(),
                      threshold=threshold.cpu(), high=high.cpu(), split=split)


_dissections: Dict[Tuple[str, str], Dissection] = {}
store.on_clear(_dissections.clear)


def get_dissection(gen: LayeredGenerator, config: Optional[DissectConfig] = None) -> Dissection:
    """The cached dissection of ``gen``'s current segmentation head."""
    with DERIVE_LOCK:
        return _get_dissection(gen, config)


def _get_dissection(gen: LayeredGenerator, config: Optional[DissectConfig]) -> Dissection:
    cfg = config or DissectConfig()
    head = get_head(gen)
    sig = hashlib.sha256(b"".join(p.detach().cpu().numpy().tobytes() for p in head.parameters())).hexdigest()[:12]
    path = store.folder("concepts", model_key(gen), f"units2-{cfg.key()}-{sig}-{weights_fingerprint(gen)}.safetensors")
    key = (str(gen.device), str(path))
    if key in _dissections:
        return _dissections[key]

    def compute():
        d = dissect(gen, head, cfg)
        return {"iou": d.iou, "order": d.order, "threshold": d.threshold, "high": d.high}

    t = store.load_or_compute(path, compute, memo=False)
    d = Dissection(names=list(head.names), iou=t["iou"], order=t["order"], threshold=t["threshold"],
                   high=t["high"], split=head.layers[0])
    _dissections[key] = d
    return d


def list_concepts(model_id: Optional[str] = None, gen: Optional[LayeredGenerator] = None,
                  namespace: Optional[str] = None) -> dict:
    """``{concepts: [{name, colour, units, notes}], vectors: [...], legend}`` for a model (the app's listing)."""
    from ..models.registry import load_generator
    from .parts import read_parts_file
    from .vectors import list_vectors
    gen = gen or load_generator(model_id)
    head = get_head(gen)
    d = get_dissection(gen)
    notes = (read_parts_file(model_key(gen)) or {}).get("notes", {})
    top = d.summary(5)
    concepts = [{"name": n, "colour": list(c), "top_units": top[n], "notes": notes.get(n, "")}
                for n, c in head.legend.items()]
    return {"model": model_key(gen), "concepts": concepts, "vectors": list_vectors(model_key(gen), namespace),
            "legend": {n: list(c) for n, c in head.legend.items()}}


# -- masks between the photo, the square region and the model ---------------------------------

def paint_h(h: torch.Tensor, units: torch.Tensor, values: torch.Tensor, mode: str, w: torch.Tensor) -> torch.Tensor:
    """``h`` with ``units`` set towards ``values`` (add) or zero (remove), weighted by ``w`` (s, s)."""
    out = h.clone()
    idx = units.to(h.device)
    w = w.to(h.device, h.dtype)[None, None]
    sel = out[:, idx]
    target = values.to(h.device, h.dtype)[None, :, None, None] if mode == "add" else torch.zeros_like(sel)
    out[:, idx] = sel * (1 - w) + target * w
    return out


# -- the edit ---------------------------------------------------------------------------------

DEFAULT_K = 24


def parse_paint(args: str) -> dict:
    """``CONCEPT=add|remove@PAINT.png[#k=N][,texture=source|shaded|generated]``."""
    text, _, opts = args.partition("#")
    head, at, path = text.partition("@")
    concept, eq, mode = head.partition("=")
    if not at or not eq or not concept.strip() or not path.strip():
        raise InputError(f"paint spec must be paint:CONCEPT=add|remove@PAINT.png, got paint:{args!r}")
    spec = {"concept": concept.strip(), "mode": mode.strip().lower(), "mask": path.strip()}
    for opt in filter(None, opts.split(",")):
        k, _, v = opt.partition("=")
        if k.strip() == "k":
            try:
                spec["k"] = int(v)
            except ValueError:
                raise InputError(f"paint option k must be an integer, got {v!r}") from None
        elif k.strip() == "texture":
            spec["texture"] = check_low(v, "paint")
        else:
            raise InputError(f"unknown paint option {k!r} (known: k, texture)")
    return spec


#: a model pixel of the painted region counts as the added part where the rendering's colour changed by
#: at least this CIE Lab ΔE (the generator put something there, whatever the head calls it)
ADDED_DELTA_E = 10.0


def _lab(img: torch.Tensor) -> np.ndarray:
    import cv2
    rgb = ((img[0].permute(1, 2, 0).float().cpu().numpy() + 1.0) * 0.5).clip(0, 1).astype(np.float32)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)


def painted_parts(ctx: EditContext, state: EditState, new: EditState, head: SegHead, concept: str, mode: str,
                  painted: np.ndarray) -> dict:
    """The paint's label maps (:func:`priorpaint.compositing.texture.part_map`) at the model's resolution,
    in the photo's own parts (:mod:`priorpaint.edits.photo_parts`: background, hair, skin; the head's
    concept stands for one of them). ``add``: inside the painted region (``painted``, (R, R) bool), where
    the head now sees the concept or the generator visibly changed the rendering (ΔE ≥
    :data:`ADDED_DELTA_E`): the generator decides where the part goes. ``remove``: the part's pixels
    inside the region take the nearest other part of the photo (what is around it: skin, background)."""
    from scipy import ndimage
    from .photo_parts import BACKGROUND, PARTS, SKIN, part_of, photo_parts
    from .segedit import state_classes
    part = part_of(concept)
    before = photo_parts(ctx.crop.region, ctx.gen.resolution)
    after = before.copy()
    if mode == "add":
        after_head = state_classes(ctx, new, head).cpu().numpy()
        with torch.no_grad():
            a = ctx.gen.forward_from(ctx.split, state.h, z=state.z, interventions=state.interventions or None)
            b = ctx.gen.forward_from(ctx.split, new.h, z=new.z, interventions=new.interventions or None)
        visible = np.linalg.norm(_lab(b) - _lab(a), axis=2) >= ADDED_DELTA_E
        after[painted & ((after_head == head.names.index(concept)) | visible)] = part
    else:
        other = (before == BACKGROUND) | (before == SKIN) if part not in (BACKGROUND, SKIN) else before != part
        if other.any():
            _, (iy, ix) = ndimage.distance_transform_edt(~other, return_indices=True)
            sel = painted & ~other
            after[sel] = before[iy, ix][sel]
    return part_map(before, after, list(PARTS))


@register_edit("paint", parse_paint, preview=PreviewCost.FAST, file_fields=("mask",), composite=declared,
               help="paint:CONCEPT=add|remove@PAINT.png[#texture=source] — add or remove a concept (GAN Dissection "
                    "units) inside the painted region; texture=...: the part's texture from the photo's own "
                    "(compositing/texture.py); see `priorpaint concepts`")
def apply_paint(ctx: EditContext, state: EditState, spec: dict) -> EditState:
    gen = ctx.gen
    head = get_head(gen)
    concept = str(spec.get("concept", ""))
    if concept not in head.names:
        raise InputError(f"unknown concept {concept!r}; known concepts of {model_key(gen)}: {', '.join(head.names)}")
    if spec.get("texture"):
        spec["texture"] = check_low(spec["texture"], "paint")
    mode = str(spec.get("mode", "")).lower()
    if mode not in ("add", "remove"):
        raise InputError(f"paint mode must be add or remove, got {spec.get('mode')!r}")
    try:
        k = int(spec.get("k", DEFAULT_K))
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"paint k must be an integer, got {str(spec.get('k'))[:40]!r}") from None
    split = ctx.split
    d = get_dissection(gen)
    if d.split != split:
        raise InputError(f"concept units are ranked at layer {d.split!r} but this projection is split at {split!r}")
    if not 1 <= k <= d.order.shape[1]:
        raise InputError(f"paint k must be between 1 and {d.order.shape[1]}, got {k}")
    arr = read_image_array(spec.get("mask"), "paint mask")
    painted = mask_channel(arr)
    region, _, notes = ctx.place(painted, "paint mask", nearest=False)
    new = state.evolve()
    new.notes.extend(notes)
    if not region.any():
        new.notes.append("the paint mask is empty: nothing painted")
        new.edit_mask = ctx.merged_mask(state, np.zeros_like(region))
        return new
    m = region_to_model(region, gen.resolution)
    radius = footprint_radius(gen, split)
    w, level = split_weights(m, state.h.shape[-1], radius)
    if level < 3:
        new.notes.append("the painted region is small for this model: the edit spills a little past the paint "
                         f"(about {radius} of the model's {gen.resolution} px) before it is blended in; paint a "
                         "larger region for a clean edit")
    units = d.top_units(concept, k)
    new.h = paint_h(state.h, units, d.high[units], mode, w)
    new.edit_mask = ctx.merged_mask(state, region)
    spec["part_map"] = painted_parts(ctx, state, new, head, concept, mode, m.cpu().numpy() > 0.5)
    return new
