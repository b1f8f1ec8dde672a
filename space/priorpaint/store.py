"""One store for derived artefacts: directions, parts, segmentation heads, unit rankings,
editing vectors, encoders.

Everything priorpaint derives from a generator lives under one cache root,
``$PRIORPAINT_CACHE`` or ``~/.cache/priorpaint`` (``~`` expanded; read on every call, so
tests can redirect it).  A derived file's name carries the model id and the generator's
weight fingerprint, so nothing cached outlives the weights it was computed from.

Verbs:

* :func:`cache_root` / :func:`folder` — where things go;
* :func:`model_key` / :func:`weights_fingerprint` — who they belong to;
* :func:`write_atomic` — write a file under a temporary name, then rename;
* :func:`load_or_compute` — safetensors from memory, from disk, or computed and saved;
* :func:`clear` — forget every in-process copy (the files stay);
* :func:`client_namespace` — a client's folder name: an HMAC of its key under this cache's
  own secret, so no client-chosen value alone names (or finds) a folder;
* :func:`evict_lru` — keep a set of files under a byte bound, least recently used first.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import threading
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import torch
from torch import nn

from .errors import ModelError

log = logging.getLogger(__name__)

#: serialises the (re)computation of derived data between the app's worker threads: one
#: thread computes and saves, the others then read what it saved
DERIVE_LOCK = threading.RLock()

_fingerprints: Dict[tuple, str] = {}
_memo: Dict[Tuple[str, str], Dict[str, torch.Tensor]] = {}
_memo_lock = threading.Lock()
_clear_hooks = []


def cache_root() -> Path:
    """``$PRIORPAINT_CACHE`` or ``~/.cache/priorpaint``."""
    env = os.environ.get("PRIORPAINT_CACHE", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "priorpaint"


def folder(*parts: str) -> Path:
    """A folder under the cache root (not created)."""
    return cache_root().joinpath(*parts)


def model_key(gen: nn.Module) -> str:
    """The generator's model id, safe as a file-name part.  Every loaded generator has one;
    a generator built by hand must be given one (``gen.model_id = "..."``)."""
    model_id = getattr(gen, "model_id", None)
    if not model_id:
        raise ModelError(f"this {type(gen).__name__} has no model_id: give the generator a model id "
                         "before deriving data for it")
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(model_id))


def weights_fingerprint(gen: nn.Module) -> str:
    """sha256 (16 hex digits) of the generator's parameters and buffers.

    Memoised per tensor identity and version: a weight changed in place gets a new
    fingerprint, so caches keyed by it are invalidated."""
    tensors = list(gen.state_dict().items())
    key = tuple((k, v.data_ptr(), v._version, tuple(v.shape), str(v.dtype)) for k, v in tensors)
    fp = _fingerprints.get(key)
    if fp is None:
        h = hashlib.sha256()
        for k, v in sorted(tensors, key=lambda kv: kv[0]):
            h.update(k.encode())
            h.update(str(tuple(v.shape)).encode())
            h.update(v.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        fp = _fingerprints[key] = h.hexdigest()[:16]
    return fp


def temp_beside(path: Path) -> Path:
    """A temporary name next to ``path``, unique per process and thread."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def write_atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """``write(tmp)`` to a temporary file beside ``path``, then rename it over ``path``:
    readers see the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def save_tensors(path: Path, tensors: Dict[str, torch.Tensor], metadata: Optional[Dict[str, str]] = None) -> Path:
    """Write ``tensors`` as safetensors, atomically."""
    from safetensors.torch import save_file
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    return write_atomic(path, lambda tmp: save_file(flat, str(tmp), metadata=metadata))


def load_or_compute(path: Path, compute: Callable[[], Dict[str, torch.Tensor]],
                    metadata: Optional[Dict[str, str]] = None, device=None,
                    memo: bool = True) -> Dict[str, torch.Tensor]:
    """The tensors at ``path``: from memory, from the safetensors file, or ``compute()``-d
    and saved.  An unreadable file is recomputed, never trusted; a cache folder that cannot
    be written still gives the computed tensors (with a warning)."""
    from safetensors.torch import load_file

    path = Path(path)
    dev = str(device) if device is not None else "cpu"
    key = (str(path), dev)
    if memo:
        with _memo_lock:
            hit = _memo.get(key)
        if hit is not None:
            return hit
    tensors = None
    if path.is_file():
        try:
            tensors = load_file(str(path), device="cpu")
        except Exception as e:  # a truncated or foreign file
            log.warning("ignoring unreadable cache file %s (%s); recomputing", path, e)
    if tensors is None:
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in compute().items()}
        try:
            save_tensors(path, tensors, metadata)
        except OSError as e:
            log.warning("cannot write the cache file %s: %s", path, e)
    on_dev = {k: v.to(dev) for k, v in tensors.items()}
    if memo:
        with _memo_lock:
            _memo[key] = on_dev
    return on_dev


def on_clear(fn: Callable[[], None]) -> Callable[[], None]:
    """Register an in-process cache to be emptied by :func:`clear`."""
    _clear_hooks.append(fn)
    return fn


def clear() -> None:
    """Forget every in-process copy of derived data (the files stay)."""
    with _memo_lock:
        _memo.clear()
    _fingerprints.clear()
    for fn in list(_clear_hooks):
        fn()


# -- client namespaces and least-recently-used bounds -----------------------------------------

SECRET_NAME = ".namespace-secret"


def namespace_secret() -> bytes:
    """32 random bytes of this cache root (created once, mode 0600): the key of
    :func:`client_namespace`, so namespaces survive a restart but cannot be computed outside."""
    path = cache_root() / SECRET_NAME
    try:
        data = path.read_bytes()
        if len(data) >= 32:
            return data[:32]
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_bytes()[:32]
    with os.fdopen(fd, "wb") as f:
        f.write(os.urandom(32))
    return path.read_bytes()[:32]


def client_namespace(client: str) -> str:
    """A client's namespace (16 hex digits): its address's group (:func:`namespace_group`, 6 hex
    digits of an HMAC of the key's address part, before ``|``) then 10 of an HMAC of the whole
    key, both under :func:`namespace_secret`: the address's vectors can be bounded together
    without the address being readable from the folder's name."""
    def mac(text: str) -> str:
        return hmac.new(namespace_secret(), text.encode(), hashlib.sha256).hexdigest()
    return mac("priorpaint-address|" + client.split("|", 1)[0])[:6] + mac("priorpaint-namespace|" + client)[:10]


def namespace_group(namespace: str) -> str:
    """The address group of a namespace made by :func:`client_namespace`."""
    return namespace[:6]


def evict_lru(items: Iterable[Tuple[float, int, str, object]], max_bytes: int, max_count: Optional[int],
              remove: Callable[[object], None], keep: Optional[object] = None) -> List[object]:
    """Remove the least recently used of ``items`` (last use, bytes, owner, key) until their bytes
    fit ``max_bytes`` and their number ``max_count``; the owner holding the most bytes loses
    first (a client that floods a shared bound evicts itself), ``keep`` never goes."""
    items = sorted(items, key=lambda it: it[0])
    total = sum(it[1] for it in items)
    removed = []
    while items and (total > max_bytes or (max_count is not None and len(items) > max_count)):
        per_owner: Dict[str, int] = {}
        for it in items:
            if it[3] != keep:
                per_owner[it[2]] = per_owner.get(it[2], 0) + it[1]
        if not per_owner:
            break
        owner = max(per_owner, key=lambda o: per_owner[o])
        victim = next(it for it in items if it[2] == owner and it[3] != keep)
        remove(victim[3])
        items.remove(victim)
        total -= victim[1]
        removed.append(victim[3])
    return removed
