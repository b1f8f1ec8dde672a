"""The ``priorpaint`` command line.

Every user-facing error is one line on stderr and exit code 2.  Sub-commands that belong
to a feature live in that feature's module, which provides ``add_cli(subparsers)``; the
modules are listed in :data:`COMMAND_MODULES`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import List, Optional

from . import __version__
from .errors import InputError, PriorpaintError

#: feature modules that add their own sub-commands with ``add_cli(subparsers)``
COMMAND_MODULES: List[str] = [
    "priorpaint.bench",
    "priorpaint.app.server",
    "priorpaint.models.convert",
    "priorpaint.gimp_install",
    "priorpaint.edits.directions",
    "priorpaint.edits.concepts",
    "priorpaint.edits.segedit",
]

EXIT_USAGE = 2


def add_selection_args(p: argparse.ArgumentParser, output_help: str) -> None:
    """The photo, its selection, the model and the projection options: shared by every
    command that projects a selection (project, edit, segment)."""
    p.add_argument("image", help="the photo (PNG, JPEG, TIFF, WebP, ...; any mode)")
    sel = p.add_mutually_exclusive_group(required=True)
    sel.add_argument("--box", help="selection box X,Y,W,H in pixels")
    sel.add_argument("--mask", help="selection mask image, same size as the photo (white or alpha = selected)")
    p.add_argument("-o", "--output", required=True, help=output_help)
    p.add_argument("--model", default=None, help="manifest model id (default: dcgan-digiface-64); see `priorpaint models`")
    p.add_argument("--download", action="store_true", help="allow downloading a hub model's weights")
    p.add_argument("--steps", type=int, default=300, help="projection optimisation steps (default 300)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the projection (default 0)")
    p.add_argument("--margin", type=float, default=0.1,
                   help="context margin around the selection, as a fraction of its size (default 0.1)")


def _selection_args(p: argparse.ArgumentParser) -> None:
    add_selection_args(p, "where to write the composited result (PNG keeps alpha)")
    p.add_argument("--report", help="write a JSON report with quality figures and seconds per stage")
    p.add_argument("--masked", action="store_true", help="project only the selected pixels (loss weighted by the mask)")
    p.add_argument("--layer", help="also write the result layer (RGBA, alpha = feathered edit mask) to this PNG")
    p.add_argument("--adapt", action=argparse.BooleanOptionalAction, default=None,
                   help="render through the image-specific generator G' fitted to the photo's unedited pixels "
                        "(default: on for edit, off for project)")
    p.add_argument("--adapt-method", choices=("multiplicative", "weights"), default="multiplicative",
                   help="G' by multiplicative feature perturbations (default, the paper's) or by tuning "
                        "G_F's weights (PTI-style)")
    p.add_argument("--adapt-fit", choices=("unedited", "reconstruction"), default="unedited",
                   help="fit G' on the pixels outside the edit mask for each edit (default, the paper's), "
                        "or once on the whole crop's reconstruction (better for edits of the whole selection)")


def _run_selection(args, edits: List[str]):
    from .compositing.crop import parse_box
    from .images import save_photo
    from .projection.project import ProjectionConfig
    from .session import EditSession

    t0 = time.perf_counter()
    if args.steps < 0:
        raise InputError("--steps must be 0 or more")
    box = parse_box(args.box) if args.box else None
    session = EditSession.open(args.image, box=box, mask=args.mask, model=args.model,
                               margin=args.margin, allow_download=args.download)
    specs = None
    if edits:
        from .edits.registry import check_specs, parse_specs
        specs = parse_specs(edits)  # refuse a bad spec before the slow projection
        check_specs(session.gen, specs)
    proj = session.project(ProjectionConfig(steps=args.steps, seed=args.seed, masked=args.masked))
    state = session.apply(specs) if specs else None
    adapt = args.adapt if args.adapt is not None else args.command == "edit"
    result = session.render(state, adapt=adapt, adapt_options={"method": args.adapt_method,
                                                               "fit": args.adapt_fit} if adapt else None)
    save_photo(result.photo, args.output)
    if args.layer:
        from PIL import Image
        Path(args.layer).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(result.layer, "RGBA").save(args.layer)
    seconds = dict(session.seconds)
    seconds["z_search"] = proj.seconds.get("z_search")
    seconds["refine"] = proj.seconds.get("refine")
    seconds["total"] = time.perf_counter() - t0
    report = {
        "model": session.model_id,
        "image": str(args.image),
        "image_mode": session.photo.mode,
        "box": list(session.crop.box),
        "square": list(session.crop.square),
        "psnr_z": proj.psnr_z,
        "psnr_projection": proj.psnr,
        "perceptual_loss": proj.perceptual_used,
        "psnr_adapted": None,
        "edit_fidelity": None,
        **{k: v for k, v in result.metrics.items() if k not in ("model",)},
        "seconds": seconds,
        "layer_box": list(result.layer_box),
        "output": str(args.output),
    }
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(json.dumps(report, indent=2, default=float))
    print(f"wrote {args.output}: psnr_z {proj.psnr_z:.2f} dB, psnr_projection {proj.psnr:.2f} dB, "
          + (f"psnr_adapted {report['psnr_adapted']:.2f} dB, " if report["psnr_adapted"] is not None else "")
          + f"changed_outside_mask {report['changed_outside_mask']}, {seconds['total']:.2f} s")
    for note in report.get("notes") or []:
        print(f"note: {note}", file=sys.stderr)
    return report


def cmd_project(args) -> int:
    _run_selection(args, [])
    return 0


def cmd_edit(args) -> int:
    edits = args.edit or []
    if getattr(args, "save_vector", None):
        from .edits.segedit import attach_save_vector
        edits = attach_save_vector(edits, args.save_vector)  # the same as segment:...#save=NAME
    _run_selection(args, edits)
    return 0


def cmd_models(args) -> int:
    from .models.manifest import load_manifest
    from .models.weights import weights_status

    rows = []
    for entry in load_manifest().values():
        present, src, path = weights_status(entry)
        rows.append({
            "id": entry.id, "kind": entry.kind, "architecture": entry.architecture,
            "resolution": entry.resolution, "domain": entry.domain,
            "present": present, "source": (src or entry.sources[0]).describe(),
            "path": str(path) if path else None, "description": entry.description,
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        state = "present" if r["present"] else "not downloaded"
        print(f"{r['id']:<28} {r['architecture']:<10} {r['resolution']:>5}px  {r['domain']:<10} {state:<15} {r['source']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="priorpaint",
        description="Semantic photo editing with a generative image prior: project a selection "
                    "into a GAN, edit it semantically, and composite the result back.")
    parser.add_argument("--version", action="version", version=f"priorpaint {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and notices")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("models", help="list every manifest model, its source and whether its weights are present")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("project", help="project a selection into the GAN and write the composited reconstruction")
    _selection_args(p)
    p.set_defaults(func=cmd_project)

    p = sub.add_parser("edit", help="project a selection, apply edits and write the composited result")
    _selection_args(p)
    p.add_argument("--edit", action="append", metavar="SPEC",
                   help="an edit KIND:ARGS (repeatable, applied in order); with none, the projection round trip")
    p.add_argument("--save-vector", metavar="NAME",
                   help="save the change of the segment edit as editing vector NAME (for vector:NAME=STRENGTH)")
    p.set_defaults(func=cmd_edit)

    for name in COMMAND_MODULES:
        importlib.import_module(name).add_cli(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except PriorpaintError as e:
        print(f"priorpaint: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("priorpaint: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
