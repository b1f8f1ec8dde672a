"""``scribble``: did a colour scribble work on real photos (``report["scribble"]``)?

On the astronaut's face: ``seconds`` of the scribble optimisation (two strokes, the session
projected as for ``directions``), the stroke error before and after and the error elsewhere.

On every bench photo and held-out box (``--photos N``: the first N): a red stroke over the
top of the face box (hair, a cap) and a yellow one on the cheek, rendered as the app renders
them (the ``colour`` composite), and — for comparison — composited as before this composite
(``detail``: it fades to the generated pixels where the strokes are new structure). Per photo
the measures of :mod:`priorpaint.measures.kinds` (texture kept under the strokes, hue distance,
colour reached) and the artefacts (smear, unexplained), then the worst case over the photos;
a grid per photo in ``artifacts/scribble/`` (photo | before | now | the generator's render).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List

import numpy as np

from .fixtures import projected_astronaut

ARTIFACTS = Path("artifacts") / "scribble"
RED, YELLOW = (220, 30, 30), (250, 220, 60)
FIGURES = ("texture_kept", "hue_distance", "colour_reached")


def _strokes(size, box):
    """Two strokes placed by the face box: red across its top (hair, a cap), yellow on a cheek."""
    from PIL import Image, ImageDraw
    x, y, w, h = box
    im = Image.new("RGBA", size, (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    d.line([(x + 0.3 * w, y + 0.12 * h), (x + 0.7 * w, y + 0.12 * h)], fill=RED + (255,), width=max(4, int(0.12 * h)))
    d.line([(x + 0.25 * w, y + 0.62 * h), (x + 0.33 * w, y + 0.66 * h)], fill=YELLOW + (255,),
           width=max(3, int(0.07 * h)))
    return im


def _measure(s, state, result: np.ndarray, region: np.ndarray, mask: np.ndarray) -> Dict[str, object]:
    from ..measures.report import structure_report
    from ..session import measure_squares
    st, v = structure_report(s.gen, getattr(s.gen, "model_id", None), state.applied,
                             *measure_squares(result, region, mask))
    kind = st.get("kind") or {}
    return {**{k: kind.get(k) for k in FIGURES}, "smear": st.get("smear"), "unexplained": st.get("unexplained"),
            "carried": v.get("carried"), "message": v.get("message")}


def _photo_row(photo: dict, args) -> Dict[str, object]:
    from PIL import Image

    from ..compositing.blend import default_feather, gray_rgb
    from ..compositing.detail import composite_square
    from ..projection.project import ProjectionConfig
    from ..session import to_uint8
    from .photo import _open, _square

    s = _open(photo, getattr(args, "model", None))
    s.project(ProjectionConfig(steps=min(int(getattr(args, "steps", 100) or 100), 100), seed=0))
    state = s.apply([{"kind": "scribble", "strokes": _strokes(s.photo.size, photo["box"])}])
    t0 = time.perf_counter()
    r = s.render(state)
    seconds = time.perf_counter() - t0
    region = _square(s, s.photo.rgb)
    mask = s.edit_mask(state)
    side = int(s.crop.square[2])
    now = _square(s, r.photo.rgb)
    edited, base = to_uint8(s.generate(state)), to_uint8(s.generate(None))
    if s.photo.gray:   # as the session composites a gray photo
        edited, base = gray_rgb(edited), gray_rgb(base)
    before = composite_square(region, base, edited, mask, default_feather(side), "detail")[0]
    row = {"box": list(photo["box"]), "side": int(side), "seconds_render": round(seconds, 3),
           "now": _measure(s, state, now, region, mask), "before": _measure(s, state, before, region, mask)}
    tiles = [region, before, now, np.asarray(Image.fromarray(edited).resize((side, side), Image.LANCZOS))]
    size = 256
    grid = np.concatenate([np.asarray(Image.fromarray(t).resize((size, size), Image.LANCZOS)) for t in tiles], 1)
    path = ARTIFACTS / f"{photo['name']}.png"
    Image.fromarray(grid).save(path)
    row["grid"] = str(path)
    return row


def _worst(rows: List[Dict[str, object]], which: str) -> Dict[str, object]:
    vals = {k: [r[which][k] for r in rows if r[which].get(k) is not None] for k in FIGURES + ("smear", "unexplained")}
    worst = {"texture_kept": min, "colour_reached": min, "hue_distance": max, "smear": max, "unexplained": max}
    out = {k: (worst[k](v) if v else None) for k, v in vals.items()}
    out["carried"] = f"{sum(1 for r in rows if r[which].get('carried'))} of {len(rows)}"
    return out


def run(report: dict, args) -> None:
    from PIL import Image, ImageDraw

    from .photo import bench_photos
    from .structural import held_out_photos

    s = projected_astronaut(args, 100)
    W, H = s.photo.size
    strokes = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    d = ImageDraw.Draw(strokes)
    d.line([(190, 60), (270, 60)], fill=YELLOW + (255,), width=14)    # yellow over the hair
    d.line([(200, 140), (220, 150)], fill=(200, 40, 40, 255), width=10)   # red on the cheek
    t0 = time.perf_counter()
    state = s.apply([{"kind": "scribble", "strokes": strokes}])
    seconds = time.perf_counter() - t0
    rec = state.applied[-1]
    r = s.render(state)
    out = {
        "seconds": round(seconds, 3),
        "steps": rec.get("steps"),
        "stroke_mse_before": rec.get("stroke_mse_before"),
        "stroke_mse_after": rec.get("stroke_mse_after"),
        "elsewhere_mse": rec.get("elsewhere_mse"),
        "changed_outside_mask": r.metrics["changed_outside_mask"],
        "targets": "seconds <= 3 (2-core CPU); on real photos (worst case): texture_kept >= 0.6, "
                   "hue_distance <= 30, colour_reached >= 0.5, smear <= 0.03, unexplained <= 0.10",
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    photos = bench_photos() + held_out_photos()
    photos = photos[:int(getattr(args, "photos", 0) or len(photos))]
    rows = {p["name"]: _photo_row(p, args) for p in photos}
    out["photos"] = rows
    out["worst"] = {"now": _worst(list(rows.values()), "now"), "before": _worst(list(rows.values()), "before")}
    report["scribble"] = out
