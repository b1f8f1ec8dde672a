"""``interpolation``: a face between the two, without blotches, on real photos (``report["interpolation"]``).

Each photo (the photo section's colour photos, the colour held-out boxes and the colour validation
boxes of :mod:`.structural`; ``--photos N``: the first N) is interpolated at ``t`` 0.5 toward the
next photo's face square (the last toward the first), rendered as ``priorpaint edit`` renders it
(``detail``, which the interpolation kind turns into ``warp``: :mod:`priorpaint.compositing.between`;
no G′); per pair the measures of :mod:`priorpaint.measures.interpolation` (landmarks between the
two, blotches), the artefacts and the worst case, over all pairs and over the pairs whose photo was
not used to choose the composite's settings (``tuned: false``: the validation boxes); a grid in
``artifacts/interpolation/`` (photo | result | other).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List

import numpy as np

ARTIFACTS = Path("artifacts") / "interpolation"
T = 0.5
#: the limits the artefacts are held to (as the structural edits' verdict)
MAX_SMEAR, MAX_UNEXPLAINED = 0.03, 0.10


def _worst(rows: List[dict]) -> Dict[str, object]:
    def top(key):
        vals = [r[key] for r in rows if r.get(key) is not None]
        return round(max(vals), 4) if vals else None
    return {"between": top("between"), "blotch": top("blotch"), "smear": top("smear"),
            "unexplained": top("unexplained"),
            "worked": f"{sum(1 for r in rows if not r['failed'])} of {len(rows)}",
            "artefacts_within": f"{sum(1 for r in rows if (r['smear'] or 0) <= MAX_SMEAR and (r['unexplained'] or 0) <= MAX_UNEXPLAINED)} of {len(rows)}"}


def run(report: dict, args) -> None:
    from PIL import Image

    from ..measures.interpolation import interpolation_worked
    from ..projection.project import ProjectionConfig
    from .photo import _open, _square, bench_photos
    from .structural import held_out_photos, validation_photos

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    untuned = {p["name"] for p in validation_photos()}
    photos = [p for p in bench_photos() + held_out_photos() + validation_photos()
              if not p["name"].startswith("cameraman")]
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
        info = r.metrics.get("composite_info") or {}
        rows[f"{p['name']} -> {other['name']}"] = {
            **{k: m[k] for k in ("between", "blotch", "face_found", "failed")},
            "smear": st.get("smear"), "unexplained": st.get("unexplained"), "ghost": st.get("ghost"),
            "composite": r.metrics.get("composite"), "motion": info.get("motion"),
            "tuned": not ({p["name"], other["name"]} & untuned),
            "report_between": (st.get("kind") or {}).get("between"),   # the render's own (measures/kinds.py)
            "verdict": v.get("message"), "carried": v.get("carried"), "seconds": round(seconds, 3)}
        side = 192
        tiles.append(np.concatenate([np.asarray(Image.fromarray(x).resize((side, side), Image.LANCZOS))
                                     for x in (region, result, squares[other["name"]])], 1))
    grid = ARTIFACTS / "pairs.png"
    Image.fromarray(np.concatenate(tiles, 0)).save(grid)
    held = [r for r in rows.values() if not r["tuned"]]
    report["interpolation"] = {
        "t": T, "pairs": rows, "grid": str(grid),
        "worst": _worst(list(rows.values())),
        "worst_untuned": _worst(held) if held else None,
        "targets": (f"between <= 0.12 eye distances, blotch <= 0.015, smear <= {MAX_SMEAR}, "
                    f"unexplained <= {MAX_UNEXPLAINED} (worst over the pairs)"),
    }
