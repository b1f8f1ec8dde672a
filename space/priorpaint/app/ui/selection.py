"""The painted selection as the user meant it.

A big photo is shown small in the editor (a 2560×3000 portrait at ~15 %), and brush strokes
that touch on the screen leave gaps of many photo pixels between them: the raw paint would
select stripes.  Here the painted mask is closed at the *displayed* scale (gaps narrower than
:data:`GAP_SCREEN_PX` screen pixels are bridged) and the holes of its outline are filled, so the
selection is the region the user painted over.  The work is done on the mask shrunk to the
size it was shown at, so a 12 MP photo costs what its on-screen copy does.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

#: brush gaps up to this many screen pixels wide are closed (a stroke spacing a person reads as "painted")
GAP_SCREEN_PX = 16


def display_scale(text: str, photo_hw: Tuple[int, int]) -> float:
    """Screen pixels per photo pixel, from the editor canvas size ``"W,H"`` the page sends
    (the photo is fitted inside it); 1.0 when the page sent nothing readable."""
    try:
        cw, ch = (float(v) for v in str(text or "").split(",")[:2])
    except ValueError:
        return 1.0
    h, w = photo_hw
    if not (cw > 0 and ch > 0 and np.isfinite(cw) and np.isfinite(ch)) or h <= 0 or w <= 0:
        return 1.0
    return float(min(cw / w, ch / h))


def close_gaps(mask: Optional[np.ndarray], scale: float = 1.0,
               gap_screen_px: int = GAP_SCREEN_PX) -> Tuple[Optional[np.ndarray], dict]:
    """(the selection mask 0/255 with gaps closed and holes filled at the displayed scale,
    what was done: ``{"gap_px": gap bridged in photo px, "added": share of the area added}``).
    Every painted pixel stays selected."""
    import cv2

    if mask is None:
        return None, {"gap_px": 0, "added": 0.0}
    m = (np.asarray(mask) > 0).astype(np.uint8)
    if not m.any():
        return None, {"gap_px": 0, "added": 0.0}
    h, w = m.shape
    scale = float(min(max(scale, 1e-3), 1.0))
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(m * 255, (sw, sh), interpolation=cv2.INTER_AREA) if scale < 1.0 else m * 255
    small = (small > 0).astype(np.uint8)
    k = int(gap_screen_px) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    pad = k
    padded = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)  # edges close too
    closed = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, kernel)[pad:-pad, pad:-pad]
    contours, _ = cv2.findContours(closed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(closed)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    if scale < 1.0:
        filled = cv2.resize(filled * 255, (w, h), interpolation=cv2.INTER_LINEAR) >= 128
    out = (filled > 0) | (m > 0)
    before = int(m.sum())
    info = {"gap_px": int(round(gap_screen_px / scale)), "added": float(out.sum() - before) / float(before)}
    return out.astype(np.uint8) * 255, info


def note(info: dict) -> str:
    """The status's words for what :func:`close_gaps` did ("" when it added nothing)."""
    if info.get("added", 0.0) < 0.01:
        return ""
    return (f" (brush gaps up to {info['gap_px']} px of the photo and the holes inside the outline were "
            f"filled: +{100 * info['added']:.0f} % area)")
