"""``interpolation``: a face between the two, without blotches, on real photos (``report["interpolation"]``).

Each photo (the photo section's colour photos and the colour held-out boxes; ``--photos N``: the
first N) is interpolated at ``t`` 0.5 toward the next photo's face square (the last toward the
first), rendered as ``priorpaint edit`` renders it (``detail``, no G′); per pair the measures of
:mod:`priorpaint.measures.interpolation` (landmarks between the two, blotches), the artefacts and
the worst case; a grid in ``artifacts/interpolation/`` (photo | result | other).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict

import numpy as np

ARTIFACTS = Path("artifacts") / "interpolation"
T = 0.5


def run(report: dict, args) -> None:
    from PIL import Image

    from ..measures.interpolation import interpolation_worked
    from ..projection.project import ProjectionConfig
    from .photo import _open, _square, bench_photos
    from .structural import held_out_photos

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    photos = [p for p in bench_photos() + held_out_photos() if not p["name"].startswith("cameraman")]
    n = int(getattr(args, "photos", 0) or len(photos))
    steps = min(int(getattr(args, "steps", 100) or 100), 100)
    squares = {}
    for p in photos:   # each face's own square, the "other" of its neighbour
        s = _open(p, getattr(args, "model", None))
        squares[p["name"]] = _square(s, s.photo.rgb)
    rows: Dict[str, Dict[str, object]] = {}
    tiles = []
    for i, p in enumerate(photos[:n]):
        other = photos[(i + 1) % len(photos)]
        other_path = ARTIFACTS / f"_other_{other['name']}.png"
        Image.fromarray(squares[other["name"]]).save(other_path)
        s = _open(p, getattr(args, "model", None))
        s.project(ProjectionConfig(steps=steps, seed=0))
        t0 = time.perf_counter()
        r = s.render(s.apply([f"interpolate:{other_path}@{T}"]))
        seconds = time.perf_counter() - t0
        region, result = _square(s, s.photo.rgb), _square(s, r.photo.rgb)
        m = interpolation_worked(result, region, squares[other["name"]], T, s.edit_mask(None))
        st, v = r.metrics["structure"], r.metrics["verdict"]
        rows[f"{p['name']} -> {other['name']}"] = {
            **{k: m[k] for k in ("between", "blotch", "face_found", "failed")},
            "smear": st.get("smear"), "unexplained": st.get("unexplained"), "ghost": st.get("ghost"),
            "artefact_verdict": v.get("message"), "seconds": round(seconds, 3)}
        side = 192
        tiles.append(np.concatenate([np.asarray(Image.fromarray(x).resize((side, side), Image.LANCZOS))
                                     for x in (region, result, squares[other["name"]])], 1))
    grid = ARTIFACTS / "pairs.png"
    Image.fromarray(np.concatenate(tiles, 0)).save(grid)
    betweens = [r["between"] for r in rows.values() if r["between"] is not None]
    report["interpolation"] = {
        "t": T, "pairs": rows, "grid": str(grid),
        "worst": {"between": max(betweens) if betweens else None,
                  "blotch": max(r["blotch"] for r in rows.values()),
                  "worked": f"{sum(1 for r in rows.values() if not r['failed'])} of {len(rows)}"},
        "targets": "between <= 0.12 eye distances, blotch <= 0.015 (worst over the pairs)",
    }
