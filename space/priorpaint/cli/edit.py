"""``priorpaint project`` and ``priorpaint edit``: project a selection, apply edits, write the result."""

from __future__ import annotations

import sys
from typing import List

from ..errors import InputError
from .common import add_render_args, alignment_options


def run_selection(args, edits: List[str]):
    from ..batch.photo import Recipe, edit_photo
    from ..compositing.crop import parse_box

    if args.steps < 0:
        raise InputError("--steps must be 0 or more")
    box = parse_box(args.box) if args.box else None
    aligned = alignment_options(args)
    adapt = args.adapt if args.adapt is not None else args.command == "edit"
    composite = args.composite or ("detail" if args.command == "edit" else "replace")
    recipe = Recipe(edits=tuple(edits), model=args.model, adapt=adapt, adapt_method=args.adapt_method,
                    adapt_fit=args.adapt_fit, composite=composite, steps=args.steps, seed=args.seed,
                    init=args.init, margin=args.margin, masked=args.masked, allow_download=args.download,
                    align=aligned["align"], eyes=aligned["eyes"])
    report = edit_photo(args.image, args.output, recipe, box=box, mask=args.mask, layer=args.layer,
                        report_path=args.report)
    proj_psnr_z, proj_psnr, seconds = report["psnr_z"], report["psnr_projection"], report["seconds"]
    print(f"wrote {args.output}: psnr_z {proj_psnr_z:.2f} dB, psnr_projection {proj_psnr:.2f} dB, "
          + (f"psnr_adapted {report['psnr_adapted']:.2f} dB, " if report["psnr_adapted"] is not None else "")
          + f"{composite}: psnr_photo {_fmt(report.get('psnr_photo'))} dB, detail_kept {_fmt(report.get('detail_kept'))}, "
          + f"changed_outside_mask {report['changed_outside_mask']}, {seconds['total']:.2f} s")
    for note in report.get("notes") or []:
        print(f"note: {note}", file=sys.stderr)
    return report


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def cmd_project(args) -> int:
    run_selection(args, [])
    return 0


def cmd_edit(args) -> int:
    edits = args.edit or []
    if getattr(args, "save_vector", None):
        from ..edits import drag, segedit
        last = next((e.strip() for e in reversed(edits) if e.strip().startswith(("segment:", "drag:"))
                     or (e.strip().startswith("{") and ('"segment"' in e or '"drag"' in e))), "")
        # the same as segment:...#save=NAME, or "save_vector" on the last drag
        attach = drag.attach_save_vector if last.startswith("drag:") or '"drag"' in last else \
            segedit.attach_save_vector
        edits = attach(edits, args.save_vector)
    run_selection(args, edits)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("project", help="project a selection into the GAN and write the composited reconstruction")
    add_render_args(p)
    p.set_defaults(func=cmd_project)

    p = sub.add_parser("edit", help="project a selection, apply edits and write the composited result")
    add_render_args(p)
    p.add_argument("--edit", action="append", metavar="SPEC",
                   help="an edit KIND:ARGS (repeatable, applied in order); with none, the projection round trip")
    p.add_argument("--save-vector", metavar="NAME",
                   help="save the change of the segment edit as editing vector NAME (for vector:NAME=STRENGTH), "
                        "or the last drag as NAME (for drag:NAME=STRENGTH on another photo)")
    p.set_defaults(func=cmd_edit)
