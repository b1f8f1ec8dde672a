"""Editing vectors (EditGAN): saved latent deltas, applied to other images with a strength.

A segmentation edit (:mod:`priorpaint.edits.segedit`) ends with ``Δ = h_edited − h`` at the
split layer.  Saved under a name, it lives in
``${PRIORPAINT_CACHE:-~/.cache/priorpaint}/vectors/<model>/<name>.safetensors`` (the app's
clients each have their own folder ``vectors/<model>/clients/<namespace>/``; tensors
``delta_h`` and, when the latent moved too, ``delta_z``) with ``<name>.json`` beside it
(metadata: model, split, shape, norm, what the edit asked for and achieved, when, and ``effect``: what
it did on the photo it was saved on, which a render of it on another photo is judged against,
:mod:`priorpaint.measures.vectors`).

``vector:NAME=STRENGTH`` adds ``STRENGTH·Δ`` to the current ``h`` — no optimisation, so a
preview costs one pass of ``G_F`` (milliseconds).  The edit mask is where ``Δ`` can
change the image: the split cells where ``Δ`` is non-negligible, grown by the
generator's footprint — computed once per vector, not per preview.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from .. import store
from ..store import model_key
from ..compositing.regions import model_to_region
from ..models.footprint import footprint_radius
from .registry import EditContext, EditState, PreviewCost, Strength, register_edit

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


_NAMESPACE = re.compile(r"^[0-9a-f]{16}$")
#: vectors one namespace (one client of the app) may keep, over all models
MAX_PER_NAMESPACE = 64
#: the bounds on the app clients' saved vectors (``priorpaint serve`` sets them from
#: ``--max-client-vectors-mb`` / ``--max-vectors-mb``): over one, the least recently used
#: go — a client's own over its quota, its address's largest holder's over the address's
#: (``--max-address-vectors-mb``), the largest holder's over the global one
QUOTA = {"client_bytes": 16 * 1024 * 1024, "address_bytes": 64 * 1024 * 1024, "total_bytes": 512 * 1024 * 1024}


def _client_vectors() -> List[tuple]:
    """(last use, bytes, namespace, safetensors path) of every app client's saved vector."""
    out = []
    for p in store.folder("vectors").glob("*/clients/*/*.safetensors"):
        meta = p.with_suffix(".json")
        try:
            size = p.stat().st_size
            used = meta.stat().st_mtime if meta.exists() else p.stat().st_mtime
            size += meta.stat().st_size if meta.exists() else 0
        except OSError:
            continue
        out.append((used, size, p.parent.name, p))
    return out


def _remove_vector(path: Path) -> None:
    for q in (path, path.with_suffix(".json")):
        try:
            q.unlink()
        except OSError:
            pass
    _loaded.pop((str(path.parent), path.stem), None)


def enforce_quota(namespace: str, keep: Optional[Path] = None) -> List[Path]:
    """Evict least recently used vectors: ``namespace``'s own past its quota, then its
    address's largest holder's past the address's quota (:func:`store.namespace_group`), then the
    largest holder's past the global quota; ``keep`` (the one just saved) stays."""
    items = _client_vectors()
    removed = store.evict_lru([it for it in items if it[2] == namespace], QUOTA["client_bytes"],
                              MAX_PER_NAMESPACE, _remove_vector, keep)
    group = store.namespace_group(namespace)
    removed += store.evict_lru([it for it in items if it[3] not in removed and store.namespace_group(it[2]) == group],
                               QUOTA["address_bytes"], None, _remove_vector, keep)
    rest = [it for it in items if it[3] not in removed]
    removed += store.evict_lru(rest, QUOTA["total_bytes"], None, _remove_vector, keep)
    return removed


def vectors_dir(model: str, namespace: Optional[str] = None) -> Path:
    """The folder of a model's vectors; ``namespace`` (16 hex digits, one per app client)
    selects that client's own folder — the CLI's vectors (no namespace) are not shown to,
    nor overwritten by, clients of the app."""
    if namespace is None:
        return store.folder("vectors", model)
    if not _NAMESPACE.match(str(namespace)):
        raise InputError("vector namespace must be 16 hex digits")
    return store.folder("vectors", model, "clients", namespace)


def check_name(name: str) -> str:
    name = str(name or "").strip()
    if not _NAME.match(name) or name.endswith(".") or ".." in name:
        raise InputError(f"vector name {name!r} must be 1-64 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
    return name


def save_vector(model: str, name: str, delta_h: torch.Tensor, meta: dict,
                delta_z: Optional[torch.Tensor] = None, namespace: Optional[str] = None) -> Path:
    """Write ``<name>.safetensors`` + ``<name>.json`` (replacing a vector of that name)."""
    name = check_name(name)
    folder = vectors_dir(model, namespace)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {"delta_h": delta_h.detach().float().cpu().contiguous()}
    if delta_z is not None and float(delta_z.abs().max()) > 0:
        tensors["delta_z"] = delta_z.detach().float().cpu().contiguous()
    info = dict(meta)
    info.update({"name": name, "model": model, "shape": list(tensors["delta_h"].shape),
                 "norm": round(float(tensors["delta_h"].norm()), 4),
                 "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    path = store.save_tensors(folder / f"{name}.safetensors", tensors, metadata={"priorpaint": json.dumps(info)})
    (folder / f"{name}.json").write_text(json.dumps(info, indent=1, default=float) + "\n")
    _loaded.pop((str(folder), name), None)
    if namespace is not None:
        enforce_quota(namespace, keep=path)
    return path


def list_vectors(model: str, namespace: Optional[str] = None) -> List[dict]:
    """Metadata of the saved vectors of ``model`` (in ``namespace``), by name (without the saved
    ``effect`` grid: it is for the report's measure, not for a listing)."""
    folder = vectors_dir(model, namespace)
    out = []
    if not folder.is_dir():
        return out
    for p in sorted(folder.glob("*.safetensors")):
        meta_path = p.with_suffix(".json")
        try:
            meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        except (OSError, json.JSONDecodeError):
            meta = {}
        meta.setdefault("name", p.stem)
        meta.pop("effect", None)
        out.append(meta)
    return out


_loaded: Dict[Tuple[str, str], Tuple[float, dict, dict]] = {}
store.on_clear(_loaded.clear)


def load_vector(model: str, name: str, namespace: Optional[str] = None) -> Tuple[Dict[str, torch.Tensor], dict]:
    """(tensors, metadata) of a saved vector; an unknown name lists the known ones."""
    from safetensors import safe_open
    name = str(name)
    if not _NAME.match(name) or name.endswith(".") or ".." in name:
        raise InputError(f"vector name {name[:64]!r} must be 1-64 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
    folder = vectors_dir(model, namespace)
    path = folder / f"{name}.safetensors"
    if not path.exists():
        known = [v["name"] for v in list_vectors(model, namespace)]
        raise InputError(f"unknown vector {name!r} for model {model}; saved vectors: "
                         f"{', '.join(known) if known else 'none (save one with a segment edit and --save-vector NAME)'}")
    if namespace is not None:  # the metadata file's time is the vector's last use (LRU)
        try:
            path.with_suffix(".json").touch()
        except OSError:
            pass
    mtime = path.stat().st_mtime_ns
    hit = _loaded.get((str(folder), name))
    if hit and hit[0] == mtime:
        return hit[1], hit[2]
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = json.loads((f.metadata() or {}).get("priorpaint", "{}"))
    _loaded[(str(folder), name)] = (mtime, tensors, meta)
    return tensors, meta


def delete_vector(model: str, name: str, namespace: Optional[str] = None) -> None:
    load_vector(model, name, namespace)
    folder = vectors_dir(model, namespace)
    for suffix in (".safetensors", ".json"):
        p = folder / f"{name}{suffix}"
        if p.exists():
            p.unlink()
    _loaded.pop((str(folder), name), None)


def reach_mask(delta_h: torch.Tensor, resolution: int, radius: int, rel: float = 0.02) -> torch.Tensor:
    """(R, R) bool: the output pixels a change ``delta_h`` (1, C, s, s) can reach."""
    mag = delta_h.detach().float().norm(dim=1)[0]                      # (s, s)
    cells = (mag > rel * mag.max().clamp_min(1e-12)).float()
    if not cells.any():
        return torch.zeros(resolution, resolution, dtype=torch.bool)
    up = F.interpolate(cells[None, None], size=(resolution, resolution), mode="nearest")
    if radius > 0:
        up = F.max_pool2d(up, 2 * radius + 1, stride=1, padding=radius)
    return up[0, 0] > 0


@torch.no_grad()
def saved_effect(gen, split: str, z: torch.Tensor, h: torch.Tensor, h_edited: torch.Tensor,
                 mask: Optional[np.ndarray] = None) -> List:
    """What a vector does on the photo it is saved on, kept in its metadata (``effect``) so a render
    of it on another photo can be judged against it (:mod:`priorpaint.measures.vectors`): the Lab
    change of the generator's render on the measure's grid (:func:`priorpaint.metrics.lab_change_grid`), inside ``mask`` (the edit's mask on the
    square, any size; what a render could change), as nested lists rounded to 0.01."""
    import cv2

    from ..compositing.blend import to_uint8
    from ..metrics import lab_change_grid
    before = to_uint8(gen.forward_from(split, h, z=z))
    after = to_uint8(gen.forward_from(split, h_edited, z=z))
    if mask is not None:
        mask = cv2.resize(np.asarray(mask, np.uint8), before.shape[:2][::-1], interpolation=cv2.INTER_AREA)
    return np.round(lab_change_grid(after, before, mask), 2).tolist()


def parse_vector(args: str) -> dict:
    """``NAME[=STRENGTH]`` (strength 1 by default)."""
    name, eq, val = args.partition("=")
    spec = {"name": name.strip(), "strength": 1.0}
    if eq:
        try:
            spec["strength"] = float(val)
        except ValueError:
            raise InputError(f"vector strength must be a number, got {val!r} in vector:{args}") from None
    if not spec["name"]:
        raise InputError("vector spec must be vector:NAME=STRENGTH")
    return spec


_reach: Dict[tuple, np.ndarray] = {}


def _not_a_drag(name: str, meta: dict) -> None:
    """A saved drag moves the photo's pixels along its pairs: it replays as a drag, not as a latent delta."""
    if meta.get("kind") == "drag":
        raise InputError(f"vector {name!r} is a saved drag: replay it with drag:{name}[=STRENGTH]")


def check_vector(gen, spec: dict) -> None:
    """Refuse an unknown vector name (listing the saved ones) before any work."""
    name = str(spec.get("name", ""))
    _not_a_drag(name, load_vector(model_key(gen), name)[1])


@register_edit("vector", parse_vector, check=check_vector, preview=PreviewCost.LATENT,
               survives_reprojection=True, strength=Strength("strength", -3.0, 3.0),
               help="vector:NAME=STRENGTH — add a saved editing vector (see `priorpaint concepts`) "
                    "times STRENGTH to the latent")
def apply_vector(ctx: EditContext, state: EditState, spec: dict) -> EditState:
    gen = ctx.gen
    model = model_key(gen)
    name = str(spec.get("name", ""))
    try:
        strength = float(spec.get("strength", 1.0))
    except (TypeError, ValueError):
        raise InputError(f"vector strength must be a number, got {spec.get('strength')!r}") from None
    if not math.isfinite(strength):
        raise InputError(f"vector strength must be finite, got {strength}")
    namespace = ctx.vector_namespace
    tensors, meta = load_vector(model, name, namespace)
    _not_a_drag(name, meta)
    dh = tensors["delta_h"]
    split = ctx.split
    if meta.get("split", split) != split or tuple(dh.shape) != tuple(state.h.shape):
        raise InputError(f"vector {name!r} was made at layer {meta.get('split')} with shape {list(dh.shape)}; "
                         f"this session's latent is {list(state.h.shape)} at {split}")
    new = state.evolve()
    if strength == 0.0:
        new.edit_mask = ctx.merged_mask(state, np.zeros_like(ctx.crop.region_mask))
        return new
    if isinstance(meta.get("effect"), list):   # the report judges whether it carried (measures/vectors.py)
        spec["saved_effect"] = meta["effect"]
    new.h = state.h + strength * dh.to(state.h.device, state.h.dtype)
    if "delta_z" in tensors:
        new.z = state.z + strength * tensors["delta_z"].to(state.z.device, state.z.dtype)
    side = ctx.crop.square[2]
    key = (model, namespace, name, side, footprint_radius(gen, split), meta.get("created"), meta.get("norm"))
    region = _reach.get(key)
    if region is None or region.shape[0] != side:
        reach = reach_mask(dh, gen.resolution, footprint_radius(gen, split))
        region = model_to_region(reach.float(), side)
        _reach[key] = region
    new.edit_mask = ctx.merged_mask(state, region)
    return new
