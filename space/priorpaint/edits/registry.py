"""Edit kinds and edit specs.

Every edit is a function of the session's current :class:`EditState` (the hybrid
latent ``(z, h)`` at the split layer, the edit mask and any layer interventions) that
returns a new state.  An edit kind registers:

* a parser for the CLI form ``KIND:ARGS`` (e.g. ``direction:smile=1.5``) into a spec dict
  ``{"kind": KIND, ...}`` (the JSON form used by the API);
* an ``apply(ctx, state, spec) -> EditState`` function.  ``ctx`` is an :class:`EditContext`:
  exactly what an edit may use (the generator, the selection's square, the split layer,
  the projection settings, a per-session memo, cancel and progress) — an edit never sees
  the session that called it.

Specs are applied in order; the result is rendered by :meth:`EditSession.render`.

What a kind *can do* is declared once, at its registration, and read everywhere (the CLI,
the API, the web page, the live preview): its :class:`PreviewCost`, whether it survives a
new projection (a latent move does; an edit painted over the old selection's square does
not), the spec field holding its strength and that field's range, and the spec fields that
name image files (over the API those must be ``"file:N"`` references to uploaded files).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from ..errors import InputError
from ..jobs import CancelToken, ProgressFn

if TYPE_CHECKING:  # pragma: no cover
    from ..compositing.crop import Crop
    from ..models.layered import LayeredGenerator
    from ..projection.project import ProjectionConfig


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

    def merged_edit_mask(self, mask: np.ndarray, selection: np.ndarray) -> np.ndarray:
        """The edit mask after an edit with its own ``mask``: united with what earlier edits
        changed (the selection, when an earlier edit kept no mask of its own)."""
        if not self.applied:
            return mask
        prev = self.edit_mask if self.edit_mask is not None else selection
        return np.maximum(prev, mask)


@dataclass
class EditContext:
    """What an edit kind may use.  Built by the session for each :meth:`apply`."""
    gen: "LayeredGenerator"
    crop: "Crop"                          # the selection's square in the photo, and its masks
    split: str                            # the projection's split layer (where ``h`` lives)
    mask: torch.Tensor                    # the selection at model resolution, (1, 1, R, R)
    projection_config: "ProjectionConfig"  # how the photo was projected (to project others alike)
    memo: Dict[Any, Any] = field(default_factory=dict)   # per-session memo (e.g. other projections)
    cancel: Optional[CancelToken] = None
    progress: Optional[ProgressFn] = None
    #: whose saved editing vectors the edits read and write (an app client's; None: the CLI's)
    vector_namespace: Optional[str] = None

    def place(self, arr: np.ndarray, what: str, nearest: bool, fill=0) -> Tuple[np.ndarray, np.ndarray, List[str]]:
        """An image-sized or layer-box-sized array placed in the square (see
        :meth:`priorpaint.compositing.crop.Crop.place`; aligned crops warp it)."""
        return self.crop.place(arr, what, nearest, fill)

    def merged_mask(self, state: EditState, mask: np.ndarray) -> np.ndarray:
        return state.merged_edit_mask(mask, self.crop.region_mask)


class PreviewCost(str, enum.Enum):
    """How much an edit costs, which decides where it may be previewed."""
    #: a move of the latent (no optimisation, no file): the page's live preview runs it as a slider moves
    LATENT = "latent"
    #: no optimisation, but it reads a painted file: the ``preview`` endpoint runs it, the live page preview
    #: leaves it to Render
    FAST = "fast"
    #: an optimisation or a second projection: only ``edit`` (Render) runs it
    SLOW = "slow"


@dataclass(frozen=True)
class Strength:
    """The spec field holding a kind's strength and the range it is clamped to (a named
    direction may declare a narrower range of its own)."""
    field: str
    lo: float
    hi: float


@dataclass
class EditKind:
    name: str
    parse: Callable[[str], dict]                 # CLI args (after "KIND:") -> spec
    apply: Callable[..., EditState]              # (ctx, state, spec) -> state
    help: str = ""
    #: optional cheap ``check(gen, spec)`` that refuses a bad spec before the slow projection
    check: Optional[Callable[..., None]] = None
    preview: PreviewCost = PreviewCost.SLOW
    #: still meaningful after the selection is projected again (not tied to the old square)
    survives_reprojection: bool = False
    strength: Optional[Strength] = None
    #: spec fields naming image files (the API takes only "file:N" references there)
    file_fields: Tuple[str, ...] = ()
    #: of those, the fields that may instead carry an inline JSON object (checked by the edit)
    inline_fields: Tuple[str, ...] = ()
    #: the composite a render in ``"detail"`` mode uses instead when this edit is applied (a
    #: structural edit, e.g. ``"warp"`` for drag: a detail composite would cross-fade the moved content);
    #: or a function of the applied spec (a named direction: its manifest declares it)
    composite: Union[None, str, Callable[[dict], Optional[str]]] = None


EDIT_KINDS: Dict[str, EditKind] = {}


def register_edit(name: str, parse: Callable[[str], dict], help: str = "",
                  check: Optional[Callable[..., None]] = None, *, preview: PreviewCost = PreviewCost.SLOW,
                  survives_reprojection: bool = False, strength: Optional[Strength] = None,
                  file_fields: Tuple[str, ...] = (), inline_fields: Tuple[str, ...] = (),
                  composite: Union[None, str, Callable[[dict], Optional[str]]] = None):
    """Decorator for an ``apply(ctx, state, spec)`` function; the keywords declare what the
    kind can do (see :class:`EditKind`)."""
    if preview is PreviewCost.LATENT and file_fields:
        raise ValueError(f"edit kind {name!r}: a latent-only edit reads no file")
    if not set(inline_fields) <= set(file_fields):
        raise ValueError(f"edit kind {name!r}: inline fields must be file fields")
    if strength is not None and not strength.lo < strength.hi:
        raise ValueError(f"edit kind {name!r}: empty strength range")

    def deco(apply):
        EDIT_KINDS[name] = EditKind(name=name, parse=parse, apply=apply, help=help, check=check,
                                    preview=PreviewCost(preview), survives_reprojection=bool(survives_reprojection),
                                    strength=strength, file_fields=tuple(file_fields),
                                    inline_fields=tuple(inline_fields), composite=composite)
        return apply
    return deco


def kind_of(spec: dict) -> Optional[EditKind]:
    """The registered kind of a spec dict (None for an unknown kind)."""
    return EDIT_KINDS.get(spec.get("kind")) if isinstance(spec, dict) else None


def kinds_where(**declared) -> Tuple[str, ...]:
    """The names of the kinds whose declarations match, e.g. ``kinds_where(preview=PreviewCost.LATENT)``."""
    return tuple(k.name for k in EDIT_KINDS.values()
                 if all(getattr(k, attr) == value for attr, value in declared.items()))


def all_file_fields() -> Tuple[str, ...]:
    """Every spec field that names a file, over all kinds (the API refuses paths in any of them)."""
    return tuple(dict.fromkeys(f for k in EDIT_KINDS.values() for f in k.file_fields))


def all_inline_fields() -> Tuple[str, ...]:
    return tuple(dict.fromkeys(f for k in EDIT_KINDS.values() for f in k.inline_fields))


def applied_composite(spec: dict) -> Optional[str]:
    """The composite one applied edit declares for a ``"detail"`` render (None: none)."""
    kind = EDIT_KINDS.get(spec.get("kind")) if isinstance(spec, dict) else None
    if kind is None or not kind.composite:
        return None
    return kind.composite(spec) if callable(kind.composite) else kind.composite


def structural_composite(applied: List[dict]) -> Optional[str]:
    """The composite the applied edits declare for a ``"detail"`` render (None: detail).

    A kind that always declares one is obeyed: a ``drag`` always warps; a ``scribble``'s
    ``"colour"`` holds unless another applied edit asks for a different composite (then ``detail``).  A named direction whose
    manifest declares one (a structural direction: head_turn, head_tilt, profile on the embedded
    model) is obeyed when every other applied edit is a latent move too (an appearance direction:
    its low band is added to the moved photo, :mod:`priorpaint.warp_render`); stacked with a painted
    or optimised edit it is not (that edit's own change could not be carried), and the render stays
    ``detail``."""
    declared = [(spec, applied_composite(spec)) for spec in applied]
    fixed = {c for spec, c in declared if c and not callable(EDIT_KINDS[spec["kind"]].composite)}
    if "warp" in fixed:     # a drag always moves the photo's pixels
        return "warp"
    if fixed:       # two edits asking for different composites (a scribble's colour, a tilt's warp): detail
        wanted = fixed | {c for _, c in declared if c}
        return fixed.pop() if len(wanted) == 1 else None
    moved = {c for _, c in declared if c}   # one composite, or two edits asking for different ones: detail
    if len(moved) == 1 and all(c or EDIT_KINDS[spec["kind"]].preview is PreviewCost.LATENT for spec, c in declared
                               if spec.get("kind") in EDIT_KINDS):
        return moved.pop()
    return None


def check_specs(gen, specs: List[dict]) -> None:
    """Run each parsed spec's cheap check against a generator (names that exist, ...)."""
    for spec in specs:
        kind = EDIT_KINDS[spec["kind"]]
        if kind.check is not None:
            kind.check(gen, spec)


def parse_spec(spec: Union[str, dict]) -> dict:
    """A spec dict from the CLI form ``KIND:ARGS``, a JSON object string, or a dict."""
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
