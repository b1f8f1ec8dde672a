"""Options shared by the commands that project a selection (project, edit, segment)."""

from __future__ import annotations

import argparse


def add_selection_args(p: argparse.ArgumentParser, output_help: str) -> None:
    """The photo, its selection, the model and the projection options: shared by every
    command that projects a selection (project, edit, segment)."""
    p.add_argument("image", help="the photo (PNG, JPEG, TIFF, WebP, ...; any mode)")
    sel = p.add_mutually_exclusive_group(required=True)
    sel.add_argument("--box", help="selection box X,Y,W,H in pixels")
    sel.add_argument("--mask", help="selection mask image, same size as the photo (white or alpha = selected)")
    p.add_argument("-o", "--output", required=True, help=output_help)
    add_projection_args(p)


def add_projection_args(p: argparse.ArgumentParser) -> None:
    """The model and how each selection is projected (also used by ``batch``)."""
    p.add_argument("--model", default=None, help="manifest model id (default: dcgan-digiface-64); see `priorpaint models`")
    p.add_argument("--download", action="store_true", help="allow downloading a hub model's weights")
    p.add_argument("--steps", type=int, default=300, help="projection optimisation steps (default 300)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the projection (default 0)")
    p.add_argument("--init", choices=("auto", "encoder", "search"), default="auto",
                   help="how the projection starts: 'encoder' = hybrid (the model's inverting network E(x) "
                        "starts a short optimisation), 'search' = the multi-start z search; 'auto' (default): "
                        "the encoder when the model has one matching its weights, else the search")
    p.add_argument("--margin", type=float, default=0.1,
                   help="context margin around the selection, as a fraction of its size (default 0.1)")
    p.add_argument("--eyes", metavar="X1,Y1,X2,Y2",
                   help="the two eye centres in photo pixels (either order), for a model that declares an "
                        "alignment (FFHQ-style faces): the crop rotates and scales the face so the eyes land where "
                        "the model expects them (default: found by OpenCV's face and eye detectors)")
    p.add_argument("--align", action=argparse.BooleanOptionalAction, default=True,
                   help="align the face for a model that declares an alignment (default on; --no-align: the "
                        "plain box, as for any other model)")


def alignment_options(args) -> dict:
    """``align`` / ``eyes`` for :meth:`EditSession.open` from the parsed options (a bad --eyes:
    a one-line error before anything is loaded)."""
    from ..compositing.align import parse_eyes
    from ..errors import InputError
    eyes = parse_eyes(args.eyes) if args.eyes is not None else None
    if eyes is not None and not args.align:
        raise InputError("--eyes and --no-align contradict each other: give one of them")
    return {"align": bool(args.align), "eyes": eyes}


def add_render_args(p: argparse.ArgumentParser) -> None:
    """The selection options plus what a render writes and how (report, layer, G\u2032, compositing)."""
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
    p.add_argument("--composite", choices=render_modes(), default=None,
                   help="detail: keep the photo's own detail at its resolution and take from the generator only "
                        "what the edit changes (default for edit; no edit = the photo bit for bit; a pose edit - "
                        "head_turn, head_tilt, profile, drag - is rendered as warp); warp: move the photo's own "
                        "pixels along the edit's motion; replace: paste the generator's square resized to the "
                        "selection (default for project: the reconstruction)")


def render_modes():
    """The composites a render may be asked for (declared in :mod:`priorpaint.compositing.warp`)."""
    from ..compositing.warp import RENDER_MODES
    return RENDER_MODES
