"""``priorpaint bench``: the figures each issue asks for, measured on a real photo.

The photo is the astronaut portrait shipped with scikit-image (public domain), the face
box ``140,20,180,180``.  Each section is a function ``section(report, args)`` that adds
its figures to ``report`` (a dict of dicts); :data:`SECTIONS` lists them in order.
Peak RSS is the process's high-water mark at the end.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

ASTRONAUT_BOX = (140, 20, 180, 180)


def astronaut_path() -> Path:
    try:
        import skimage
    except ImportError:
        from .errors import InputError
        raise InputError("the benchmark reads the astronaut photo from scikit-image: pip install scikit-image") from None
    return Path(skimage.__file__).parent / "data" / "astronaut.png"


def peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024 * 1024) if sys.platform == "darwin" else r / 1024


def projection_section(report: dict, args) -> None:
    from .projection.project import ProjectionConfig
    from .session import EditSession

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


from .models.stylegan2_bench import stylegan2_section  # noqa: E402  (stdlib-only at import)


def adaptation_section(report: dict, args) -> None:
    """G′ figures (``report["adaptation"]``); see :mod:`priorpaint.adaptation.bench`."""
    from .adaptation.bench import adaptation_section as section  # imports torch: only when run
    section(report, args)


def directions_section(report: dict, args) -> None:
    """Directions figures (``report["directions"]``); see :mod:`priorpaint.edits.directions_bench`."""
    from .edits.directions_bench import directions_section as section
    section(report, args)


def scribble_section(report: dict, args) -> None:
    """Scribble figures (``report["scribble"]``); see :mod:`priorpaint.edits.directions_bench`."""
    from .edits.directions_bench import scribble_section as section
    section(report, args)


def concepts_section(report: dict, args) -> None:
    """Concepts and segmentation figures (``segmentation``, ``concepts``, ``segment_edit``,
    ``vectors``); see :mod:`priorpaint.edits.concepts_bench`."""
    from .edits.concepts_bench import concepts_section as section
    section(report, args)


def app_section(report: dict, args) -> None:
    """Load and fault figures of the app on a live server (``report["app"]``); see :mod:`priorpaint.app.bench`."""
    from .app.bench import app_section as section
    section(report, args)


#: the benchmark's sections, in order; each issue appends its own
SECTIONS: List[Callable[[Dict, object], None]] = [
    projection_section,
    stylegan2_section,
    adaptation_section,
    directions_section,
    scribble_section,
    concepts_section,
    app_section,
]


def run(args) -> int:
    import torch
    report: Dict[str, object] = {"threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}
    only = set(args.only.split(",")) if args.only else None
    for section in SECTIONS:
        name = section.__name__.replace("_section", "")
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        section(report, args)
        print(f"[bench] {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    report["peak_rss_mb"] = round(peak_rss_mb(), 1)
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text)
    return 0


def add_arguments(p) -> None:
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("--model", default=None, help="model id (default: the embedded default)")
    p.add_argument("--steps", type=int, default=300, help="projection steps (default 300)")
    p.add_argument("--only", help="comma-separated section names to run (e.g. projection)")
