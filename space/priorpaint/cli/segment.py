"""``priorpaint segment``: project a selection and write its label map (RGB PNG) and legend JSON."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .common import add_selection_args, alignment_options


def cmd_segment(args) -> int:
    from PIL import Image

    from ..compositing.crop import parse_box
    from ..errors import InputError
    from ..projection.project import ProjectionConfig
    from ..session import EditSession
    t0 = time.perf_counter()
    if args.steps < 0:
        raise InputError("--steps must be 0 or more")
    s = EditSession.open(args.image, box=parse_box(args.box) if args.box else None, mask=args.mask,
                         model=args.model, margin=args.margin, allow_download=args.download,
                         **alignment_options(args))
    p = s.project(ProjectionConfig(steps=args.steps, seed=args.seed, init=args.init))
    labels, legend = s.segment()
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(labels, "RGB").save(out, format="PNG")
    legend_path = Path(args.legend) if args.legend else out.with_suffix(".json")
    legend_path.parent.mkdir(parents=True, exist_ok=True)
    legend_path.write_text(json.dumps(legend, indent=1) + "\n")
    box = s.crop.layer_box
    print(f"wrote {out} ({labels.shape[1]}x{labels.shape[0]}, placed at {box[0]},{box[1]} in the image) and "
          f"legend {legend_path}: {', '.join(legend)}; psnr_projection {p.psnr:.2f} dB, "
          f"{time.perf_counter() - t0:.2f} s")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("segment", help="project a selection and write its label map (RGB PNG, one legend colour "
                                       "per class) for the layer box, plus the legend JSON")
    add_selection_args(p, "where to write the label map (PNG)")
    p.add_argument("--legend", help="where to write the legend JSON {name: [r, g, b]} (default: OUTPUT with .json)")
    p.set_defaults(func=cmd_segment)
