"""Published directions shipped as data: InterFaceGAN boundaries and GANSpace PCA of ``w``
for the official StyleGAN2 weights (from encoder4editing, MIT; see
``docs/method/published-directions.md``).

A named-directions file (``weights_manifest/directions/<name>.json``) lists its data files
with their sha256 and provenance under ``files``; each file is a safetensors file beside
it, converted once from the published ``.pt`` by :func:`convert_published`
(``priorpaint directions --convert SRC.pt DST.safetensors``: ``torch.load(weights_only=True)``,
no code is unpickled).  A file is read only when its sha256 matches its entry.

Two methods (each a latent direction of the generator's ``w+`` / ``w`` input, so ``G_H``
and ``G_F`` both read the edited styles; see :mod:`.kind`):

* ``interfacegan`` — the file's ``direction``: ``(1, D)`` is a ``w`` boundary added to every
  style, ``(1, L, D)`` a ``w+`` one; strength ``α`` moves ``w + α·d`` (encoder4editing's
  ``factor``);
* ``ganspace_w`` — the file's ``mean`` (1, D), ``comp`` (K, 1, D), ``std`` (K,); an entry's
  ``component``, ``layers`` ``[first, last)`` and published ``value`` make a
  :class:`~.base.Setpoint` (the edit sets the coordinate; ``α = 1`` is the published edit).
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch

from ...errors import InputError, ModelError, WeightsIntegrityError
from ...models.layered import LayeredGenerator
from ...models.weights import sha256_file
from .base import Direction, Setpoint

#: the methods whose vectors come from shipped files (not computed)
PUBLISHED_METHODS = ("interfacegan", "ganspace_w")
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.safetensors$")
_loaded: Dict[Tuple[str, str], Dict[str, torch.Tensor]] = {}
_lock = threading.Lock()


# -- conversion (done once; the results are committed under weights_manifest/directions/) --
def convert_published(src: Path, dst: Path) -> dict:
    """Write the tensors of a published ``.pt`` file (a tensor, or a dict of tensors) to
    ``dst`` as safetensors: a lone tensor becomes ``direction``.  Returns the sha256 of both
    files and the tensors' shapes.  Reads with ``torch.load(weights_only=True)`` on the CPU."""
    from safetensors.torch import save_file

    src, dst = Path(src), Path(dst)
    if dst.suffix != ".safetensors":
        raise InputError(f"{dst.name}: the converted file must end in .safetensors")
    try:
        obj = torch.load(src, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"{src}: no such file") from None
    except Exception as e:  # a pickle that is not plain tensors, or not a torch file at all
        raise ModelError(f"{src.name}: not a file of plain tensors ({type(e).__name__}: {str(e)[:120]})") from None
    if isinstance(obj, torch.Tensor):
        obj = {"direction": obj}
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                       for k, v in obj.items()):
        raise ModelError(f"{src.name}: expected a tensor or a dict of tensors, got {type(obj).__name__}")
    source_sha = sha256_file(src)
    tensors = {k: v.detach().to(torch.float32).contiguous().clone() for k, v in obj.items()}
    dst.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(dst), metadata={"source_sha256": source_sha})
    return {"file": dst.name, "sha256": sha256_file(dst), "source_sha256": source_sha,
            "tensors": {k: list(v.shape) for k, v in sorted(tensors.items())}}


# -- reading -------------------------------------------------------------------------------
def data_file(directions_path: Path, name: str, data: dict) -> Path:
    """The verified path of a data file named by a directions file (beside it)."""
    files = data.get("files") or {}
    if not isinstance(name, str) or not _FILE.match(name) or ".." in name:
        raise ModelError(f"directions manifest {Path(directions_path).name}: bad data file name {str(name)[:64]!r}")
    meta = files.get(name)
    if not isinstance(meta, dict) or not re.fullmatch(r"[0-9a-f]{64}", str(meta.get("sha256", ""))):
        raise ModelError(f"directions manifest {Path(directions_path).name}: file {name} has no sha256 entry")
    path = Path(directions_path).parent / name
    if not path.is_file():
        raise ModelError(f"direction data file {name} is missing (expected beside {Path(directions_path).name})")
    digest = sha256_file(path)
    if digest != meta["sha256"]:
        raise WeightsIntegrityError(f"direction data file {name}: sha256 {digest[:12]}... does not match its "
                                    f"entry {meta['sha256'][:12]}... in {Path(directions_path).name}; refused")
    return path


def load_tensors(directions_path: Path, name: str, data: dict) -> Dict[str, torch.Tensor]:
    """The tensors of a verified data file (read once per file content)."""
    from safetensors.torch import load_file

    path = data_file(directions_path, name, data)
    key = (str(path.resolve()), data["files"][name]["sha256"])
    with _lock:
        hit = _loaded.get(key)
    if hit is None:
        hit = load_file(str(path), device="cpu")
        with _lock:
            _loaded[key] = hit
    return hit


def _styles(gen: LayeredGenerator) -> Tuple[Optional[int], int]:
    """(number of styles L, or None for a single ``w``; style dimension D) of the latent."""
    shape = tuple(gen.latent_shape)
    if len(shape) == 2:
        return int(shape[0]), int(shape[1])
    if len(shape) == 1:
        return None, int(shape[0])
    raise InputError(f"published directions need a w or w+ latent; model {gen.model_id or '?'} has "
                     f"latent shape {shape}")


def _need_dim(name: str, d: int, dim: int, model: str) -> None:
    if d != dim:
        raise InputError(f"direction {name!r} is for {d}-d styles; model {model} has {dim}-d styles")


def resolve_published(gen: LayeredGenerator, e: dict, directions_path: Path, data: dict, common: dict) -> Direction:
    """The :class:`Direction` of a named entry with a published method."""
    name, method = e["name"], e.get("method")
    model = gen.model_id or "?"
    count, dim = _styles(gen)
    tensors = load_tensors(directions_path, e.get("file", ""), data)
    device = gen.device
    lat = (1,) + tuple(gen.latent_shape)
    if method == "interfacegan":
        d = tensors.get("direction")
        if d is None:
            raise ModelError(f"direction {name!r}: file {e.get('file')} has no 'direction' tensor")
        if d.dim() == 3 and d.shape[0] == 1:          # w+: one vector per style
            _need_dim(name, int(d.shape[2]), dim, model)
            if count != int(d.shape[1]):
                have = f"{count} styles" if count is not None else "a single w latent"
                raise InputError(f"direction {name!r} is a w+ direction for {int(d.shape[1])} styles; "
                                 f"model {model} has {have}")
            vector = d.reshape(lat)
        elif d.dim() in (1, 2) and d.numel() == d.shape[-1]:   # w: added to every style
            _need_dim(name, int(d.shape[-1]), dim, model)
            vector = d.reshape(-1).expand(lat).clone()
        else:
            raise ModelError(f"direction {name!r}: file {e.get('file')} holds shape {tuple(d.shape)}, "
                             "expected (1, D) or (1, L, D)")
        return Direction(space="z", vector=vector.to(device), info={"file": e.get("file")}, **common)
    if method == "ganspace_w":
        for key in ("mean", "comp", "std"):
            if key not in tensors:
                raise ModelError(f"direction {name!r}: file {e.get('file')} has no {key!r} tensor")
        comp, std, mean = tensors["comp"], tensors["std"].reshape(-1), tensors["mean"].reshape(-1)
        comp = comp.reshape(comp.shape[0], -1)
        _need_dim(name, int(comp.shape[1]), dim, model)
        k = int(e.get("component", -1))
        if not 0 <= k < comp.shape[0]:
            raise ModelError(f"direction {name!r}: component {k} does not exist (the file has {comp.shape[0]})")
        layers = e.get("layers")
        if not (isinstance(layers, list) and len(layers) == 2 and all(isinstance(x, int) for x in layers)):
            raise ModelError(f"direction {name!r}: 'layers' must be [first, last) style indices")
        a, b = layers
        if count is None:
            raise InputError(f"direction {name!r} edits styles {a}..{b - 1}; model {model} has a single w "
                             "latent, not w+ (one style per layer)")
        if not 0 <= a < b <= count:
            raise InputError(f"direction {name!r} edits styles {a}..{b - 1}, beyond model {model}'s "
                             f"{count} styles (0..{count - 1})")
        if not isinstance(e.get("value"), (int, float)):
            raise ModelError(f"direction {name!r}: a ganspace_w entry needs the published 'value'")
        neg = e.get("value_negative")
        sp = Setpoint(mean=mean.to(device), unit=comp[k].to(device), std=float(std[k]), value=float(e["value"]),
                      layers=(a, b), value_negative=None if neg is None else float(neg))
        vector = torch.zeros(lat)
        vector[0, a:b] = comp[k]
        return Direction(space="z", vector=vector.to(device), setpoint=sp,
                         info={"file": e.get("file"), "component": k, "layers": [a, b], "value": sp.value}, **common)
    raise ModelError(f"direction {name!r} has unknown published method {method!r}")
