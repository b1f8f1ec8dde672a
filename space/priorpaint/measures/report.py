"""The structure figures of one render, for the session's report (``metrics["structure"]`` and
``metrics["verdict"]``): the artefact measures, the effect ratio of a single named direction,
and the verdict."""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from .artefacts import artefacts
from .effect import direction_measure, effect_ratio, reference_change
from .kinds import kind_report, merge_preview_only, merge_verdict, preview_only
from .verdict import verdict


def _single_direction(applied: List[dict]) -> Optional[Tuple[str, float]]:
    dirs = [a for a in applied if a.get("kind") == "direction"]
    if len(dirs) != 1 or len(applied) != 1:
        return None
    return str(dirs[0].get("name")), float(dirs[0].get("strength", 0.0))


def structure_report(gen, model_id: Optional[str], applied: List[dict], result: np.ndarray,
                     photo: np.ndarray, mask: np.ndarray) -> Tuple[Dict[str, object], Dict[str, object]]:
    """``(structure, verdict)`` for a result square against the photo's square (uint8, same side)
    under the square's edit mask. The effect ratio is measured for a render of exactly one named
    direction with a declared measure (stacked edits: artefacts only); a render of one edit of a
    kind :mod:`.kinds` measures (a scribble) adds that kind's measures (``structure["kind"]``)."""
    sel = np.where(mask > 0, 255, 0).astype(np.uint8)
    out: Dict[str, object] = dict(artefacts(result, photo, sel, gen.resolution))
    out.update({"measure": None, "effect": None, "effect_reference": None, "effect_ratio": None})
    one = _single_direction(applied)
    unmeasurable = None
    if one is not None and one[1] != 0.0:
        name, strength = one
        measure = direction_measure(model_id, name)
        if measure is not None:
            ref = reference_change(gen, name, strength, model_id)
            achieved, ratio = effect_ratio(result, photo, measure, ref)
            out.update({"measure": measure, "effect": achieved, "effect_reference": ref, "effect_ratio": ratio})
            if achieved is None:
                unmeasurable = (f"no face found to measure {name} on" if measure != "crown_lines" else
                                f"no face, or too little of the forehead in the selection, to measure {name} on")
    out = {k: ((round(v, 4) if np.isfinite(v) else None) if isinstance(v, float) else v) for k, v in out.items()}
    if not applied:
        return out, {"carried": None, "message": "no edit", "failed": [], "effect_ratio": None,
                     "worst_artefact": None, "artefacts": {}}
    kind = kind_report(applied, result, photo, sel, gen.resolution)   # other kinds' own "worked"
    judged = out
    if kind is not None:
        out["kind"] = kind
        if kind.get("in_place"):   # recoloured in place: no moved contour to double (measures/kinds.py)
            judged = {**out, "ghost": None}
    v = merge_verdict(verdict(out["effect_ratio"], judged, unmeasurable), kind)
    return out, merge_preview_only(v, preview_only(model_id, applied))
