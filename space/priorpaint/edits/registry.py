"""Edit kinds and edit specs.

Every edit is a function of the session's current :class:`EditState` (the hybrid
latent ``(z, h)`` at the split layer, the edit mask and any layer interventions) that
returns a new state.  An edit kind registers:

* a parser for the CLI form ``KIND:ARGS`` (e.g. ``direction:smile=1.5``) into a spec dict
  ``{"kind": KIND, ...}`` (the JSON form used by the API);
* an ``apply(session, state, spec) -> EditState`` function.

Specs are applied in order; the result is rendered by :meth:`EditSession.render`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Optional, Union

import numpy as np
import torch

from ..errors import InputError


@dataclass
class EditState:
    z: torch.Tensor                      # (1, *latent_shape): the latent (context of later layers)
    h: torch.Tensor                      # split-layer feature, the edited hybrid latent z_h
    edit_mask: Optional[np.ndarray] = None   # square-region uint8 mask; None = the selection
    interventions: Dict[str, Callable] = field(default_factory=dict)  # extra G_F interventions
    applied: List[dict] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def evolve(self, **changes) -> "EditState":
        return replace(self, applied=list(self.applied), notes=list(self.notes),
                       interventions=dict(self.interventions), **changes)


@dataclass
class EditKind:
    name: str
    parse: Callable[[str], dict]                 # CLI args (after "KIND:") -> spec
    apply: Callable[..., EditState]              # (session, state, spec) -> state
    help: str = ""
    #: optional cheap ``check(gen, spec)`` that refuses a bad spec before the slow projection
    check: Optional[Callable[..., None]] = None


EDIT_KINDS: Dict[str, EditKind] = {}


def register_edit(name: str, parse: Callable[[str], dict], help: str = "",
                  check: Optional[Callable[..., None]] = None):
    """Decorator for an ``apply(session, state, spec)`` function."""
    def deco(apply):
        EDIT_KINDS[name] = EditKind(name=name, parse=parse, apply=apply, help=help, check=check)
        return apply
    return deco


def check_specs(gen, specs: List[dict]) -> None:
    """Run each parsed spec's cheap check against a generator (names that exist, ...)."""
    for spec in specs:
        kind = EDIT_KINDS[spec["kind"]]
        if kind.check is not None:
            kind.check(gen, spec)


def _load_kinds() -> None:
    # Importing the edits package registers every kind it defines.
    from .. import edits  # noqa: F401  (importing registers the kinds)


def parse_spec(spec: Union[str, dict]) -> dict:
    """A spec dict from the CLI form ``KIND:ARGS``, a JSON object string, or a dict."""
    _load_kinds()
    if isinstance(spec, str):
        text = spec.strip()
        if text.startswith("{"):
            try:
                spec = json.loads(text)
            except json.JSONDecodeError as e:
                raise InputError(f"edit spec is not valid JSON: {e}") from None
        else:
            kind, sep, rest = text.partition(":")
            if not sep or kind not in EDIT_KINDS:
                raise InputError(f"unknown edit {text!r}; edits are KIND:ARGS with KIND one of "
                                 f"{', '.join(sorted(EDIT_KINDS)) or 'none'}")
            spec = EDIT_KINDS[kind].parse(rest)
            spec["kind"] = kind
            return spec
    if not isinstance(spec, dict) or spec.get("kind") not in EDIT_KINDS:
        kind = spec.get("kind") if isinstance(spec, dict) else spec
        raise InputError(f"unknown edit kind {kind!r}; known: {', '.join(sorted(EDIT_KINDS)) or 'none'}")
    return dict(spec)


def parse_specs(specs) -> List[dict]:
    """A list of specs from a list of strings/dicts, or a JSON list string."""
    if specs is None:
        return []
    if isinstance(specs, str):
        text = specs.strip()
        if not text:
            return []
        if text.startswith("["):
            try:
                specs = json.loads(text)
            except json.JSONDecodeError as e:
                raise InputError(f"edits are not a valid JSON list: {e}") from None
        else:
            specs = [text]
    return [parse_spec(s) for s in specs]
