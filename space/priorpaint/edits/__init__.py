"""Semantic edits: each module registers its edit kinds with :mod:`priorpaint.edits.registry`.

Importing this package registers every kind (direction, interpolate, scribble, paint,
segment, vector, drag)."""

from .registry import EDIT_KINDS, EditContext, EditState, check_specs, parse_spec, parse_specs, register_edit
from . import directions, interpolate, scribble  # noqa: F401,E402  (register direction, interpolate, scribble)
from . import concepts, segedit, vectors  # noqa: F401,E402  (register paint, segment, vector)
from . import drag  # noqa: F401,E402  (register drag)

__all__ = ["EDIT_KINDS", "EditContext", "EditState", "check_specs", "parse_spec", "parse_specs", "register_edit"]
