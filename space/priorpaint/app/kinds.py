"""What the app knows about the edit kinds: which exist, and their per-model listings.

The edit modules (``priorpaint.edits.*``) register their kinds in
:data:`priorpaint.edits.registry.EDIT_KINDS`; this module asks them for what the UI and the
``directions`` / ``concepts`` / ``segment`` endpoints show (direction names and ranges,
concepts and saved vectors, the part label map of a session).  A kind whose module is not
in this version gives a clear error naming what is missing.
"""

from __future__ import annotations

import importlib
from typing import Dict, List, Optional

from ..errors import InputError


#: the edit modules of the design; each registers its kinds when imported
EDIT_MODULES = ("directions", "scribble", "interpolate", "concepts", "segedit", "parts")


def edit_kinds() -> Dict[str, object]:
    """Every registered edit kind (importing the edit modules this version has)."""
    from ..edits.registry import EDIT_KINDS, _load_kinds

    _load_kinds()
    for name in EDIT_MODULES:
        _module(name)
    return dict(EDIT_KINDS)


def _module(name: str):
    try:
        return importlib.import_module(f"priorpaint.edits.{name}")
    except ModuleNotFoundError as e:
        if e.name and e.name.endswith(f"edits.{name}"):
            return None
        raise


def _generator(model: Optional[str], device=None):
    from ..models.registry import load_generator

    return load_generator(model, device=device, allow_download=bool(model))


def list_directions(model: Optional[str], device=None) -> List[dict]:
    """``[{name, description, min, max, default}]`` for a model."""
    mod = _module("directions")
    if mod is None or "direction" not in edit_kinds():
        raise InputError("latent directions are not available in this version of priorpaint")
    return [dict(r) for r in mod.list_directions(model)]


def list_concepts(model: Optional[str], device=None) -> dict:
    """``{concepts: [{name, colour, ...}], vectors: [...], legend: {name: [r, g, b]}}`` for a model."""
    mod = _module("concepts")
    if mod is None or "paint" not in edit_kinds():
        raise InputError("concept painting is not available in this version of priorpaint")
    return dict(mod.list_concepts(model, gen=_generator(model, device)))


def segment(session, progress=None, cancel=None):
    """(label map RGB at the layer box size, legend {name: [r, g, b]}, extra status fields)."""
    mod = _module("segedit")
    if mod is None or "segment" not in edit_kinds():
        raise InputError("segmentation editing is not available in this version of priorpaint")
    from ..jobs import checkpoint

    checkpoint(cancel, progress, "segment", 0.0)
    labels, legend = mod.segment_session(session)
    checkpoint(cancel, progress, "segment", 1.0)
    return labels, legend, {"layer_size": [int(labels.shape[1]), int(labels.shape[0])]}
