"""``priorpaint batch``: the same edit on many photos (folders, list files), resumable."""

from __future__ import annotations

import argparse

from ..errors import InputError
from .common import add_projection_args, alignment_options, render_modes

DESCRIPTION = """\
Apply one recipe (edits, projection and render settings) to many photos.

Inputs are photo files, folders (searched recursively for .png .jpg .jpeg .tif .tiff .webp
.bmp .gif files; every other file is skipped and listed) or list files (.txt/.lst/.list: one
path per line, relative to the list file). Each photo's result is OUTDIR/NAME.png (alpha
preserved; photos found in a folder keep their subfolder), with --layers also
NAME.layer.png and with --reports NAME.report.json; OUTDIR/summary.json lists every photo
(status, seconds, metrics) and the totals. The output folder is left out of any input
folder that contains it.

Selections: --boxes FILE (JSON {"NAME": "X,Y,W,H" | [X,Y,W,H] | {"mask": "m.png"}} or a list
of {"image", "box"|"mask"} objects; CSV with a header image,box or image,x,y,w,h or
image,mask), --detect-faces (OpenCV's bundled Haar face detector: the largest face; with
--all-faces every face, each edited in turn into the same NAME.png), or else the whole photo.

A rerun with the same recipe skips the photos already done (a recipe hash is kept beside
each output); a changed recipe, selection or photo redoes them.
"""

EPILOG = """\
exit codes: 0 every photo edited (now or by an earlier run); 1 some photos failed or were
not run (each reported in one line; the rest were written); 2 usage error (nothing run);
130 interrupted (rerun to resume)."""


def cmd_batch(args) -> int:
    from ..batch.driver import BatchOptions, run_batch
    from ..batch.photo import Recipe

    if args.steps < 0:
        raise InputError("--steps must be 0 or more")
    if args.workers is not None and args.workers < 1:
        raise InputError("--workers must be 1 or more")
    if args.threads is not None and args.threads < 1:
        raise InputError("--threads must be 1 or more")
    if args.all_faces and not args.detect_faces:
        raise InputError("--all-faces needs --detect-faces")
    if args.ray_timeout <= 0:
        raise InputError("--ray-timeout must be positive")
    recipe = Recipe(edits=tuple(args.edit or ()), model=args.model, adapt=args.adapt,
                    adapt_method=args.adapt_method, adapt_fit=args.adapt_fit, composite=args.composite,
                    steps=args.steps,
                    seed=args.seed, init=args.init, margin=args.margin, masked=args.masked, allow_download=args.download,
                    **alignment_options(args))
    faces = ("all" if args.all_faces else "largest") if args.detect_faces else None
    opts = BatchOptions(inputs=args.inputs, output=args.output, recipe=recipe, boxes=args.boxes, faces=faces,
                        workers=args.workers, threads=args.threads, ray=args.ray, ray_timeout=args.ray_timeout,
                        layers=args.layers, reports=args.reports, summary=args.summary,
                        progress=not args.no_progress)
    code, _ = run_batch(opts)
    return code


def add_parser(sub) -> None:
    p = sub.add_parser("batch", help="apply the same edits to many photos (folders, list files), resumable",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="photo files, folders or list files")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="the output folder")
    p.add_argument("--edit", action="append", metavar="SPEC",
                   help="an edit KIND:ARGS (repeatable, applied in order); with none, the projection round trip")
    sel = p.add_mutually_exclusive_group()
    sel.add_argument("--boxes", metavar="FILE", help="JSON or CSV: photo name -> box X,Y,W,H or mask image")
    sel.add_argument("--detect-faces", action="store_true",
                     help="select the largest face found by OpenCV's Haar detector (a photo without one fails)")
    p.add_argument("--all-faces", action="store_true",
                   help="with --detect-faces: edit every face found, one after the other, into the same NAME.png")
    add_projection_args(p)
    p.add_argument("--masked", action="store_true", help="project only the selected pixels")
    p.add_argument("--adapt", action=argparse.BooleanOptionalAction, default=True,
                   help="render through the image-specific generator G' (default: on)")
    p.add_argument("--adapt-method", choices=("multiplicative", "weights"), default="multiplicative",
                   help="G' by multiplicative feature perturbations (default) or by tuning G_F's weights")
    p.add_argument("--adapt-fit", choices=("unedited", "reconstruction"), default="unedited",
                   help="fit G' on the unedited pixels (default) or once on the whole crop's reconstruction")
    p.add_argument("--composite", choices=render_modes(), default="detail",
                   help="detail (default, as edit): keep the photo's own detail at its resolution and take from the "
                        "generator only what the edit changes (a pose edit is rendered as warp); warp: move the "
                        "photo's own pixels along the edit's motion; replace: paste the generator's square resized "
                        "to the selection")
    p.add_argument("--layers", action="store_true", help="also write NAME.layer.png (RGBA, alpha = feathered edit mask)")
    p.add_argument("--reports", action="store_true", help="also write NAME.report.json per photo")
    p.add_argument("--summary", metavar="FILE", help="where to write the run's summary JSON (default OUTDIR/summary.json)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes (or Ray actors), each loading the model once (default: one per core, "
                        "as memory allows, one on a GPU; on Ray one per cluster GPU, else per CPU)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per worker (default: the cores shared out; 1 per Ray actor)")
    p.add_argument("--ray", metavar="auto|local|ADDRESS", default=None,
                   help="run on Ray: 'local' starts a private instance here, 'auto' joins this machine's cluster, "
                        "HOST:PORT (or ray://HOST:PORT) joins a cluster; inputs and OUTDIR must be on a path every "
                        "node sees")
    p.add_argument("--ray-timeout", type=float, default=15.0,
                   help="seconds to wait for a Ray head to answer (default 15)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_batch)
