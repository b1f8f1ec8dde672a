"""Reading and writing photos and masks, with clear errors for every bad input.

Every photo becomes a :class:`Photo`: 8-bit RGB pixels plus the original alpha (if any).
Grayscale, palette, 16-bit and CMYK images are converted; alpha is kept so the
composite can carry it back unchanged.
"""

from __future__ import annotations

import functools
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import InputError

MAX_PIXELS = 100_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # PIL refuses bombs past 2x; we refuse past 1x with a clear message
Source = Union[str, os.PathLike, bytes, Image.Image, np.ndarray]


@dataclass
class Photo:
    rgb: np.ndarray                 # (H, W, 3) uint8
    alpha: Optional[np.ndarray]     # (H, W) uint8 or None
    mode: str = "RGB"               # the original PIL mode, for reports

    @property
    def size(self):
        """(width, height), as PIL says it."""
        return self.rgb.shape[1], self.rgb.shape[0]

    @functools.cached_property
    def gray(self) -> bool:
        """Whether every pixel is gray (R = G = B): a grayscale photo, whatever its file's mode
        (a gray PNG, or a gray picture the browser sent as RGBA).  Computed once."""
        r = self.rgb
        return bool(np.array_equal(r[..., 0], r[..., 1]) and np.array_equal(r[..., 1], r[..., 2]))

    def to_array(self) -> np.ndarray:
        """RGB or RGBA uint8 array, as it would be saved."""
        if self.alpha is None:
            return self.rgb
        return np.dstack([self.rgb, self.alpha])

    def to_pil(self) -> Image.Image:
        arr = self.to_array()
        return Image.fromarray(arr, "RGBA" if arr.shape[2] == 4 else "RGB")

    def with_rgb(self, rgb: np.ndarray) -> "Photo":
        return Photo(rgb=rgb, alpha=self.alpha, mode=self.mode)


def _check_pixels(w: int, h: int, name: str) -> None:
    if w * h > MAX_PIXELS:
        raise InputError(f"{name} is {w}x{h} = {w * h / 1e6:.0f} megapixels; the limit is "
                         f"{MAX_PIXELS / 1e6:.0f} megapixels (crop or scale it down first)")
    if w < 1 or h < 1:
        raise InputError(f"{name} has no pixels")


def _to_8bit(im: Image.Image) -> Image.Image:
    """16-bit and float images to 8 bits per channel, keeping their full range."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if (im.mode.startswith("I;16") or arr.max() > 255) else 255.0
        if im.mode == "F" and arr.max() <= 1.0:
            top = 1.0
        arr = np.clip(np.round(arr / top * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L")
    return im


def photo_from_pil(im: Image.Image, name: str = "image") -> Photo:
    _check_pixels(im.width, im.height, name)
    mode = im.mode
    try:
        im.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{name} is truncated or corrupt ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    im = _to_8bit(im)
    has_alpha = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (im.mode == "P" and "transparency" in im.info)
    im = im.convert("RGBA" if has_alpha else "RGB")
    arr = np.array(im, dtype=np.uint8)
    if has_alpha:
        return Photo(rgb=np.ascontiguousarray(arr[..., :3]), alpha=np.ascontiguousarray(arr[..., 3]), mode=mode)
    return Photo(rgb=arr, alpha=None, mode=mode)


def _open(src: Source, name: str) -> Image.Image:
    if isinstance(src, Image.Image):
        return src
    if isinstance(src, bytes):
        fp = io.BytesIO(src)
    else:
        path = Path(src)
        if not path.exists():
            raise InputError(f"{name} {path} does not exist")
        if path.is_dir():
            raise InputError(f"{name} {path} is a folder, not an image file")
        fp = path
    try:
        with Image.open(fp) as probe:
            _check_pixels(probe.width, probe.height, name)
        im = Image.open(fp)
    except UnidentifiedImageError:
        raise InputError(f"{name} is not an image file PIL can read (PNG, JPEG, TIFF, WebP, ...)") from None
    except Image.DecompressionBombError:
        raise InputError(f"{name} is larger than the {MAX_PIXELS / 1e6:.0f}-megapixel limit") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{name} cannot be read: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return im


def load_photo(src: Source, name: str = "image") -> Photo:
    """A photo from a path, bytes, a PIL image or an array (H,W), (H,W,3) or (H,W,4)."""
    if isinstance(src, np.ndarray):
        return photo_from_array(src, name)
    if isinstance(src, (str, os.PathLike)):
        name = f"{name} {src}" if name == "image" else name
    return photo_from_pil(_open(src, name), name)


def photo_from_array(arr: np.ndarray, name: str = "image") -> Photo:
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise InputError(f"{name} must be an (H, W[, 1|2|3|4]) array, got shape {arr.shape}")
    _check_pixels(arr.shape[1], arr.shape[0], name)
    if arr.dtype == np.uint16:
        arr = np.round(arr.astype(np.float64) / 257.0).astype(np.uint8)
    elif arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and np.nanmax(arr) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.nan_to_num(arr), 0, 255).round().astype(np.uint8)
    c = arr.shape[2]
    rgb = arr[..., :3] if c >= 3 else np.repeat(arr[..., :1], 3, axis=2)
    alpha = arr[..., -1] if c in (2, 4) else None
    return Photo(rgb=np.ascontiguousarray(rgb), alpha=None if alpha is None else np.ascontiguousarray(alpha),
                 mode={1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[c])


def load_mask(src: Source, size, name: str = "mask") -> np.ndarray:
    """A soft selection mask (H, W) uint8 in 0..255 for an image of ``size`` = (W, H).

    A mask with alpha uses its alpha channel (a painted layer); otherwise its luminance.
    A mask of another size than the image is refused: it would not say which pixels
    the user meant.
    """
    if isinstance(src, np.ndarray):
        arr = np.asarray(src)
        if arr.ndim == 3:
            arr = arr[..., -1] if arr.shape[2] in (2, 4) else arr[..., :3].mean(axis=2)
        if arr.dtype != np.uint8:
            arr = np.clip(np.round(arr * (255.0 if arr.max() <= 1.0 else 1.0)), 0, 255).astype(np.uint8)
        mask = arr
    else:
        photo = load_photo(src, name)
        mask = photo.alpha if photo.alpha is not None and photo.alpha.min() < 255 else \
            np.asarray(Image.fromarray(photo.rgb).convert("L"))
    if (mask.shape[1], mask.shape[0]) != tuple(size):
        raise InputError(f"{name} is {mask.shape[1]}x{mask.shape[0]} but the image is {size[0]}x{size[1]}; "
                         "they must be the same size")
    return np.ascontiguousarray(mask, dtype=np.uint8)


def save_photo(photo: Photo, path: Union[str, os.PathLike]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    im = photo.to_pil()
    fmt = (path.suffix.lstrip(".") or "png").upper()
    if fmt in ("JPG", "JPEG") and im.mode == "RGBA":
        im = im.convert("RGB")
    try:
        im.save(path)
    except (KeyError, ValueError, OSError) as e:
        raise InputError(f"cannot write {path}: {e}") from None


def read_image_array(src, what: str) -> np.ndarray:
    """An image-valued spec field (path, bytes, PIL image or array) as a uint8 array (H, W[, C])."""
    if isinstance(src, np.ndarray):
        arr = src
        if arr.dtype != np.uint8:
            arr = np.clip(np.round(arr * (255.0 if arr.size and arr.max() <= 1.0 else 1.0)), 0, 255).astype(np.uint8)
        return arr
    if src is None or (isinstance(src, str) and not src.strip()):
        raise InputError(f"{what}: no image given")
    if isinstance(src, str) and src.startswith("file:"):
        raise InputError(f"{what}: the file reference {src!r} was not resolved (pass the file with the request)")
    p = load_photo(src, what)
    return p.to_array()
