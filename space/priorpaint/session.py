"""An editing session: one photo, one selection, one projection, then edits and renders.

This is the pipeline of the architecture page in one object, used by the CLI, the web
app and the API alike::

    s = EditSession.open("photo.png", box=(140, 20, 180, 180))
    s.project()                                   # crop -> (z, z_h)
    state = s.apply(["direction:smile=1.5"])      # edits: z_h -> z_h_e
    out = s.render(state)                         # G_F(z_h_e) -> composite into the photo
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from . import store
from .compositing.blend import changed_outside, gray_rgb, to_uint8
from .compositing.crop import DEFAULT_MARGIN, Crop, make_crop
from .edits import EDIT_KINDS, EditContext, EditState, parse_specs
from .errors import InputError
from .images import Photo, load_mask, load_photo
from .jobs import CancelToken, ProgressFn, checkpoint
from .models.layered import LayeredGenerator
from .models.registry import load_generator, manifest_extra
from .metrics import check_finite, psnr
from .projection.project import Projection, ProjectionConfig, project


#: a render's structure figures (:mod:`priorpaint.measures`) are measured on its square shrunk
#: (area average) to at most this side, as the preview's are on the preview's square: at 36 MP the
#: full-size measures held over 2 GB of float32 fields and took minutes
MEASURE_SIDE = 2048


def measure_squares(result: np.ndarray, region: np.ndarray, mask: np.ndarray):
    """``(result, region, mask)`` as :func:`~priorpaint.measures.report.structure_report` gets
    them: unchanged up to :data:`MEASURE_SIDE`, else shrunk to it."""
    import cv2

    if region.shape[0] <= MEASURE_SIDE:
        return result, region, mask
    size = (MEASURE_SIDE, MEASURE_SIDE)
    return tuple(cv2.resize(a, size, interpolation=cv2.INTER_AREA) for a in (result, region, mask))


@dataclass
class Render:
    photo: Photo                     # the full composited photo (alpha as the input's)
    layer: np.ndarray                # (h, w, 4) uint8: the result for the layer box, alpha = feathered mask
    layer_box: tuple                 # (x, y, w, h) of the layer in the photo
    generated: np.ndarray            # (R, R, 3) uint8: the generator's output at model resolution (its luminance for a gray photo)
    metrics: Dict[str, object] = field(default_factory=dict)


class EditSession:
    def __init__(self, photo: Photo, crop: Crop, gen: LayeredGenerator):
        self.id = secrets.token_urlsafe(16)
        self.photo = photo
        self.crop = crop
        self.gen = gen
        self.model_id = store.model_key(gen)
        dev = gen.device
        self.target = crop.target(dev)
        self.mask = crop.model_mask(dev)
        self.projection: Optional[Projection] = None
        #: per-stage caches (e.g. the fitted G′), keyed by their owners
        self.cache: Dict[str, object] = {}
        #: where this session's saved editing vectors live (the app sets one per client; None: shared)
        self.vector_namespace: Optional[str] = None
        self.seconds: Dict[str, float] = {}
        self.lock = threading.RLock()
        self.created = self.used = time.time()

    # -- construction --------------------------------------------------------------------
    @classmethod
    def open(cls, image, box: Optional[Sequence[int]] = None, mask=None, model: Optional[str] = None,
             device=None, margin: float = DEFAULT_MARGIN, allow_download: bool = False,
             gen: Optional[LayeredGenerator] = None, align=True,
             eyes: Optional[Sequence[float]] = None) -> "EditSession":
        """A session for ``image`` (path, bytes, PIL image, array or Photo) and a box or mask.

        A model whose manifest declares an ``alignment`` (a face model) gets an aligned crop
        (:mod:`priorpaint.compositing.align`): at the photo's ``eyes`` ``(x1, y1, x2, y2)``,
        else at the eyes detected near the selection (none found: the unaligned box, with a
        note).  ``align=False`` crops unaligned whatever the model declares."""
        t0 = time.perf_counter()
        photo = image if isinstance(image, Photo) else load_photo(image)
        if mask is not None:
            mask = load_mask(mask, photo.size)
        gen = gen or load_generator(model, device=device, allow_download=allow_download)
        extra = manifest_extra(gen)
        content = extra.get("content_box")  # e.g. the car model's rows 64-447
        alignment = extra.get("alignment") if align else None
        if not align and eyes is not None:
            raise InputError("eye positions (--eyes) and no alignment (--no-align) contradict each other: "
                             "give one of them")
        crop = make_crop(photo, gen.resolution, box=box, mask=mask, margin=margin, content_box=content,
                         alignment=alignment, eyes=eyes, device=gen.device)
        if not align and extra.get("alignment") is not None:
            crop.notes.append("this model expects aligned faces (its manifest declares where the eyes go); "
                              "this crop is the unaligned box")
        s = cls(photo, crop, gen)
        s.seconds["crop"] = time.perf_counter() - t0
        return s

    # -- projection ----------------------------------------------------------------------
    def project(self, config: Optional[ProjectionConfig] = None, progress: Optional[ProgressFn] = None,
                cancel: Optional[CancelToken] = None) -> Projection:
        with self.lock:
            t0 = time.perf_counter()
            self.projection = project(self.gen, self.target, self.mask, config, progress, cancel)
            self.projection_config = config or ProjectionConfig()  # reused to project other images alike
            self.cache.clear()  # anything fitted to an earlier projection is stale
            self.seconds["project"] = time.perf_counter() - t0
            self.used = time.time()
            return self.projection

    def require_projection(self) -> Projection:
        if self.projection is None:
            raise InputError("this session has no projection yet: project the selection first")
        return self.projection

    # -- edits ---------------------------------------------------------------------------
    def initial_state(self) -> EditState:
        p = self.require_projection()
        return EditState(z=p.z, h=p.h)

    def context(self, progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None) -> EditContext:
        """What the edit kinds get: the generator, the square, the split, the projection
        settings, the session's memo, cancel and progress — never the session itself."""
        p = self.require_projection()
        return EditContext(gen=self.gen, crop=self.crop, split=p.split, mask=self.mask,
                           projection_config=self.projection_config, memo=self.cache,
                           cancel=cancel, progress=progress,
                           vector_namespace=self.vector_namespace)

    def apply(self, specs, progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None,
              state: Optional[EditState] = None) -> EditState:
        """Apply edit specs (CLI strings, dicts or a JSON list) in order."""
        parsed = parse_specs(specs)
        with self.lock:
            state = state or self.initial_state()
            ctx = self.context(progress, cancel)
            for i, spec in enumerate(parsed):
                checkpoint(cancel, progress, "edit", i / max(len(parsed), 1), {"edit": spec["kind"]})
                t0 = time.perf_counter()
                state = EDIT_KINDS[spec["kind"]].apply(ctx, state, spec)
                check_finite(state.h, f"the latent after edit {spec['kind']}")
                check_finite(state.z, f"the latent after edit {spec['kind']}")
                record = {k: v for k, v in spec.items() if not isinstance(v, (np.ndarray, torch.Tensor))}
                record["seconds"] = time.perf_counter() - t0
                state.applied.append(record)
            self.used = time.time()
            return state

    def generate(self, state: Optional[EditState] = None) -> torch.Tensor:
        """``G_F(z_h_e)`` at model resolution, (1, 3, R, R) in [-1, 1] (the live preview)."""
        state = state or self.initial_state()
        with torch.no_grad():
            return self.gen.forward_from(self.require_projection().split, state.h,
                                         interventions=state.interventions or None, z=state.z)

    def segment(self, state: Optional[EditState] = None):
        """The label map of the current (or given) state for the layer box, and its legend
        (see :func:`priorpaint.edits.segedit.segment_labels`)."""
        from .edits.segedit import segment_labels
        return segment_labels(self.context(), state or self.initial_state())

    def edit_mask(self, state: Optional[EditState]) -> np.ndarray:
        """The square-region edit mask of a state: the selection, or an edit's own mask
        (a painted region, changed labels) clipped to the selection — as in GIMP, an
        edit never reaches outside what the user selected."""
        if state is not None and state.edit_mask is not None:
            return np.minimum(state.edit_mask, self.crop.region_mask)
        return self.crop.region_mask

    # -- rendering -----------------------------------------------------------------------
    def render(self, state: Optional[EditState] = None, progress: Optional[ProgressFn] = None,
               cancel: Optional[CancelToken] = None, feather: Optional[int] = None,
               adapt: bool = False, adapt_options=None, composite: str = "detail") -> Render:
        """Composite the edit into the photo under the feathered edit mask.

        ``composite="detail"`` (default) keeps the photo's own detail at its resolution and
        takes from the generator only what the edit changes (the low band of
        ``G(z_h_e) − G(z_h)``, the photo warped along the edit's motion, generated pixels
        where there is no correspondence; :mod:`priorpaint.compositing.detail`): a render
        without an edit returns the photo bit for bit.  ``composite="replace"`` pastes the
        generator's square, resized to the selection (the reconstruction itself).  ``composite="warp"``
        moves the photo's own pixels along the edit's motion (:mod:`priorpaint.warp_render`).  An applied edit
        that declares a structural composite (``drag``, or a structural named direction such as
        head_turn: ``"warp"``, :mod:`priorpaint.warp_render`) turns ``"detail"`` into it.

        ``adapt=True`` (not for ``warp``, which moves the photo's own pixels: a note says so)
        renders through the image-specific generator G′ (fitted on the
        unedited pixels, cached per session; see :mod:`priorpaint.adaptation`) instead of
        ``G``; ``adapt_options``: ``"multiplicative"`` (default) / ``"weights"``, a dict of
        :class:`priorpaint.adaptation.AdaptConfig` fields, or a config.  The metrics then
        carry ``psnr_adapted``, ``edit_fidelity`` and ``adaptation``; ``seconds["adapt"]`` the time.
        Every render's metrics carry the photo-resolution figures of
        :mod:`priorpaint.compositing.photo_metrics` (``psnr_photo``, ``detail_kept``,
        ``effect_carried``, ``seam_grain``, ``ghost``) and ``composite`` (the mode).
        """
        from .compositing.warp import check_render_mode
        from .edits.registry import structural_composite
        check_render_mode(composite)
        with self.lock:
            state = state or self.initial_state()
            if composite == "detail":   # a structural edit (drag, head_turn) declares its own composite
                composite = structural_composite(state.applied) or composite
            if adapt and composite == "warp":   # the photo's own pixels move: G′ would be fitted for nothing
                adapt, state = False, state.evolve()
                state.notes.append("G′ is not used by the warp composite (the photo's own pixels move); not fitted")
            check_finite(state.h, "the edited latent")
            check_finite(state.z, "the edited latent")
            t0 = time.perf_counter()
            metrics = None
            if adapt:
                from .adaptation import render_adapted
                image, metrics, self.seconds["adapt"], base = render_adapted(
                    self.gen, self.require_projection(), self.target, self.crop, self.edit_mask(state), state,
                    self.cache, adapt_options, progress, cancel, return_base=True)
                t0 = time.perf_counter()
            else:
                self.seconds.pop("adapt", None)
                image = self.generate(state)
                p = self.projection
                base = image if state.h is p.h and state.z is p.z and not state.interventions \
                    else self.generate(None)
            return self._composite(state, image, t0, feather, metrics, base=base, mode=composite)

    def preview_region(self, state: Optional[EditState] = None, mode: str = "detail",
                       size: Optional[int] = None, frame=None) -> np.ndarray:
        """The selection's square as the edit would make it, composited from the photo's own
        pixels as :meth:`render` without G′ composites it (``mode`` ``"detail"``, ``"replace"`` or
        ``"warp"``; a structural edit turns ``"detail"`` into ``"warp"`` as the render does): a live
        preview of the result itself, not of the model's rendering (:mod:`priorpaint.previews`).

        (side, side, 3) uint8 at the photo's resolution; with ``size`` below the square's side,
        the photo's square and the edit mask are first area-shrunk to ``size`` and composited
        there (feather scaled alike), which is what the full composite shrunk to ``size``
        looks like, at a fraction of the cost on a large selection.  ``frame``: the generator's
        frame to composite instead of rendering ``state`` (an approximate one, see
        :meth:`preview_frames`; a warp preview renders its own proxies)."""
        from .previews import preview_region
        return preview_region(self, state, mode, size, frame)

    def preview_verdict(self, state: Optional[EditState] = None, mode: str = "detail",
                        size: int = 256) -> Dict[str, object]:
        """``{"structure", "verdict"}`` of the edit as the live preview shows it (``mode`` as
        :meth:`preview_region`'s, at most ``size`` px): whether it can be carried here, said
        before the user renders (:mod:`priorpaint.measures`). Measured on the preview's square, so
        the figures are those of :meth:`render` without G′ at that size."""
        from .previews import preview_verdict
        return preview_verdict(self, state, mode, size)

    def preview_layer(self, state: Optional[EditState] = None, mode: str = "detail",
                      size: Optional[int] = None, frame=None) -> np.ndarray:
        """The photo's layer box (:attr:`Crop.layer_box`, where the result layer goes) as the
        edit would make it, in the photo's own orientation: what :meth:`render` without G′
        puts there.  (h, w, 3) uint8; with ``size``, shrunk so its longer side is at most
        ``size``.  An unaligned crop cuts :meth:`preview_region`'s square (shrunk before
        compositing); an aligned crop (a rotated square) composites at the photo's
        resolution and warps back as the render does, then shrinks.  ``frame``: as
        :meth:`preview_region`'s."""
        from .previews import preview_layer
        return preview_layer(self, state, mode, size, frame)

    def preview_frames(self, specs, mode: Optional[str] = None, size: Optional[int] = None,
                       approximate: bool = True):
        """The live preview of ``specs``, progressively: yields ``(image, info)``, first an
        approximate frame predicted from the exact frames this session already made for the
        same edit list at other strengths (instant; :mod:`priorpaint.progressive`; only when
        ``approximate``, the model's exact frames take longer than its budget and such frames
        exist), then always the exact frame, with its flag ``{"approximate", "method", ...}``.
        ``image``: :meth:`preview_layer`'s with ``mode``, else ``G_F`` at model resolution (uint8)."""
        from .progressive import PreviewLines

        parsed = parse_specs(specs)
        with self.lock:
            lines = self.cache.get("preview-lines")
            if lines is None:
                lines = self.cache["preview-lines"] = PreviewLines()
            guess = lines.approximate(parsed) if approximate else None
        if guess is not None:
            stand_in = EditState(z=self.projection.z, h=self.projection.h, edit_mask=guess.edit_mask)
            yield self._preview_image(stand_in, guess.pixels(), mode, size), guess.info()
        t0 = time.perf_counter()
        state = self.apply(parsed) if parsed else None
        image = self.generate(state)
        with self.lock:
            lines.add_exact(parsed, image, time.perf_counter() - t0, state.applied if state else None,
                            state.edit_mask if state else None)
        yield self._preview_image(state, image, mode, size), {"approximate": False, "method": "exact"}

    def _preview_image(self, state: Optional[EditState], frame, mode: Optional[str], size: Optional[int]) -> np.ndarray:
        if mode is None:
            return frame if isinstance(frame, np.ndarray) else to_uint8(frame)
        return self.preview_layer(state, mode, size, frame=frame)

    def photo_square(self) -> np.ndarray:
        """The photo's own pixels of the square, edge-padded (aligned crops: warped), made once per
        session: ``crop.region`` is the model's view of it, which a model with a content box pads
        with zeros.  Read-only: renders and previews composite from it."""
        region = self.cache.get("photo-square")
        if region is None:
            region = self.cache["photo-square"] = self.crop.region_of(self.photo.rgb, pad="edge")
        return region

    def preview_inputs(self, state: Optional[EditState], frame=None):
        """(G(z_h_e), G(z_h), edit mask) for a preview, as :meth:`render` composites them (their
        luminance on a grayscale photo); G(z_h) is cached (the same for every preview).
        ``frame``: G(z_h_e) already made (or predicted; a tensor, or its uint8 pixels)."""
        edited = frame if isinstance(frame, np.ndarray) else to_uint8(self.generate(state) if frame is None else frame)
        base = self.cache.get("preview-base")
        if base is None:
            base = to_uint8(self.generate(None))
            base = self.cache["preview-base"] = gray_rgb(base) if self.photo.gray else base
        return (gray_rgb(edited) if self.photo.gray else edited), base, self.edit_mask(state)

    def _composite(self, state: EditState, image: torch.Tensor, t0: float,
                   feather: Optional[int] = None, metrics: Optional[dict] = None,
                   base: Optional[torch.Tensor] = None, mode: str = "replace") -> Render:
        from .compositing import colour, texture
        from .compositing.blend import default_feather, paste_region
        from .compositing.detail import composite_square
        from .compositing.photo_metrics import photo_metrics

        mask = self.edit_mask(state)
        edited = to_uint8(image)
        base_u8 = edited if base is None else to_uint8(base)
        if self.photo.gray:  # a grayscale photo gets the edit's luminance: the result stays gray
            edited = gray_rgb(edited)
            base_u8 = edited if base is None else gray_rgb(base_u8)
        region = self.photo_square()
        side = region.shape[0]
        radius = default_feather(side) if feather is None else int(feather)
        info: Dict[str, object] = {"mode": mode}
        if not mask.any():
            # Nothing to edit: the output is the input, bit for bit.
            out, box = self.photo, self.crop.box
            layer = np.zeros((box[3], box[2], 4), np.uint8)
            result_region = region
        elif mode == "warp":
            from .warp_render import warp_square
            result_region, layer_rgb, alpha, info = warp_square(self, state, region, mask, radius)
            out, layer, box = paste_region(self.photo, self.crop, result_region, layer_rgb, alpha,
                                           base=region, mask=mask)
        elif mode == colour.MODE:   # a colour scribble: the colour change over the photo's own texture
            result_region, layer_rgb, alpha, info = colour.colour_composite(region, base_u8, edited, mask, radius)
            out, layer, box = paste_region(self.photo, self.crop, result_region, layer_rgb, alpha,
                                           base=region, mask=mask, own_region=True)
        elif mode == texture.MODE:  # concept paint, label-map edit: the part's texture from the photo's own part
            result_region, layer_rgb, alpha, info = texture.texture_composite(
                region, base_u8, edited, mask, radius, *texture.applied_part_map(state.applied))
            out, layer, box = paste_region(self.photo, self.crop, result_region, layer_rgb, alpha,
                                           base=region, mask=mask, own_region=True)
        else:
            result_region, layer_rgb, alpha, info = composite_square(region, base_u8, edited, mask, radius, mode)
            out, layer, box = paste_region(self.photo, self.crop, result_region, layer_rgb, alpha,
                                           base=region if mode == "detail" else None, mask=mask,
                                           own_region=True)   # composite_square's result is fresh
            del layer_rgb, alpha   # in the layer now: free ~250 MB at 36 MP before the metrics
        seconds_composite = time.perf_counter() - t0
        m = {
            "model": self.model_id,
            "psnr_z": self.projection.psnr_z if self.projection else None,
            "psnr_projection": self.projection.psnr if self.projection else None,
            "projection_init": self.projection.init if self.projection else None,
            "psnr_encoder": self.projection.psnr_encoder if self.projection else None,
            "changed_outside_mask": changed_outside(self.photo, out, self.crop, mask),
            # a vector's saved effect (768 numbers) is for the measure below, not for the reader
            "edits": [{k: v for k, v in spec.items() if k != "saved_effect"} for spec in state.applied],
            "notes": (self.crop.notes + list(self.gen.load_notes) + (self.projection.notes if self.projection else [])
                      + state.notes),
            "composite": mode,
            "composite_info": _round_info(info),
            "alignment": self.crop.alignment.report() if self.crop.alignment is not None else None,
        }
        if metrics:
            metrics = dict(metrics)
            m["notes"] = m["notes"] + metrics.pop("notes", [])
            m.update(metrics)
        m.update(photo_metrics(result_region, region, base_u8, edited, mask, self.crop.region_mask, radius))
        from .measures.report import structure_report
        m["structure"], m["verdict"] = structure_report(self.gen, getattr(self.gen, "model_id", None), state.applied,
                                                        *measure_squares(result_region, region, mask), motion=info)
        if region.shape[0] > MEASURE_SIDE and m["structure"].get("moved_px") is not None:  # in the square's px
            m["structure"]["moved_px"] = round(m["structure"]["moved_px"] * region.shape[0] / MEASURE_SIDE, 4)
        self.seconds["composite"] = seconds_composite
        self.used = time.time()
        return Render(photo=out, layer=layer, layer_box=box, generated=edited, metrics=m)

    # -- bookkeeping ---------------------------------------------------------------------
    def nbytes(self) -> int:
        """Approximate memory held by the session (for the server's LRU cache)."""
        n = self.photo.rgb.nbytes + (self.photo.alpha.nbytes if self.photo.alpha is not None else 0)
        n += self.crop.region.nbytes + self.crop.region_mask.nbytes
        n += self.target.numel() * 4 + self.mask.numel() * 4
        if self.projection is not None:
            n += (self.projection.z.numel() + self.projection.h.numel()) * 4
        for v in self.cache.values():
            n += _tensor_bytes(v)
        return n

    def reconstruction_psnr(self, image: torch.Tensor, mask: Optional[torch.Tensor] = None) -> float:
        return psnr(image, self.target, mask)

    def gprime(self, options=None):
        """The G′ fitted by the last adapted render with these options (None before one)."""
        from .adaptation import gprime_for
        return gprime_for(self.cache, options)


def _round_info(info: Dict[str, object]) -> Dict[str, object]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in info.items()}


def _tensor_bytes(v) -> int:
    if isinstance(v, torch.Tensor):
        return v.numel() * v.element_size()
    if isinstance(v, dict):
        return sum(_tensor_bytes(x) for x in v.values())
    if isinstance(v, (list, tuple)):
        return sum(_tensor_bytes(x) for x in v)
    nbytes = getattr(v, "nbytes", 0)
    return nbytes() if callable(nbytes) else int(nbytes)
