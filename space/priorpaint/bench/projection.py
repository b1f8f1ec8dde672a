"""``projection``: the projection round trip on the astronaut's face box (``report["projection"]``).

Opens the session (load and crop), projects it with ``--steps`` steps (seed 0) and
renders the reconstruction: PSNR after the z search and after refinement, seconds per
stage, and how many pixels outside the selection changed (always 0).
"""

from __future__ import annotations

import time

from .fixtures import ASTRONAUT_BOX, astronaut_path


def run(report: dict, args) -> None:
    from ..projection.project import ProjectionConfig
    from ..session import EditSession

    t0 = time.perf_counter()
    s = EditSession.open(astronaut_path(), box=ASTRONAUT_BOX, model=args.model)
    load = time.perf_counter() - t0
    p = s.project(ProjectionConfig(steps=args.steps, seed=0))
    t1 = time.perf_counter()
    r = s.render()
    report["projection"] = {
        "model": s.model_id,
        "device": str(s.gen.device),
        "steps": args.steps,
        "psnr_z": round(p.psnr_z, 2),
        "psnr": round(p.psnr, 2),
        "seconds": round(p.seconds["z_search"] + p.seconds["refine"], 3),
        "seconds_z_search": round(p.seconds["z_search"], 3),
        "seconds_refine": round(p.seconds["refine"], 3),
        "seconds_load_and_crop": round(load, 3),
        "seconds_composite": round(time.perf_counter() - t1, 3),
        "changed_outside_mask": r.metrics["changed_outside_mask"],
        "targets": "psnr >= 27 dB, seconds <= 6 (2-core CPU)",
    }
