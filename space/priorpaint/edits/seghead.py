"""A segmentation head on generator features (DatasetGAN / EditGAN).

A pixel-wise classifier — two 1×1 convolutions — reads the features of the generator's
layers from the split onwards, each upsampled to the output resolution, de-phased and
L2-normalised per pixel (as for part discovery).  Because it reads only layers computed
*from* the split feature ``h``, it is differentiable in ``h``: the segmentation edit
optimises ``h`` through it.

It is trained from a handful (≤ 16) of labelled generated images: by default the labels
are the discovered parts (:mod:`priorpaint.edits.parts`); a user can instead paint label
maps on generated samples (one class per colour, legend ``{name: [r, g, b]}``) and train
from those (:func:`train_head` / ``priorpaint concepts --train-head``).  The default head
is cached as safetensors under ``${PRIORPAINT_CACHE}/concepts/<model>/`` and retrained
deterministically (a few seconds) when missing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from PIL import Image

from ..images import read_image_array
from ..errors import InputError, ModelError
from ..models.layered import LayeredGenerator
from .. import store
from ..store import DERIVE_LOCK, model_key, weights_fingerprint
from .parts import get_parts, normalised_features

log = logging.getLogger(__name__)


def head_layers(gen: LayeredGenerator, split: Optional[str] = None) -> List[str]:
    """The split layer and every later layer except the image: all functions of ``h``."""
    split = split or gen.default_split
    return [split] + gen.layers_after(split)[:-1]


@dataclass
class HeadConfig:
    train_images: int = 16       # labelled generated images (at most 16, as in DatasetGAN's few-shot setting)
    seed: int = 1                # latents of the training images (part discovery used seed 0)
    hidden: int = 64
    steps: int = 200
    lr: float = 0.01
    pixels: int = 4096           # random training pixels per step
    size: int = 32               # training resolution (labels of the parts are 32×32)

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


class SegHead(nn.Module):
    """1×1-conv MLP over normalised multi-layer features -> class logits."""

    def __init__(self, layers: Sequence[str], in_channels: int, names: Sequence[str],
                 colours: Sequence[Sequence[int]], hidden: int = 64, size: int = 32):
        super().__init__()
        self.size = int(size)        # the resolution the features are read at (its training size)
        self.layers = list(layers)
        self.names = list(names)
        self.colours = [tuple(int(v) for v in c) for c in colours]
        self.net = nn.Sequential(nn.Conv2d(in_channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, len(self.names), 1))

    @property
    def legend(self) -> Dict[str, Tuple[int, int, int]]:
        return dict(zip(self.names, self.colours))

    def pixel_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of feature rows (P, C) -> (P, K): the same net as matrix products (fast to train)."""
        a, b = self.net[0], self.net[2]
        hid = F.relu(F.linear(x, a.weight[:, :, 0, 0], a.bias))
        return F.linear(hid, b.weight[:, :, 0, 0], b.bias)

    def logits_from_features(self, feats: Dict[str, torch.Tensor], size: int) -> torch.Tensor:
        return self.net(normalised_features(feats, self.layers, size))

    def logits(self, gen: LayeredGenerator, h: torch.Tensor, z: Optional[torch.Tensor] = None,
               split: Optional[str] = None, size: Optional[int] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """(logits (N, K, S, S), image) from the split feature ``h`` (differentiable in ``h``).

        Features are read at the head's own size (its training size, 32 px by default:
        4× cheaper than 64) and the logits upsampled bilinearly to ``size`` (default: the
        model's resolution)."""
        split = split or gen.default_split
        if self.layers[0] != split:
            raise ModelError(f"this segmentation head reads layers {self.layers}, which do not start at the "
                             f"split {split!r}")
        img, feats = gen.run(h, start=split, capture=self.layers[1:], z=z)
        feats[split] = h
        out = size or gen.resolution
        logits = self.logits_from_features(feats, min(self.size, out))
        if logits.shape[-1] != out:
            logits = F.interpolate(logits, size=(out, out), mode="bilinear", align_corners=False)
        return logits, img

    def predict(self, gen: LayeredGenerator, h: torch.Tensor, z: Optional[torch.Tensor] = None,
                split: Optional[str] = None, size: Optional[int] = None) -> torch.Tensor:
        with torch.no_grad():
            return self.logits(gen, h, z, split, size)[0].argmax(1)

    def predict_z(self, gen: LayeredGenerator, z: torch.Tensor, size: Optional[int] = None,
                  batch: int = 32) -> torch.Tensor:
        out = []
        with torch.no_grad():
            for chunk in z.split(batch):
                h = gen.forward_to(chunk, self.layers[0])
                out.append(self.logits(gen, h, chunk, self.layers[0], size)[0].argmax(1))
        return torch.cat(out)


def head_features(gen: LayeredGenerator, z: torch.Tensor, layers: Sequence[str], size: int,
                  batch: int = 16) -> torch.Tensor:
    xs = []
    with torch.no_grad():
        for chunk in z.split(batch):
            _, feats = gen.run(chunk, capture=list(layers))
            xs.append(normalised_features(feats, layers, size))
    return torch.cat(xs)


def train_head(gen: LayeredGenerator, z: torch.Tensor, labels: torch.Tensor, names: Sequence[str],
               colours: Sequence[Sequence[int]], config: Optional[HeadConfig] = None,
               layers: Optional[Sequence[str]] = None, ignore_index: int = -1) -> SegHead:
    """Train a head from latents ``z`` (N ≤ 16) and their class maps ``labels`` (N, H, W).

    Labels of any square size are resized (nearest) to the training size; ``ignore_index``
    marks unlabelled pixels.  Deterministic for the config's seed on one device.
    """
    cfg = config or HeadConfig()
    if z.shape[0] != labels.shape[0]:
        raise InputError(f"{z.shape[0]} latents but {labels.shape[0]} label maps")
    if z.shape[0] > 16:
        raise InputError(f"a segmentation head is trained from at most 16 labelled images, got {z.shape[0]}")
    layers = list(layers or head_layers(gen))
    dev = gen.device
    x = head_features(gen, z.to(dev), layers, cfg.size)
    y = labels.to(dev).long()
    if y.shape[-1] != cfg.size:
        y = F.interpolate(y[:, None].float(), size=(cfg.size, cfg.size), mode="nearest")[:, 0].long()
    head = SegHead(layers, x.shape[1], names, colours, cfg.hidden, cfg.size).to(dev)
    with torch.no_grad():  # deterministic initialisation, independent of the global RNG
        for p in head.parameters():
            p.copy_(_init_like(p, cfg.seed) if p.dim() > 1 else torch.zeros_like(p))
    pts = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
    tgt = y.reshape(-1)
    keep = tgt != ignore_index
    pts, tgt = pts[keep], tgt[keep]
    if tgt.numel() == 0:
        raise InputError("the label maps have no labelled pixels")
    counts = torch.bincount(tgt, minlength=len(names)).float()
    # classes weighted by inverse square-root frequency: small parts still count
    weight = torch.where(counts > 0, counts.clamp_min(1).rsqrt(), torch.zeros_like(counts))
    weight = weight / (weight * counts).sum() * counts.sum()
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(cfg.seed)
    for step in range(cfg.steps):
        idx = torch.randint(pts.shape[0], (min(cfg.pixels, pts.shape[0]),), generator=g).to(dev)
        logits = head.pixel_logits(pts[idx])
        loss = F.cross_entropy(logits, tgt[idx], weight=weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step == cfg.steps // 2:
            for group in opt.param_groups:
                group["lr"] = cfg.lr * 0.3
    head.eval()
    for p in head.parameters():
        p.requires_grad_(False)
    return head


def _init_like(p: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed + p.numel())
    fan_in = p.shape[1] * int(np.prod(p.shape[2:]))
    bound = (1.0 / fan_in) ** 0.5 * 3 ** 0.5
    return (torch.rand(p.shape, generator=g) * 2 - 1).mul(bound).to(p.device, p.dtype)


def confusion_scores(pred: torch.Tensor, truth: torch.Tensor, k: int) -> Dict[str, object]:
    """Pixel accuracy, per-class IoU and mean IoU (over classes present in truth or prediction)."""
    pred, truth = pred.reshape(-1).cpu(), truth.reshape(-1).cpu()
    cm = torch.bincount(truth * k + pred, minlength=k * k).reshape(k, k).double()
    inter = cm.diag()
    union = cm.sum(0) + cm.sum(1) - inter
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.full_like(inter, float("nan")))
    valid = union > 0
    return {"pixel_accuracy": float(inter.sum() / cm.sum().clamp_min(1)),
            "miou": float(iou[valid].mean()) if valid.any() else float("nan"),
            "iou": [None if not v else round(float(x), 4) for x, v in zip(iou, valid)]}


# -- the default head, cached -------------------------------------------------------------

def _head_path(gen: LayeredGenerator, parts_key: str, cfg: HeadConfig, layers: Sequence[str]) -> Path:
    tag = hashlib.sha256(f"{parts_key}|{cfg.key()}|{','.join(layers)}".encode()).hexdigest()[:12]
    return store.folder("concepts", model_key(gen), f"seghead-{tag}-{weights_fingerprint(gen)}.safetensors")


def save_head(head: SegHead, path: Path, extra: Optional[dict] = None) -> None:
    meta = {"layers": json.dumps(head.layers), "names": json.dumps(head.names),
            "colours": json.dumps(head.colours), "hidden": str(head.net[0].out_channels),
            "size": str(head.size)}
    for k, v in (extra or {}).items():
        meta[k] = json.dumps(v)
    store.save_tensors(path, head.state_dict(), metadata=meta)


def load_head(path: Path, device=None) -> SegHead:
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        sd = {k: f.get_tensor(k) for k in f.keys()}
    head = SegHead(json.loads(meta["layers"]), sd["net.0.weight"].shape[1], json.loads(meta["names"]),
                   json.loads(meta["colours"]), int(meta["hidden"]), int(meta.get("size", 32)))
    head.load_state_dict(sd)
    head.eval()
    for p in head.parameters():
        p.requires_grad_(False)
    return head.to(device or "cpu")


_heads: Dict[Tuple[str, str], SegHead] = {}
store.on_clear(_heads.clear)


def user_head_path(gen: LayeredGenerator) -> Path:
    """Where ``priorpaint concepts --train-head`` keeps a head trained from painted labels."""
    return store.folder("concepts", model_key(gen), f"seghead-user-{weights_fingerprint(gen)}.safetensors")


def get_head(gen: LayeredGenerator, config: Optional[HeadConfig] = None, use_user: bool = True) -> SegHead:
    """The model's segmentation head: a user-trained one when present, else the default
    head trained on the discovered parts (cached; retrained when missing)."""
    with DERIVE_LOCK:
        return _get_head(gen, config, use_user)


def _get_head(gen: LayeredGenerator, config: Optional[HeadConfig], use_user: bool) -> SegHead:
    if use_user:
        up = user_head_path(gen)
        if up.exists():
            key = (str(gen.device), f"{up}:{up.stat().st_mtime_ns}")
            if key not in _heads:
                _heads[key] = load_head(up, gen.device)
            return _heads[key]
    cfg = config or HeadConfig()
    parts = get_parts(gen)
    layers = head_layers(gen)
    path = _head_path(gen, parts.recipe.key() + json.dumps(parts.cluster_names) + json.dumps(parts.legend), cfg, layers)
    key = (str(gen.device), str(path))
    if key in _heads:
        return _heads[key]
    head = None
    if path.exists():
        try:
            head = load_head(path, gen.device)
            if head.names != parts.names:
                head = None
        except Exception as e:  # damaged cache: retrain
            log.warning("ignoring unreadable cache %s: %s", path, e)
            head = None
    if head is None:
        z = gen.sample_latents(cfg.train_images, seed=cfg.seed)
        labels, _ = parts.labels(gen, z)
        head = train_head(gen, z, labels, parts.names, [parts.legend[n] for n in parts.names], cfg, layers)
        save_head(head, path)
    _heads[key] = head
    return head


def evaluate_head(gen: LayeredGenerator, head: SegHead, samples: int = 64, seed: int = 12345) -> Dict[str, object]:
    """Pixel accuracy and mean IoU of ``head`` against the discovered parts on held-out latents."""
    parts = get_parts(gen)
    z = gen.sample_latents(samples, seed=seed)
    truth, _ = parts.labels(gen, z)
    pred = head.predict_z(gen, z, size=truth.shape[-1])
    scores = confusion_scores(pred, truth, len(parts.names))
    scores["classes"] = parts.names
    scores["samples"] = samples
    return scores


# -- label maps as pictures -----------------------------------------------------------------

def colour_labels(classes: np.ndarray, colours: Sequence[Sequence[int]]) -> np.ndarray:
    return np.asarray(colours, dtype=np.uint8)[np.asarray(classes)]


def parse_legend(src) -> Dict[str, Tuple[int, int, int]]:
    """A legend ``{name: [r, g, b]}`` from a dict, a JSON string or a JSON file path."""
    raw = src
    if isinstance(src, (str, os.PathLike)) and not str(src).lstrip().startswith("{"):
        p = Path(src)
        if not p.exists():
            raise InputError(f"legend {p} does not exist")
        try:
            raw = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f"legend {p} is not valid JSON: {e}") from None
    elif isinstance(src, str):
        try:
            raw = json.loads(src)
        except json.JSONDecodeError as e:
            raise InputError(f"legend is not valid JSON: {e}") from None
    if isinstance(raw, dict) and "legend" in raw and isinstance(raw["legend"], dict):
        raw = raw["legend"]
    if not isinstance(raw, dict) or not raw:
        raise InputError("a legend is a JSON object {name: [r, g, b], ...} with at least one class")
    out: Dict[str, Tuple[int, int, int]] = {}
    seen: Dict[Tuple[int, int, int], str] = {}
    for name, rgb in raw.items():
        if not (isinstance(rgb, (list, tuple)) and len(rgb) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in rgb)):
            raise InputError(f"legend colour of {name!r} must be [r, g, b] with integers 0..255, got {rgb!r}")
        c = tuple(int(v) for v in rgb)
        if c in seen:
            raise InputError(f"legend gives classes {seen[c]!r} and {name!r} the same colour {list(c)}")
        seen[c] = name
        out[str(name)] = c
    return out


def snap_to_legend(rgb: np.ndarray, legend: Dict[str, Sequence[int]],
                   valid: Optional[np.ndarray] = None) -> Tuple[np.ndarray, int]:
    """``(rgb, changed)``: every (valid) pixel set to its nearest legend colour, and how many
    pixels that changed.  Brushes in GIMP and in the browser antialias their edges, so a
    painted label map holds colours between the legend's; the clients send what the user
    painted and ask for this snapping (``"snap": true`` in the segment spec)."""
    pal = np.asarray([list(c)[:3] for c in legend.values()], dtype=np.int32)
    out = np.array(rgb[..., :3], dtype=np.uint8)
    if not len(pal):
        return out, 0
    flat = out.reshape(-1, 3)
    check = np.ones(flat.shape[0], bool) if valid is None else valid.reshape(-1).astype(bool)
    colours, inverse = np.unique(flat[check], axis=0, return_inverse=True)
    nearest = pal[((colours[:, None, :].astype(np.int32) - pal[None]) ** 2).sum(-1).argmin(1)].astype(np.uint8)
    snapped = nearest[inverse.reshape(-1)]
    changed = int((snapped != flat[check]).any(axis=1).sum())
    flat[check] = snapped
    return flat.reshape(out.shape), changed


def classes_from_rgb(rgb: np.ndarray, legend: Dict[str, Tuple[int, int, int]], names: Sequence[str],
                     what: str = "label map", valid: Optional[np.ndarray] = None) -> np.ndarray:
    """(H, W, 3) uint8 colours -> (H, W) class indices into ``names``.

    Every colour must be a legend colour of a known class; otherwise the error lists the
    offending colours (with pixel counts) and the legend.  ``valid``: only these pixels
    are checked (others get -1).
    """
    unknown_names = [n for n in legend if n not in names]
    if unknown_names:
        raise InputError(f"{what}: legend classes {unknown_names} are not classes of this model's "
                         f"segmentation head ({', '.join(names)})")
    flat = rgb.reshape(-1, 3).astype(np.int64)
    code = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    lut = {(c[0] << 16) | (c[1] << 8) | c[2]: names.index(n) for n, c in legend.items()}
    out = np.full(code.shape, -1, np.int64)
    check = np.ones(code.shape, bool) if valid is None else valid.reshape(-1).astype(bool)
    for c, i in lut.items():
        out[code == c] = i
    bad = check & (out < 0)
    if bad.any():
        vals, counts = np.unique(code[bad], return_counts=True)
        order = np.argsort(-counts)
        shown = ", ".join(f"[{v >> 16}, {(v >> 8) & 255}, {v & 255}] ({n} px)" for v, n in
                          zip(vals[order][:8], counts[order][:8]))
        more = f" and {len(vals) - 8} more" if len(vals) > 8 else ""
        leg = ", ".join(f"{n} {list(c)}" for n, c in legend.items())
        raise InputError(f"{what} has {len(vals)} colour(s) not in the legend: {shown}{more}; "
                         f"the legend is {leg} (paint with exactly these colours, without antialiasing)")
    out[~check] = -1
    return out.reshape(rgb.shape[:2])


# -- painted labels: samples to paint on, and a head trained from them -----------------------

def write_label_samples(gen: LayeredGenerator, folder: Path, n: int, seed: int, scale: int = 4) -> None:
    """Generated samples to paint labels on: sample_XX.png, labels_XX.png (the head's labels,
    to correct), latents.safetensors and legend.json."""
    from safetensors.torch import save_file
    from ..compositing.blend import to_uint8
    if not 1 <= n <= 16:
        raise InputError(f"samples to write must be between 1 and 16 (a head is trained from at most 16 images), got {n}")
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


def train_head_from_folder(gen: LayeredGenerator, folder: Path, legend_path: Optional[str]) -> dict:
    from safetensors.torch import load_file
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
    return {"head": str(user_head_path(gen)), "images": len(used), "classes": names,
            "training_pixel_accuracy": round(fit["pixel_accuracy"], 4), "training_miou": round(fit["miou"], 4)}
