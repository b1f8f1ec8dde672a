"""``scribble``: a two-stroke scribble on the astronaut's face (``report["scribble"]``).

``seconds`` of the scribble optimisation (the session projected as for ``directions``),
with the stroke error before and after and the error elsewhere.
"""

from __future__ import annotations

import time

from .fixtures import projected_astronaut


def run(report: dict, args) -> None:
    from PIL import Image, ImageDraw

    s = projected_astronaut(args, 100)
    W, H = s.photo.size
    strokes = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    d = ImageDraw.Draw(strokes)
    d.line([(190, 60), (270, 60)], fill=(250, 220, 60, 255), width=14)    # yellow over the hair
    d.line([(200, 140), (220, 150)], fill=(200, 40, 40, 255), width=10)   # red on the cheek
    t0 = time.perf_counter()
    state = s.apply([{"kind": "scribble", "strokes": strokes}])
    seconds = time.perf_counter() - t0
    rec = state.applied[-1]
    r = s.render(state)
    report["scribble"] = {
        "seconds": round(seconds, 3),
        "steps": rec.get("steps"),
        "stroke_mse_before": rec.get("stroke_mse_before"),
        "stroke_mse_after": rec.get("stroke_mse_after"),
        "elsewhere_mse": rec.get("elsewhere_mse"),
        "changed_outside_mask": r.metrics["changed_outside_mask"],
        "targets": "seconds <= 3 (2-core CPU)",
    }
