"""From a photo and a selection to the model's input, and the selection's geometry.

The selection is a box ``(x, y, w, h)`` or a soft mask (0..255, image-sized).  Its bounding
box, widened by a context margin and squared, is cut from the photo (padding by edge
replication where the square leaves the image), then resized with antialiasing to the
model's resolution.  The selection mask travels with it, cut and resized the same way.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image

from ..errors import InputError
from ..images import Photo
from .regions import Rect

log = logging.getLogger(__name__)
MIN_BOX = 8
DEFAULT_MARGIN = 0.1


@dataclass
class Crop:
    """Where the model's square sits in the photo, and what it sees there."""
    square: Tuple[int, int, int]          # x0, y0, side (may extend outside the photo)
    box: Tuple[int, int, int, int]        # the selection's bounding box, clipped (x, y, w, h)
    image_size: Tuple[int, int]           # (W, H) of the photo
    resolution: int
    region: np.ndarray                    # (side, side, 3) uint8: photo pixels of the square (edge-padded)
    region_mask: np.ndarray               # (side, side) uint8: the selection inside the square
    notes: List[str] = field(default_factory=list)

    def target(self, device=None) -> torch.Tensor:
        """The crop at model resolution, (1, 3, R, R) in [-1, 1]."""
        small = np.array(resize_rgb(self.region, self.resolution))
        t = torch.from_numpy(small).permute(2, 0, 1).float().div(127.5).sub(1.0)
        return t.unsqueeze(0).to(device or "cpu")

    def model_mask(self, device=None, mask: Optional[np.ndarray] = None) -> torch.Tensor:
        """A square-region mask (default: the selection) at model resolution, (1, 1, R, R) in [0, 1]."""
        m = self.region_mask if mask is None else mask
        small = np.array(resize_gray(m, self.resolution))
        return torch.from_numpy(small).float().div(255.0)[None, None].to(device or "cpu")

    @property
    def layer_box(self) -> Rect:
        """The part of the square inside the photo: where the result layer goes."""
        return Rect.square_in_image(self.square, self.image_size)

    def region_of(self, full: np.ndarray) -> np.ndarray:
        """Cut this crop's square out of an image-sized (H, W[, C]) array, zero outside the image."""
        return cut_square(full, self.square, pad="zero")


def resize_rgb(arr: np.ndarray, size: int) -> np.ndarray:
    if arr.shape[0] == size and arr.shape[1] == size:
        return arr
    return np.asarray(Image.fromarray(arr, "RGB").resize((size, size), Image.LANCZOS, reducing_gap=None))


def resize_gray(arr: np.ndarray, size: int) -> np.ndarray:
    if arr.shape[0] == size and arr.shape[1] == size:
        return arr
    return np.asarray(Image.fromarray(arr, "L").resize((size, size), Image.BILINEAR if arr.shape[0] < size else Image.BOX))


def cut_square(full: np.ndarray, square: Tuple[int, int, int], pad: str = "edge") -> np.ndarray:
    """The ``side``×``side`` window at (x0, y0) of ``full``; outside the image: edge or zero."""
    x0, y0, side = square
    h, w = full.shape[:2]
    box = Rect.square_in_image(square, (w, h))
    xs0, ys0, xs1, ys1 = box.x, box.y, box.x + box.w, box.y + box.h
    inner = full[box.rows, box.cols]
    widths = [(ys0 - y0, y0 + side - ys1), (xs0 - x0, x0 + side - xs1)] + [(0, 0)] * (full.ndim - 2)
    if all(a == 0 and b == 0 for a, b in widths):
        return np.ascontiguousarray(inner)
    if pad == "edge":
        return np.pad(inner, widths, mode="edge")
    return np.pad(inner, widths, mode="constant")


def parse_box(text: str) -> Tuple[int, int, int, int]:
    try:
        parts = [int(round(float(p))) for p in str(text).replace(",", " ").split()]
    except (ValueError, OverflowError):
        parts = []
    if len(parts) != 4:
        raise InputError(f"the box must be four numbers X,Y,W,H (left, top, width, height in px; commas or "
                         f"spaces), got {str(text)[:60]!r}")
    return tuple(parts)  # type: ignore[return-value]


def clip_box(box: Sequence[int], size: Tuple[int, int], notes: List[str]) -> Tuple[int, int, int, int]:
    """Clip a box to the image; refuse one wholly outside or smaller than MIN_BOX."""
    x, y, w, h = (int(v) for v in box)
    W, H = size
    if w <= 0 or h <= 0:
        raise InputError(f"box {x},{y},{w},{h} has no area (width and height must be positive)")
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x1 <= x0 or y1 <= y0:
        raise InputError(f"box {x},{y},{w},{h} lies outside the {W}x{H} image")
    if (x0, y0, x1, y1) != (x, y, x + w, y + h):
        note = f"box {x},{y},{w},{h} is partly outside the {W}x{H} image; clipped to {x0},{y0},{x1 - x0},{y1 - y0}"
        log.warning(note)
        notes.append(note)
    if x1 - x0 < MIN_BOX or y1 - y0 < MIN_BOX:
        raise InputError(f"selection {x1 - x0}x{y1 - y0} px is too small; it must be at least {MIN_BOX}x{MIN_BOX} px")
    return x0, y0, x1 - x0, y1 - y0


def mask_bbox(mask: np.ndarray) -> Tuple[int, int, int, int]:
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if ys.size == 0:
        raise InputError("the selection mask is empty: select a region first")
    return int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1)


def square_around(box: Tuple[int, int, int, int], size: Tuple[int, int], margin: float) -> Tuple[int, int, int]:
    """The margin-widened bounding square of ``box``, shifted inside the image when it fits."""
    x, y, w, h = box
    W, H = size
    side = int(math.ceil(max(w, h) * (1.0 + 2.0 * margin)))
    cx, cy = x + w / 2.0, y + h / 2.0
    x0, y0 = int(round(cx - side / 2.0)), int(round(cy - side / 2.0))
    # The square must contain the box even after rounding.
    x0 = min(x0, x); y0 = min(y0, y)
    x0 = max(x0, x + w - side); y0 = max(y0, y + h - side)
    # Prefer real context over padding: slide inside the image where the square fits.
    if side <= W:
        x0 = min(max(x0, 0), W - side)
    if side <= H:
        y0 = min(max(y0, 0), H - side)
    return x0, y0, side


def check_content_box(content, resolution: int) -> Tuple[int, int, int, int]:
    """A model's content box ``[x, y, w, h]`` (model pixels) inside its ``resolution`` square."""
    try:
        x, y, w, h = (int(v) for v in content)
    except (TypeError, ValueError):
        raise InputError(f"content_box must be [x, y, w, h] in model pixels, got {content!r}") from None
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > resolution or y + h > resolution:
        raise InputError(f"content_box {[x, y, w, h]} does not fit the {resolution}x{resolution} canvas")
    return x, y, w, h


def square_for_content(box: Tuple[int, int, int, int], margin: float, content: Tuple[int, int, int, int],
                       resolution: int) -> Tuple[int, int, int]:
    """The photo square whose model-canvas content box holds the margin-widened ``box``, centred."""
    x, y, w, h = box
    cx, cy, cw, ch = content
    side = int(math.ceil(max(w * (1.0 + 2.0 * margin) * resolution / cw,
                             h * (1.0 + 2.0 * margin) * resolution / ch)))
    while True:  # grow until rounding leaves the whole box inside the content rectangle
        scale = side / resolution
        x0 = int(round(x + w / 2.0 - (cx + cw / 2.0) * scale))
        y0 = int(round(y + h / 2.0 - (cy + ch / 2.0) * scale))
        r = content_rect((x0, y0, side), content, resolution)
        inner = (x0 + r[0] + 1, y0 + r[1] + 1, x0 + r[2] - 1, y0 + r[3] - 1)  # strictly inside: no edge pixels
        if inner[0] <= x and inner[1] <= y and x + w <= inner[2] and y + h <= inner[3]:
            return x0, y0, side
        side += 1


def content_rect(square: Tuple[int, int, int], content: Tuple[int, int, int, int], resolution: int):
    """The content box in square pixels: (x0, y0, x1, y1), rounded outward."""
    side = square[2]
    cx, cy, cw, ch = content
    return (int(math.floor(cx * side / resolution)), int(math.floor(cy * side / resolution)),
            int(math.ceil((cx + cw) * side / resolution)), int(math.ceil((cy + ch) * side / resolution)))


def make_crop(photo: Photo, resolution: int, box: Optional[Sequence[int]] = None,
              mask: Optional[np.ndarray] = None, margin: float = DEFAULT_MARGIN,
              content_box: Optional[Sequence[int]] = None) -> Crop:
    """The model's view of a selection given as a box or an image-sized soft mask.

    ``content_box`` (a manifest's ``[x, y, w, h]`` in model pixels, e.g. the LSUN car
    model's rows 64-447): the selection and its margin fill that box, not the whole canvas;
    the canvas outside it is the training data's zero padding, so the crop is black there
    (not photo pixels) and nothing of it is ever composited (the edit mask is 0 there)."""
    if (box is None) == (mask is None):
        raise InputError("give exactly one of a box or a mask for the selection")
    if not 0.0 <= margin <= 1.0:
        raise InputError(f"margin must be between 0 and 1, got {margin}")
    size = photo.size
    notes: List[str] = []
    if box is not None:
        sel = clip_box(box, size, notes)
        x, y, w, h = sel
        full_mask = None
    else:
        if mask.shape != (size[1], size[0]):
            raise InputError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is {size[0]}x{size[1]}")
        sel = mask_bbox(mask)
        if sel[2] < MIN_BOX or sel[3] < MIN_BOX:
            raise InputError(f"selection {sel[2]}x{sel[3]} px is too small; it must be at least {MIN_BOX}x{MIN_BOX} px")
        full_mask = mask
    content = check_content_box(content_box, resolution) if content_box is not None else None
    square = square_around(sel, size, margin) if content is None else \
        square_for_content(sel, margin, content, resolution)
    region = cut_square(photo.rgb, square, pad="edge")
    if content is not None:
        x0, y0, x1, y1 = content_rect(square, content, resolution)
        padded = np.zeros_like(region)
        padded[y0:y1, x0:x1] = region[y0:y1, x0:x1]
        region = padded
        notes.append(f"the model's content is the box {list(content)} of its {resolution}x{resolution} canvas: "
                     "the selection fills that box; the rest is the model's zero padding")
    if full_mask is not None:
        region_mask = cut_square(full_mask, square, pad="zero")
    else:
        region_mask = np.zeros((square[2], square[2]), np.uint8)
        x, y, w, h = sel
        region_mask[y - square[1]:y - square[1] + h, x - square[0]:x - square[0] + w] = 255
    return Crop(square=square, box=sel, image_size=size, resolution=resolution,
                region=region, region_mask=region_mask, notes=notes)
