"""From the generated crop back to the photo: resize, feather, blend.

The generated square is resized to the crop's size and blended into the photo with the
feathered edit mask.  The feather stays *inside* the mask (the mask is eroded before it
is blurred, then cut to the mask's support), so every pixel where the edit mask is 0 is
copied from the input bit for bit.
"""

from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np
import torch
from PIL import Image

from ..images import Photo
from .crop import Crop


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """(1, 3, R, R) or (3, R, R) in [-1, 1] -> (R, R, 3) uint8."""
    if img.dim() == 4:
        img = img[0]
    arr = img.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return arr.permute(1, 2, 0).cpu().numpy()


def gray_rgb(img: np.ndarray) -> np.ndarray:
    """An RGB uint8 image as its luminance (ITU-R 601, OpenCV's fixed point) in all three
    channels: what a change looks like on a grayscale photo.  Gray pixels stay exactly as they are."""
    return np.repeat(cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)


def default_feather(side: int) -> int:
    return max(1, int(round(side * 0.03)))


def feather_mask(mask: np.ndarray, radius: int) -> np.ndarray:
    """Float alpha in [0, 1]: ``mask/255`` softened inward by ``radius`` px; 0 wherever mask is 0.

    The mask's support is eroded by ``radius`` (square kernel) and blurred with OpenCV's stack
    blur (a tent filter of radius ``1.25 · radius``, i.e. a Gaussian-like ramp of sigma about
    ``radius / 2``, whose cost does not grow with the radius), quantised to 8 bits as an alpha.
    """
    if radius <= 0 or not mask.any():
        alpha = mask.astype(np.float32)
        alpha /= np.float32(255.0)   # in place: no second full-size float array
        return alpha
    pad = 2 * radius + 2  # the border of the crop counts as outside only where the mask says so
    support = cv2.copyMakeBorder(cv2.threshold(mask, 0, 255, cv2.THRESH_BINARY)[1], pad, pad, pad, pad,
                                 cv2.BORDER_CONSTANT, value=0)
    eroded = erode_square(support, radius)
    del support
    k = 2 * int(round(1.25 * radius)) + 1
    soft = cv2.stackBlur(eroded, (k, k))[pad:-pad, pad:-pad]
    del eroded
    alpha = np.empty(mask.shape, np.float32)
    for r0 in range(0, alpha.shape[0], 512):  # in strips: each float copy is one strip's
        a = mask[r0:r0 + 512].astype(np.float32)
        a /= np.float32(255.0)
        a *= soft[r0:r0 + 512].astype(np.float32) * np.float32(1.0 / 255.0)
        alpha[r0:r0 + 512] = a
    return alpha


def erode_square(support: np.ndarray, radius: int, rows: int = 512) -> np.ndarray:
    """``cv2.erode`` of a 0/255 uint8 ``support`` by a (2·radius+1)² square, outside counted as 0,
    bit for bit, at a cost that does not grow with the radius: a pixel survives when no 0 lies
    within ``radius`` of it along its row (a running count of zeros) and no row-survivor is
    missing within ``radius`` along its column.  (OpenCV's own erosion costs the kernel's width
    per pixel: 2.6 s of a 36 MP feather.)"""
    size = 2 * radius + 1
    h = support.shape[0]
    row_miss = np.empty_like(support)   # 255: a zero lies within radius along the row
    for r0 in range(0, h, rows):
        zeros = cv2.threshold(support[r0:r0 + rows], 0, 1, cv2.THRESH_BINARY_INV)[1]
        count = cv2.boxFilter(zeros, cv2.CV_32S, (size, 1), normalize=False, borderType=cv2.BORDER_CONSTANT)
        row_miss[r0:r0 + rows] = cv2.compare(count, 0, cv2.CMP_NE)
    out = np.empty_like(support)
    for r0 in range(0, h, rows):
        a0, r1 = max(0, r0 - radius), min(h, r0 + rows)
        a1 = min(h, r1 + radius)
        count = cv2.boxFilter(row_miss[a0:a1], cv2.CV_32S, (1, size), normalize=False, borderType=cv2.BORDER_CONSTANT)
        out[r0:r1] = cv2.compare(count[r0 - a0:r1 - a0], 0, cv2.CMP_EQ)
    if h <= 2 * radius or support.shape[1] <= 2 * radius:
        out[...] = 0   # no pixel is further than radius from the outside
    else:  # the outside is 0: the outer radius rows and columns never survive
        out[:radius] = 0
        out[-radius:] = 0
        out[:, :radius] = 0
        out[:, -radius:] = 0
    return out


def blend_region(base: np.ndarray, generated: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``base*(1-a) + generated*a`` in uint8; exactly ``base`` where ``a == 0``."""
    a = alpha[..., None]
    mixed = np.round(base.astype(np.float32) * (1.0 - a) + generated.astype(np.float32) * a)
    mixed = np.clip(mixed, 0, 255).astype(np.uint8)
    return np.where(a > 0, mixed, base)


def resize_generated(generated: np.ndarray, side: int) -> np.ndarray:
    if generated.shape[0] == side:
        return generated
    return np.asarray(Image.fromarray(generated, "RGB").resize((side, side), Image.LANCZOS))


def composite(photo: Photo, crop: Crop, generated: np.ndarray, edit_mask: Optional[np.ndarray] = None,
              feather: Optional[int] = None) -> Tuple[Photo, np.ndarray, Tuple[int, int, int, int]]:
    """Blend ``generated`` (R×R×3 uint8, the model's square) into a copy of ``photo``.

    ``edit_mask``: square-region uint8 mask (default: the selection). Returns the new
    photo (alpha unchanged), the result layer as RGBA for the part of the square inside
    the image (its alpha is the feathered mask), and that layer's (x, y, w, h).
    """
    side = crop.square[2]
    mask = crop.region_mask if edit_mask is None else edit_mask
    radius = default_feather(side) if feather is None else int(feather)
    alpha = feather_mask(mask, radius)
    big = resize_generated(generated, side)
    return paste_region(photo, crop, blend_region(crop.region, big, alpha), big, alpha, mask=mask)


def paste_region(photo: Photo, crop: Crop, region: np.ndarray, layer_rgb: np.ndarray,
                 alpha: np.ndarray, base: Optional[np.ndarray] = None,
                 mask: Optional[np.ndarray] = None,
                 own_region: bool = False) -> Tuple[Photo, np.ndarray, Tuple[int, int, int, int]]:
    """A copy of ``photo`` with the layer box replaced by :func:`layer_pixels`, the RGBA
    layer for the layer box, and the layer box ``(x, y, w, h)``.

    ``own_region``: ``region`` is the caller's fresh array, read-only from here on; when the
    layer box is the whole photo the new photo's pixels are then ``region`` itself rather than
    a copy (one photo-sized array less at 36 MP: ~110 MB)."""
    here, layer, box = layer_pixels(photo, crop, region, layer_rgb, alpha, base, mask)
    H, W = photo.rgb.shape[:2]
    if (own_region and tuple(box) == (0, 0, W, H) and here.flags.c_contiguous
            and here.shape == photo.rgb.shape and not np.shares_memory(here, photo.rgb)):
        return photo.with_rgb(here), layer, box   # the box is the whole photo: no second copy
    out = photo.rgb.copy()
    out[box[1]:box[1] + box[3], box[0]:box[0] + box[2]] = here
    return photo.with_rgb(out), layer, box


def rgba_layer(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(h, w, 4) uint8: ``rgb`` with ``round(alpha · 255)`` as alpha, filled in strips of rows
    so the float work is one strip's, not a full-size float32 array and its rounded copy."""
    if rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8 and rgb.shape[:2] == alpha.shape[:2] \
            and min(rgb.shape[:2]) > 0:
        out = cv2.cvtColor(rgb if rgb.strides[1] == 3 else np.ascontiguousarray(rgb), cv2.COLOR_RGB2RGBA)
    else:
        out = np.empty(alpha.shape[:2] + (4,), np.uint8)
        out[..., :3] = rgb
    strip = np.empty((min(256, alpha.shape[0]), alpha.shape[1]), np.float32)
    for r0 in range(0, alpha.shape[0], strip.shape[0]):
        a = strip[:min(strip.shape[0], alpha.shape[0] - r0)]
        np.multiply(alpha[r0:r0 + a.shape[0]], np.float32(255.0), out=a)
        np.rint(a, out=a)   # what np.round does: halves to even
        out[r0:r0 + a.shape[0], :, 3] = a
    return out


def layer_pixels(photo: Photo, crop: Crop, region: np.ndarray, layer_rgb: np.ndarray,
                 alpha: np.ndarray, base: Optional[np.ndarray] = None,
                 mask: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray, Tuple[int, int, int, int]]:
    """What the layer box of ``photo`` becomes: its pixels (h, w, 3) uint8 — the layer box's
    part of the composited square ``region`` (side×side×3 uint8) —, the RGBA layer
    (``layer_rgb`` with the feathered mask ``alpha`` as alpha) for it, and the box ``(x, y, w, h)``.

    An aligned crop (rotated square) maps ``layer_rgb`` and ``alpha`` back into the photo
    instead and blends there, only where the warped edit ``mask`` (default: the selection)
    and the photo's own selection are non-zero: everywhere else the photo's pixels are kept
    bit for bit.  ``base`` (the photo's square the layer was made from, for ``detail``): only
    the change ``layer_rgb − base`` is warped back and added to the photo, so its own detail
    is not resampled twice."""
    box = crop.layer_box
    if crop.alignment is not None:
        mask = crop.region_mask if mask is None else mask
        inside = crop.photo_mask(mask) > 0
        a = np.where(inside, np.clip(crop.to_layer(alpha.astype(np.float32)), 0.0, 1.0), 0.0).astype(np.float32)
        here = photo.rgb[box.rows, box.cols]
        if base is not None:
            change = crop.to_layer(layer_rgb.astype(np.float32) - base.astype(np.float32))
            layer = np.clip(np.round(here.astype(np.float32) + change), 0, 255).astype(np.uint8)
        else:
            layer = np.clip(np.round(crop.to_layer(layer_rgb.astype(np.float32))), 0, 255).astype(np.uint8)
        return blend_region(here, layer, a), rgba_layer(layer, a), tuple(box)
    sub = box.within(crop.square)
    return region[sub], rgba_layer(layer_rgb[sub], alpha[sub]), tuple(box)


def changed_outside(before: Photo, after: Photo, crop: Crop, edit_mask: Optional[np.ndarray] = None) -> int:
    """Pixels that differ between two photos where the edit mask is 0 (must be 0)."""
    W, H = crop.image_size
    inside = np.zeros((H, W), bool)
    mask = crop.region_mask if edit_mask is None else edit_mask
    box = crop.layer_box
    if crop.alignment is not None:
        inside[box.rows, box.cols] = crop.photo_mask(mask) > 0
    else:
        inside[box.rows, box.cols] = mask[box.within(crop.square)] > 0
    outside = cv2.compare(inside.view(np.uint8), 0, cv2.CMP_EQ)   # 255 where the edit may not change a pixel
    del inside
    ones = np.ones((1, before.rgb.shape[2]), np.float32)
    changed = 0
    for r0 in range(0, H, 512):   # in strips, with OpenCV: no full-size boolean arrays
        r1 = min(H, r0 + 512)
        # any channel differs <=> the saturated sum of the channels' |differences| is not 0
        diff = cv2.transform(cv2.absdiff(before.rgb[r0:r1], after.rgb[r0:r1]), ones).reshape(r1 - r0, W)
        if before.alpha is not None or after.alpha is not None:
            a = before.alpha[r0:r1] if before.alpha is not None else np.full((r1 - r0, W), 255, np.uint8)
            b = after.alpha[r0:r1] if after.alpha is not None else np.full((r1 - r0, W), 255, np.uint8)
            diff = cv2.bitwise_or(diff, cv2.absdiff(a, b))
        changed += cv2.countNonZero(cv2.bitwise_and(diff, outside[r0:r1]))
    return int(changed)
