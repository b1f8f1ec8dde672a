"""One listing of the manifest's models, used by ``priorpaint models`` and the app's API."""

from __future__ import annotations

from typing import List, Optional

from .manifest import DEFAULT_MODEL, load_manifest
from .weights import weights_status


def list_models(kind: Optional[str] = None, default: Optional[str] = None, paths: bool = False) -> List[dict]:
    """One dict per manifest entry (of ``kind`` when given): id, kind, architecture,
    resolution, domain, whether its weights are present here, its source, description,
    whether it aligns faces (``aligned``: its manifest declares an alignment) and whether it
    is the ``default`` model (the embedded default when None), and the bytes a download would
    fetch (``download_bytes``: the first Hub source's declared size, None without one).

    ``paths``: also the local path of present weights (for the command line; the API hands
    its listing to remote clients and leaves paths out)."""
    default = default or DEFAULT_MODEL
    rows = []
    for entry in load_manifest().values():
        if kind is not None and entry.kind != kind:
            continue
        present, src, path = weights_status(entry)
        row = {
            "id": entry.id, "kind": entry.kind, "architecture": entry.architecture,
            "resolution": entry.resolution, "domain": entry.domain, "present": bool(present),
            "downloadable": any(s.type == "hub" for s in entry.sources),  # `priorpaint download` / API download
            "source": (src or entry.sources[0]).describe(), "description": entry.description,
            "default": entry.id == default,
            "aligned": entry.extra.get("alignment") is not None,  # a face model: crops are aligned
            # what a download would fetch (the first Hub source's declared size); None when nothing to fetch
            "download_bytes": next((s.size for s in entry.sources if s.type == "hub" and s.size), None),
        }
        if paths:
            row["path"] = str(path) if path else None
        rows.append(row)
    return rows
