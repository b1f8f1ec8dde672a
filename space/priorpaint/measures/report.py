"""The structure figures of one render, for the session's report (``metrics["structure"]`` and
``metrics["verdict"]``): the artefact measures, the effect ratio of a single named direction,
and the verdict."""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from .artefacts import artefacts
from .effect import direction_measure, effect_ratio, stack_reference
from .kinds import kind_report, merge_preview_only, merge_verdict, preview_only
from .verdict import head_cut_note, verdict, with_notes


def _single_direction(applied: List[dict]) -> Optional[Tuple[str, float]]:
    dirs = [a for a in applied if a.get("kind") == "direction"]
    if len(dirs) != 1 or len(applied) != 1:
        return None
    return str(dirs[0].get("name")), float(dirs[0].get("strength", 0.0))


def _stacked_directions(applied: List[dict]) -> Optional[List[Tuple[str, float]]]:
    """The (name, strength) of each applied direction that moves, when every applied edit is a
    direction and at least two move (a stack such as head_turn + head_tilt); else None."""
    if not applied or any(a.get("kind") != "direction" for a in applied):
        return None
    dirs = [(str(a.get("name")), float(a.get("strength", 0.0))) for a in applied]
    dirs = [d for d in dirs if d[1] != 0.0]
    return dirs if len(dirs) >= 2 else None


def stacked_effects(gen, model_id: Optional[str], dirs: List[Tuple[str, float]], result: np.ndarray,
                    photo: np.ndarray) -> Dict[str, Dict[str, object]]:
    """Per stacked direction with a declared measure: ``{"measure", "effect", "effect_reference",
    "effect_ratio"}``, its measure's change on ``result`` against the model's own change of that
    measure under the whole stack (:func:`~priorpaint.measures.effect.stack_reference`: every one of
    ``dirs`` applied together to the generator's samples, so an interaction the generator itself
    has is not counted against the photo). Directions that declare the same measure (head_turn + profile:
    yaw) share that reference and one ratio."""
    refs = stack_reference(gen, dirs, model_id)
    read: Dict[str, tuple] = {}
    out: Dict[str, Dict[str, object]] = {}
    for name, _ in dirs:
        measure = direction_measure(model_id, name)
        if measure is None:
            continue
        if measure not in read:
            read[measure] = effect_ratio(result, photo, measure, refs[measure])
        achieved, ratio = read[measure]
        out[name] = {"measure": measure, "effect": achieved, "effect_reference": refs[measure], "effect_ratio": ratio}
    return out


def structure_report(gen, model_id: Optional[str], applied: List[dict], result: np.ndarray,
                     photo: np.ndarray, mask: np.ndarray,
                     motion: Optional[Dict[str, object]] = None) -> Tuple[Dict[str, object], Dict[str, object]]:
    """``(structure, verdict)`` for a result square against the photo's square (uint8, same side)
    under the square's edit mask. The effect ratio is measured for a render of exactly one named
    direction with a declared measure, and for stacked directions per direction (``structure["effects"]``:
    each edit judged on its own effect, :func:`stacked_effects`); a render of one edit of a
    kind :mod:`.kinds` measures (a scribble) adds that kind's measures (``structure["kind"]``). ``motion``:
    the composite's ``info``; a head motion's ``head_cut`` is kept in ``structure`` and, past the
    verdict's limit, said in its message (:func:`~priorpaint.measures.verdict.head_cut_note`)."""
    sel = np.where(mask > 0, 255, 0).astype(np.uint8)
    out: Dict[str, object] = dict(artefacts(result, photo, sel, gen.resolution))
    out.update({"measure": None, "effect": None, "effect_reference": None, "effect_ratio": None})
    one = _single_direction(applied)
    unmeasurable = None
    if one is not None and one[1] != 0.0:   # one direction: its effect is the stack's of one (reference_change)
        name = one[0]
        found = stacked_effects(gen, model_id, [one], result, photo).get(name)
        if found is not None:
            out.update(found)
            if found["effect"] is None:
                unmeasurable = (f"no face found to measure {name} on" if found["measure"] != "crown_lines" else
                                f"no face, or too little of the forehead in the selection, to measure {name} on")
    stack = _stacked_directions(applied)
    ratios: Dict[str, float] = {}
    if stack is not None:
        effects = stacked_effects(gen, model_id, stack, result, photo)
        missing = [n for n, e in effects.items() if e["effect"] is None]
        if missing:
            unmeasurable = f"no face found to measure {', '.join(missing)} on"
        ratios = {n: e["effect_ratio"] for n, e in effects.items() if e["effect_ratio"] is not None}
        out["effects"] = {n: {k: _round(v) for k, v in e.items()} for n, e in effects.items()}
    if (motion or {}).get("head_cut") is not None:
        out["head_cut"] = float(motion["head_cut"])
    out = {k: _round(v) for k, v in out.items()}
    if not applied:
        return out, {"carried": None, "message": "no edit", "failed": [], "effect_ratio": None,
                     "worst_artefact": None, "artefacts": {}}
    kind = kind_report(applied, result, photo, sel, gen.resolution)   # other kinds' own "worked"
    judged = out
    if kind is not None:
        out["kind"] = kind
        if kind.get("in_place"):   # recoloured in place: no moved contour to double (measures/kinds.py)
            judged = {**out, "ghost": None}
    ratios = {n: round(r, 4) for n, r in ratios.items() if np.isfinite(r)}
    v = merge_verdict(verdict(out["effect_ratio"], judged, unmeasurable, ratios or None), kind)
    return out, with_notes(merge_preview_only(v, preview_only(model_id, applied)), [head_cut_note(motion)])


def _round(v):
    return (round(v, 4) if np.isfinite(v) else None) if isinstance(v, float) else v
