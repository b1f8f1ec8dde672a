"""Region geometry shared by every painted edit and by compositing: the crop's square, the
part of it inside the photo (the *layer box*, where results go), and masks moved between
the photo, the square and the model's resolution.

Coordinates: the square is ``(x0, y0, side)`` in photo pixels and may extend outside the
photo; a :class:`Rect` is ``(x, y, w, h)``.
"""

from __future__ import annotations

from typing import List, NamedTuple, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


class Rect(NamedTuple):
    """An axis-aligned box ``(x, y, w, h)`` in photo pixels."""
    x: int
    y: int
    w: int
    h: int

    @classmethod
    def square_in_image(cls, square: Sequence[int], size: Tuple[int, int]) -> "Rect":
        """The part of the square ``(x0, y0, side)`` inside an image of ``size`` ``(W, H)``."""
        x0, y0, side = (int(v) for v in square)
        W, H = size
        xs0, ys0, xs1, ys1 = max(x0, 0), max(y0, 0), min(x0 + side, W), min(y0 + side, H)
        return cls(xs0, ys0, max(xs1 - xs0, 0), max(ys1 - ys0, 0))

    @property
    def rows(self) -> slice:
        return slice(self.y, self.y + self.h)

    @property
    def cols(self) -> slice:
        return slice(self.x, self.x + self.w)

    def within(self, square: Sequence[int]) -> Tuple[slice, slice]:
        """``(rows, cols)`` of this box inside the square-region array of ``square``."""
        x0, y0 = int(square[0]), int(square[1])
        return slice(self.y - y0, self.y - y0 + self.h), slice(self.x - x0, self.x - x0 + self.w)


def place_in_square(arr: np.ndarray, square: Sequence[int], image_size: Tuple[int, int], what: str,
                    nearest: bool, fill=0) -> Tuple[np.ndarray, np.ndarray, List[str]]:
    """Place an image-sized or layer-box-sized array in the square.

    Returns (region array (side, side[, C]), valid (side, side) bool: pixels the array
    covered, notes).  Other sizes are resized to the layer box (nearest-neighbour for
    label maps, bilinear for masks) with a note.
    """
    side = int(square[2])
    W, H = image_size
    box = Rect.square_in_image(square, image_size)
    notes: List[str] = []
    h, w = arr.shape[:2]
    if (w, h) == (W, H):
        sub = arr[box.rows, box.cols]
    elif (w, h) == (box.w, box.h):
        sub = arr
    else:
        resample = Image.NEAREST if nearest else Image.BILINEAR
        sub = np.asarray(Image.fromarray(np.ascontiguousarray(arr)).resize((box.w, box.h), resample))
        notes.append(f"{what} is {w}x{h}, neither the image ({W}x{H}) nor the layer box ({box.w}x{box.h}); "
                     f"resized to {box.w}x{box.h} ({'nearest-neighbour' if nearest else 'bilinear'})")
    region = np.full((side, side) + sub.shape[2:], fill, dtype=sub.dtype)
    valid = np.zeros((side, side), bool)
    inner = box.within(square)
    region[inner] = sub
    valid[inner] = True
    return region, valid, notes


def mask_channel(arr: np.ndarray) -> np.ndarray:
    """A painted mask's strength 0..255: its alpha when it has a non-trivial alpha, else its luminance."""
    if arr.ndim == 2:
        return arr
    if arr.shape[2] in (2, 4) and arr[..., -1].min() < 255:
        return arr[..., -1]
    rgb = arr[..., :3] if arr.shape[2] >= 3 else np.repeat(arr[..., :1], 3, axis=2)
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).convert("L"))


def region_to_model(mask: np.ndarray, resolution: int) -> torch.Tensor:
    """(side, side) uint8 -> (R, R) float in [0, 1] (area resize)."""
    im = Image.fromarray(np.ascontiguousarray(mask), "L")
    if im.width != resolution:
        im = im.resize((resolution, resolution), Image.BOX if im.width > resolution else Image.BILINEAR)
    return torch.from_numpy(np.asarray(im, np.float32) / 255.0)


def model_to_region(mask: torch.Tensor, side: int) -> np.ndarray:
    """(R, R) bool/float in [0, 1] at model resolution -> (side, side) uint8 square-region mask."""
    arr = (mask.detach().float().clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
    if arr.shape[0] == side:
        return arr
    return np.asarray(Image.fromarray(arr, "L").resize((side, side), Image.NEAREST))


def split_weights(mask_model: torch.Tensor, split_size: int, erode: int, strict: bool = True) -> Tuple[torch.Tensor, int]:
    """Per-cell weights (s, s) in [0, 1] of a model-resolution mask (R, R), and how they were made.

    The mask is eroded by ``erode`` px (the footprint).  ``strict``: a cell's weight is the
    mask's minimum over the cell (only cells wholly inside the eroded mask move, so the output
    outside the painted region does not change at all) — level 3.  When no cell is wholly
    inside: the fraction of each cell the eroded mask covers (level 1 under ``strict``, 2
    otherwise); when the erosion leaves nothing: the plain mask's coverage (level 0)."""
    m = mask_model.float()
    eroded = m
    if erode > 0:
        support = (m > 0).float()[None, None]
        inside = -F.max_pool2d(-F.pad(support, (erode,) * 4, value=0.0), 2 * erode + 1, stride=1)[0, 0]
        eroded = m * inside
    used = eroded.sum() > 0
    src = eroded if used else m
    w = F.adaptive_avg_pool2d(src[None, None], split_size)[0, 0]
    level = 2 if used else 0
    if used and strict:
        # only cells wholly inside the eroded mask: their footprint stays inside the painted region
        full = -F.adaptive_max_pool2d(-src[None, None], split_size)[0, 0]
        if (full > 0).any():
            return full.clamp(0, 1), 3
        level = 1
    return w.clamp(0, 1), level
