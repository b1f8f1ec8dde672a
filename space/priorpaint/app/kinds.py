"""What the app shows about the edit kinds: what each can do (read from its registration in
:mod:`priorpaint.edits.registry`, never restated here), their per-model listings (direction
names and ranges, concepts and saved vectors) and the part label map of a session."""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from ..jobs import checkpoint


def edit_kinds() -> Dict[str, object]:
    """Every registered edit kind."""
    from ..edits import EDIT_KINDS
    return dict(EDIT_KINDS)


def live_kinds() -> Tuple[str, ...]:
    """The kinds the page's live preview runs (latent moves)."""
    from ..edits.registry import PreviewCost
    return tuple(k for k, v in edit_kinds().items() if v.preview is PreviewCost.LATENT)


def slow_kinds() -> Tuple[str, ...]:
    """The kinds only ``edit`` (Render) runs: the ``preview`` endpoint refuses them."""
    from ..edits.registry import PreviewCost
    return tuple(k for k, v in edit_kinds().items() if v.preview is PreviewCost.SLOW)


def surviving_kinds() -> Tuple[str, ...]:
    """The kinds an edit list keeps when the selection is projected again."""
    return tuple(k for k, v in edit_kinds().items() if v.survives_reprojection)


def strength(kind: Optional[str]):
    """The kind's :class:`~priorpaint.edits.registry.Strength` (field and range), or None."""
    k = edit_kinds().get(kind)
    return None if k is None else k.strength


def file_fields() -> Tuple[str, ...]:
    """Every spec field that names a file, over all kinds."""
    from ..edits.registry import all_file_fields
    edit_kinds()  # every kind registered
    return all_file_fields()


def inline_fields() -> Tuple[str, ...]:
    from ..edits.registry import all_inline_fields
    edit_kinds()
    return all_inline_fields()


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
