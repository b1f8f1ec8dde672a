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
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import InputError
from ..models.layered import LayeredGenerator
from .parts import DERIVE_LOCK, cache_root, model_key, temp_beside, weights_fingerprint
from .registry import EditState, register_edit
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
            acts.append(h.float())
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


def get_dissection(gen: LayeredGenerator, config: Optional[DissectConfig] = None) -> Dissection:
    """The cached dissection of ``gen``'s current segmentation head."""
    with DERIVE_LOCK:
        return _get_dissection(gen, config)


def _get_dissection(gen: LayeredGenerator, config: Optional[DissectConfig]) -> Dissection:
    from safetensors.torch import load_file, save_file
    cfg = config or DissectConfig()
    head = get_head(gen)
    sig = hashlib.sha256(b"".join(p.detach().cpu().numpy().tobytes() for p in head.parameters())).hexdigest()[:12]
    path = cache_root() / "concepts" / model_key(gen) / f"units-{cfg.key()}-{sig}-{weights_fingerprint(gen)}.safetensors"
    key = (str(gen.device), str(path))
    if key in _dissections:
        return _dissections[key]
    d = None
    if path.exists():
        try:
            t = load_file(str(path))
            d = Dissection(names=list(head.names), iou=t["iou"], order=t["order"], threshold=t["threshold"],
                           high=t["high"], split=head.layers[0])
        except Exception as e:
            log.warning("ignoring unreadable cache %s: %s", path, e)
    if d is None:
        d = dissect(gen, head, cfg)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_beside(path)
        save_file({"iou": d.iou.contiguous(), "order": d.order.contiguous(), "threshold": d.threshold.contiguous(),
                   "high": d.high.contiguous()}, str(tmp))
        tmp.replace(path)
    _dissections[key] = d
    return d


def list_concepts(model_id: Optional[str] = None, gen: Optional[LayeredGenerator] = None) -> dict:
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
    return {"model": model_key(gen), "concepts": concepts, "vectors": list_vectors(model_key(gen)),
            "legend": {n: list(c) for n, c in head.legend.items()}}


# -- masks between the photo, the square region and the model ---------------------------------

def layer_box(crop) -> Tuple[int, int, int, int]:
    """(x, y, w, h) of the part of the crop's square inside the photo (where the result layer goes)."""
    x0, y0, side = crop.square
    W, H = crop.image_size
    xs0, ys0, xs1, ys1 = max(x0, 0), max(y0, 0), min(x0 + side, W), min(y0 + side, H)
    return xs0, ys0, xs1 - xs0, ys1 - ys0


def read_image_array(src, what: str) -> np.ndarray:
    """An image-valued spec field (path, bytes, PIL image or array) as a uint8 array (H, W[, C])."""
    from ..images import load_photo
    if isinstance(src, np.ndarray):
        arr = src
        if arr.dtype != np.uint8:
            arr = np.clip(np.round(arr * (255.0 if arr.size and arr.max() <= 1.0 else 1.0)), 0, 255).astype(np.uint8)
        return arr
    if src is None or (isinstance(src, str) and not src.strip()):
        raise InputError(f"{what}: no image given")
    if isinstance(src, str) and src.startswith("file:"):
        raise InputError(f"{what}: the file reference {src!r} was not resolved (pass the file with the request)")
    p = load_photo(src, what)
    return p.to_array()


def to_region(session, arr: np.ndarray, what: str, nearest: bool, fill=0) -> Tuple[np.ndarray, np.ndarray, List[str]]:
    """Place an image-sized or layer-box-sized array in the crop's square.

    Returns (region array (side, side[, C]), valid (side, side) bool: pixels the array
    covered, notes).  Other sizes are resized to the layer box (nearest-neighbour for
    label maps, bilinear for masks) with a note.
    """
    crop = session.crop
    x0, y0, side = crop.square
    W, H = crop.image_size
    lx, ly, lw, lh = layer_box(crop)
    notes: List[str] = []
    h, w = arr.shape[:2]
    if (w, h) == (W, H):
        sub = arr[ly:ly + lh, lx:lx + lw]
    elif (w, h) == (lw, lh):
        sub = arr
    else:
        resample = Image.NEAREST if nearest else Image.BILINEAR
        sub = np.asarray(Image.fromarray(np.ascontiguousarray(arr)).resize((lw, lh), resample))
        notes.append(f"{what} is {w}x{h}, neither the image ({W}x{H}) nor the layer box ({lw}x{lh}); "
                     f"resized to {lw}x{lh} ({'nearest-neighbour' if nearest else 'bilinear'})")
    shape = (side, side) + sub.shape[2:]
    region = np.full(shape, fill, dtype=sub.dtype)
    valid = np.zeros((side, side), bool)
    oy, ox = ly - y0, lx - x0
    region[oy:oy + lh, ox:ox + lw] = sub
    valid[oy:oy + lh, ox:ox + lw] = True
    return region, valid, notes


def mask_channel(arr: np.ndarray) -> np.ndarray:
    """A painted mask's strength 0..255: its alpha when it has a non-trivial alpha, else its luminance."""
    if arr.ndim == 2:
        return arr
    if arr.shape[2] in (2, 4) and arr[..., -1].min() < 255:
        return arr[..., -1]
    rgb = arr[..., :3] if arr.shape[2] >= 3 else np.repeat(arr[..., :1], 3, axis=2)
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).convert("L"))


def region_to_model(mask: np.ndarray, resolution: int) -> torch.Tensor:
    """(side, side) uint8 -> (R, R) float in [0, 1] (area resize)."""
    im = Image.fromarray(np.ascontiguousarray(mask), "L")
    if im.width != resolution:
        im = im.resize((resolution, resolution), Image.BOX if im.width > resolution else Image.BILINEAR)
    return torch.from_numpy(np.asarray(im, np.float32) / 255.0)


def model_to_region(mask: torch.Tensor, side: int) -> np.ndarray:
    """(R, R) bool/float in [0, 1] at model resolution -> (side, side) uint8 square-region mask."""
    arr = (mask.detach().float().clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
    if arr.shape[0] == side:
        return arr
    return np.asarray(Image.fromarray(arr, "L").resize((side, side), Image.NEAREST))


def merge_edit_mask(session, state: EditState, mask: np.ndarray) -> np.ndarray:
    """The edit mask after this edit: its own mask, united with what earlier edits changed."""
    if not state.applied:
        return mask
    prev = state.edit_mask if state.edit_mask is not None else session.crop.region_mask
    return np.maximum(prev, mask)


_footprints: Dict[tuple, int] = {}


def footprint_radius(gen: LayeredGenerator, split: str) -> int:
    """How many output pixels beyond a split cell's own area a change of that cell reaches.

    Measured by perturbing the central cell of a sampled ``h`` (exact for any generator
    made of local operations)."""
    key = (weights_fingerprint(gen), model_key(gen), split)
    if key in _footprints:
        return _footprints[key]
    with torch.no_grad():
        z = gen.sample_latents(1, seed=0)
        h = gen.forward_to(z, split)
        base = gen.forward_from(split, h, z=z)
        s = h.shape[-1]
        c = s // 2
        h2 = h.clone()
        h2[..., c, c] += 10.0 * (h.abs().max() + 1)
        diff = (gen.forward_from(split, h2, z=z) - base).abs().amax(1)[0] > 0
    R = diff.shape[-1]
    cell = R / s
    ys, xs = torch.nonzero(diff, as_tuple=True)
    lo, hi = c * cell, (c + 1) * cell - 1
    r = 0
    if ys.numel():
        r = int(max(lo - float(ys.min()), float(ys.max()) - hi, lo - float(xs.min()), float(xs.max()) - hi, 0))
    _footprints[key] = r
    return r


def split_weights(mask_model: torch.Tensor, split_size: int, erode: int, strict: bool = True) -> Tuple[torch.Tensor, int]:
    """Per-cell weights (s, s) in [0, 1] of a model-resolution mask (R, R), and how they were made.

    The mask is eroded by ``erode`` px (the footprint).  ``strict``: a cell's weight is the
    mask's minimum over the cell (only cells wholly inside the eroded mask move, so the output
    outside the painted region does not change at all) — level 3.  When no cell is wholly
    inside: the fraction of each cell the eroded mask covers (level 1 under ``strict``, 2
    otherwise); when the erosion leaves nothing: the plain mask's coverage (level 0)."""
    m = mask_model.float()
    eroded = m
    if erode > 0:
        support = (m > 0).float()[None, None]
        inside = -F.max_pool2d(-F.pad(support, (erode,) * 4, value=0.0), 2 * erode + 1, stride=1)[0, 0]
        eroded = m * inside
    used = eroded.sum() > 0
    src = eroded if used else m
    w = F.adaptive_avg_pool2d(src[None, None], split_size)[0, 0]
    level = 2 if used else 0
    if used and strict:
        # only cells wholly inside the eroded mask: their footprint stays inside the painted region
        full = -F.adaptive_max_pool2d(-src[None, None], split_size)[0, 0]
        if (full > 0).any():
            return full.clamp(0, 1), 3
        level = 1
    return w.clamp(0, 1), level


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
    """``CONCEPT=add|remove@PAINT.png[#k=N]``."""
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
        else:
            raise InputError(f"unknown paint option {k!r} (known: k)")
    return spec


@register_edit("paint", parse_paint,
               help="paint:CONCEPT=add|remove@PAINT.png — add or remove a concept (GAN Dissection units) "
                    "inside the painted region; see `priorpaint concepts`")
def apply_paint(session, state: EditState, spec: dict) -> EditState:
    gen = session.gen
    head = get_head(gen)
    concept = str(spec.get("concept", ""))
    if concept not in head.names:
        raise InputError(f"unknown concept {concept!r}; known concepts of {model_key(gen)}: {', '.join(head.names)}")
    mode = str(spec.get("mode", "")).lower()
    if mode not in ("add", "remove"):
        raise InputError(f"paint mode must be add or remove, got {spec.get('mode')!r}")
    k = int(spec.get("k", DEFAULT_K))
    split = session.require_projection().split
    d = get_dissection(gen)
    if d.split != split:
        raise InputError(f"concept units are ranked at layer {d.split!r} but this projection is split at {split!r}")
    if not 1 <= k <= d.order.shape[1]:
        raise InputError(f"paint k must be between 1 and {d.order.shape[1]}, got {k}")
    arr = read_image_array(spec.get("mask"), "paint mask")
    painted = mask_channel(arr)
    region, _, notes = to_region(session, painted, "paint mask", nearest=False)
    new = state.evolve()
    new.notes.extend(notes)
    if not region.any():
        new.notes.append("the paint mask is empty: nothing painted")
        new.edit_mask = merge_edit_mask(session, state, np.zeros_like(region))
        return new
    m = region_to_model(region, gen.resolution)
    radius = footprint_radius(gen, split)
    w, level = split_weights(m, state.h.shape[-1], radius)
    if level < 3:
        new.notes.append(f"the painted region is small for the generator's footprint (a split cell is "
                         f"{gen.resolution // state.h.shape[-1]} px and its change reaches {radius} px further at "
                         f"{gen.resolution} px): the edit reaches past it before compositing; paint a larger region "
                         "for a clean edit")
    units = d.top_units(concept, k)
    new.h = paint_h(state.h, units, d.high[units], mode, w)
    new.edit_mask = merge_edit_mask(session, state, region)
    return new


# -- command line -------------------------------------------------------------------------------

def _write_samples(gen: LayeredGenerator, folder: Path, n: int, seed: int, scale: int = 4) -> None:
    """Generated samples to paint labels on: sample_XX.png, labels_XX.png (the head's labels,
    to correct), latents.safetensors and legend.json."""
    from safetensors.torch import save_file
    from ..compositing.blend import to_uint8
    from .seghead import colour_labels
    if not 1 <= n <= 16:
        raise InputError(f"--n must be between 1 and 16 (a head is trained from at most 16 images), got {n}")
    head = get_head(gen)
    folder.mkdir(parents=True, exist_ok=True)
    z = gen.sample_latents(n, seed=seed)
    labels = head.predict_z(gen, z).cpu().numpy()
    with torch.no_grad():
        ims = gen(z)
    big = gen.resolution * scale
    for i in range(n):
        Image.fromarray(to_uint8(ims[i])).resize((big, big), Image.LANCZOS).save(folder / f"sample_{i:02d}.png")
        Image.fromarray(colour_labels(labels[i], head.colours)).resize((big, big), Image.NEAREST).save(
            folder / f"labels_{i:02d}.png")
    save_file({"z": z.detach().cpu().contiguous()}, str(folder / "latents.safetensors"),
              metadata={"model": model_key(gen), "seed": str(seed)})
    (folder / "legend.json").write_text(json.dumps({k: list(v) for k, v in head.legend.items()}, indent=1) + "\n")


def _train_from_folder(gen: LayeredGenerator, folder: Path, legend_path: Optional[str]) -> dict:
    from safetensors.torch import load_file
    from .seghead import (HeadConfig, classes_from_rgb, confusion_scores, parse_legend, save_head,
                          train_head, user_head_path)
    lat = folder / "latents.safetensors"
    if not lat.exists():
        raise InputError(f"{folder} has no latents.safetensors: make the folder with `priorpaint concepts --samples {folder}`")
    z = load_file(str(lat))["z"].to(gen.device)
    legend = parse_legend(legend_path or (folder / "legend.json"))
    names = list(legend)
    maps, used = [], []
    for i in range(z.shape[0]):
        p = folder / f"labels_{i:02d}.png"
        if not p.exists():
            continue
        arr = read_image_array(str(p), f"label map {p.name}")
        rgb = arr[..., :3] if arr.ndim == 3 else np.repeat(arr[..., None], 3, axis=2)
        if rgb.shape[0] != rgb.shape[1]:
            raise InputError(f"label map {p.name} is {rgb.shape[1]}x{rgb.shape[0]}; the samples are square")
        cls = classes_from_rgb(np.ascontiguousarray(rgb), legend, names, f"label map {p.name}")  # every pixel checked
        if cls.shape[0] != gen.resolution:  # nearest-neighbour (pixel centres) to the model's resolution
            idx = np.minimum(((np.arange(gen.resolution) + 0.5) * cls.shape[0] / gen.resolution).astype(np.int64),
                             cls.shape[0] - 1)
            cls = cls[idx][:, idx]
        maps.append(torch.from_numpy(cls))
        used.append(i)
    if not maps:
        raise InputError(f"{folder} has no labels_XX.png label maps")
    labels = torch.stack(maps)
    zz = z[used]
    head = train_head(gen, zz, labels, names, [legend[n] for n in names], HeadConfig(train_images=len(used)))
    pred = head.predict_z(gen, zz, size=gen.resolution)
    fit = confusion_scores(pred, labels.to(pred.device), len(names))
    save_head(head, user_head_path(gen), {"trained_from": str(folder), "images": len(used)})
    _dissections.clear()
    return {"head": str(user_head_path(gen)), "images": len(used), "classes": names,
            "training_pixel_accuracy": round(fit["pixel_accuracy"], 4), "training_miou": round(fit["miou"], 4)}


def cmd_concepts(args) -> int:
    from ..models.registry import load_generator
    from .parts import PartsRecipe, derive, parts_file, read_parts_file
    from .seghead import evaluate_head, user_head_path
    gen = load_generator(args.model, allow_download=args.download)
    if args.derive:
        old = read_parts_file(model_key(gen))
        recipe = None
        if args.k or args.layers:
            from .parts import default_recipe
            base = default_recipe(gen)
            recipe = PartsRecipe(layers=args.layers.split(",") if args.layers else base.layers,
                                 k=args.k or base.k, samples=args.samples_n or base.samples, seed=args.seed)
        names = {}
        for item in filter(None, (args.names or "").split(",")):
            j, eq, n = item.partition("=")
            if not eq or not j.strip().isdigit() or not n.strip():
                raise InputError(f"--names takes CLUSTER=NAME pairs like 0=hair,1=skin; got {item!r}")
            names[int(j)] = n.strip()
        data = derive(gen, recipe, names=names, artifacts=Path(args.artifacts) / "parts")
        kept = "names kept from the existing file" if old and not recipe and not names else "names"
        print(f"derived {len(data['clusters'])} clusters of {data['model']} ({kept}: {', '.join(data['legend'])}); "
              f"cluster maps in {Path(args.artifacts) / 'parts'}; wrote {parts_file(data['model'])}")
        return 0
    if args.samples:
        _write_samples(gen, Path(args.samples), args.n, args.seed)
        print(f"wrote {args.n} samples to {args.samples}: paint over labels_XX.png with the colours of legend.json "
              f"(add classes there if you need them), then run `priorpaint concepts --train-head {args.samples}`")
        return 0
    if args.train_head:
        print(json.dumps(_train_from_folder(gen, Path(args.train_head), args.legend), indent=1))
        return 0
    if args.reset_head:
        p = user_head_path(gen)
        if p.exists():
            p.unlink()
        _dissections.clear()
        print(f"removed the user-trained head of {model_key(gen)}; the discovered parts label images again")
        return 0
    info = list_concepts(gen=gen)
    if args.evaluate:
        info["head_quality"] = evaluate_head(gen, get_head(gen))
    if args.json:
        print(json.dumps(info, indent=1, default=float))
        return 0
    print(f"concepts of {info['model']} (paint:CONCEPT=add|remove@PAINT.png; colours as in `priorpaint segment`):")
    for c in info["concepts"]:
        units = ", ".join(str(u["unit"]) for u in c["top_units"])
        print(f"  {c['name']:<18} rgb {str(c['colour']):<16} top units {units}")
    if "head_quality" in info:
        q = info["head_quality"]
        print(f"segmentation head vs discovered parts: pixel accuracy {q['pixel_accuracy']:.3f}, mIoU {q['miou']:.3f} "
              f"({q['samples']} held-out samples)")
    print(f"saved vectors (vector:NAME=STRENGTH): {', '.join(v['name'] for v in info['vectors']) or 'none'}")
    return 0


def add_cli(sub) -> None:
    p = sub.add_parser("concepts", help="list the concepts (discovered parts) and saved editing vectors of a model; "
                                        "derive parts; train the segmentation head from painted labels")
    p.add_argument("--model", default=None, help="model id (default: the embedded default)")
    p.add_argument("--download", action="store_true", help="allow downloading a hub model's weights")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--evaluate", action="store_true",
                   help="also report the segmentation head's pixel accuracy and mean IoU on held-out samples")
    g = p.add_argument_group("part discovery")
    g.add_argument("--derive", action="store_true",
                   help="re-derive the parts by k-means, write weights_manifest/parts/<model>.json and the cluster maps")
    g.add_argument("--k", type=int, default=None, help="clusters (with --derive; default: the shipped recipe)")
    g.add_argument("--layers", default=None, help="comma-separated layers to cluster (with --derive)")
    g.add_argument("--samples-n", type=int, default=None, help="sampled latents (with --derive)")
    g.add_argument("--names", default=None, help="cluster names, e.g. 0=hair,1=skin (with --derive)")
    g.add_argument("--artifacts", default="artifacts", help="where --derive writes the cluster maps (default artifacts/)")
    g = p.add_argument_group("painted labels")
    g.add_argument("--samples", metavar="DIR", help="write generated samples and their label maps to paint over")
    g.add_argument("--n", type=int, default=8, help="samples to write (at most 16; default 8)")
    g.add_argument("--seed", type=int, default=0, help="seed of the samples / of --derive's k-means")
    g.add_argument("--train-head", metavar="DIR", help="train the segmentation head from the painted labels in DIR")
    g.add_argument("--legend", default=None, help="legend JSON for --train-head (default DIR/legend.json)")
    g.add_argument("--reset-head", action="store_true", help="forget a head trained from painted labels")
    p.set_defaults(func=cmd_concepts)
