"""``structural``: do structural edits carry on real photos? (``report["structural"]``)

Photos: the ``photo`` section's four (:func:`priorpaint.bench.photo.bench_photos`) plus held-out
boxes nobody tuned on (the astronaut and Grace Hopper at other boxes, the cameraman's face; about
130–220 px). For each photo the default projection, then each edit of :data:`EDITS` rendered
``today`` (G′ + ``detail``, the defaults) and ``new`` (``warp``: the photo's pixels moved along
the in-manifold proxy's feature-matched motion, :mod:`priorpaint.compositing.warp`), with the
measures of :mod:`priorpaint.measures` (smear, unexplained structure, ghost, effect ratio) and
the verdict; grids ``photo | today | new | the generator's render`` under
``artifacts/structural/``. ``worst`` holds, per edit and composite, the worst case over photos
and the share of photos where the edit was carried.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List

import numpy as np

from .photo import _grid, _open, _square, bench_photos
from .fixtures import astronaut_path, matplotlib_sample_path, photo_path

ARTIFACTS = Path("artifacts") / "structural"
EDITS = ("head_turn=2", "head_turn=-2", "head_tilt=2", "head_tilt=-2", "headwear=2", "hair_frame=2",
         "profile=2", "warm_light=2")
KEYS = ("smear", "unexplained", "ghost", "effect", "effect_reference", "effect_ratio")


def held_out_photos() -> List[dict]:
    return [
        {"name": "astronaut_heldout", "path": astronaut_path(), "box": (165, 45, 130, 150)},
        {"name": "grace_hopper_heldout", "path": matplotlib_sample_path("grace_hopper.jpg"), "box": (180, 90, 190, 215)},
        {"name": "cameraman_heldout", "path": photo_path("camera.png"), "box": (200, 60, 110, 120)},
    ]


def _row(render, seconds: float) -> Dict[str, object]:
    st = render.metrics["structure"]
    v = render.metrics["verdict"]
    return {**{k: st.get(k) for k in KEYS}, "carried": v.get("carried"), "message": v.get("message"),
            "seconds": round(seconds, 3)}


def run(report: dict, args) -> None:
    from ..projection.project import ProjectionConfig

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    steps = min(int(getattr(args, "steps", 300) or 300), 300)
    adapt = {"fit": "reconstruction"}
    out: Dict[str, object] = {"edits": list(EDITS), "photos": {},
                              "targets": "head_turn/head_tilt +-2: effect_ratio >= 0.5, smear <= 0.03, "
                                         "unexplained <= 0.10, ghost <= 0.30 (worst over photos)"}
    for photo in bench_photos() + held_out_photos():
        s = _open(photo, getattr(args, "model", None))
        p = s.project(ProjectionConfig(steps=steps, seed=0))
        row: Dict[str, object] = {"box": list(photo["box"]), "side": int(s.crop.square[2]),
                                  "psnr_projection": round(p.psnr, 2), "edits": {}}
        region = _square(s, s.photo.rgb)
        for spec in EDITS:
            state = s.apply([f"direction:{spec}"])
            t0 = time.perf_counter()
            today = s.render(state, adapt=True, adapt_options=adapt, composite="detail")
            t_today = time.perf_counter() - t0
            t0 = time.perf_counter()
            new = s.render(state, composite="warp")
            t_new = time.perf_counter() - t0
            row["edits"][spec] = {"today": _row(today, t_today), "new": _row(new, t_new)}
            tiles = [region, _square(s, today.photo.rgb), _square(s, new.photo.rgb), today.generated]
            row["edits"][spec]["grid"] = _grid(tiles, ARTIFACTS / f"{photo['name']}_{spec}.png")
        out["photos"][photo["name"]] = row
    out["worst"] = _worst(out["photos"])
    report["structural"] = out


def _worst(photos: Dict[str, dict]) -> Dict[str, object]:
    worst: Dict[str, object] = {}
    for spec in EDITS:
        for mode in ("today", "new"):
            rows = [r["edits"][spec][mode] for r in photos.values()]
            nums = lambda k: [x[k] for x in rows if x.get(k) is not None]
            ratios = nums("effect_ratio")
            worst[f"{spec}/{mode}"] = {
                "effect_ratio_min": min(ratios) if ratios else None,
                "smear_max": max(nums("smear"), default=None),
                "unexplained_max": max(nums("unexplained"), default=None),
                "ghost_max": max(nums("ghost"), default=None),
                "carried": f"{sum(1 for x in rows if x.get('carried'))}/{len(rows)}",
                "seconds_max": max(nums("seconds"), default=None),
            }
    return worst
