"""``vectors``: does a saved editing vector carry its effect onto other real photos (``report["vector_carried"]``)?

The astronaut's hair is grown by :data:`GROW` model px in its label map (a label-map edit, as a user
paints hair at the sides) and saved as a vector; the vector is then applied at strength 1 to the
other colour photos (the photo section's, the held-out boxes and the validation boxes of
:mod:`.structural`; ``--photos N``: the first N). Per photo the measures of
:mod:`priorpaint.measures.vectors` (the share of the saved effect carried, in its direction, and
the agreement of the two effects), the artefacts and the worst case; a grid in
``artifacts/vectors/`` (saved on: photo | result; then per photo: photo | result).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict

import numpy as np

ARTIFACTS = Path("artifacts") / "vectors"
#: model pixels the hair class is grown by in the saved label-map edit
GROW = 3
NAME = "bench-vector-hair"


def _labels_png(s, classes, head, path: Path) -> Path:
    """A label map (R, R classes) as the layer-box PNG a user would paint."""
    from PIL import Image

    from ..edits.seghead import colour_labels
    side = s.crop.square[2]
    big = np.asarray(Image.fromarray(colour_labels(classes.cpu().numpy(), head.colours)).resize((side, side), Image.NEAREST))
    lx, ly, lw, lh = s.crop.layer_box
    x0, y0, _ = s.crop.square
    Image.fromarray(np.ascontiguousarray(big[ly - y0:ly - y0 + lh, lx - x0:lx - x0 + lw])).save(path)
    return path


def run(report: dict, args) -> None:
    from PIL import Image

    from ..edits.segedit import state_classes
    from ..edits.seghead import get_head
    from ..edits.vectors import delete_vector
    from ..measures.vectors import MIN_AGREEMENT, MIN_CARRIED, effect_map, vector_carried
    from ..projection.project import ProjectionConfig
    from .concepts import grow_request
    from .photo import _open, _square, bench_photos
    from .structural import held_out_photos, validation_photos

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    model = getattr(args, "model", None)
    steps = min(int(getattr(args, "steps", 100) or 100), 100)
    photos = [p for p in bench_photos() + held_out_photos() + validation_photos()
              if not p["name"].startswith("cameraman")]
    source, others = photos[0], photos[1:]
    others = others[:int(getattr(args, "photos", 0) or len(others))]
    s = _open(source, model)
    s.project(ProjectionConfig(steps=steps, seed=0))
    head = get_head(s.gen)
    cur = state_classes(s.context(), s.initial_state(), head)
    want = grow_request(cur, head.names.index("hair"), GROW)
    labels = _labels_png(s, want, head, ARTIFACTS / "astronaut_hair_grown.png")
    model_id = s.gen.model_id
    rows: Dict[str, Dict[str, object]] = {}
    try:
        t0 = time.perf_counter()
        r = s.render(s.apply([{"kind": "segment", "labels": str(labels), "save_vector": NAME}]))
        src_sq, src_res = _square(s, s.photo.rgb), _square(s, r.photo.rgb)
        saved = effect_map(src_res, src_sq)
        source_row = {"seconds": round(time.perf_counter() - t0, 3), "smear": r.metrics["structure"].get("smear"),
                      "unexplained": r.metrics["structure"].get("unexplained"),
                      "effect": vector_carried(saved, saved)["effect_saved"]}
        tiles = [[src_sq, src_res]]
        for p in others:
            o = _open(p, model)
            o.project(ProjectionConfig(steps=steps, seed=0))
            ro = o.render(o.apply([f"vector:{NAME}=1"]))
            sq, res = _square(o, o.photo.rgb), _square(o, ro.photo.rgb)
            m = vector_carried(saved, effect_map(res, sq))
            st = ro.metrics["structure"]
            rows[p["name"]] = {**m, "smear": st.get("smear"), "unexplained": st.get("unexplained"),
                               "ghost": st.get("ghost"), "tuned": False}
            tiles.append([sq, res])
    finally:
        delete_vector(model_id, NAME)
    side = 160
    sheet = np.concatenate([np.concatenate([np.asarray(Image.fromarray(x).resize((side, side), Image.LANCZOS))
                                            for x in pair], 1) for pair in tiles], 0)
    grid = ARTIFACTS / "carried.png"
    Image.fromarray(sheet).save(grid)
    carried = [r["carried"] for r in rows.values() if r["carried"] is not None]
    agree = [r["agreement"] for r in rows.values() if r["agreement"] is not None]
    report["vector_carried"] = {
        "saved_on": {"photo": source["name"], "edit": f"label map: hair grown by {GROW} model px", **source_row},
        "photos": rows, "grid": str(grid),
        "worst": {"carried": min(carried) if carried else None, "agreement": min(agree) if agree else None,
                  "worked": f"{sum(1 for r in rows.values() if r['carried'] is not None and not r['failed'])} of {len(rows)}"},
        "targets": f"carried >= {MIN_CARRIED} of the saved effect, agreement >= {MIN_AGREEMENT} (worst over the photos)",
    }
