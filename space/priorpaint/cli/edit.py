"""``priorpaint project`` and ``priorpaint edit``: project a selection, apply edits, write the result."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import List

from ..errors import InputError
from .common import add_render_args


def run_selection(args, edits: List[str]):
    from ..compositing.crop import parse_box
    from ..images import save_photo
    from ..projection.project import ProjectionConfig
    from ..session import EditSession

    t0 = time.perf_counter()
    if args.steps < 0:
        raise InputError("--steps must be 0 or more")
    box = parse_box(args.box) if args.box else None
    session = EditSession.open(args.image, box=box, mask=args.mask, model=args.model,
                               margin=args.margin, allow_download=args.download)
    specs = None
    if edits:
        from ..edits.registry import check_specs, parse_specs
        specs = parse_specs(edits)  # refuse a bad spec before the slow projection
        check_specs(session.gen, specs)
    proj = session.project(ProjectionConfig(steps=args.steps, seed=args.seed, masked=args.masked,
                                            init=args.init))
    state = session.apply(specs) if specs else None
    adapt = args.adapt if args.adapt is not None else args.command == "edit"
    composite = args.composite or ("detail" if args.command == "edit" else "replace")
    result = session.render(state, adapt=adapt, adapt_options={"method": args.adapt_method,
                                                               "fit": args.adapt_fit} if adapt else None,
                            composite=composite)
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
        "projection_init": proj.init,
        "encoder": proj.encoder,
        "psnr_encoder": proj.psnr_encoder,
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
        from ..edits.segedit import attach_save_vector
        edits = attach_save_vector(edits, args.save_vector)  # the same as segment:...#save=NAME
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
                   help="save the change of the segment edit as editing vector NAME (for vector:NAME=STRENGTH)")
    p.set_defaults(func=cmd_edit)
