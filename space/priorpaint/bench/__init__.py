"""``priorpaint bench``: the figures each stage promises, measured on real photos.

One module per section; each has ``run(report, args)``, which adds its figures to
``report`` (a dict of dicts, printed as JSON).  :data:`SECTIONS` lists them in order,
by name; a section's module is imported only when it runs, so ``priorpaint --help``
stays fast and the engine never has to import anything from here.  What the sections
share (the photos, the astronaut's face box, peak RSS) is in :mod:`.fixtures`.

The sections:

* ``projection`` (:mod:`.projection`), ``encoder`` (:mod:`.encoder`), ``stylegan2`` (:mod:`.stylegan2`),
  ``adaptation`` (:mod:`.adaptation`), ``directions`` (:mod:`.directions`),
  ``scribble`` (:mod:`.scribble`), ``concepts`` (:mod:`.concepts`), ``photo`` (:mod:`.photo`),
  ``interpolation`` (:mod:`.interpolation`), ``vectors`` (:mod:`.vectors`),
  ``app`` (:mod:`.app`), ``security`` (:mod:`.security`), ``memory`` (:mod:`.memory`),
  ``soak`` (:mod:`.soak`), ``batch`` (:mod:`.batch`).

``--markdown [FILE]`` renders the same report as a markdown page (:mod:`.markdown`);
``docs/benchmarks.md`` is such a page.

A new section is a module here with ``run(report, args)`` and one :class:`Section` line
in :data:`SECTIONS`, which also declares the section's smallest setting (``smallest``: the
options that make its cheapest run, read by the section with ``getattr(args, name, default)``).
``priorpaint bench --smallest`` runs every section so (a smoke run whose figures mean nothing);
``tests/test_bench_sections.py`` runs each registered section that way, so a section that
crashes is a failing test.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

from ..errors import InputError
from .fixtures import peak_rss_mb


@dataclass(frozen=True)
class Section:
    """One benchmark section: its name (``--only NAME``), its module under
    ``priorpaint.bench`` (whose ``run(report, args)`` it calls) and one line for ``--list``."""

    name: str
    module: str
    description: str
    #: the options of the section's cheapest run (``--smallest``): bench options such as
    #: ``steps`` and the section's own knobs, which it reads with ``getattr(args, name, default)``
    smallest: Dict[str, object] = field(default_factory=dict)

    def load(self) -> Callable[[Dict, object], None]:
        """The section's ``run(report, args)`` (imports its module)."""
        return importlib.import_module(f"{__name__}.{self.module}").run

    def args_for(self, args) -> argparse.Namespace:
        """``args`` as this section runs them: with its smallest setting under ``--smallest``."""
        merged = dict(vars(args))
        if merged.get("smallest"):
            merged.update(self.smallest)
        return argparse.Namespace(**merged)


#: the benchmark's sections, in the order they run
SECTIONS: List[Section] = [
    Section("projection", "projection",
            "projection round trip on the astronaut's face: PSNR, seconds per stage",
            smallest={"steps": 2}),
    Section("encoder", "encoder",
            "inverting network and hybrid projection vs the multi-start search on three photos: PSNR, seconds",
            smallest={"steps": 2, "repeat": 1}),
    Section("stylegan2", "stylegan2",
            "per-step seconds of projection and G' on a config-f-sized StyleGAN2 (random weights)",
            smallest={"stylegan2_size": 32, "stylegan2_width": 32, "stylegan2_style_dim": 64,
                      "stylegan2_n_mlp": 2, "stylegan2_steps": 2}),
    Section("adaptation", "adaptation",
            "G' on a latent edit: PSNR on the unedited pixels, edit fidelity, speed vs the paper's recipe",
            smallest={"steps": 2, "adapt_steps": 3}),
    Section("directions", "directions",
            "live-preview frame time of a direction; SeFa and GANSpace computation times; the portrait "
            "sliders on 7 real photos: effect ratio, smear, unexplained, verdict; grids",
            smallest={"steps": 2, "ganspace_samples": 500, "photos": 1}),
    Section("scribble", "scribble",
            "scribble optimisation on the astronaut's face: seconds, stroke error; on 7 real photos: texture "
            "kept under the strokes, hue distance, colour reached, smear, unexplained (before vs now); grids",
            smallest={"steps": 2, "photos": 1}),
    Section("concepts", "concepts",
            "segmentation head mIoU, concept painting success, segmentation edits, vector preview; concept paint "
            "and a label-map edit on 5 real photos: visible change where painted, artefacts, verdict; grid",
            smallest={"steps": 2, "head_steps": 5, "head_samples": 8, "concept_images": 2, "sampled_edits": 1,
                      "photos": 1}),
    Section("photo", "photo",
            "compositing at the photo's resolution (replace vs detail) on four photos, every edit kind; grids",
            smallest={"steps": 2, "photos": 1, "repeat": 1, "adapt_steps": 3}),
    Section("structural", "structural",
            "structural edits on real photos (4 bench photos + 3 held-out boxes): effect ratio, smear, "
            "unexplained structure, ghost, verdict; today (G' + detail) vs warp; grids",
            smallest={"steps": 2, "photos": 1, "structural_edits": 1, "sweep": False}),
    Section("interpolation", "interpolation",
            "interpolation at t 0.5 between real faces: landmarks between the two, blotches, artefacts; grid",
            smallest={"steps": 2, "photos": 1}),
    Section("vectors", "vectors",
            "a vector saved from a label-map edit on the astronaut, applied to 6 other real photos: the share of "
            "its effect carried, agreement, artefacts; grid",
            smallest={"steps": 2, "photos": 1}),
    Section("drag", "drag",
            "drag editing: independent reach (optical flow) on real photos, DragGAN's landmark protocol on "
            "generated faces, detail kept, smear, seconds; grids",
            smallest={"steps": 2, "photos": 1, "face_pairs": 1, "drag_steps": 3}),
    Section("app", "app",
            "the app on a live server: 8 concurrent clients, cancel and disconnect latency, peak RSS",
            smallest={"clients": 2, "app_steps": 2}),
    Section("security", "security",
            "the server under attack: probe cases refused or stopped, honest p95 under a flood, RSS, SIGTERM",
            smallest={"honest_clients": 2, "hostile_calls": 3}),
    Section("memory", "memory",
            "peak RSS and seconds per stage of a full-selection project + edit at 1, 12 and 36 MP",
            smallest={"memory_sizes": "0.25"}),
    Section("soak", "soak",
            "a live server under mixed requests from several clients for --seconds: RSS and disk flat, one-line answers",
            smallest={"seconds": 10, "soak_clients": 2}),
    Section("batch", "batch",
            "priorpaint batch: photos per minute, with and without G', on 1 and 2 local workers",
            smallest={"steps": 2, "batch_photos": 1}),
]


def section_names() -> List[str]:
    return [s.name for s in SECTIONS]


def get_section(name: str) -> Section:
    """The section called ``name``; an :class:`InputError` naming the sections otherwise."""
    for s in SECTIONS:
        if s.name == name:
            return s
    raise InputError(f"unknown bench section {name!r} (sections: {', '.join(section_names())}; see --list)")


def select(only: Optional[str]) -> List[Section]:
    """The sections ``--only`` asks for (a comma-separated list), in registry order; all for none."""
    if not only:
        return list(SECTIONS)
    names = [n.strip() for n in only.split(",") if n.strip()]
    if not names:
        raise InputError("--only needs at least one section name (see --list)")
    wanted = {get_section(n).name for n in names}
    return [s for s in SECTIONS if s.name in wanted]


def list_sections(out=None) -> None:
    out = out or sys.stdout
    width = max(len(s.name) for s in SECTIONS)
    for s in SECTIONS:
        print(f"{s.name:<{width}}  {s.description}", file=out)


def run(args) -> int:
    """Run the sections ``args.only`` selects and print the report as JSON (and write ``args.json``).

    With ``args.markdown`` the report is also rendered as a markdown page (:mod:`.markdown`):
    written to that file, or printed instead of the JSON when it is ``"-"``.
    """
    if getattr(args, "list", False):
        list_sections()
        return 0
    sections = select(getattr(args, "only", None))
    markdown_to = getattr(args, "markdown", None)
    from . import markdown
    load_before = markdown.load_average()
    import torch
    report: Dict[str, object] = {"threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}
    before = {**markdown.machine(), "load": load_before}
    ran = []
    for section in sections:
        keys = set(report)
        t0 = time.perf_counter()
        section.load()(report, section.args_for(args))
        seconds = time.perf_counter() - t0
        ran.append((section.name, section.description, [k for k in report if k not in keys], seconds))
        print(f"[bench] {section.name}: {seconds:.1f} s", file=sys.stderr)
    report["peak_rss_mb"] = round(peak_rss_mb(), 1)
    text = json.dumps(report, indent=2, default=str)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text)
    if markdown_to:
        page = markdown.render(report, ran, before, {"load": markdown.load_average()},
                               command=_command_line(args),
                               left_out=[s.name for s in SECTIONS if s not in sections])
        if markdown_to == "-":
            print(page, end="")
            return 0
        Path(markdown_to).parent.mkdir(parents=True, exist_ok=True)
        Path(markdown_to).write_text(page, encoding="utf-8")
        print(f"[bench] wrote {markdown_to}", file=sys.stderr)
    print(text)
    return 0


def _command_line(args) -> str:
    """The ``priorpaint bench`` command that reproduces this run (the options that change figures)."""
    parts = ["priorpaint bench"]
    if getattr(args, "only", None):
        parts.append(f"--only {args.only}")
    parts.append(f"--steps {args.steps}")
    if getattr(args, "model", None):
        parts.append(f"--model {args.model}")
    parts.append(f"--markdown {args.markdown}")
    return " ".join(parts)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``priorpaint bench``, added to ``p``."""
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("--model", default=None, help="model id (default: the embedded default)")
    p.add_argument("--steps", type=int, default=300, help="projection steps (default 300)")
    p.add_argument("--only", metavar="SECTION[,SECTION...]",
                   help="comma-separated section names to run (e.g. projection); see --list")
    p.add_argument("--seconds", type=float, default=60.0,
                   help="how long the soak section runs (default 60, a smoke run; at most 600)")
    p.add_argument("--soak-clients", type=int, default=4, help="client threads of the soak section (default 4)")
    p.add_argument("--memory-sizes", default=None,
                   help="megapixel sizes of the memory section, comma-separated (default 1,12,36)")
    p.add_argument("--list", action="store_true", help="print the section names with one line each and exit")
    p.add_argument("--markdown", nargs="?", const="-", metavar="FILE",
                   help="also write the figures as a markdown page to FILE, with the date, machine, torch "
                        "version, device and load average (docs/benchmarks.md is made so); "
                        "without FILE, print the page instead of the JSON")
    p.add_argument("--smallest", action="store_true",
                   help="run each section at the smallest setting its registry entry declares: a smoke run "
                        "that checks every section completes (its figures mean nothing)")


__all__ = ["SECTIONS", "Section", "section_names", "get_section", "select", "list_sections",
           "run", "add_arguments"]
