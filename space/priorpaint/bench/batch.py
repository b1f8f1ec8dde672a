"""``batch``: photos per minute of ``priorpaint batch`` on this machine (``report["batch"]``).

A small set of real photos — scikit-image's astronaut, matplotlib's ``grace_hopper.jpg``,
and both scaled to 60 % — copied to a temporary folder (nothing is written beside the
installed packages, nothing committed), edited with the embedded model's
``direction:warm_light=1.5`` on the largest detected face, ``--steps`` projection steps,
without and with G′, on 1 and 2 local worker processes.  ``photos_per_minute`` is over the
whole run (worker start and model load included); ``seconds_per_photo`` the mean time of
one photo inside a worker.  On a shared machine other programs slow both.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from .fixtures import photo_path

SCALES = (1.0, 0.6)


def _photos(folder: Path) -> list:
    from PIL import Image
    import matplotlib.cbook
    sources = [photo_path("astronaut.png"),
               Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))]
    paths = []
    for src in sources:
        with Image.open(src) as im:
            im = im.convert("RGB")
            for s in SCALES:
                p = folder / f"{src.stem}-{int(s * 100)}.png"
                (im if s == 1.0 else im.resize((int(im.width * s), int(im.height * s)), Image.LANCZOS)).save(p)
                paths.append(p)
    return paths


def run(report: dict, args) -> None:
    from ..batch.driver import BatchOptions, run_batch
    from ..batch.photo import Recipe
    from ..models.manifest import DEFAULT_MODEL

    model = getattr(args, "model", None)
    edits = ("direction:warm_light=1.5",) if model in (None, DEFAULT_MODEL) else ()
    runs = {}
    with tempfile.TemporaryDirectory(prefix="priorpaint-bench-batch-") as tmp:
        photos = _photos(Path(tmp))[:getattr(args, "batch_photos", None) or None]  # --smallest: one
        for adapt in (False, True):
            for workers in (1, 2):
                out = Path(tmp) / f"out-{adapt}-{workers}"
                recipe = Recipe(edits=edits, model=model, adapt=adapt, steps=int(args.steps), seed=0)
                code, s = run_batch(BatchOptions(inputs=[str(p) for p in photos], output=str(out), recipe=recipe,
                                                 faces="largest", workers=workers, progress=False), log=io.StringIO())
                t = s["totals"]
                runs[f"{'gprime' if adapt else 'plain'}_{workers}_workers"] = {
                    "photos_per_minute": t["photos_per_minute"], "seconds_per_photo": t["seconds_per_photo"],
                    "seconds": t["seconds"], "ok": t["ok"], "failed": t["failed"], "threads": s["threads"]}
    report["batch"] = {"model": model or DEFAULT_MODEL, "photos": len(photos), "steps": int(args.steps),
                       "edit": list(edits), "selection": "largest detected face", **runs,
                       "note": "photos_per_minute over the whole run (workers' start and model load included); "
                               "a machine shared with other programs slows every figure"}
