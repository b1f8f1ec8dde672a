"""The weights manifest: one JSON file per model in ``weights_manifest/``.

A model entry::

    {
      "id": "dcgan-digiface-64",
      "kind": "generator",                # or "perceptual" (a loss network)
      "architecture": "dcgan",
      "config": {"nz": 100, "ngf": 64, "nc": 3},
      "resolution": 64, "domain": "faces", "split_layer": "b8",
      "content_box": [0, 64, 512, 384],   # optional: where the content is on the canvas (x, y, w, h;
                                          # the LSUN car model); the selection fills it, not the padding
      "alignment": {"eyes": [[385.96, 479.89], [637.81, 480.39]]},  # optional: a face model's eye
                                          # centres (model px, image-left first); crops are aligned to them
      "license": "MIT", "description": "...",
      "sources": [                        # tried in order
        {"type": "package", "package": "gan-face-generate", "version": "1.1.1",
         "path": "gan_face_generate/weights.tar", "sha256": "...",
         "format": "torch", "state_dict_key": "netG_state_dict"},
        {"type": "hub", "repo_id": "...", "filename": "...", "revision": "<40 hex>",
         "sha256": "...", "size": 132717355, "format": "safetensors"},
        {"type": "file", "path": "/abs/or/relative/to/manifest.safetensors", "sha256": "..."}
      ]
    }

Where manifests are found (:func:`manifest_dirs`, first folder wins for an id):

* ``$PRIORPAINT_MANIFEST_DIR`` (folders separated by ``os.pathsep``) *replaces* every other
  folder: a test or a one-off run sees exactly these;
* otherwise the user's folders add entries before the packaged ones: each folder of
  ``$PRIORPAINT_MANIFESTS`` and ``<cache>/manifests`` (the cache root of :mod:`priorpaint.store`)
  when it exists;
* then the packaged manifests, the data package ``priorpaint.manifests`` (the top-level
  ``weights_manifest/`` folder of the checkout, mapped into the package by ``setup.py``), found
  with :mod:`importlib.resources`: the same files for a checkout, an editable install, a wheel
  and an exported Space, never by walking up directories.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from ..errors import InputError, ModelError

SOURCE_TYPES = ("package", "hub", "file")
FORMATS = ("torch", "safetensors", "nvidia-pickle")  # nvidia-pickle: read by models/nvidia_pickle.py
_SHA = re.compile(r"^[0-9a-f]{64}$")
_REV = re.compile(r"^[0-9a-f]{40}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
DEFAULT_MODEL = "dcgan-digiface-64"


@dataclass
class Source:
    type: str
    sha256: Optional[str] = None
    #: the file's size in bytes, when known: checked before hashing (a wrong size is refused at once)
    size: Optional[int] = None
    format: str = "torch"
    state_dict_key: Optional[str] = None
    # package
    package: Optional[str] = None
    version: Optional[str] = None
    path: Optional[str] = None
    # hub
    repo_id: Optional[str] = None
    filename: Optional[str] = None
    revision: Optional[str] = None

    def describe(self) -> str:
        if self.type == "package":
            return f"package {self.package}=={self.version}:{self.path}"
        if self.type == "hub":
            rev = (self.revision or "main")[:12]
            return f"hub {self.repo_id}/{self.filename}@{rev}"
        return f"file {self.path}"


@dataclass
class ModelEntry:
    id: str
    architecture: str
    resolution: int
    sources: List[Source]
    config: dict = field(default_factory=dict)
    kind: str = "generator"
    domain: str = ""
    split_layer: Optional[str] = None
    license: str = ""
    description: str = ""
    manifest_path: Optional[Path] = None
    extra: dict = field(default_factory=dict)


def _parse_source(raw: dict, where: str) -> Source:
    if not isinstance(raw, dict) or raw.get("type") not in SOURCE_TYPES:
        raise ModelError(f"{where}: each source needs a type in {SOURCE_TYPES}")
    known = set(Source.__dataclass_fields__)
    src = Source(**{k: v for k, v in raw.items() if k in known})
    if src.sha256 is not None:
        src.sha256 = src.sha256.lower()
        if not _SHA.match(src.sha256):
            raise ModelError(f"{where}: sha256 must be 64 hex digits")
    if src.size is not None and (isinstance(src.size, bool) or not isinstance(src.size, int) or src.size < 0):
        raise ModelError(f"{where}: size must be a whole number of bytes")
    if src.format not in FORMATS:
        raise ModelError(f"{where}: format must be one of {FORMATS}")
    if src.type == "package" and not (src.package and src.path):
        raise ModelError(f"{where}: a package source needs 'package' and 'path'")
    if src.type == "hub":
        if not (src.repo_id and src.filename):
            raise ModelError(f"{where}: a hub source needs 'repo_id' and 'filename'")
        if src.revision is not None and not _REV.match(src.revision):
            raise ModelError(f"{where}: a hub revision must be a pinned 40-hex commit")
    if src.type == "file" and not src.path:
        raise ModelError(f"{where}: a file source needs 'path'")
    return src


def parse_entry(raw: dict, path: Optional[Path] = None) -> ModelEntry:
    where = str(path or raw.get("id", "manifest entry"))
    for key in ("id", "architecture", "resolution", "sources"):
        if key not in raw:
            raise ModelError(f"{where}: missing '{key}'")
    if not _ID.match(str(raw["id"])):
        raise ModelError(f"{where}: bad model id {raw['id']!r}")
    if not isinstance(raw["sources"], list) or not raw["sources"]:
        raise ModelError(f"{where}: 'sources' must be a non-empty list")
    known = set(ModelEntry.__dataclass_fields__) - {"sources", "manifest_path", "extra"}
    entry = ModelEntry(
        sources=[_parse_source(s, f"{where} source {i}") for i, s in enumerate(raw["sources"])],
        manifest_path=path,
        extra={k: v for k, v in raw.items() if k not in known and k != "sources"},
        **{k: raw[k] for k in known if k in raw},
    )
    entry.config = dict(entry.config or {})
    entry.resolution = int(entry.resolution)
    return entry


def packaged_dir() -> Path:
    """The folder of the packaged manifests (``priorpaint.manifests``)."""
    from importlib.resources import files
    try:
        root = files("priorpaint.manifests")
    except ModuleNotFoundError:
        raise ModelError("the packaged manifests (priorpaint.manifests) are missing: reinstall priorpaint") from None
    if not isinstance(root, Path) or not root.is_dir():
        raise ModelError(f"the packaged manifests must be a folder on disk (not inside an archive): {root}")
    return root


def user_dirs() -> List[Path]:
    """The user's manifest folders that exist: ``$PRIORPAINT_MANIFESTS``, then ``<cache>/manifests``."""
    from ..store import folder
    env = os.environ.get("PRIORPAINT_MANIFESTS", "")
    dirs = [Path(p).expanduser() for p in env.split(os.pathsep) if p.strip()] + [folder("manifests")]
    return [p for p in dirs if p.is_dir()]


def manifest_dirs() -> List[Path]:
    """Manifest folders in the order they are read (see the module's docstring)."""
    env = os.environ.get("PRIORPAINT_MANIFEST_DIR")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return user_dirs() + [packaged_dir()]


def load_manifest(dirs: Optional[List[Path]] = None) -> Dict[str, ModelEntry]:
    """All entries, by id; the first folder wins when two define the same id."""
    entries: Dict[str, ModelEntry] = {}
    for d in dirs if dirs is not None else manifest_dirs():
        for path in sorted(Path(d).glob("*.json")):
            try:
                raw = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise ModelError(f"manifest {path} is not valid JSON: {e}") from None
            entry = parse_entry(raw, path)
            entries.setdefault(entry.id, entry)
    return entries


def get_entry(model_id: Optional[str], kind: str = "generator",
              dirs: Optional[List[Path]] = None) -> ModelEntry:
    entries = load_manifest(dirs)
    model_id = model_id or DEFAULT_MODEL
    entry = entries.get(model_id)
    if entry is None or entry.kind != kind:
        known = sorted(e.id for e in entries.values() if e.kind == kind)
        raise InputError(f"unknown model {model_id!r}; known models: {', '.join(known) or 'none'}")
    return entry
