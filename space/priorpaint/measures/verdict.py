"""Whether an edit was carried: the limits, declared once, and the one-line verdict.

An edit *cannot be carried here* when its effect ratio falls under :data:`MIN_EFFECT` (for a
direction with a measure) or when any artefact measure passes its limit in :data:`LIMITS`. The
report's ``verdict`` is machine-readable::

    {"carried": False, "effect_ratio": 0.2, "worst_artefact": "smear", "artefacts": {...},
     "failed": ["effect", "smear"],
     "message": "this edit cannot be carried here: effect 0.20 of the model's, artefacts 12 % (smear)"}

``carried`` is ``None`` when nothing could be judged (no edit, or no measure applied). Stacked
directions (``head_turn`` + ``head_tilt``) are judged each on its own effect ratio (``effects``: name →
ratio); the stack is carried only when every one of them is, and the message names each edit::

    "this edit cannot be carried here: head_tilt effect -0.69 of the model's, artefacts 5 % (unexplained);
     head_turn carried (0.80)"
"""

from __future__ import annotations

from typing import Dict, List, Optional

#: the least share of the generator's own effect an edit must carry
MIN_EFFECT = 0.5
#: the most each artefact measure may show (docs/method/measures.md)
LIMITS = {"smear": 0.03, "unexplained": 0.10, "ghost": 0.30}


def verdict(effect_ratio: Optional[float], artefacts: Dict[str, Optional[float]],
            unmeasurable: Optional[str] = None,
            effects: Optional[Dict[str, float]] = None) -> Dict[str, object]:
    """``unmeasurable``: why an edit that has a measure could not be measured here (e.g. no face
    in the selection): the edit then counts as not carried, with that reason. ``effects``: the
    effect ratio of each of several stacked edits (name → ratio; ``effect_ratio`` is then their
    least), each judged against :data:`MIN_EFFECT`."""
    failed: List[str] = []
    short = {n: r for n, r in (effects or {}).items() if r < MIN_EFFECT}
    if effects:
        effect_ratio = min(effects.values())
    if (effect_ratio is not None and effect_ratio < MIN_EFFECT) or unmeasurable:
        failed.append("effect")
    over = {k: artefacts.get(k) for k in LIMITS if artefacts.get(k) is not None}
    failed += [k for k, v in over.items() if v > LIMITS[k]]
    worst = max(over, key=lambda k: over[k] / LIMITS[k]) if over else None
    judged = effect_ratio is not None or bool(over) or bool(unmeasurable)
    out: Dict[str, object] = {"carried": (not failed) if judged else None, "effect_ratio": effect_ratio,
                              "worst_artefact": worst, "failed": failed,
                              "artefacts": {k: over[k] for k in over}}
    if effects:
        out["effects"] = dict(effects)
    if not judged:
        out["message"] = "nothing to judge: no measure applies to this edit"
    elif failed:
        parts = [unmeasurable] if unmeasurable else []
        if effects:
            parts += [f"{n} effect {r:.2f} of the model's" for n, r in short.items()]
        elif effect_ratio is not None:
            parts.append(f"effect {effect_ratio:.2f} of the model's")
        if worst is not None:
            parts.append(f"artefacts {100 * over[worst]:.0f} % ({worst})")
        out["message"] = "this edit cannot be carried here: " + ", ".join(parts)
        kept = [f"{n} carried ({r:.2f})" for n, r in (effects or {}).items() if n not in short]
        if kept:
            out["message"] += "; " + ", ".join(kept)
    elif effects:
        out["message"] = "carried: " + ", ".join(f"{n} effect {r:.2f}" for n, r in effects.items()) + " of the model's"
    elif effect_ratio is not None:
        out["message"] = f"carried: effect {effect_ratio:.2f} of the model's"
    else:   # artefacts alone say nothing of whether the edit did what it says (a pure warp adds no cap)
        out["message"] = "no artefacts over the limits; no independent measure of the effect"
    return out
