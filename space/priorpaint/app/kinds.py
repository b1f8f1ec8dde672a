"""What the app shows about the edit kinds: their per-model listings (direction names and
ranges, concepts and saved vectors) and the part label map of a session."""

from __future__ import annotations

from typing import Dict, List, Optional

from ..jobs import checkpoint


def edit_kinds() -> Dict[str, object]:
    """Every registered edit kind."""
    from ..edits import EDIT_KINDS
    return dict(EDIT_KINDS)


def list_directions(model: Optional[str], device=None) -> List[dict]:
    """``[{name, description, min, max, default}]`` for a model."""
    from ..edits.directions import list_directions as listing
    return [dict(r) for r in listing(model)]


def list_concepts(model: Optional[str], device=None, namespace: Optional[str] = None) -> dict:
    """``{concepts: [{name, colour, ...}], vectors: [...], legend: {name: [r, g, b]}}`` for a model."""
    from ..edits.concepts import list_concepts as listing
    from ..models.registry import load_generator
    return dict(listing(model, gen=load_generator(model, device=device, allow_download=bool(model)),
                        namespace=namespace))


def segment(session, progress=None, cancel=None):
    """(label map RGB at the layer box size, legend {name: [r, g, b]}, extra status fields)."""
    checkpoint(cancel, progress, "segment", 0.0)
    labels, legend = session.segment()
    checkpoint(cancel, progress, "segment", 1.0)
    return labels, legend, {"layer_size": [int(labels.shape[1]), int(labels.shape[0])]}
