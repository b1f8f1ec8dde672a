"""Does a saved editing vector carry the effect it was saved with onto another photo?

A vector is a delta at the split layer: it lives on the model's grid, so the same cell of the
selection's square is where it acts on every photo. Its *effect* on a photo is measured on pixels,
not on the delta or the edit's own target (the segmentation head): the CIE Lab change
``Lab(result) − Lab(photo)`` over the square, averaged onto a :data:`GRID` × :data:`GRID` grid of
cells (the low band: where and how the colour moved, not the grain). Then, with ``s`` the effect on
the photo it was saved on and ``o`` the effect on the other photo:

``carried``
    ``⟨o, s⟩ / ⟨s, s⟩``: the share of the saved effect the other photo shows, in the same direction
    (1: all of it; 0: nothing; negative: the opposite change). At least :data:`MIN_CARRIED`.
``agreement``
    the cosine between ``o`` and ``s``: whether what changed on the other photo is the same change
    (the same cells, the same way in colour), not some other change of the same size. At least
    :data:`MIN_AGREEMENT`.
``effect_saved``, ``effect_here``
    the mean ΔE of the change per cell on each photo (the size of each effect; a saved effect below
    :data:`MIN_EFFECT` cannot be carried or not: ``None``).
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from ..metrics import CHANGE_GRID, lab_change_grid

#: the cells per side of the grid the effects are compared on
GRID = CHANGE_GRID
#: the least share of the saved effect the other photo must show
MIN_CARRIED = 0.5
#: the least cosine between the two effects
MIN_AGREEMENT = 0.5
#: the least mean ΔE (Lab units) per cell of a saved effect that is judged at all
MIN_EFFECT = 0.5


def effect_map(result: np.ndarray, photo: np.ndarray, mask: Optional[np.ndarray] = None) -> np.ndarray:
    """(GRID, GRID, 3) float32: the Lab change of ``result`` from ``photo`` (squares, H×W×3 uint8)
    averaged over each cell of the grid; ``mask`` (H×W, 0..255), when given, weighs the change
    (:func:`priorpaint.metrics.lab_change_grid`, which a saved vector's ``effect`` is made with)."""
    return lab_change_grid(result, photo, mask, GRID)


def vector_carried(saved: np.ndarray, here: np.ndarray) -> Dict[str, object]:
    """``{"carried", "agreement", "effect_saved", "effect_here", "failed"}`` from two effect maps
    (:func:`effect_map`: on the photo the vector was saved on, and on another photo)."""
    s = np.asarray(saved, np.float64).ravel()
    o = np.asarray(here, np.float64).ravel()
    size = lambda e: float(np.linalg.norm(e.reshape(-1, 3), axis=1).mean())   # noqa: E731
    out: Dict[str, object] = {"carried": None, "agreement": None, "effect_saved": round(size(s), 3),
                              "effect_here": round(size(o), 3), "failed": []}
    if out["effect_saved"] < MIN_EFFECT:
        return out
    out["carried"] = round(float(np.dot(o, s) / np.dot(s, s)), 4)
    out["agreement"] = round(float(np.dot(o, s) / max(np.linalg.norm(o) * np.linalg.norm(s), 1e-12)), 4)
    failed = []
    if out["carried"] < MIN_CARRIED:
        failed.append("carried")
    if out["agreement"] < MIN_AGREEMENT:
        failed.append("agreement")
    out["failed"] = failed
    return out
