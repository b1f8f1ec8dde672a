"""Colour scribbles (iGAN): ``scribble:STROKES.png``.

The strokes are an RGBA image whose alpha marks the strokes and whose colour says what
colour the generated image should have there.  Its size picks how it maps onto the photo:

* the photo's size: the selection's square is cut from it (outside the photo: no stroke);
* the layer box's size (the selection's square clipped to the photo — what the app and
  the GIMP plug-in hand out) or the square's own size: it is placed on the square;
* any other size: it is resized (bilinear, premultiplied by alpha) to the layer box, with
  a note in the report.

The strokes are then taken to the model's resolution (area-averaged, premultiplied), and
the latent is optimised (Adam, a fixed number of steps, deterministic) so that the
generated image matches the stroke colours under the strokes while staying close to the
current image elsewhere::

    loss = Σ a·‖G − c‖² / Σ a  +  λ_keep · Σ (1 − a)·‖G − G₀‖² / Σ (1 − a)  +  λ_h · mean(δh²)

over ``h_e = h + δh`` at the split layer (``space="h"``, the default: the split feature
is expressive enough to take the strokes, and it is twice as fast) or, with
``space="z+h"``, also a latent move ``δz`` mapped through ``G_H`` with the residual kept
(``h + G_H(z+δz) − G_H(z) + δh``), so that a stroke can move the face as a whole.  The edit
mask used for rendering stays the selection.  A strokes image whose alpha is 0 everywhere
is a no-op (with a note).

A render composites the result with the ``colour`` composite
(:mod:`priorpaint.compositing.colour`): the photo takes the low band of the generator's colour
change and keeps its own texture (a red cap, not a red bar).  The applied spec records where
the strokes are (``stroke_map``: the strokes at the model's resolution, run-length coded, see
:func:`stroke_map`), so that the report can check that the edit worked
(:mod:`priorpaint.measures.kinds`).
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
import torch
from PIL import Image

from ..errors import InputError
from ..images import load_photo
from .registry import EditContext, EditState, PreviewCost, register_edit

#: 60 Adam steps at lr 0.08 with λ_keep 5: on the astronaut two strokes reach an error of
#: ~0.01 (from ~0.55) while the rest of the image moves ~4x less than with λ_keep 1
DEFAULTS = {"steps": 60, "lr": 0.08, "lambda_keep": 5.0, "lambda_h": 0.01, "space": "h"}


def _resize_premultiplied(rgb: np.ndarray, alpha: np.ndarray, size: Tuple[int, int], resample) -> Tuple[np.ndarray, np.ndarray]:
    """Resize colour and alpha (float arrays) without dark fringes: premultiply, resize, divide."""
    a = alpha.astype(np.float32)
    pre = rgb.astype(np.float32) * a[..., None]
    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(pre[..., c]), "F").resize(size, resample)) for c in range(3)]
    a2 = np.asarray(Image.fromarray(np.ascontiguousarray(a), "F").resize(size, resample))
    a2 = np.clip(a2, 0.0, 1.0)
    rgb2 = np.stack(chans, -1) / np.maximum(a2, 1e-6)[..., None]
    return np.clip(rgb2, 0, 255), a2


def stroke_target(ctx: EditContext, strokes) -> Tuple[torch.Tensor, torch.Tensor, list]:
    """``(colour (1,3,R,R) in [-1,1], weight (1,1,R,R) in [0,1], notes)`` for the selection's square."""
    photo = load_photo(strokes, "scribble strokes")
    if photo.alpha is None:
        raise InputError("scribble strokes need an alpha channel (RGBA): alpha marks the strokes, "
                         f"but this image is {photo.mode}")
    notes = []
    crop = ctx.crop
    side = crop.square[2]
    W, H = crop.image_size
    box = crop.layer_box
    layer_size = (box.w, box.h)
    rgb = photo.rgb.astype(np.float32)
    alpha = photo.alpha.astype(np.float32) / 255.0
    if photo.size == (W, H):
        rgb_sq = crop.region_of(rgb)
        a_sq = crop.region_of(alpha)
    else:
        if photo.size == (side, side):
            rgb_sq, a_sq = rgb, alpha
        else:
            if photo.size != layer_size:
                note = (f"scribble strokes are {photo.size[0]}x{photo.size[1]}, neither the photo "
                        f"({W}x{H}) nor the layer box ({layer_size[0]}x{layer_size[1]}); resized to the layer box")
                notes.append(note)
                rgb, alpha = _resize_premultiplied(rgb, alpha, layer_size, Image.BILINEAR)
            rgb_sq = crop.from_layer(np.ascontiguousarray(rgb, np.float32))
            a_sq = crop.from_layer(np.ascontiguousarray(alpha, np.float32))
    r = ctx.gen.resolution
    if side != r:
        rgb_sq, a_sq = _resize_premultiplied(rgb_sq, a_sq, (r, r), Image.BOX if side > r else Image.BILINEAR)
    dev = ctx.gen.device
    colour = torch.from_numpy(np.ascontiguousarray(rgb_sq)).permute(2, 0, 1).float().div(127.5).sub(1.0)[None].to(dev)
    weight = torch.from_numpy(np.ascontiguousarray(a_sq)).float()[None, None].to(dev)
    return colour, weight, notes


def optimise(gen, z: torch.Tensor, h: torch.Tensor, split: str, colour: torch.Tensor, weight: torch.Tensor,
             interventions=None, steps: int = DEFAULTS["steps"], lr: float = DEFAULTS["lr"],
             lambda_keep: float = DEFAULTS["lambda_keep"], lambda_h: float = DEFAULTS["lambda_h"],
             space: str = DEFAULTS["space"], cancel=None, progress=None):
    """``(z_e, h_e, info)``: the latent whose image has the stroke colours (see the module docstring)."""
    from ..jobs import checkpoint
    if space not in ("h", "z+h"):
        raise InputError(f"scribble space must be 'h' or 'z+h', got {space!r}")
    iv = interventions or None
    with torch.no_grad():
        base = gen.forward_from(split, h, interventions=iv, z=z)
        hz = gen.forward_to(z, split) if space == "z+h" else None
    keep = (1.0 - weight).expand_as(base)
    w3 = weight.expand_as(base)
    wsum = w3.sum().clamp_min(1e-6)
    ksum = keep.sum().clamp_min(1e-6)
    dh = torch.zeros_like(h, requires_grad=True)
    params = [dh]
    dz = None
    if space == "z+h":
        dz = torch.zeros_like(z, requires_grad=True)
        params.append(dz)
    opt = torch.optim.Adam(params, lr=lr)

    def forward():
        z_e = z + dz if dz is not None else z
        h_e = h + dh
        if dz is not None:
            h_e = h_e + gen.forward_to(z_e, split) - hz
        return z_e, h_e, gen.forward_from(split, h_e, interventions=iv, z=z_e)

    with torch.enable_grad():
        first = None
        for i in range(steps):
            checkpoint(cancel, progress, "scribble", i / max(steps, 1))
            _, _, out = forward()
            err = out - colour
            stroke = (w3 * err * err).sum() / wsum
            kd = out - base
            loss = stroke + lambda_keep * (keep * kd * kd).sum() / ksum + lambda_h * (dh * dh).mean()
            if first is None:
                first = float(stroke.detach())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    with torch.no_grad():
        z_e, h_e, out = forward()
        err = out - colour
        stroke = float((w3 * err * err).sum() / wsum)
        kd = out - base
        kept = float((keep * kd * kd).sum() / ksum)
    if first is None:
        first = stroke
    return z_e.detach(), h_e.detach(), {"stroke_mse_before": first, "stroke_mse_after": stroke,
                                        "elsewhere_mse": kept}


#: a model pixel counts as stroked from this alpha on (the stroke map of the report)
STROKE_ALPHA = 0.5


def stroke_map(colour: torch.Tensor, weight: torch.Tensor) -> dict:
    """Where the strokes are and their colours, JSON-friendly: ``{"resolution": R, "runs":
    [[start, length, r, g, b], ...]}`` over the R×R raster (row-major) of the model pixels whose
    stroke alpha is at least :data:`STROKE_ALPHA`, one run per stretch of one colour (0..255)."""
    r = int(weight.shape[-1])
    on = (weight[0, 0] >= STROKE_ALPHA).flatten().cpu().numpy()
    rgb = ((colour[0].permute(1, 2, 0).reshape(-1, 3).cpu().numpy() + 1.0) * 127.5).round().clip(0, 255).astype(int)
    runs = []
    for i in np.flatnonzero(on):
        c = [int(v) for v in rgb[i]]
        if runs and runs[-1][0] + runs[-1][1] == i and runs[-1][2:] == c:
            runs[-1][1] += 1
        else:
            runs.append([int(i), 1] + c)
    return {"resolution": r, "runs": runs}


def parse_scribble(args: str) -> dict:
    path = args.strip()
    if not path:
        raise InputError("scribble edit must be scribble:STROKES.png (an RGBA image whose alpha marks the strokes)")
    return {"strokes": path}


@register_edit("scribble", parse_scribble, preview=PreviewCost.SLOW, file_fields=("strokes",),
               help="scribble:STROKES.png — RGBA strokes (alpha marks them) sized like the photo or the layer box "
                    "(other sizes are resized); the latent is optimised to take their colours",
               composite="colour")
def apply_scribble(ctx: EditContext, state: EditState, spec: dict) -> EditState:
    strokes = spec.get("strokes")
    if strokes is None or (isinstance(strokes, str) and not strokes.strip()):
        raise InputError("scribble edit needs 'strokes' (an RGBA image)")
    colour, weight, notes = stroke_target(ctx, strokes)
    if not isinstance(strokes, str):
        spec["strokes"] = f"<{type(strokes).__name__}>"   # keep the report JSON-friendly
    new = state.evolve()
    new.notes.extend(notes)
    if float(weight.sum()) <= 0:
        new.notes.append("scribble has no strokes (its alpha is 0 everywhere): nothing changed")
        spec["noop"] = True
        return new
    sel = ctx.mask
    if sel is not None and float((weight * sel).sum()) <= 0:
        new.notes.append("no scribble stroke lies inside the selection: the result shows no change there")
    opts = {k: spec.get(k, v) for k, v in DEFAULTS.items()}
    try:
        opts["steps"] = int(opts["steps"])
        for k in ("lr", "lambda_keep", "lambda_h"):
            opts[k] = float(opts[k])
    except (TypeError, ValueError, OverflowError):
        raise InputError("scribble: steps must be an integer and lr, lambda_keep, lambda_h numbers") from None
    if opts["steps"] < 0 or opts["steps"] > 5000:
        raise InputError(f"scribble: steps must be between 0 and 5000, got {opts['steps']}")
    z_e, h_e, info = optimise(ctx.gen, state.z, state.h, ctx.split, colour, weight,
                              interventions=state.interventions, progress=ctx.progress, cancel=ctx.cancel, **opts)
    new.z, new.h = z_e, h_e
    spec.update({k: round(v, 5) for k, v in info.items()}, steps=opts["steps"], space=opts["space"],
                stroke_map=stroke_map(colour, weight))
    return new
