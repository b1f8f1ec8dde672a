"""Semantic edits: each module registers its edit kinds with :mod:`priorpaint.edits.registry`."""

from .registry import EDIT_KINDS, EditState, parse_spec, parse_specs, register_edit

__all__ = ["EDIT_KINDS", "EditState", "parse_spec", "parse_specs", "register_edit"]
