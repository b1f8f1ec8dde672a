"""The effect ratio: how much of the generator's own effect an edit carries onto the photo.

Each named direction declares, in its model's directions manifest, the attribute that measures it
(``"measure"``): a face-geometry proxy from the independent landmark detector
(:mod:`priorpaint.faces.mtcnn`) or one of the pixel attributes the supervised directions use
(:data:`priorpaint.edits.directions.boundaries.ATTRIBUTES`):

``yaw``   (nose x − the eyes' mean x) / eye distance, along the eye line (head turn, profile);
``roll``  the eye line's angle in degrees (in-plane tilt);
``pitch`` the nose's distance below the eye line over the mouth's (nod);
``crown_lines`` contours along the eye line in the region above the eyes, which the landmarks place
          (a cap's brim, a headband: :mod:`priorpaint.measures.face_regions`).

The *reference* is the median change of that attribute over the generator's own samples when the
same direction is applied at the same strength (:func:`reference_change`, cached per generator,
direction and strength). The *achieved* change is the attribute of the result minus the photo's,
both measured on the selection's square at the photo's resolution. ``effect_ratio`` = achieved /
reference: 1 carries the model's effect, 0 nothing, negative the opposite.
"""

from __future__ import annotations

import threading
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .attributes import PORTRAIT_ATTRIBUTES, portrait_attribute
from .face_regions import REGION_ATTRIBUTES, region_attributes

FACE_ATTRIBUTES = ("yaw", "roll", "pitch") + REGION_ATTRIBUTES
#: faces are measured on a square shrunk or grown to this side (MTCNN's sweet spot)
FACE_SIDE = 256
#: samples of the generator for the reference change
REFERENCE_SAMPLES = 16
#: a reference change smaller than this (in the attribute's units) is no effect to carry
MIN_REFERENCE = {"yaw": 0.03, "roll": 1.0, "pitch": 0.02, "crown_lines": 0.05}

_memo: Dict[tuple, object] = {}
_lock = threading.Lock()


def direction_measure(model_id: Optional[str], name: str) -> Optional[str]:
    """The attribute a named direction declares in its manifest (``None``: not declared)."""
    from ..edits.directions.named import load_named
    for d in load_named(model_id).get("directions", []):
        if d.get("name") == name:
            return d.get("measure") or d.get("attribute")
    return None


def _face_square(img: np.ndarray):
    """``(small, face)``: the square resized to :data:`FACE_SIDE` and its largest face (or None)."""
    from ..faces.landmarks import scaled_face
    return scaled_face(img, side=FACE_SIDE)


def attribute_change(before: np.ndarray, after: np.ndarray, name: str) -> Optional[Tuple[float, float]]:
    """``(value before, value after)`` of ``name``; a region attribute (:data:`REGION_ATTRIBUTES`) is
    read in the region placed by *before*'s landmarks on *after* and on *before moved along
    after's own optical flow* (:func:`~priorpaint.measures.artefacts.result_flow`), so it counts
    content the motion does not explain: a pure warp, which moves a hat's brim or a glasses' rim
    into the region, reads no change. None: no face or no region."""
    if name not in REGION_ATTRIBUTES:
        a, b = attribute(before, name), attribute(after, name)
        return None if a is None or b is None else (a, b)
    from .artefacts import result_flow, warp
    small, face = _face_square(before)
    if face is None:
        return None
    # the photo moved along the result's own flow: what a warp alone would show there
    moved = np.clip(np.round(warp(before, result_flow(after, before))), 0, 255).astype(np.uint8)
    small, _ = _face_square(moved)
    other, _ = _face_square(after)
    a, b = region_attributes(small, face.points)[name], region_attributes(other, face.points)[name]
    return None if a is None or b is None else (a, b)


def face_geometry(img: np.ndarray) -> Optional[Dict[str, float]]:
    """``{"yaw", "roll", "pitch", "crown_lines"}`` of the largest face in an RGB uint8 square (None: no
    face; ``crown_lines`` is None where its region leaves the square)."""
    small, face = _face_square(img)
    if face is None:
        return None
    return {"yaw": face.yaw, "roll": face.roll, "pitch": face.pitch, **region_attributes(small, face.points)}


def pixel_attribute(img: np.ndarray, name: str) -> float:
    from ..edits.directions.boundaries import ATTRIBUTES
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    t = torch.from_numpy(np.ascontiguousarray(img[..., :3])).permute(2, 0, 1)[None].float() / 127.5 - 1.0
    return float(ATTRIBUTES[name][0](t)[0])


def attribute(img: np.ndarray, name: str) -> Optional[float]:
    if name in FACE_ATTRIBUTES:
        g = face_geometry(img)
        return None if g is None else g.get(name)
    if name in PORTRAIT_ATTRIBUTES:                  # the portrait sliders' measures (measures/attributes.py)
        return portrait_attribute(img, name)
    return pixel_attribute(img, name)


def _samples_uint8(x: torch.Tensor) -> np.ndarray:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def _changes(before: np.ndarray, after: np.ndarray, measures) -> Dict[str, List[float]]:
    """Per measure, the change of each sample pair where it can be read (the landmark detector run once
    per image for the landmark proxies, however many of them are asked)."""
    out: Dict[str, List[float]] = {m: [] for m in measures}
    for a, b in zip(before, after):
        geo = None
        for m in measures:
            if m in ("yaw", "roll", "pitch"):
                if geo is None:
                    geo = (face_geometry(a), face_geometry(b))
                pair = None if geo[0] is None or geo[1] is None else (geo[0][m], geo[1][m])
            else:
                pair = attribute_change(a, b, m)
            if pair is not None:
                out[m].append(pair[1] - pair[0])
    return out


def _model_change(gen, moves, measures, samples: int, seed: int) -> Dict[str, Optional[float]]:
    """Per measure, the median change over ``gen``'s own samples (``samples`` latents from ``seed``)
    when every ``(direction, strength)`` of ``moves`` is applied to them, in order, as an edit stack
    applies them (:func:`~priorpaint.edits.directions.shift`); None where fewer than half the samples
    could be measured."""
    from ..edits.directions import shift
    split = getattr(gen, "default_split", None) or gen.layer_names[len(gen.layer_names) // 2]
    z = gen.sample_latents(samples, seed=seed).to(gen.device)
    with torch.no_grad():
        h = gen.forward_to(z, split)
        before = _samples_uint8(gen.forward_from(split, h, z=z))
        ze, he, iv = z, h, None
        for d, strength in moves:
            ze, he, iv = shift(gen, ze, he, split, d, float(strength), iv)
        after = _samples_uint8(gen.forward_from(split, he, interventions=iv or None, z=ze))
    return {m: (float(np.median(c)) if len(c) >= samples // 2 else None)
            for m, c in _changes(before, after, measures).items()}


def reference_change(gen, name: str, strength: float, model_id: Optional[str] = None,
                     samples: int = REFERENCE_SAMPLES, seed: int = 0) -> Optional[float]:
    """The median change of the direction's attribute on ``gen``'s own samples at ``strength``
    (``None`` when the direction declares no measure or too few faces are found)."""
    from .. import store
    from ..edits.directions import get_direction
    measure = direction_measure(model_id, name)
    if measure is None:
        return None
    key = (store.model_key(gen), name, round(float(strength), 3), samples, seed)
    with _lock:
        if key in _memo:
            return _memo[key]
    value = _model_change(gen, [(get_direction(gen, name, model_id), strength)], [measure], samples, seed)[measure]
    with _lock:
        _memo[key] = value
    return value


def stack_reference(gen, dirs: Sequence[Tuple[str, float]], model_id: Optional[str] = None,
                    samples: int = REFERENCE_SAMPLES, seed: int = 0,
                    also: Sequence[str] = ()) -> Dict[str, Optional[float]]:
    """The generator's own change of each measure the stacked directions declare, with *all* of
    ``dirs`` (``(name, strength)``, in the stack's order) applied together to the same samples
    :func:`reference_change` reads: measure → median change (None: too few faces). Where the
    generator's own directions interact (turned too, its bow moves the detector's pitch by 0.044 at
    head_turn=+2 + head_tilt=+2, against 0.078 alone) that is part of the reference rather than counted
    against the photo. ``also``: further measures to read (a head
    axis's proxy). Cached per generator, stack and samples; one direction and no further measure gives
    :func:`reference_change`'s figure."""
    from .. import store
    from ..edits.directions import get_direction
    declared = [m for m in (direction_measure(model_id, n) for n, _ in dirs) if m is not None]
    measures = sorted(set(declared) | set(also))
    if not measures:
        return {}
    if len(dirs) == 1 and measures == declared:
        return {measures[0]: reference_change(gen, dirs[0][0], dirs[0][1], model_id, samples, seed)}
    key = ("stack", store.model_key(gen), tuple((n, round(float(s), 3)) for n, s in dirs), tuple(measures),
           samples, seed)
    with _lock:
        if key in _memo:
            return dict(_memo[key])
    moves = [(get_direction(gen, n, model_id), s) for n, s in dirs]
    value = _model_change(gen, moves, measures, samples, seed)
    with _lock:
        _memo[key] = value
    return dict(value)


def effect_ratio(result: np.ndarray, photo: np.ndarray, measure: str,
                 reference: Optional[float]) -> Tuple[Optional[float], Optional[float]]:
    """``(achieved change, ratio)`` of ``measure`` on ``result`` vs ``photo`` (squares, uint8);
    the ratio is ``None`` without a reference large enough to compare with."""
    pair = attribute_change(photo, result, measure)
    if pair is None:
        return None, None
    a, b = pair
    achieved = float(b - a)
    if reference is None or abs(reference) < MIN_REFERENCE.get(measure, 1e-3):
        return achieved, None
    return achieved, achieved / reference
