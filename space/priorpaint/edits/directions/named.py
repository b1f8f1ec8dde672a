"""Named directions of a model: ``weights_manifest/directions/<model>.json`` gives each a method,
a component index and a sign (or an attribute for a supervised direction), a description of
what it really does, and the strength range.  Raw components are always available as
``sefa<K>`` and ``ganspace<K>``.

Models that share one set (the official StyleGAN2 weights and their NVIDIA-pickle twins)
name it in their model manifest, ``"named_directions": "<name>"``, and the file is
``weights_manifest/directions/<name>.json``; its published methods (``interfacegan``,
``ganspace_w``) read verified data files beside it (:mod:`.published`).  A set with no
directions and a ``note`` (models for which nothing was published) lists the raw
components with that note.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Dict, List, Optional


from ...errors import InputError, ModelError
from ...models.layered import LayeredGenerator
from ... import store

log = logging.getLogger(__name__)

from .base import DEFAULT_RANGE, GANSPACE_COMPONENTS, GANSPACE_SAMPLES, RAW_PATTERN, Direction
from .pca import ganspace
from .closedform import sefa
from .boundaries import attribute_direction
from .published import PUBLISHED_METHODS, resolve_published


_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def directions_manifest_path(model_id: str) -> Optional[Path]:
    """The named-directions file of a model id (an id is a strict pattern, never a path: no
    '/', no '..'; the app also checks it against the manifest's ids first)."""
    from ...models.manifest import manifest_dirs
    if not isinstance(model_id, str) or not _MODEL_ID.match(model_id) or ".." in model_id:
        raise InputError(f"unknown model {str(model_id)[:64]!r}: a model id is letters, digits, '.', '_' or '-'")
    for d in manifest_dirs():
        p = Path(d) / "directions" / f"{model_id}.json"
        if p.is_file():
            return p
    shared = _shared_name(model_id)
    if shared is not None:
        for d in manifest_dirs():
            p = Path(d) / "directions" / f"{shared}.json"
            if p.is_file():
                return p
        raise ModelError(f"model {model_id} names the directions set {shared!r}, which is not in "
                         f"{', '.join(str(Path(d) / 'directions') for d in manifest_dirs())}")
    return None


_sets: Dict[tuple, Dict[str, Optional[str]]] = {}


def _shared_name(model_id: str) -> Optional[str]:
    """The ``named_directions`` set a model's manifest entry names (None: none, or no entry).
    The manifest is parsed again only when one of its files changes (a live preview asks
    for every frame)."""
    from ...models.manifest import load_manifest, manifest_dirs
    dirs = manifest_dirs()
    stamp = tuple((str(p), p.stat().st_mtime_ns) for d in dirs for p in sorted(Path(d).glob("*.json")))
    sets = _sets.get(stamp)
    if sets is None:
        sets = {mid: e.extra.get("named_directions") for mid, e in load_manifest(dirs).items()}
        _sets.clear()
        _sets[stamp] = sets
    name = sets.get(model_id)
    if name is None:
        return None
    if not isinstance(name, str) or not _MODEL_ID.match(name) or ".." in name:
        raise ModelError(f"model {model_id}: 'named_directions' must be a set name (letters, digits, '.', '_', '-')")
    return name


def load_named(model_id: Optional[str]) -> dict:
    """The named-directions manifest of a model (``{}`` when it has none)."""
    from ...models.manifest import DEFAULT_MODEL
    path = directions_manifest_path(model_id or DEFAULT_MODEL)
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ModelError(f"the directions manifest of model {model_id!r} is not valid JSON: {e}") from None
    names = [d.get("name") for d in data.get("directions", [])]
    if len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
        raise ModelError(f"directions manifest {path}: every direction needs a unique name")
    return data


def _raw_entries(count: int = 5, note: str = "") -> List[dict]:
    out = []
    for method, what in (("sefa", "SeFa component"), ("ganspace", "GANSpace component")):
        for k in range(count):
            out.append({"name": f"{method}{k}", "method": method, "component": k, "sign": 1,
                        "description": f"{what} {k} (unnamed{'; ' + note if note else ''})",
                        "min": DEFAULT_RANGE[0], "max": DEFAULT_RANGE[1], "default": 0.0})
    return out


#: the composites a direction may declare (``"composite"`` in its manifest entry): ``"warp"`` marks a
#: *structural* direction, one whose effect is motion (a head turn), which a render in the default
#: ``detail`` composite would smear; its render moves the photo's own pixels instead
STRUCTURAL_COMPOSITES = ("warp",)


def direction_composite(model_id: Optional[str], name: str) -> Optional[str]:
    """The composite a named direction declares (``"warp"``: structural), None for an appearance one
    (or a raw component).  Read from the directions manifest, where it is declared once."""
    for d in load_named(model_id).get("directions", []):
        if d.get("name") == name:
            c = d.get("composite")
            if c is not None and c not in STRUCTURAL_COMPOSITES:
                raise ModelError(f"direction {name!r}: composite must be one of {', '.join(STRUCTURAL_COMPOSITES)}")
            return c
    return None


def list_directions(model_id: Optional[str] = None) -> List[dict]:
    """``[{name, description, min, max, default, method, structural}]`` for a model (no generator needed).

    The named directions of its manifest; a model without one lists its first raw SeFa
    and GANSpace components.  This is what the app shows as sliders.
    """
    data = load_named(model_id)
    entries = data.get("directions") or _raw_entries(note=str(data.get("note", "")))
    return [{"name": d["name"], "description": d.get("description", ""),
             "min": float(d.get("min", DEFAULT_RANGE[0])), "max": float(d.get("max", DEFAULT_RANGE[1])),
             "default": float(d.get("default", 0.0)), "method": d.get("method", ""),
             "structural": d.get("composite") in STRUCTURAL_COMPOSITES}
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
store.on_clear(_resolved.clear)


def get_direction(gen: LayeredGenerator, name: str, model_id: Optional[str] = None) -> Direction:
    """The named (or raw ``sefaK`` / ``ganspaceK``) direction of ``gen``, computed or cached.

    Resolved directions are remembered per weights, device, name and manifest version, so a
    live preview pays for the lookup once.
    """
    model_id = model_id or store.model_key(gen)
    path = directions_manifest_path(model_id)
    stamp = path.stat().st_mtime_ns if path is not None else None
    key = (store.weights_fingerprint(gen), str(gen.device), model_id, name, str(path), stamp, str(store.cache_root()))
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
    if method in PUBLISHED_METHODS:
        return resolve_published(gen, e, directions_manifest_path(model_id), data, common)
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
    if method == "boundary":
        return Direction(space="z", vector=(sign * _boundary_vector(e, gen, name)).reshape(lat), **common)
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


def _boundary_vector(e: dict, gen: LayeredGenerator, name: str):
    """A ``boundary`` direction's unit latent normal, stored in its manifest entry (``"vector"``: one
    number per latent dimension) because it was fitted on attributes the landmark detector measured
    on the generator's samples, and the edits never call that detector. ``"derived"`` records the
    recipe (``derive_portrait``, in the bench's directions section, fits it again)."""
    import torch
    v = e.get("vector")
    n = 1
    for k in gen.latent_shape:
        n *= int(k)
    if not isinstance(v, list) or len(v) != n or not all(isinstance(x, (int, float)) for x in v):
        raise ModelError(f"boundary direction {name!r} needs a 'vector' of {n} numbers (the latent's size)")
    t = torch.tensor(v, dtype=torch.float32)
    if not bool(torch.isfinite(t).all()) or float(t.norm()) < 1e-6:
        raise ModelError(f"boundary direction {name!r}: its vector must be finite and non-zero")
    return (t / t.norm()).to(gen.device)


def _component(e: dict, count: int, name: str) -> int:
    k = int(e.get("component", 0))
    if not 0 <= k < count:
        raise InputError(f"direction {name!r}: component {k} does not exist (there are {count})")
    return k




def prepare(gen: LayeredGenerator, model_id: Optional[str] = None) -> Dict[str, float]:
    """Compute (or load) every named direction of a model; seconds per name."""
    import time
    out = {}
    for d in list_directions(model_id or store.model_key(gen)):
        t0 = time.perf_counter()
        get_direction(gen, d["name"], model_id)
        out[d["name"]] = round(time.perf_counter() - t0, 3)
    return out

