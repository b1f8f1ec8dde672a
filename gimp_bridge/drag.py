"""Drag points from a GIMP path (each stroke of two anchors is one handle → target pair) or from the
image's sample points (in the order they were made: handle, target, handle, target, …).

The plug-in reads the active path's strokes (GIMP 3: ``path.stroke_get_points(id)`` gives the
stroke's type and, for a Bézier stroke, its control points as (in-handle, anchor, out-handle)
triplets of x, y pairs), or, with no path selected, the sample points' positions, and hands them
here as plain tuples; this module turns them into the backend's ``drag`` spec in the crop's pixels,
says in one line what is wrong with them, and runs the drag (project, then ``edit``). While the
drag runs, the backend's progress statuses carry each step's handle positions (``handles``,
``targets``: the crop's pixels), which :func:`live_points` reads for a dialog's moving picture.
Standard library only.

Coordinates: a path's anchors are continuous image coordinates (the pixel ``i`` spans ``i`` to
``i + 1``); the backend's drag points are pixel indices of the photo it is sent, here the crop
(pixel ``i``'s centre is ``i``). So a point is ``anchor − layer offset − crop origin − 0.5``.
"""

from __future__ import annotations

import math
from typing import Callable, List, Optional, Sequence, Tuple

from . import ops, png
from .catalog import carried
from .client import BridgeError, Client

#: at most this many handle → target pairs (the backend's own limit)
MAX_PAIRS = 16
HOW = ("draw each drag as one stroke of two anchors with the Paths tool: click the handle, then "
       "its target; Shift-click starts the next stroke")
HOW_SAMPLES = ("put sample points in pairs (Ctrl-drag from the rulers): a handle, then its target, in that order; "
               "or select a path")

Stroke = Tuple[bool, Sequence[float], bool]      # (is a Bézier stroke, control points, closed)


def anchors(controlpoints: Sequence[float]) -> List[Tuple[float, float]]:
    """The anchors of a Bézier stroke's control points (x, y of in-handle, anchor, out-handle, …)."""
    cp = [float(v) for v in controlpoints]
    if len(cp) % 6:
        raise BridgeError(f"a Bézier stroke has {len(cp)} control point coordinates, not a multiple of 6 "
                          "(in-handle, anchor, out-handle)")
    return [(cp[i + 2], cp[i + 3]) for i in range(0, len(cp), 6)]


def pairs_from_strokes(path_name: str, strokes: Sequence[Stroke],
                       offsets: Tuple[float, float] = (0, 0)) -> List[List[float]]:
    """``[[hx, hy, tx, ty], …]`` in the drawable's continuous coordinates (image minus ``offsets``),
    one per stroke, first anchor the handle; a stroke that is not exactly two anchors is an error."""
    name = path_name or "the active path"
    if not strokes:
        raise BridgeError(f"the path {name!r} has no strokes: {HOW}")
    if len(strokes) > MAX_PAIRS:
        raise BridgeError(f"the path {name!r} has {len(strokes)} strokes; a drag takes at most {MAX_PAIRS} "
                          "(one handle → target pair per stroke)")
    ox, oy = (float(v) for v in offsets)
    pairs = []
    for i, (bezier, controlpoints, _closed) in enumerate(strokes):
        if not bezier:
            raise BridgeError(f"stroke {i + 1} of the path {name!r} is not a Bézier stroke: {HOW}")
        pts = anchors(controlpoints)
        if len(pts) != 2:
            raise BridgeError(f"stroke {i + 1} of the path {name!r} has {len(pts)} anchors; each stroke needs "
                              f"exactly two (a handle, then its target): {HOW}")
        (hx, hy), (tx, ty) = pts
        if not all(math.isfinite(v) for v in (hx, hy, tx, ty)):
            raise BridgeError(f"stroke {i + 1} of the path {name!r} has a coordinate that is not a number")
        pairs.append([hx - ox, hy - oy, tx - ox, ty - oy])
    return pairs


def pairs_from_sample_points(points: Sequence[Tuple[float, float]],
                             offsets: Tuple[float, float] = (0, 0)) -> List[List[float]]:
    """``[[hx, hy, tx, ty], …]`` in the drawable's continuous coordinates from sample points (image
    pixels, in the order they were made): handle, target, handle, target, …; a sample point marks a
    pixel, so its continuous position is the pixel's centre (``+ 0.5``). An odd count is an error."""
    pts = [(float(x), float(y)) for x, y in points]
    if not pts:
        raise BridgeError(f"the image has no sample points: {HOW_SAMPLES}")
    if len(pts) % 2:
        raise BridgeError(f"the image has {len(pts)} sample points, an odd number: each drag needs two "
                          f"(a handle, then its target); add the missing target or remove a point")
    if len(pts) > 2 * MAX_PAIRS:
        raise BridgeError(f"the image has {len(pts)} sample points ({len(pts) // 2} pairs); a drag takes at "
                          f"most {MAX_PAIRS} pairs")
    ox, oy = (float(v) for v in offsets)
    return [[pts[i][0] + 0.5 - ox, pts[i][1] + 0.5 - oy, pts[i + 1][0] + 0.5 - ox, pts[i + 1][1] + 0.5 - oy]
            for i in range(0, len(pts), 2)]


def live_points(status) -> Optional[dict]:
    """A drag step's report in a backend progress status: ``{"step", "handles", "targets"}`` with
    each handle's current position and its target (the crop's pixels), or None (another stage, or
    a backend that does not report them)."""
    if not isinstance(status, dict):
        return None
    handles, targets = status.get("handles"), status.get("targets")
    try:
        h = [(float(x), float(y)) for x, y in handles]
        t = [(float(x), float(y)) for x, y in targets]
    except (TypeError, ValueError):
        return None
    if not h or len(h) != len(t) or not all(math.isfinite(v) for p in h + t for v in p):
        return None
    return {"step": status.get("step"), "handles": h, "targets": t}


def pairs_in_crop(pairs: Sequence[Sequence[float]], crop: ops.Crop) -> List[List[float]]:
    """The pairs as the backend's drag points in the crop's pixels; a handle on its target, or a
    point outside the selection's square, is an error naming the stroke."""
    out = []
    for i, p in enumerate(pairs):
        q = [round(float(v) - o - 0.5, 2) for v, o in zip(p, (crop.x, crop.y, crop.x, crop.y))]
        for what, (x, y), (px, py) in (("handle", q[:2], p[:2]), ("target", q[2:], p[2:])):
            if not (0 <= x <= crop.width - 1 and 0 <= y <= crop.height - 1):
                raise BridgeError(f"the {what} of stroke {i + 1} ({px:g}, {py:g}) is outside the selection's "
                                  "square: select the region to edit so that it holds every handle and target")
        if abs(q[0] - q[2]) < 0.5 and abs(q[1] - q[3]) < 0.5:
            raise BridgeError(f"stroke {i + 1}'s handle and target are the same pixel: nothing would move")
        out.append(q)
    return out


def drag_spec(points: Sequence[Sequence[float]], steps: Optional[int] = None) -> dict:
    """The backend's ``drag`` edit spec (docs/api.md)."""
    spec = {"kind": "drag", "points": [[float(v) for v in p] for p in points]}
    if steps is not None:
        spec["steps"] = int(steps)
    return spec


def drag_title(points: Sequence[Sequence[float]]) -> str:
    n = len(points)
    return f"drag {n} point{'s' if n != 1 else ''}"


def drag_edit(client: Client, crop: ops.Crop, points: Sequence[Sequence[float]], adapt: bool = False,
              model: str = "", steps: Optional[int] = None, progress: Optional[Callable[[float, str], None]] = None,
              on_job=None, should_cancel=None, projection: Optional[ops.Projection] = None,
              base_edits: Sequence[dict] = (), on_live: Optional[Callable[[dict], None]] = None) -> ops.Layer:
    """Project the crop (unless ``projection`` is given) and drag ``points`` (crop pixels); the
    result layer in the drawable's coordinates. ``base_edits``: an earlier result's directions,
    applied first. The drag renders with the backend's warp composite (the photo's own pixels move).
    ``on_live(report)``: each drag step's :func:`live_points` as the backend streams them."""
    if projection is None:
        p = ops.Progress(progress, [("Fitting the selection to the model", 0.4), ("Dragging", 0.6)])
        projection = ops.project(client, crop, model=model, adapt=False, on_progress=p.stage(0), on_job=on_job,
                                 should_cancel=should_cancel, fetch_images=False)
        stage = p.stage(1)
    else:
        stage = ops.Progress(progress, [("Dragging", 1.0)]).stage(0)
    specs = carried(base_edits) + [drag_spec(points, steps)]
    report = stage
    if on_live is not None:
        def report(fraction: float, text: str, status: dict) -> None:
            live = live_points(status)
            if live is not None:
                on_live(live)
            stage(fraction, text, status)
    return ops.edit(client, projection, specs, adapt, ops.layer_name(drag_title(points)), on_progress=report,
                    on_job=on_job, should_cancel=should_cancel)


def over_crop(crop: ops.Crop, layer: ops.Layer) -> png.Image:
    """The crop with ``layer`` (drawable coordinates, RGBA, alpha = its mask) blended over it: what
    the image will look like, for a dialog's preview."""
    base = bytearray(crop.image.to_rgb().data)
    top = layer.image.to_rgba()
    W, H = crop.width, crop.height
    dx, dy = layer.x - crop.x, layer.y - crop.y
    src = top.data
    for y in range(max(0, dy), min(H, dy + top.height)):
        row = (y - dy) * top.width
        for x in range(max(0, dx), min(W, dx + top.width)):
            s = (row + x - dx) * 4
            a = src[s + 3]
            if a:
                d = (y * W + x) * 3
                for c in range(3):
                    base[d + c] = (src[s + c] * a + base[d + c] * (255 - a) + 127) // 255
    return png.Image(W, H, 3, bytes(base))


def with_pairs(img: png.Image, points: Sequence[Sequence[float]], colour=(255, 51, 102),
               current: Optional[Sequence[Sequence[float]]] = None) -> png.Image:
    """``img`` (RGB, the crop's pixels) with each pair drawn: a line handle → target and a 5×5 dot on
    the handle, for a dialog's picture. With ``current`` (each handle's position now, while a drag
    runs) the line starts there, the path from the start is yellow, the start a 3×3 yellow dot, the
    current position a 5×5 green dot and the target a 3×3 dot in ``colour``."""
    out = bytearray(img.to_rgb().data)
    W, H = img.width, img.height

    def put(x: int, y: int, c) -> None:
        if 0 <= x < W and 0 <= y < H:
            out[(y * W + x) * 3:(y * W + x) * 3 + 3] = bytes(c)

    def line(ax, ay, bx, by, c) -> None:
        n = int(max(abs(bx - ax), abs(by - ay))) + 1
        for i in range(n + 1):
            put(int(round(ax + (bx - ax) * i / n)), int(round(ay + (by - ay) * i / n)), c)

    def dot(x, y, r, c) -> None:
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                put(int(round(x)) + dx, int(round(y)) + dy, c)
    for i, (hx, hy, tx, ty) in enumerate(points):
        if current is None:
            line(hx, hy, tx, ty, colour)
            dot(hx, hy, 2, colour)
            continue
        cx, cy = (float(v) for v in current[i])
        line(hx, hy, cx, cy, (255, 221, 51))
        line(cx, cy, tx, ty, colour)
        dot(hx, hy, 1, (255, 221, 51))
        dot(tx, ty, 1, colour)
        dot(cx, cy, 2, (51, 221, 102))
    return png.Image(W, H, 3, bytes(out))
