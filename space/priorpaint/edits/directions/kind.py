"""The ``direction`` edit kind: how a direction moves a state.

* a **latent** (``z``) direction ``d`` (unit norm; SeFa, supervised) moves ``z_e = z + α·d``
  and the split feature keeps its projection residual: ``h_e = h + G_H(z_e) − G_H(z)``.
  Repeated directions therefore add up exactly in ``z``.  A published direction of a
  StyleGAN2 (:mod:`.published`) is such a latent direction too: an InterFaceGAN ``w``
  boundary added to every style (or a ``w+`` one, per style), or a GANSpace set-point whose
  change depends on ``z`` (:class:`~.base.Setpoint`); ``G_F`` reads the edited styles from
  ``z_e``, so styles after the split act as well;
* a **feature** direction ``v`` (unit norm; GANSpace) is applied at its layer:
  ``h_e = h + α·σ·v`` where ``σ`` is the standard deviation of the sampled features along
  ``v`` (a layer before the split is mapped through with its residual kept; a layer after
  it becomes an intervention of ``G_F``).

Strength ``α`` is in standard deviations of the prior along the direction, so −3..3 covers
the range the generator saw while training.
"""

from __future__ import annotations

import logging
import math
import threading
import weakref
from typing import Callable, Dict, List, Optional

import torch

from ...errors import InputError
from ...models.layered import LayeredGenerator
from ... import store

log = logging.getLogger(__name__)

from ..registry import EditContext, EditState, PreviewCost, Strength, register_edit
from .base import Direction
from .named import _entry_for, direction_composite, get_direction, load_named
from .published import PUBLISHED_METHODS


_base: List[tuple] = []          # small LRU of (gen id, split, z copy, G_H(z)) for live previews
_base_lock = threading.Lock()


def _features_of(gen: LayeredGenerator, z: torch.Tensor, split: str) -> torch.Tensor:
    """``G_H(z)`` at ``split``, remembered for the last few latents (a preview moves one
    slider many times from the same starting latent, so this halves a frame's cost)."""
    versions = tuple(p._version for p in gen.parameters())
    with _base_lock:
        for i, (ref, ver, sp, zc, hz) in enumerate(_base):
            if ref() is gen and ver == versions and sp == split and zc.shape == z.shape \
                    and zc.device == z.device and torch.equal(zc, z):
                _base.insert(0, _base.pop(i))
                return hz
    hz = gen.forward_to(z, split)
    with _base_lock:
        _base.insert(0, (weakref.ref(gen), versions, split, z.detach().clone(), hz))
        del _base[4:]
    return hz


def shift(gen: LayeredGenerator, z: torch.Tensor, h: torch.Tensor, split: str,
          direction: Direction, strength: float,
          interventions: Optional[Dict[str, Callable]] = None):
    """``(z_e, h_e, interventions_e)`` after moving ``strength`` along ``direction``."""
    interventions = dict(interventions or {})
    with torch.no_grad():
        if direction.space == "z":
            z_e = z + direction.latent_delta(z, strength)
            h_e = h + (gen.forward_to(z_e, split) - _features_of(gen, z, split))
            return z_e, h_e, interventions
        layer = direction.layer or split
        delta = (strength * direction.scale) * direction.vector.to(h.device, h.dtype)
        if layer == split:
            return z, h + delta, interventions
        if gen.index(layer) < gen.index(split):
            a = gen.forward_to(z, layer)
            h_e = h + (gen.run(a + delta, start=layer, stop=split, z=z)[0] - gen.run(a, start=layer, stop=split, z=z)[0])
            return z, h_e, interventions
        prev = interventions.get(layer)
        interventions[layer] = (lambda x, p=prev, d=delta: (p(x) if p else x) + d)
        return z, h, interventions


def apply_direction(gen: LayeredGenerator, state: EditState, split: str, direction: Direction,
                    strength: float) -> EditState:
    """A new state with ``direction`` applied at ``strength`` (clamped to its range, with a note)."""
    s = float(strength)
    if not math.isfinite(s):
        raise InputError(f"strength of direction {direction.name!r} must be a finite number, got {strength!r}")
    new = state.evolve()
    if s < direction.min or s > direction.max:
        c = min(max(s, direction.min), direction.max)
        note = (f"strength {s:g} of direction {direction.name!r} is outside its range "
                f"[{direction.min:g}, {direction.max:g}]; clamped to {c:g}")
        log.warning(note)
        new.notes.append(note)
        s = c
    z, h, iv = shift(gen, state.z, state.h, split, direction, s, state.interventions)
    new.z, new.h, new.interventions = z, h, iv
    return new


# -- the edit kind ----------------------------------------------------------------------
def parse_direction(args: str) -> dict:
    name, sep, value = args.rpartition("=")
    name = name.strip()
    if not sep or not name:
        raise InputError(f"direction edit must be direction:NAME=STRENGTH, got direction:{args}")
    try:
        strength = float(value)
    except ValueError:
        raise InputError(f"direction {name!r}: strength {value!r} is not a number") from None
    return {"name": name, "strength": strength}


def check_direction(gen: LayeredGenerator, spec: dict) -> None:
    """Refuse an unknown direction name (listing the known ones) without computing anything;
    a published direction (read from a small verified file) is resolved at once, so one that
    does not fit the model (styles beyond its count, another style size) is refused before
    a slow projection."""
    model_id = store.model_key(gen)
    name = str(spec.get("name", ""))
    entry = _entry_for(model_id, name, load_named(model_id))
    if entry.get("method") in PUBLISHED_METHODS:
        get_direction(gen, name)


def _applied_composite(applied: dict) -> Optional[str]:
    """The composite an applied direction asks for: its manifest's (``"warp"`` for a structural
    one, recorded by :func:`apply_direction_edit`), none at strength 0 (nothing moves)."""
    return applied.get("composite") if applied.get("applied_strength") else None


@register_edit("direction", parse_direction, check=check_direction, preview=PreviewCost.LATENT,
               survives_reprojection=True, composite=_applied_composite, strength=Strength("strength", -3.0, 3.0),
               help="direction:NAME=STRENGTH — move along a named latent direction (see `priorpaint directions`); "
                    "repeatable, combined additively; strengths outside the range are clamped with a note")
def apply_direction_edit(ctx: EditContext, state: EditState, spec: dict) -> EditState:
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise InputError("direction edit needs a 'name'")
    strength = spec.get("strength", 1.0)
    if isinstance(strength, bool) or not isinstance(strength, (int, float)):
        try:
            strength = float(strength)
        except (TypeError, ValueError):
            raise InputError(f"direction {name!r}: strength {strength!r} is not a number") from None
    direction = get_direction(ctx.gen, name)
    new = apply_direction(ctx.gen, state, ctx.split, direction, float(strength))
    spec["applied_strength"] = min(max(float(strength), direction.min), direction.max) \
        if math.isfinite(float(strength)) else None
    spec.pop("composite", None)   # declared by the manifest, never by a request
    composite = direction_composite(store.model_key(ctx.gen), name)
    if composite is not None:
        spec["composite"] = composite
    return new

