"""Semantic latent directions for any :class:`~priorpaint.models.layered.LayeredGenerator`.

One module per job:

* :mod:`.closedform` — SeFa, closed form (eigenvectors of the first affine map's ``AᵀA``);
* :mod:`.pca` — GANSpace, PCA of the split-layer feature;
* :mod:`.boundaries` — InterFaceGAN boundaries from measured attributes or a user's examples;
* :mod:`.named` — a model's named directions (``weights_manifest/directions/<model>.json``);
* :mod:`.kind` — the ``direction`` edit kind: how a direction moves a state;
* :mod:`.derive` — grids and measured effects, to name directions;
* :mod:`.base` — the :class:`Direction` type, method versions, ranges and the vector cache.

Every computation is deterministic for its seed.
"""

from ... import store
from .base import (DEFAULT_RANGE, GANSPACE_COMPONENTS, GANSPACE_SAMPLES, METHOD_VERSIONS, RAW_PATTERN,
                   Direction, cache_path, cached, directions_cache_dir)
from .derive import GRID_STRENGTHS, derive, direction_grid, images_along, measure_direction, raw_direction
from .pca import compute_ganspace, ganspace
from .kind import apply_direction, apply_direction_edit, check_direction, parse_direction, shift
from .named import get_direction, list_directions, load_named, prepare
from .closedform import compute_sefa, sefa, sefa_weight
from .boundaries import (ATTRIBUTES, attribute_direction, condition_direction, examples_direction,
                         fit_boundary, labelled_direction, measure)


def clear_memory_cache() -> None:
    """Forget the in-process copies of derived data (the files stay)."""
    store.clear()


__all__ = [
    "ATTRIBUTES", "DEFAULT_RANGE", "Direction", "GANSPACE_COMPONENTS", "GANSPACE_SAMPLES", "GRID_STRENGTHS",
    "METHOD_VERSIONS", "RAW_PATTERN", "apply_direction", "apply_direction_edit", "attribute_direction",
    "cache_path", "cached", "check_direction", "clear_memory_cache", "compute_ganspace", "compute_sefa",
    "condition_direction", "derive", "direction_grid", "directions_cache_dir", "examples_direction",
    "fit_boundary", "ganspace", "get_direction", "images_along", "labelled_direction", "list_directions", "load_named",
    "measure", "measure_direction", "parse_direction", "prepare", "raw_direction", "sefa", "sefa_weight",
    "shift",
]
