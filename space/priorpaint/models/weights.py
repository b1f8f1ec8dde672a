"""Finding, verifying and reading weight files named by a manifest entry.

Sources are tried in order.  A package source is a file inside an installed
distribution; a hub source goes through ``huggingface_hub.hf_hub_download`` (cache only,
unless the caller allows a download because the user asked for that hub model); a file
source is a path.  Every file with a ``sha256`` in the manifest is verified before it is
read (its size first, when the manifest gives one); a mismatch is refused.  Tensors are read
with safetensors, with ``torch.load(weights_only=True)`` or, for NVIDIA network pickles
(format ``nvidia-pickle``), with the restricted unpickler of :mod:`.nvidia_pickle`: no
pickled code ever runs.  A checkpoint's ``latent_avg`` beside its ``state_dict_key`` entry
is kept (as the ``latent_avg`` tensor of the state dict).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch

from ..errors import ModelError, WeightsIntegrityError
from .manifest import ModelEntry, Source

log = logging.getLogger(__name__)
_verified: Dict[Tuple[str, int, int], str] = {}


def sha256_file(path: Path) -> str:
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _verified:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _verified[key] = h.hexdigest()
    return _verified[key]


def verify(path: Path, expected: Optional[str], what: str, size: Optional[int] = None) -> None:
    """Refuse ``path`` unless its size (when given; checked first, so that a truncated
    or wrong 130 MB file is refused without hashing it) and sha256 match the manifest."""
    if size is not None:
        actual_size = Path(path).stat().st_size
        if actual_size != size:
            raise WeightsIntegrityError(
                f"size mismatch for {what}: expected {size} bytes, got {actual_size}; refusing to load {path}")
    if not expected:
        log.warning("%s has no sha256 in the manifest; not verified", what)
        return
    actual = sha256_file(path)
    if actual != expected.lower():
        raise WeightsIntegrityError(
            f"sha256 mismatch for {what}: expected {expected}, got {actual}; refusing to load {path}")


def _package_file(src: Source) -> Optional[Path]:
    try:
        dist = importlib.metadata.distribution(src.package)
    except importlib.metadata.PackageNotFoundError:
        return None
    if src.version and dist.version != src.version:
        log.warning("package %s is version %s, the manifest names %s", src.package, dist.version, src.version)
    path = Path(dist.locate_file(src.path))
    return path if path.is_file() else None


def _hub_file(src: Source, allow_download: bool, entry: Optional[ModelEntry] = None) -> Optional[Path]:
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        return None
    kwargs = dict(repo_id=src.repo_id, filename=src.filename, revision=src.revision)
    try:
        return Path(hf_hub_download(**kwargs, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        pass
    if not allow_download:
        return None
    from .hub import hub_unreachable, offline_message
    if entry is not None and hub_unreachable():  # one line at once, not after ~25 s of retries
        raise ModelError(offline_message(entry, src))
    try:
        return Path(hf_hub_download(**kwargs))
    except LocalEntryNotFoundError:  # offline, or the Hub unreachable
        if entry is None:
            raise ModelError(f"cannot download {src.describe()}: offline or the Hub cannot be reached") from None
        raise ModelError(offline_message(entry, src)) from None
    except Exception as e:  # network, 404, auth: one clear line
        raise ModelError(f"cannot download {src.describe()}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None


def _file(src: Source, entry: ModelEntry) -> Optional[Path]:
    path = Path(src.path)
    if not path.is_absolute() and entry.manifest_path is not None:
        path = entry.manifest_path.parent / path
    return path if path.is_file() else None


def locate(src: Source, entry: ModelEntry, allow_download: bool = False) -> Optional[Path]:
    """The local path of a source's file, or None when it is not here (and not fetched)."""
    if src.type == "package":
        return _package_file(src)
    if src.type == "hub":
        return _hub_file(src, allow_download, entry)
    return _file(src, entry)


def weights_status(entry: ModelEntry) -> Tuple[bool, Optional[Source], Optional[Path]]:
    """(present, source, path) of the first source whose file is here, without downloading."""
    for src in entry.sources:
        path = locate(src, entry, allow_download=False)
        if path is not None:
            return True, src, path
    return False, None, None


class TrainingArgs:
    """What an ``argparse.Namespace`` in a checkpoint is rebuilt as under ``weights_only``:
    its attributes and nothing else."""


def safe_torch_load(path: Path):
    """``torch.load(path, weights_only=True)`` on the CPU, with one-line errors.

    A pickle that needs code execution is refused (nothing in it runs) with a message
    naming the global it asked for.
    """
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            # rosinality's train.py saves its argparse.Namespace as "args": exactly that global is
            # allowed, rebuilt as a plain attribute bag (nothing runs), and callers ignore it
            with torch.serialization.safe_globals([(TrainingArgs, "argparse.Namespace")]):
                return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        m = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
        what = (f"the pickle needs code execution (it references {m.group(1)})" if m else
                "the pickle uses instructions a weights-only load refuses (one that needs code execution, "
                "or not a torch checkpoint)")
        raise ModelError(f"refusing to load {path}: {what}; only tensors and plain containers are accepted "
                         "(torch.load weights_only=True)") from None
    except Exception as e:  # truncated, or not a torch file at all
        first = str(e).splitlines()[0] if str(e) else ""
        raise ModelError(f"cannot read {path} as a torch checkpoint: {type(e).__name__}: {first}") from None


def read_state_dict(path: Path, src: Source) -> Dict[str, torch.Tensor]:
    """Tensors of a verified file; torch files are read with ``weights_only=True``."""
    if src.format == "safetensors":
        try:
            from safetensors.torch import load_file
            sd = load_file(str(path), device="cpu")
        except Exception as e:
            first = str(e).splitlines()[0] if str(e) else ""
            raise ModelError(f"cannot read weights {path} as safetensors: {type(e).__name__}: {first}") from None
    elif src.format == "nvidia-pickle":
        from .nvidia_pickle import state_dict_for_manifest
        sd = state_dict_for_manifest(path)  # restricted unpickler: no embedded code runs
    else:
        sd = safe_torch_load(path)
    latent_avg = None
    if src.state_dict_key:
        if not isinstance(sd, dict) or src.state_dict_key not in sd:
            raise ModelError(f"weights {path} have no '{src.state_dict_key}' entry")
        # a rosinality checkpoint keeps its mean w beside g_ema: keep it on every path
        latent_avg = sd.get("latent_avg")
        sd = sd[src.state_dict_key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ModelError(f"weights {path} are not a state dict of tensors")
    if isinstance(latent_avg, torch.Tensor) and "latent_avg" not in sd:
        sd = dict(sd, latent_avg=latent_avg)
    return sd


def load_weights(entry: ModelEntry, allow_download: bool = False) -> Tuple[Dict[str, torch.Tensor], Source, Path]:
    """The verified state dict of the first available source.

    Raises :class:`WeightsIntegrityError` on a sha256 mismatch (never falls back to
    another source silently) and :class:`ModelError` when no source is available.
    """
    tried = []
    for src in entry.sources:
        path = locate(src, entry, allow_download=allow_download)
        if path is None:
            tried.append(src.describe())
            continue
        verify(path, src.sha256, f"{entry.id} ({src.describe()})", size=src.size)
        return read_state_dict(path, src), src, path
    hint = ""
    if any(s.type == "hub" for s in entry.sources) and not allow_download:
        hint = (f"; it is a hub model: ask for it explicitly to download it, or run "
                f"`priorpaint download {entry.id}`")
    if os.environ.get("HF_HUB_OFFLINE"):
        hint += " (HF_HUB_OFFLINE is set)"
    raise ModelError(f"weights for {entry.id} are not available (tried: {'; '.join(tried)}){hint}")
