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

A head edit whose turn or bow the selection held back (:func:`head_cut_note`: the head motion's
fold check shrank the angle asked, and more than :data:`MIN_HEAD_CUT` of the head lies under the
feather's taper or outside the selection) adds one clause saying so, with the fix, to the message
(``notes`` lists it too), carried or not.
"""

from __future__ import annotations

from typing import Dict, List, Optional

#: the least share of the generator's own effect an edit must carry
MIN_EFFECT = 0.5
#: the most each artefact measure may show (docs/method/measures.md)
LIMITS = {"smear": 0.03, "unexplained": 0.10, "ghost": 0.30}
#: the share of a head edit's head under the selection's feather or outside it
#: (``composite_info["head_cut"]``, :func:`priorpaint.compositing.warp_head.head_cut`) above which a
#: limited turn or bow is blamed on the selection (docs/method/measures.md): every box measured reads
#: 0.68-0.95, because the share counts hair and crown; a head well inside the selection reads under it
MIN_HEAD_CUT = 0.5


def head_cut_note(info: Optional[Dict[str, object]]) -> Optional[str]:
    """One clause saying that the selection held a head edit back, with the fix, from the warp
    composite's ``info`` (``head_cut``, ``head_angle_deg`` / ``head_pitch_deg`` and their
    ``_asked_deg``): said where the fold check shrank an angle (by more than half a degree) and the
    cut is over :data:`MIN_HEAD_CUT`; None otherwise or without a head motion. The limit is the
    fact; the share only tells that the selection is why (docs/method/editability.md, round 10: the
    share alone overlaps, 0.88 on a box that turns fully, 0.90 on one that does not)."""
    cut = (info or {}).get("head_cut")
    if not isinstance(cut, (int, float)) or cut <= MIN_HEAD_CUT:
        return None
    limited, verbs = [], []
    for key, word in (("head_angle", "turn"), ("head_pitch", "bow")):
        done, asked = info.get(f"{key}_deg"), info.get(f"{key}_asked_deg")
        if isinstance(done, (int, float)) and isinstance(asked, (int, float)) and abs(done) < abs(asked) - 0.5:
            limited.append(f"the {word} is limited to {abs(done):.0f}° of {abs(asked):.0f}°")
            verbs.append(word)
    if not limited:
        return None
    return (f"the selection cuts the head ({100 * cut:.0f} % of it under the edge's feather): "
            f"{', '.join(limited)}; select the whole head to {' and '.join(verbs)} it fully")


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


def with_notes(verdict: Dict[str, object], notes: List[Optional[str]]) -> Dict[str, object]:
    """``verdict`` with each clause of ``notes`` (None: none) added to its one-line message, carried
    or not, and listed in ``notes``; a verdict with nothing to judge stays as it is."""
    notes = [n for n in notes if n]
    if not notes or verdict.get("carried") is None:
        return verdict
    return dict(verdict, notes=notes, message="; ".join([str(verdict.get("message") or "")] + notes))
