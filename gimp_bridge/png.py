"""PNG encode/decode with the standard library only (zlib + struct).

GIMP's bundled Python has neither numpy nor PIL, so the bridge reads and writes the
PNG files the backend exchanges by hand. Pixels are kept as one ``bytes`` object,
row-major, 8 bits per channel, with 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA)
channels.

Decoding handles every non-interlaced PNG that PIL, Gradio or GIMP write: colour types
0/2/3/4/6, bit depths 1/2/4/8/16 (16-bit is reduced to 8-bit by keeping the high byte),
palettes with ``tRNS`` transparency, and all five row filters. Adam7-interlaced files
are decoded too.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


class PNGError(ValueError):
    """The bytes are not a PNG this module can read."""


@dataclass
class Image:
    """An 8-bit image: ``data`` holds ``width*height*channels`` bytes, row-major."""
    width: int
    height: int
    channels: int
    data: bytes

    def __post_init__(self):
        if self.channels not in (1, 2, 3, 4):
            raise ValueError(f"channels must be 1..4, got {self.channels}")
        if len(self.data) != self.width * self.height * self.channels:
            raise ValueError(f"{self.width}x{self.height}x{self.channels} image needs "
                             f"{self.width * self.height * self.channels} bytes, got {len(self.data)}")

    def to_rgba(self) -> "Image":
        return Image(self.width, self.height, 4, convert(self.data, self.channels, 4))

    def to_rgb(self) -> "Image":
        return Image(self.width, self.height, 3, convert(self.data, self.channels, 3))

    def to_gray(self) -> "Image":
        return Image(self.width, self.height, 1, convert(self.data, self.channels, 1))

    def channel(self, index: int) -> bytes:
        """One channel as a gray plane (e.g. ``channel(3)`` is the alpha of RGBA)."""
        return self.data[index::self.channels]

    def crop(self, x: int, y: int, w: int, h: int) -> "Image":
        if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > self.width or y + h > self.height:
            raise ValueError(f"crop {x},{y},{w},{h} is outside the {self.width}x{self.height} image")
        c, stride = self.channels, self.width * self.channels
        rows = [self.data[(y + r) * stride + x * c:(y + r) * stride + (x + w) * c] for r in range(h)]
        return Image(w, h, c, b"".join(rows))


def convert(data: bytes, src: int, dst: int) -> bytes:
    """Convert interleaved 8-bit pixels between 1/2/3/4 channels (gray uses Rec. 601 luma)."""
    if src == dst:
        return bytes(data)
    n = len(data) // src
    if src in (1, 2):
        gray = data[0::src]
        alpha = data[1::2] if src == 2 else None
    else:
        r, g, b = data[0::src], data[1::src], data[2::src]
        alpha = data[3::4] if src == 4 else None
        gray = None
    if dst in (1, 2):
        if gray is None:
            gray = bytes((299 * r[i] + 587 * g[i] + 114 * b[i] + 500) // 1000 for i in range(n))
        if dst == 1:
            return bytes(gray)
        out = bytearray(2 * n)
        out[0::2] = gray
        out[1::2] = alpha if alpha is not None else b"\xff" * n
        return bytes(out)
    out = bytearray(dst * n)
    if gray is not None:
        out[0::dst] = gray
        out[1::dst] = gray
        out[2::dst] = gray
    else:
        out[0::dst], out[1::dst], out[2::dst] = r, g, b
    if dst == 4:
        out[3::4] = alpha if alpha is not None else b"\xff" * n
    return bytes(out)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def encode(width: int, height: int, channels: int, data: bytes, level: int = 6) -> bytes:
    """Encode 8-bit pixels (1=gray, 2=gray+alpha, 3=RGB, 4=RGBA) as a PNG.

    Rows use the "Up" filter (cheap to compute with whole-row operations and good on
    photos) except the first, which uses none.
    """
    if channels not in _COLOR_TYPE:
        raise ValueError(f"channels must be 1..4, got {channels}")
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    stride = width * channels
    if len(data) != stride * height:
        raise ValueError(f"{width}x{height}x{channels} image needs {stride * height} bytes, got {len(data)}")
    raw = bytearray()
    prev = None
    for y in range(height):
        row = data[y * stride:(y + 1) * stride]
        if prev is None:
            raw.append(0)
            raw += row
        else:
            raw.append(2)
            raw += _sub_bytes(row, prev)
        prev = row
    ihdr = struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPE[channels], 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(bytes(raw), level)) + _chunk(b"IEND", b"")


def encode_image(img: Image, level: int = 6) -> bytes:
    return encode(img.width, img.height, img.channels, img.data, level)


def _sub_bytes(a: bytes, b: bytes) -> bytes:
    """(a - b) mod 256 bytewise, using big-integer arithmetic instead of a Python loop."""
    n = len(a)
    # Spread each byte into a 16-bit lane so that per-lane borrows never cross lanes.
    la = int.from_bytes(_widen(a), "big")
    lb = int.from_bytes(_widen(b), "big")
    bias = int.from_bytes(b"\x01\x00" * n, "big")
    diff = (la + bias - lb).to_bytes(2 * n, "big")
    return diff[1::2]


def _widen(a: bytes) -> bytes:
    out = bytearray(2 * len(a))
    out[1::2] = a
    return bytes(out)


def _add_bytes(a: bytes, b: bytes) -> bytes:
    """(a + b) mod 256 bytewise."""
    n = len(a)
    s = (int.from_bytes(_widen(a), "big") + int.from_bytes(_widen(b), "big")).to_bytes(2 * n, "big")
    return s[1::2]


def _unfilter(raw: bytes, width: int, height: int, bpp: int, bits_per_row: int) -> tuple:
    """Undo the per-row filters; return (rows as ``bytes``, packed as in the file; bytes consumed)."""
    stride = (bits_per_row + 7) // 8
    rows = []
    prev = bytes(stride)
    pos = 0
    for _ in range(height):
        if pos + 1 + stride > len(raw):
            raise PNGError("image data is truncated")
        ftype = raw[pos]
        cur = raw[pos + 1:pos + 1 + stride]
        pos += 1 + stride
        if ftype == 0:
            row = bytes(cur)
        elif ftype == 2:
            row = _add_bytes(cur, prev)
        elif ftype == 1:
            out = bytearray(cur)
            for i in range(bpp, stride):
                out[i] = (out[i] + out[i - bpp]) & 0xFF
            row = bytes(out)
        elif ftype == 3:
            out = bytearray(cur)
            for i in range(stride):
                left = out[i - bpp] if i >= bpp else 0
                out[i] = (out[i] + ((left + prev[i]) >> 1)) & 0xFF
            row = bytes(out)
        elif ftype == 4:
            out = bytearray(cur)
            for i in range(stride):
                if i >= bpp:
                    a, c = out[i - bpp], prev[i - bpp]
                else:
                    a = c = 0
                b = prev[i]
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                if pa <= pb and pa <= pc:
                    pred = a
                elif pb <= pc:
                    pred = b
                else:
                    pred = c
                out[i] = (out[i] + pred) & 0xFF
            row = bytes(out)
        else:
            raise PNGError(f"unknown PNG filter type {ftype}")
        rows.append(row)
        prev = row
    return rows, pos


def _unpack_samples(row: bytes, width: int, samples_per_px: int, depth: int, scale: bool) -> bytes:
    """Row of packed samples at ``depth`` bits -> one byte per sample."""
    n = width * samples_per_px
    if depth == 8:
        return row[:n]
    if depth == 16:
        return row[0:2 * n:2]
    per_byte = 8 // depth
    mask = (1 << depth) - 1
    mult = 255 // mask if scale else 1
    out = bytearray(n)
    for i in range(n):
        byte = row[i // per_byte]
        shift = 8 - depth * (i % per_byte + 1)
        out[i] = ((byte >> shift) & mask) * mult
    return bytes(out)


def decode(blob: bytes) -> Image:
    """Decode a PNG to an :class:`Image` with 1, 2, 3 or 4 8-bit channels.

    Palette images become RGB, or RGBA when the palette has transparency (``tRNS``).
    A ``tRNS`` colour key on gray/RGB images becomes an alpha channel.
    """
    if not blob.startswith(SIGNATURE):
        raise PNGError("not a PNG file (bad signature)")
    pos = len(SIGNATURE)
    header = None
    palette = None
    trns = None
    idat = []
    while pos + 8 <= len(blob):
        length, kind = struct.unpack(">I4s", blob[pos:pos + 8])
        payload = blob[pos + 8:pos + 8 + length]
        if len(payload) != length:
            raise PNGError(f"chunk {kind!r} is truncated")
        crc = struct.unpack(">I", blob[pos + 8 + length:pos + 12 + length])[0]
        if zlib.crc32(kind + payload) & 0xFFFFFFFF != crc:
            raise PNGError(f"chunk {kind!r} has a bad CRC")
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", payload)
        elif kind == b"PLTE":
            palette = payload
        elif kind == b"tRNS":
            trns = payload
        elif kind == b"IDAT":
            idat.append(payload)
        elif kind == b"IEND":
            break
    if header is None:
        raise PNGError("PNG has no IHDR chunk")
    width, height, depth, ctype, _comp, _filt, interlace = header
    if ctype not in _CHANNELS:
        raise PNGError(f"unsupported PNG colour type {ctype}")
    if depth not in (1, 2, 4, 8, 16) or (ctype in (2, 4, 6) and depth < 8) or (ctype == 3 and depth == 16):
        raise PNGError(f"invalid bit depth {depth} for colour type {ctype}")
    if ctype == 3 and palette is None:
        raise PNGError("palette PNG has no PLTE chunk")
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as exc:
        raise PNGError(f"corrupt image data: {exc}") from None
    spp = _CHANNELS[ctype]
    bpp = max(1, spp * depth // 8)
    scale = ctype == 0  # gray at low depth is scaled to 0..255; palette indices are not
    samples = bytearray(width * height * spp)
    if interlace == 0:
        rows, _ = _unfilter(raw, width, height, bpp, width * spp * depth)
        for y, row in enumerate(rows):
            samples[y * width * spp:(y + 1) * width * spp] = _unpack_samples(row, width, spp, depth, scale)
    elif interlace == 1:
        offset = 0
        for x0, y0, dx, dy in _ADAM7:
            pw = (width - x0 + dx - 1) // dx if width > x0 else 0
            ph = (height - y0 + dy - 1) // dy if height > y0 else 0
            if pw == 0 or ph == 0:
                continue
            rows, used = _unfilter(raw[offset:], pw, ph, bpp, pw * spp * depth)
            offset += used
            for j, row in enumerate(rows):
                vals = _unpack_samples(row, pw, spp, depth, scale)
                y = y0 + j * dy
                for i in range(pw):
                    x = x0 + i * dx
                    d = (y * width + x) * spp
                    samples[d:d + spp] = vals[i * spp:(i + 1) * spp]
    else:
        raise PNGError(f"unknown interlace method {interlace}")
    samples = bytes(samples)
    if ctype == 3:
        table = [palette[3 * i:3 * i + 3] for i in range(len(palette) // 3)]
        if max(samples, default=0) >= len(table):
            raise PNGError("palette index out of range")
        if trns:
            alphas = list(trns) + [255] * (len(table) - len(trns))
            table = [table[i] + bytes([alphas[i]]) for i in range(len(table))]
            return Image(width, height, 4, b"".join(table[s] for s in samples))
        return Image(width, height, 3, b"".join(table[s] for s in samples))
    if trns and ctype in (0, 2):
        if ctype == 0:
            key = struct.unpack(">H", trns[:2])[0]
            key8 = key >> 8 if depth == 16 else (key * (255 // ((1 << depth) - 1)) if depth < 8 else key)
            alpha = bytes(0 if s == key8 else 255 for s in samples)
            out = bytearray(2 * width * height)
            out[0::2] = samples
            out[1::2] = alpha
            return Image(width, height, 2, bytes(out))
        r, g, b = struct.unpack(">HHH", trns[:6])
        if depth == 16:
            r, g, b = r >> 8, g >> 8, b >> 8
        key = bytes([r, g, b])
        n = width * height
        out = bytearray(4 * n)
        out[0::4], out[1::4], out[2::4] = samples[0::3], samples[1::3], samples[2::3]
        out[3::4] = bytes(0 if samples[3 * i:3 * i + 3] == key else 255 for i in range(n))
        return Image(width, height, 4, bytes(out))
    return Image(width, height, spp, samples)


def read(path) -> Image:
    with open(path, "rb") as f:
        return decode(f.read())


def write(path, img: Image) -> None:
    with open(path, "wb") as f:
        f.write(encode_image(img))
