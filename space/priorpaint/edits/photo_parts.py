"""Where the *photo* shows hair, skin and background: a label map read from the photo's own pixels.

The segmentation head (:mod:`priorpaint.edits.seghead`) labels the generator's rendering with the
parts discovered on its samples; on a projected real photo its "hair" can be anything dark (on the
astronaut: the suit and a blob beside an eye, while the real hair reads "face-outline").  The texture
composite (:mod:`priorpaint.compositing.texture`) and the kind measure need to know where the photo's
own hair, skin and background are, so they read it from the photo's square, at twice the model's
resolution:

* **background**: pixels within :data:`BACKGROUND_DE` (CIE Lab ΔE) of the median colour of the
  square's border ring, connected to the border;
* **skin**: pixels within :data:`SKIN_DE` of the median colour of the face's middle (the square's
  central patch: a face box centres the face);
* **hair**: the rest, above :data:`HAIR_BELOW` of the square's height (below it: clothes), opened
  its enclosed holes filled (its highlights stay hair), and kept in components of at least :data:`HAIR_MIN_AREA` of the square (eyes, brows and the mouth
  are smaller);
* **features**: the rest (eyes, brows, mouth, clothes): never a source of skin texture.

It is a portrait heuristic: hair the colour of the background or of the skin is not found, and the
edit's verdict then says the photo shows too little hair to take its look from.
"""

from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np
from scipy import ndimage

#: the classes of :func:`photo_parts`, in their label order
PARTS: Tuple[str, ...] = ("background", "hair", "skin", "features")
BACKGROUND, HAIR, SKIN, FEATURES = range(4)
#: colour distances (CIE Lab ΔE) from the border's and from the face middle's median colour
BACKGROUND_DE, SKIN_DE = 12.0, 16.0
#: the border ring's width and the face middle patch (rows, cols), as shares of the square
BORDER, MIDDLE = 1 / 16, ((0.45, 0.65), (0.35, 0.65))
#: hair is looked for above this share of the square's height
HAIR_BELOW = 0.65
#: the least area of a hair component (a share of the square) and the opening (a share of the side)
HAIR_MIN_AREA, HAIR_OPEN = 0.02, 1 / 32


def photo_parts(square: np.ndarray, resolution: int) -> np.ndarray:
    """(R, R) int labels (:data:`PARTS`) of the photo's square (side, side, 3 uint8), R = ``resolution``."""
    w = 2 * int(resolution)
    small = cv2.resize(np.ascontiguousarray(square[..., :3]), (w, w), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    b = max(1, int(round(BORDER * w)))
    ring = np.ones((w, w), bool)
    ring[b:-b, b:-b] = False
    de_bg = np.linalg.norm(lab - np.median(lab[ring], axis=0), axis=2)
    (r0, r1), (c0, c1) = MIDDLE
    mid = lab[int(r0 * w):int(r1 * w), int(c0 * w):int(c1 * w)].reshape(-1, 3)
    de_skin = np.linalg.norm(lab - np.median(mid, axis=0), axis=2)
    near_bg = (de_bg < BACKGROUND_DE).astype(np.uint8)
    n, comp = cv2.connectedComponents(near_bg, connectivity=4)
    touching = np.unique(np.concatenate([comp[0], comp[-1], comp[:, 0], comp[:, -1]]))
    background = np.isin(comp, touching[touching > 0]) & (near_bg > 0)
    hair = ~background & (de_skin >= SKIN_DE)
    hair[int(HAIR_BELOW * w):] = False
    k = max(1, int(round(HAIR_OPEN * w)))
    hair = cv2.morphologyEx(hair.astype(np.uint8), cv2.MORPH_OPEN, np.ones((k, k), np.uint8))
    hair = (ndimage.binary_fill_holes(hair > 0) & ~background).astype(np.uint8)
    n, comp, stats, _ = cv2.connectedComponentsWithStats(hair, connectivity=8)
    big = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= HAIR_MIN_AREA * w * w]
    hair = np.isin(comp, big)
    labels = np.full((w, w), FEATURES, np.int64)
    labels[de_skin < SKIN_DE] = SKIN
    labels[background] = BACKGROUND
    labels[hair] = HAIR
    return labels[::2, ::2].copy() if w == 2 * resolution else cv2.resize(labels, (resolution,) * 2,
                                                                           interpolation=cv2.INTER_NEAREST)


def part_of(name: str) -> int:
    """The photo class a segmentation head's class stands for (hair, background, else skin)."""
    return {"hair": HAIR, "background": BACKGROUND}.get(name, SKIN)
