"""Part discovery ("Editing in Style", Collins et al. 2020): k-means over generator features.

Generated images of one model share a layout, and the features of its middle layers
carry it: spherical k-means over the L2-normalised features of many sampled latents
groups the pixels into *parts* that recur in every image (for faces: skin, hair,
eyes, mouth, background, ...).  Everything here is written against
:class:`~priorpaint.models.layered.LayeredGenerator` layer names, so it works for any
architecture.

Per model, ``weights_manifest/parts/<model>.json`` ships the *recipe* (layers, k, seed,
sample count, iterations, clustering size), a fingerprint of every cluster (its mean
colour and area in the sampled images, to check a re-derivation), and the names a
person gave the clusters after looking at them (several clusters may share a name),
plus the legend colours.  The centroids themselves are recomputed from the recipe when
missing (a few seconds) and cached as safetensors under
``${PRIORPAINT_CACHE:-~/.cache/priorpaint}/concepts/<model>/``.

k-means runs on the CPU in float32, whatever device the generator is on: the cluster
numbering then does not depend on the device, so the shipped names stay valid.
``priorpaint concepts --derive`` re-derives the clusters, writes the cluster maps under
``artifacts/parts/`` and rewrites the JSON (keeping the names when the recipe did not change).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .. import store
from ..errors import ModelError
from ..store import DERIVE_LOCK, model_key, weights_fingerprint
from ..models.layered import LayeredGenerator

log = logging.getLogger(__name__)

#: colours for clusters that have no shipped name (and the default legend palette)
PALETTE = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
    (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128),
]


# -- the recipe -------------------------------------------------------------------------------

@dataclass
class PartsRecipe:
    layers: List[str]
    k: int = 8
    samples: int = 96
    seed: int = 0
    iters: int = 40
    size: int = 32                   # clustering resolution (features are upsampled to it)
    #: pixels per sample kept for fitting (a random subset: keeps k-means fast); 0 = all
    pixels_per_sample: int = 256

    def key(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def default_layers(gen: LayeredGenerator) -> List[str]:
    """The two layers before the output: middle-to-fine layout, generic over architectures."""
    names = gen.layer_names
    return names[-3:-1] if len(names) >= 3 else names[:-1]


def default_recipe(gen: LayeredGenerator) -> PartsRecipe:
    return PartsRecipe(layers=default_layers(gen), size=min(32, gen.resolution))


# -- features ---------------------------------------------------------------------------------

def dephase(f: torch.Tensor) -> torch.Tensor:
    """Average every 2×2 neighbourhood (stride 1): cancels the period-2 checkerboard that
    strided transposed convolutions leave in features, which k-means would otherwise
    cluster by pixel parity instead of by content."""
    if f.shape[-1] < 2:
        return f
    return F.avg_pool2d(F.pad(f, (0, 1, 0, 1), mode="replicate"), 2, stride=1)


def normalised_features(feats: Dict[str, torch.Tensor], layers: Sequence[str], size: int) -> torch.Tensor:
    """(N, C, size, size): each layer de-phased (:func:`dephase`), upsampled to ``size``, L2-normalised per pixel, concatenated
    and normalised again (every layer weighs the same)."""
    parts = []
    for name in layers:
        f = dephase(feats[name].float())
        if f.shape[-1] != size:
            f = F.interpolate(f, size=(size, size), mode="bilinear", align_corners=False)
        parts.append(F.normalize(f, dim=1, eps=1e-8))
    x = torch.cat(parts, dim=1)
    return F.normalize(x, dim=1, eps=1e-8)


def sample_features(gen: LayeredGenerator, z: torch.Tensor, layers: Sequence[str], size: int,
                    batch: int = 32) -> Tuple[torch.Tensor, torch.Tensor]:
    """Normalised features (N, C, S, S) and images (N, 3, R, R) of latents ``z``."""
    xs, ims = [], []
    with torch.no_grad():
        for chunk in z.split(batch):
            out, feats = gen.run(chunk, capture=list(layers))
            xs.append(normalised_features(feats, layers, size))
            ims.append(out)
    return torch.cat(xs), torch.cat(ims)


# -- k-means ----------------------------------------------------------------------------------

def kmeans(x: torch.Tensor, k: int, iters: int = 40, seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Spherical k-means of the rows of ``x`` (P, C), on ``x``'s device.

    k-means++ initialisation (deterministic for ``seed``), then Lloyd iterations with
    cosine similarity; centroids are renormalised to unit length; an emptied cluster is
    re-seeded at the point farthest from its centroid.  Returns (centroids (k, C), labels (P,)).
    """
    if x.dim() != 2 or x.shape[0] < k:
        raise ValueError(f"k-means needs at least k={k} points of shape (P, C), got {tuple(x.shape)}")
    g = torch.Generator().manual_seed(int(seed))
    P = x.shape[0]
    x = F.normalize(x.float(), dim=1, eps=1e-8)
    first = int(torch.randint(P, (1,), generator=g))
    cents = [x[first]]
    d2 = (2 - 2 * (x @ x[first])).clamp_min(0)
    for _ in range(1, k):
        prob = d2 / d2.sum().clamp_min(1e-12)
        i = int(torch.multinomial(prob.cpu(), 1, generator=g))
        cents.append(x[i])
        d2 = torch.minimum(d2, (2 - 2 * (x @ x[i])).clamp_min(0))
    c = torch.stack(cents)
    labels = torch.zeros(P, dtype=torch.long, device=x.device)
    for it in range(iters):
        sim = x @ c.T
        new = sim.argmax(1)
        if it > 0 and torch.equal(new, labels):
            break
        labels = new
        sums = torch.zeros_like(c).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k)
        for j in torch.nonzero(counts == 0).flatten().tolist():
            worst = int(sim.max(1).values.argmin())
            sums[j] = x[worst]
            labels[worst] = j
        c = F.normalize(sums, dim=1, eps=1e-8)
    labels = (x @ c.T).argmax(1)
    return c, labels


def assign(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Cluster index per pixel of normalised features (N, C, S, S) -> (N, S, S)."""
    c = centroids.to(x.device, x.dtype)
    return torch.einsum("ncij,kc->nkij", x, c).argmax(1)


# -- derivation -------------------------------------------------------------------------------

@dataclass
class Parts:
    """Discovered parts of one model: clusters, and the names people gave them."""
    model: str
    recipe: PartsRecipe
    centroids: torch.Tensor                        # (k, C) float32, CPU
    cluster_names: List[str]                       # name per cluster (several may share one)
    legend: Dict[str, Tuple[int, int, int]]        # part name -> colour, in class order
    fingerprint: List[dict] = field(default_factory=list)   # per cluster: area, mean_rgb

    @property
    def names(self) -> List[str]:
        return list(self.legend.keys())

    def cluster_to_class(self) -> torch.Tensor:
        idx = {n: i for i, n in enumerate(self.names)}
        return torch.tensor([idx[n] for n in self.cluster_names], dtype=torch.long)

    def labels(self, gen: LayeredGenerator, z: torch.Tensor, out_size: Optional[int] = None,
               batch: int = 32) -> Tuple[torch.Tensor, torch.Tensor]:
        """Part (class) maps (N, S, S) of latents ``z`` (nearest-upsampled to ``out_size``) and images."""
        x, ims = sample_features(gen, z, self.recipe.layers, self.recipe.size, batch)
        cl = assign(x, self.centroids.to(x.device))
        cls = self.cluster_to_class().to(cl.device)[cl]
        if out_size and out_size != cls.shape[-1]:
            cls = F.interpolate(cls[:, None].float(), size=(out_size, out_size), mode="nearest")[:, 0].long()
        return cls, ims


def fit_clusters(gen: LayeredGenerator, recipe: PartsRecipe) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the recipe: (centroids (k, C) on CPU, cluster maps (N, S, S), images (N, 3, R, R))."""
    for name in recipe.layers:
        gen.index(name)
    z = gen.sample_latents(recipe.samples, seed=recipe.seed)
    x, ims = sample_features(gen, z, recipe.layers, recipe.size)
    x = x.cpu()
    pts = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, x.shape[1])
    if recipe.pixels_per_sample and recipe.pixels_per_sample < pts.shape[1]:
        g = torch.Generator().manual_seed(int(recipe.seed) + 1)
        keep = torch.stack([torch.randperm(pts.shape[1], generator=g)[: recipe.pixels_per_sample]
                            for _ in range(pts.shape[0])])
        pts = torch.gather(pts, 1, keep[..., None].expand(-1, -1, pts.shape[2]))
    cents, _ = kmeans(pts.reshape(-1, pts.shape[-1]), recipe.k, recipe.iters, recipe.seed)
    return cents, assign(x, cents), ims


def cluster_fingerprint(maps: torch.Tensor, ims: torch.Tensor, k: int) -> List[dict]:
    """Area fraction and mean colour (0..255) of each cluster over the sampled images."""
    S = maps.shape[-1]
    small = F.interpolate(ims.float().cpu(), size=(S, S), mode="area").add(1).mul(127.5)
    maps = maps.cpu()
    out = []
    for j in range(k):
        m = maps == j
        area = float(m.float().mean())
        if m.any():
            rgb = [round(float(small[:, c][m].mean()), 1) for c in range(3)]
        else:
            rgb = [0.0, 0.0, 0.0]
        out.append({"cluster": j, "area": round(area, 4), "mean_rgb": rgb})
    return out


# -- the shipped file -------------------------------------------------------------------------

def parts_file(model: str) -> Path:
    from ..models.manifest import manifest_dirs
    dirs = manifest_dirs()
    for d in dirs:
        p = Path(d) / "parts" / f"{model}.json"
        if p.exists():
            return p
    base = dirs[0] if dirs else Path.cwd() / "weights_manifest"
    return Path(base) / "parts" / f"{model}.json"


def read_parts_file(model: str, path: Optional[Path] = None) -> Optional[dict]:
    path = Path(path) if path else parts_file(model)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ModelError(f"parts file {path} is not valid JSON: {e}") from None


def _recipe_from(raw: dict) -> PartsRecipe:
    r = raw.get("recipe") or {}
    return PartsRecipe(layers=list(r["layers"]), k=int(r["k"]), samples=int(r["samples"]),
                       seed=int(r["seed"]), iters=int(r["iters"]), size=int(r["size"]),
                       pixels_per_sample=int(r.get("pixels_per_sample", 0)))


def _centroid_cache(gen: LayeredGenerator, recipe: PartsRecipe) -> Path:
    return store.cache_root() / "concepts" / model_key(gen) / f"parts-{recipe.key()}-{weights_fingerprint(gen)}.safetensors"


def load_centroids(gen: LayeredGenerator, recipe: PartsRecipe) -> Tuple[torch.Tensor, Optional[List[dict]]]:
    """Centroids from the store, or recomputed from the recipe (and saved); the cluster
    fingerprint comes back only when they were recomputed."""
    fresh: List[List[dict]] = []

    def compute():
        cents, maps, ims = fit_clusters(gen, recipe)
        fresh.append(cluster_fingerprint(maps, ims, recipe.k))
        return {"centroids": cents}

    cents = store.load_or_compute(_centroid_cache(gen, recipe), compute, memo=False)["centroids"]
    return cents, (fresh[0] if fresh else None)


_parts_cache: Dict[Tuple[str, str, str], Parts] = {}
store.on_clear(_parts_cache.clear)



def get_parts(gen: LayeredGenerator, path: Optional[Path] = None) -> Parts:
    """The named parts of ``gen``: the shipped names when a parts file exists, else cluster numbers."""
    with DERIVE_LOCK:
        return _get_parts(gen, path)


def _get_parts(gen: LayeredGenerator, path: Optional[Path]) -> Parts:
    model = model_key(gen)
    raw = read_parts_file(model, path)
    key = (weights_fingerprint(gen), model, str(path) + json.dumps(raw, sort_keys=True) + str(store.cache_root()))
    hit = _parts_cache.get(key)
    if hit is not None:
        return hit
    if raw is not None:
        recipe = _recipe_from(raw)
        cluster_names = [c["name"] for c in sorted(raw["clusters"], key=lambda c: c["cluster"])]
        legend = {n: tuple(int(v) for v in rgb) for n, rgb in raw["legend"].items()}
        if len(cluster_names) != recipe.k or set(cluster_names) - set(legend):
            raise ModelError(f"parts file for {model} is inconsistent: every one of its {recipe.k} clusters "
                             "needs a name that the legend lists")
    else:
        recipe = default_recipe(gen)
        cluster_names = [f"part{j}" for j in range(recipe.k)]
        legend = {n: PALETTE[j % len(PALETTE)] for j, n in enumerate(cluster_names)}
    cents, fp = load_centroids(gen, recipe)
    parts = Parts(model=model, recipe=recipe, centroids=cents, cluster_names=cluster_names,
                  legend=legend, fingerprint=fp or [])
    if raw is not None and fp is not None:
        _check_fingerprint(raw, fp, model)
    _parts_cache[key] = parts
    return parts


def _check_fingerprint(raw: dict, fp: List[dict], model: str) -> None:
    shipped = {c["cluster"]: c for c in raw.get("clusters", [])}
    for c in fp:
        s = shipped.get(c["cluster"])
        if s is None or "area" not in s:
            continue
        if abs(s["area"] - c["area"]) > 0.02 or max(abs(a - b) for a, b in zip(s["mean_rgb"], c["mean_rgb"])) > 8:
            log.warning("re-derived cluster %d of %s differs from the shipped one (area %.3f vs %.3f); "
                        "the part names may not fit: run `priorpaint concepts --derive`",
                        c["cluster"], model, c["area"], s["area"])
            return


def colorize(classes: np.ndarray, colours: Sequence[Tuple[int, int, int]]) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) uint8 colours."""
    pal = np.asarray(colours, dtype=np.uint8)
    return pal[np.asarray(classes)]


def derive(gen: LayeredGenerator, recipe: Optional[PartsRecipe] = None, names: Optional[Dict[int, str]] = None,
           out_json: Optional[Path] = None, artifacts: Optional[Path] = None, grid: int = 16) -> dict:
    """Run k-means, write the cluster maps (PNGs) and the parts JSON; returns the JSON dict.

    ``names``: cluster -> name.  Clusters not named keep the name the existing file gives
    them when its recipe is the same, else ``part<j>``.
    """
    model = model_key(gen)
    old = read_parts_file(model, out_json)
    recipe = recipe or (_recipe_from(old) if old else default_recipe(gen))
    cents, maps, ims = fit_clusters(gen, recipe)
    fp = cluster_fingerprint(maps, ims, recipe.k)
    kept: Dict[int, str] = {}
    old_legend: Dict[str, list] = {}
    if old and _recipe_from(old) == recipe:
        kept = {c["cluster"]: c["name"] for c in old.get("clusters", [])}
        old_legend = old.get("legend", {})
    final = {j: (names or {}).get(j) or kept.get(j) or f"part{j}" for j in range(recipe.k)}
    legend: Dict[str, list] = {n: list(c) for n, c in old_legend.items() if n in final.values()}
    for j in range(recipe.k):
        n = final[j]
        if n not in legend:
            legend[n] = list(PALETTE[len(legend) % len(PALETTE)])
    notes = {n: t for n, t in (old or {}).get("notes", {}).items() if n in legend}
    data = {
        "model": model,
        "about": "Parts discovered by spherical k-means over L2-normalised generator features "
                 "(priorpaint.edits.parts); names given by looking at the cluster maps. "
                 "Re-derive with `priorpaint concepts --derive`.",
        "recipe": asdict(recipe),
        "clusters": [dict(c, name=final[c["cluster"]]) for c in fp],
        "legend": legend,
        "notes": notes,
    }
    out_json = Path(out_json) if out_json else parts_file(model)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(_compact_json(data))
    # the cache now holds exactly these centroids
    store.save_tensors(_centroid_cache(gen, recipe), {"centroids": cents})
    if artifacts is not None:
        write_cluster_maps(ims, maps, Path(artifacts), recipe.k, final, legend, grid)
    _parts_cache.clear()
    return data


def _compact_json(data: dict) -> str:
    """Indented JSON with each cluster and each colour on one line (readable diffs)."""
    text = json.dumps(data, indent=1)
    text = re.sub(r"\[\s*([-0-9.,\s]+?)\s*\]", lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text)
    text = re.sub(r"\{\n\s*(\"cluster\"[^{}]*?)\n\s*\}", lambda m: "{" + " ".join(l.strip() for l in m.group(1).splitlines()) + "}", text)
    return text + "\n"


def write_cluster_maps(ims: torch.Tensor, maps: torch.Tensor, folder: Path, k: int,
                       names: Dict[int, str], legend: Dict[str, list], n: int = 16) -> List[Path]:
    """Grids for people: samples, their cluster maps, overlays, and one mask sheet per cluster."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    n = min(n, ims.shape[0])
    R = ims.shape[-1]
    imgs = ims[:n].clamp(-1, 1).add(1).mul(127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    up = F.interpolate(maps[:n, None].float(), size=(R, R), mode="nearest")[:, 0].long().cpu().numpy()
    cl_colours = [PALETTE[j % len(PALETTE)] for j in range(k)]
    part_colours = [tuple(legend[names[j]]) for j in range(k)]

    def sheet(tiles: List[np.ndarray], cols: int = 8) -> np.ndarray:
        rows = (len(tiles) + cols - 1) // cols
        out = np.full((rows * (R + 2), cols * (R + 2), 3), 255, np.uint8)
        for i, t in enumerate(tiles):
            r, c = divmod(i, cols)
            out[r * (R + 2):r * (R + 2) + R, c * (R + 2):c * (R + 2) + R] = t
        return out

    written = []
    clusters = [colorize(u, cl_colours) for u in up]
    parts = [colorize(u, part_colours) for u in up]
    for name, tiles in (("samples", list(imgs)), ("clusters", clusters), ("parts", parts),
                        ("overlay", [(0.5 * a + 0.5 * b).astype(np.uint8) for a, b in zip(imgs, parts)])):
        p = folder / f"{name}.png"
        Image.fromarray(sheet(tiles)).resize((sheet(tiles).shape[1] * 2, sheet(tiles).shape[0] * 2),
                                             Image.NEAREST).save(p)
        written.append(p)
    for j in range(k):
        tiles = [np.where((u == j)[..., None], im, (im * 0.15 + 40).astype(np.uint8)) for u, im in zip(up, imgs)]
        p = folder / f"cluster{j}.png"
        s = sheet(tiles)
        Image.fromarray(s).resize((s.shape[1] * 2, s.shape[0] * 2), Image.NEAREST).save(p)
        written.append(p)
    return written
