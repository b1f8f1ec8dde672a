"""From a photo and a selection to the model's input, and the selection's geometry.

The selection is a box ``(x, y, w, h)`` or a soft mask (0..255, image-sized).  Its bounding
box, widened by a context margin and squared, is cut from the photo (padding by edge
replication where the square leaves the image), then resized with antialiasing to the
model's resolution.  The selection mask travels with it, cut and resized the same way.
A face model that declares an alignment gets a rotated, scaled square instead (the eyes
where the model expects them; :mod:`priorpaint.compositing.align`): the :class:`Crop`
methods move arrays between the photo and either kind of square.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from PIL import Image

from ..errors import InputError
from ..images import Photo
from . import align as al_
from .regions import Rect, place_in_square

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
    #: an aligned crop (a face model's eyes where it expects them): the square is rotated and
    #: scaled in the photo; ``square`` is then the unrotated square of the same centre and side
    alignment: Optional[al_.Alignment] = None
    #: aligned crops: the selection in photo pixels for the layer box (uint8), the bound of
    #: every composite (a pixel the user did not select is never changed)
    selection: Optional[np.ndarray] = None

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
        """The part of the square inside the photo: where the result layer goes (aligned: the
        bounding box of the rotated square, clipped to the photo)."""
        if self.alignment is not None:
            return Rect(*al_.bounding_box(self.alignment, self.image_size))
        return Rect.square_in_image(self.square, self.image_size)

    def region_of(self, full: np.ndarray, pad: str = "zero", nearest: bool = False) -> np.ndarray:
        """This crop's square of an image-sized (H, W[, C]) array; outside the image: zero
        (``pad="edge"``: the nearest edge pixel).  Aligned crops warp (``nearest`` for labels)."""
        if self.alignment is not None:
            return al_.warp_to_square(full, self.alignment, nearest=nearest, edge=pad == "edge")
        return cut_square(full, self.square, pad=pad)

    def to_layer(self, arr: np.ndarray, nearest: bool = False) -> np.ndarray:
        """A square-region array (side, side[, C]) -> the layer box's pixels of it."""
        box = self.layer_box
        if self.alignment is not None:
            return al_.warp_to_photo(arr, self.alignment, tuple(box), nearest=nearest)
        return np.ascontiguousarray(arr[box.within(self.square)])

    def from_layer(self, arr: np.ndarray, nearest: bool = False) -> np.ndarray:
        """A layer-box-sized array -> the square (zero where the layer box does not reach)."""
        box = self.layer_box
        if self.alignment is not None:
            return al_.warp_to_square(arr, self.alignment, nearest=nearest, origin=(box.x, box.y))
        side = self.square[2]
        out = np.zeros((side, side) + arr.shape[2:], arr.dtype)
        out[box.within(self.square)] = arr
        return out

    def place(self, arr: np.ndarray, what: str, nearest: bool, fill=0):
        """An image-sized or layer-box-sized array placed in the square: ``(region, valid, notes)``
        (see :func:`priorpaint.compositing.regions.place_in_square`)."""
        if self.alignment is None:
            return place_in_square(arr, self.square, self.image_size, what, nearest, fill)
        box = self.layer_box
        W, H = self.image_size
        h, w = arr.shape[:2]
        notes: List[str] = []
        if (w, h) == (W, H):
            sub = arr[box.rows, box.cols]
        elif (w, h) == (box.w, box.h):
            sub = arr
        else:
            sub = np.asarray(Image.fromarray(np.ascontiguousarray(arr)).resize(
                (box.w, box.h), Image.NEAREST if nearest else Image.BILINEAR))
            notes.append(f"{what} is {w}x{h}, neither the image ({W}x{H}) nor the layer box ({box.w}x{box.h}); "
                         f"resized to {box.w}x{box.h} ({'nearest-neighbour' if nearest else 'bilinear'})")
        valid = self.from_layer(np.ones(sub.shape[:2], np.uint8), nearest=True) > 0
        region = self.from_layer(np.ascontiguousarray(sub), nearest=nearest)
        if fill != 0:
            region[~valid] = fill
        return region, valid, notes

    def photo_mask(self, mask: np.ndarray) -> np.ndarray:
        """Aligned crops: a square-region edit mask (uint8) -> the layer box (uint8), cut to the
        selection: where a composite may change the photo."""
        inside = self.to_layer(mask)
        return np.where(self.selection > 0, inside, 0).astype(np.uint8)


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
    if inner.dtype in (np.uint8, np.float32) and inner.ndim in (2, 3) and min(inner.shape[:2]) > 0:
        # OpenCV's border copy: the same pixels as np.pad, ~50x quicker on a 36 MP square
        (top, bottom), (left, right) = widths[0], widths[1]
        out = cv2.copyMakeBorder(np.ascontiguousarray(inner), top, bottom, left, right,
                                 cv2.BORDER_REPLICATE if pad == "edge" else cv2.BORDER_CONSTANT, value=0)
        return out.reshape(out.shape[:2] + inner.shape[2:])
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
              content_box: Optional[Sequence[int]] = None, alignment=None,
              eyes: Optional[Sequence[float]] = None, device=None) -> Crop:
    """The model's view of a selection given as a box or an image-sized soft mask.

    ``content_box`` (a manifest's ``[x, y, w, h]`` in model pixels, e.g. the LSUN car
    model's rows 64-447): the selection and its margin fill that box, not the whole canvas;
    the canvas outside it is the training data's zero padding, so the crop is black there
    (not photo pixels) and nothing of it is ever composited (the edit mask is 0 there).

    ``alignment`` (a manifest's ``{"eyes": [[x, y], [x, y]]}`` in model pixels, a face
    model's layout): the square is rotated and scaled so the photo's eyes land there
    (:mod:`priorpaint.compositing.align`); ``eyes`` ``(x1, y1, x2, y2)`` are the photo's, else
    they are detected near the selection.  Without a face the crop is the unaligned box,
    with a note.  ``device``: where a five-point layout's landmark detector runs (default the CPU)."""
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
    aligned = _alignment(photo, sel, resolution, alignment, eyes, notes, device)
    if aligned is not None:
        c = aligned.corners().mean(axis=0)
        side = aligned.side
        square = (int(round(c[0] - side / 2.0)), int(round(c[1] - side / 2.0)), side)
        region = al_.warp_to_square(photo.rgb, aligned, edge=True)
    else:
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
    crop = Crop(square=square, box=sel, image_size=size, resolution=resolution, region=region,
                region_mask=np.zeros((square[2], square[2]), np.uint8), notes=notes, alignment=aligned)
    if aligned is not None:
        box = crop.layer_box
        if full_mask is not None:
            crop.selection = np.ascontiguousarray(full_mask[box.rows, box.cols])
        else:
            crop.selection = np.zeros((box.h, box.w), np.uint8)
            x, y, w, h = sel
            crop.selection[max(y - box.y, 0):max(y + h - box.y, 0), max(x - box.x, 0):max(x + w - box.x, 0)] = 255
        crop.region_mask = crop.from_layer(crop.selection)
        whole = int((full_mask > 0).sum()) if full_mask is not None else sel[2] * sel[3]
        _note_coverage(crop, notes, whole)
    elif full_mask is not None:
        crop.region_mask = cut_square(full_mask, square, pad="zero")
    else:
        x, y, w, h = sel
        crop.region_mask[y - square[1]:y - square[1] + h, x - square[0]:x - square[0] + w] = 255
    return crop


def check_eyes_declared(alignment, eyes, model: Optional[str] = None) -> None:
    """Given eye points need a model whose manifest declares where the eyes go."""
    if alignment is None and eyes is not None:
        raise InputError(f"eye positions (--eyes) need a model that declares an alignment (a face model such as "
                         f"stylegan2-ffhq-1024); {model or 'this model'} declares none")


def _alignment(photo: Photo, sel, resolution: int, alignment, eyes, notes: List[str], device=None):
    """The :class:`~priorpaint.compositing.align.Alignment` of a crop, or None (unaligned)."""
    if alignment is None:
        check_eyes_declared(alignment, eyes)
        return None
    layout = al_.check_layout(alignment, resolution)
    model_eyes = layout.eyes
    points = face = None
    if eyes is not None:
        found, source = al_.check_eyes(eyes, photo.size), "given"
    else:
        if layout.points is not None:   # the model's layout is a five-point one: MTCNN's five points
            points, face = al_.detect_points(photo.rgb, sel, device=device or "cpu")
        if points is not None:
            found = (tuple(points[0]), tuple(points[1]))
        else:
            found, face, why = al_.detect_eyes(photo.rgb, sel)
            if found is None:
                for n in why:
                    log.info(n)
                notes.extend(why)
                return None
        source = "detected"
    a = al_.alignment_for(found, model_eyes, resolution, source, face,
                          max_side=int(math.ceil(1.5 * max(photo.size))),  # eyes far apart: sampled coarser
                          points=points, model_points=layout.points,
                          keep=sel if layout.frame == "selection" else None)
    (ex1, ey1), (ex2, ey2) = a.eyes
    how = (f"five points ({source}: eyes {ex1:.1f},{ey1:.1f} and {ex2:.1f},{ey2:.1f}, nose, mouth corners) go to "
           "the model's by least squares") if a.points is not None else \
        (f"eyes {ex1:.1f},{ey1:.1f} and {ex2:.1f},{ey2:.1f} ({source}) go to the model's "
         f"{model_eyes[0][0]:g},{model_eyes[0][1]:g} and {model_eyes[1][0]:g},{model_eyes[1][1]:g}")
    zoom = "" if a.zoom <= 1.0 else f"; the model's layout shrunk {a.zoom:.2f}x " + (
        "so the square keeps the selection" if a.zoom < al_.MAX_ZOOM else f"(at most {al_.MAX_ZOOM:g}x)")
    notes.append(f"aligned the face as the model expects: {how}; the square is {a.side} px, "
                 f"rotated {a.angle:.1f} degrees{zoom}")
    return a


def _note_coverage(crop: Crop, notes: List[str], total: int) -> None:
    """Aligned crops frame the face, not the selection: say what share of the ``total`` selected
    pixels (the whole selection, not only its part inside the layer box) they keep."""
    covered = int((crop.photo_mask(crop.region_mask) > 0).sum())
    if total and covered < 0.98 * total:
        notes.append(f"the aligned square covers {100.0 * covered / total:.0f} % of the selection: "
                     "the rest is left as it is")
