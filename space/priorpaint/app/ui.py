"""The Gradio Blocks layout: the web demo and the named API endpoints of ``docs/api.md``.

The page: upload a photo into the editor and paint the region to edit (the mask is the
alpha of the paint layer; a box ``X,Y,W,H`` works too), choose the model, *Project*
(the crop, ``G(z)``, the ``G′`` reconstruction and PSNR), set edits in the tabs (one tab
per edit kind this version has), watch the live preview, *Render* (G′ + composite) and
download the full-resolution PNG.

The API endpoints are separate events on hidden components, so their inputs and outputs
are exactly the contract (JSON strings and PNG files) whatever the page looks like; the
page's own events are private.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import List, Optional

import numpy as np
from PIL import Image

import gradio as gr

from ..compositing.regions import Rect
from ..errors import InputError
from . import kinds
from .api import IMAGE_FIELDS, Backend, client_key, namespace_of, user_errors

log = logging.getLogger(__name__)

MAX_DIRECTION_SLIDERS = 8
ENGINE = "engine"  # the concurrency group of the engine endpoints
PRIVATE = "private"

INTRO = """# priorpaint — semantic photo editing with a GAN prior
Upload a photo and **paint over the region to edit** (or type a box `X,Y,W,H`), then **Project**.
Set edits in the tabs (every tab's edit is applied, in tab order), watch the preview, then **Render**
to blend the result into the full-resolution photo — pixels outside the region stay exactly as they were.
"""


class Scratch:
    """A private folder for the page's temporary PNGs; files older than ``max_age_s`` are removed."""

    def __init__(self, max_age_s: float = 3600.0):
        # inside the server's own temporary folder when it has one (removed at shutdown)
        self.dir = Path(tempfile.mkdtemp(prefix="priorpaint-ui-", dir=os.environ.get("PRIORPAINT_SERVER_TMP") or None))
        self.max_age_s = max_age_s

    def save(self, im: Image.Image, stem: str) -> str:
        now = time.time()
        for p in self.dir.glob("*.png"):
            try:
                if now - p.stat().st_mtime > self.max_age_s:
                    p.unlink()
            except OSError:
                pass
        fd, path = tempfile.mkstemp(prefix=stem + "-", suffix=".png", dir=self.dir)
        os.close(fd)
        im.save(path, format="PNG")
        return path


def _editor_layers(value) -> tuple:
    """(background RGBA array or None, paint alpha (H, W) uint8 or None) of an ImageEditor value."""
    if not value:
        return None, None
    if not isinstance(value, dict):
        return None, None
    bg = value.get("background")
    if bg is None:  # the page may send only the composite (no paint layer yet)
        bg = value.get("composite")
    if bg is None:
        return None, None
    bg = np.asarray(bg)
    alpha = None
    for layer in value.get("layers") or []:
        if layer is None:
            continue
        a = np.asarray(layer)
        if a.ndim == 3 and a.shape[2] == 4 and a.shape[:2] == bg.shape[:2]:
            alpha = a[..., 3] if alpha is None else np.maximum(alpha, a[..., 3])
    return bg, alpha


def _photo_image(bg: np.ndarray) -> Image.Image:
    if bg.ndim == 2:
        return Image.fromarray(bg, "L")
    if bg.shape[2] == 4:
        if bg[..., 3].min() == 255:
            return Image.fromarray(np.ascontiguousarray(bg[..., :3]), "RGB")
        return Image.fromarray(bg, "RGBA")
    return Image.fromarray(bg[..., :3], "RGB")


def _stroke_layer(value) -> Optional[Image.Image]:
    """The painted layer (RGBA) of an ImageEditor, or None when nothing was painted."""
    if not value:
        return None
    layers = [np.asarray(l) for l in (value.get("layers") or []) if l is not None]
    layers = [l for l in layers if l.ndim == 3 and l.shape[2] == 4 and l[..., 3].any()]
    if not layers:
        return None
    out = layers[0].copy()
    for l in layers[1:]:
        m = l[..., 3] > 0
        out[m] = l[m]
    return Image.fromarray(out, "RGBA")


def paint_over_labels(labels: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """The label map with the painted layer on top (pixels painted at least half opaque).
    The brush antialiases: the segment spec asks the server to snap colours to the legend."""
    out = np.array(labels[..., :3], dtype=np.uint8)
    painted = layer[..., 3] >= 128
    out[painted] = layer[..., :3][painted]
    return out


def _status_md(st: dict) -> str:
    def db(v):
        return "—" if v is None else f"{v:.2f} dB"
    lines = [f"**session** `{st.get('session', '')[:8]}…` · model `{st.get('model', '')}`",
             f"PSNR G(z) {db(st.get('psnr_z'))} · G(z_h) {db(st.get('psnr_projection'))} · G′ {db(st.get('psnr_adapted'))}"]
    sec = st.get("seconds") or {}
    if sec.get("total") is not None:
        lines.append(f"{sec['total']:.1f} s")
    for n in st.get("notes") or []:
        lines.append(f"note: {n}")
    return "  \n".join(lines)


def build_app(backend: Backend) -> gr.Blocks:
    scratch = Scratch()
    available = kinds.edit_kinds()
    choices = backend.model_choices()
    default_model = next((c[1] for c in choices if c[1] == (backend.model or "dcgan-digiface-64")),
                         choices[0][1] if choices else None)

    with gr.Blocks(title="priorpaint", delete_cache=(900, 3600)) as demo:
        session = gr.State("")
        direction_names = gr.State([])
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=3):
                editor = gr.ImageEditor(
                    label="Photo: paint over the region to edit", type="numpy", image_mode="RGBA",
                    format="png", sources=("upload", "clipboard"), transforms=(),
                    brush=gr.Brush(colors=["#ff3366"], default_size=24, color_mode="fixed"),
                    elem_id="pp-editor", height=520)
                with gr.Row():
                    box = gr.Textbox(label="or a box X,Y,W,H", placeholder="140,20,180,180", elem_id="pp-box")
                    model = gr.Dropdown(choices=choices, value=default_model, label="model", elem_id="pp-model")
                with gr.Row():
                    steps = gr.Slider(0, 1000, value=backend.default_steps, step=10, label="projection steps",
                                      elem_id="pp-steps")
                    seed = gr.Number(value=0, precision=0, label="seed", minimum=0)
                    adapt = gr.Checkbox(value=True, label="fit G′ (slower, more faithful)", elem_id="pp-adapt")
                with gr.Row():
                    project_btn = gr.Button("Project", variant="primary", elem_id="pp-project")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="pp-stop")
            with gr.Column(scale=2):
                with gr.Row():
                    crop_img = gr.Image(label="crop", format="png", interactive=False, elem_id="pp-crop", height=180)
                    recon_img = gr.Image(label="G(z_h)", format="png", interactive=False, elem_id="pp-recon", height=180)
                    adapted_img = gr.Image(label="G′", format="png", interactive=False, elem_id="pp-adapted", height=180)
                status = gr.Markdown("Project a selection to start.", elem_id="pp-status")
                preview_img = gr.Image(label="live preview (model resolution, no G′)", format="png",
                                       interactive=False, elem_id="pp-preview", height=256)

        # -- one tab per edit kind of this version ---------------------------------------
        tab_inputs: List[gr.components.Component] = []
        region_editors: List[gr.ImageEditor] = []  # tabs that paint over the selection's region
        sliders: List[gr.Slider] = []
        spec_builders = []  # (n_inputs, fn(values) -> specs)
        with gr.Tabs():
            if "direction" in available:
                with gr.Tab("Directions"):
                    gr.Markdown("Move a slider: the preview updates live.")
                    for i in range(MAX_DIRECTION_SLIDERS):
                        sliders.append(gr.Slider(-3, 3, value=0, step=0.1, label=f"direction {i}", visible=False,
                                                 elem_id=f"pp-dir-{i}"))
                    tab_inputs.append(direction_names)
                    tab_inputs.extend(sliders)

                    def dir_specs(vals):
                        names, values = vals[0] or [], vals[1:]
                        return [{"kind": "direction", "name": n, "strength": float(v)}
                                for n, v in zip(names, values) if v]
                    spec_builders.append((1 + len(sliders), dir_specs))
            if "paint" in available:
                with gr.Tab("Concept paint"):
                    concept = gr.Dropdown(choices=[], label="concept", allow_custom_value=True)
                    paint_mode = gr.Radio(["add", "remove"], value="add", label="mode")
                    paint_ed = gr.ImageEditor(label="paint where the concept goes (the selection's square)", type="numpy",
                                              image_mode="RGBA", format="png", transforms=(),
                                              brush=gr.Brush(colors=["#ffffff"], color_mode="fixed"), elem_id="pp-paint-editor")
                    tab_inputs.extend([concept, paint_mode, paint_ed])
                    region_editors.append(paint_ed)

                    def paint_specs(vals):
                        c, mode, ed = vals
                        layer = _stroke_layer(ed)
                        if not c or layer is None:
                            return []
                        return [{"kind": "paint", "concept": c, "mode": mode,
                                 "mask": scratch.save(layer, "paint")}]
                    spec_builders.append((3, paint_specs))
            if "segment" in available:
                with gr.Tab("Label map"):
                    seg_btn = gr.Button("Get the label map of the selection", elem_id="pp-seg-get")
                    legend_md = gr.Markdown("", elem_id="pp-legend")
                    seg_ed = gr.ImageEditor(label="paint classes (use the legend colours)", type="numpy",
                                            image_mode="RGBA", format="png", transforms=(),
                                            elem_id="pp-seg-editor")
                    seg_name = gr.Textbox(label="save as editing vector (optional name)")
                    seg_legend = gr.State({})
                    tab_inputs.extend([seg_ed, seg_name, seg_legend])

                    def seg_specs(vals):
                        ed, name, legend = vals
                        layer = _stroke_layer(ed)
                        if layer is None or not legend:
                            return []
                        bg, _ = _editor_layers(ed)
                        labels = paint_over_labels(np.asarray(bg)[..., :3], np.asarray(layer))
                        spec = {"kind": "segment", "labels": scratch.save(Image.fromarray(labels, "RGB"), "labels"),
                                "legend": legend, "snap": True}
                        if name:
                            spec["save_vector"] = name.strip()
                        return [spec]
                    spec_builders.append((3, seg_specs))
            if "scribble" in available:
                with gr.Tab("Colour scribble"):
                    scr_ed = gr.ImageEditor(label="scribble colours (the selection's square)", type="numpy",
                                            image_mode="RGBA", format="png", transforms=(),
                                            brush=gr.Brush(color_mode="defaults"), elem_id="pp-scribble-editor")
                    tab_inputs.append(scr_ed)
                    region_editors.append(scr_ed)

                    def scr_specs(vals):
                        layer = _stroke_layer(vals[0])
                        return [] if layer is None else [{"kind": "scribble", "strokes": scratch.save(layer, "strokes")}]
                    spec_builders.append((1, scr_specs))
            if "interpolate" in available:
                with gr.Tab("Interpolate"):
                    other = gr.Image(label="other photo (same region)", type="filepath", format="png")
                    t = gr.Slider(0, 1, value=0.5, step=0.05, label="t")
                    tab_inputs.extend([other, t])

                    def interp_specs(vals):
                        o, tv = vals
                        return [] if not o else [{"kind": "interpolate", "other": o, "t": float(tv)}]
                    spec_builders.append((2, interp_specs))
            if "vector" in available:
                with gr.Tab("Editing vectors"):
                    vec = gr.Dropdown(choices=[], label="vector", allow_custom_value=True)
                    vec_s = gr.Slider(-3, 3, value=0, step=0.1, label="strength")
                    tab_inputs.extend([vec, vec_s])

                    def vec_specs(vals):
                        n, s = vals
                        return [] if not n or not s else [{"kind": "vector", "name": n, "strength": float(s)}]
                    spec_builders.append((2, vec_specs))
            with gr.Tab("Render"):
                with gr.Row():
                    render_btn = gr.Button("Render (G′ + composite)", variant="primary", elem_id="pp-render")
                    render_adapt = gr.Checkbox(value=True, label="use G′", elem_id="pp-render-adapt")
                    render_composite = gr.Radio(["detail", "replace"], value="detail", label="composite",
                                                info="detail: keep the photo's own detail, take only the edit's "
                                                     "change from the generator; replace: the generator's pixels",
                                                elem_id="pp-render-composite")
                result_img = gr.Image(label="result", format="png", interactive=False, elem_id="pp-result")
                download = gr.File(label="download the full-resolution PNG", interactive=False, elem_id="pp-download")
                render_md = gr.Markdown("", elem_id="pp-render-md")

        def collect_specs(values) -> tuple:
            """(edits JSON, files): the tabs' edits, image fields as "file:N" references."""
            specs, files, i = [], [], 0
            for n, fn in spec_builders:
                for spec in fn(values[i:i + n]):
                    for k in IMAGE_FIELDS:
                        if isinstance(spec.get(k), str):
                            files.append(spec[k])
                            spec[k] = f"file:{len(files) - 1}"
                    specs.append(spec)
                i += n
            return json.dumps(specs), files

        # -- page events -------------------------------------------------------------------
        @user_errors
        def ui_project(ed, box_text, model_id, n_steps, seed_v, adapt_v, progress=gr.Progress(), request=None):
            bg, alpha = _editor_layers(ed)
            if bg is None:
                raise InputError("upload a photo first")
            box_text = (box_text or "").strip()
            if not box_text and (alpha is None or not alpha.any()):
                raise InputError("paint over the region to edit (or give a box X,Y,W,H) before projecting")
            image_path = scratch.save(_photo_image(bg), "photo")
            mask_path = None if box_text else scratch.save(Image.fromarray(alpha, "L"), "mask")
            progress(0.0, desc="starting")
            for st, crop, recon, adapted in backend.project(image_path, mask_path, box_text, model_id or "",
                                                            n_steps, seed_v, adapt_v, request=request):
                d = json.loads(st)
                if not d.get("done"):
                    progress(d.get("fraction", 0.0), desc=d.get("stage", ""))
                    yield (gr.skip(),) * 6
                    continue
                names, updates = [], []
                if sliders:
                    try:
                        rows = kinds.list_directions(d.get("model"), backend.device)
                    except InputError:
                        rows = []
                    names = [r["name"] for r in rows[:MAX_DIRECTION_SLIDERS]]
                    for i, s in enumerate(sliders):
                        if i < len(rows):
                            r = rows[i]
                            updates.append(gr.update(visible=True, label=r["name"], minimum=r.get("min", -3),
                                                     maximum=r.get("max", 3), value=r.get("default", 0)))
                        else:
                            updates.append(gr.update(visible=False, value=0))
                # The paint/scribble tabs start on the layer box (the selection's square in the photo).
                box = Rect.square_in_image(d["square"], (bg.shape[1], bg.shape[0]))
                region = np.ascontiguousarray(bg[box.rows, box.cols])
                if region.ndim == 3 and region.shape[2] == 3:
                    region = np.dstack([region, np.full(region.shape[:2], 255, np.uint8)])
                editors = [{"background": region, "layers": [], "composite": None} for _ in region_editors]
                yield (d["session"], crop, recon, adapted, _status_md(d), names, *updates, *editors)

        project_outputs = [session, crop_img, recon_img, adapted_img, status, direction_names, *sliders,
                           *region_editors]

        def _pad(gen):
            # (gr.skip(),)*6 is yielded for progress; pad to the slider count
            for out in gen:
                if len(out) < len(project_outputs):
                    out = tuple(out) + (gr.skip(),) * (len(project_outputs) - len(out))
                yield out

        def ui_project_padded(request: gr.Request, *a, progress=gr.Progress()):
            # the request says which client this is (per-client job and session bounds)
            yield from _pad(ui_project(*a, progress=progress, request=request))

        project_evt = project_btn.click(ui_project_padded, [editor, box, model, steps, seed, adapt],
                                        project_outputs, api_visibility=PRIVATE, concurrency_id=ENGINE,
                                        concurrency_limit=16)

        @user_errors
        def ui_preview(sid, *values):
            if not sid:
                return gr.skip()
            edits, files = collect_specs(values)
            return backend.preview(sid, edits, files)

        for s in sliders:
            s.input(ui_preview, [session, *tab_inputs], preview_img, api_visibility=PRIVATE,
                    trigger_mode="always_last", concurrency_id="preview", concurrency_limit=4,
                    show_progress="minimal")

        @user_errors
        def ui_render(request: gr.Request, sid, adapt_v, composite_v, *values, progress=gr.Progress()):
            if not sid:
                raise InputError("project a selection first")
            progress(0.0, desc="starting")
            edits, files = collect_specs(values)
            for st, result, layer, prev in backend.edit(sid, edits, adapt_v, files, composite_v, request=request):
                d = json.loads(st)
                if not d.get("done"):
                    progress(d.get("fraction", 0.0), desc=d.get("stage", ""))
                    yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
                    continue
                path = scratch.save(result, "priorpaint-result")
                pa = d.get("psnr_adapted")
                pp, dk = d.get("psnr_photo"), d.get("detail_kept")
                msg = (f"changed outside the mask: **{d.get('changed_outside_mask')}** px · "
                       f"PSNR G′ {'—' if pa is None else f'{pa:.2f} dB'} · "
                       f"{d.get('composite', '')}: PSNR at the photo's resolution "
                       f"{'—' if pp is None else f'{pp:.1f} dB'}, detail kept {'—' if dk is None else f'{dk:.2f}'} · "
                       f"{(d.get('seconds') or {}).get('total', 0):.1f} s  \n"
                       f"edits: {', '.join(e.get('kind', '?') for e in d.get('edits') or []) or 'none'}")
                notes = d.get("notes") or []
                if notes:
                    msg += "  \n" + "  \n".join(f"note: {n}" for n in notes)
                yield result, path, msg, prev

        render_evt = render_btn.click(ui_render, [session, render_adapt, render_composite, *tab_inputs],
                                      [result_img, download, render_md, preview_img],
                                      api_visibility=PRIVATE, concurrency_id=ENGINE, concurrency_limit=16)
        stop_btn.click(None, None, None, cancels=[project_evt, render_evt], api_visibility=PRIVATE)

        if "segment" in available:
            @user_errors
            def ui_segment(sid, request: gr.Request, progress=gr.Progress()):
                if not sid:
                    raise InputError("project a selection first")
                for st, labels in backend.segment(sid, request=request):
                    d = json.loads(st)
                    if not d.get("done"):
                        progress(d.get("fraction", 0.0), desc=d.get("stage", ""))
                        yield gr.skip(), gr.skip(), gr.skip()
                        continue
                    legend = d.get("legend") or {}
                    md = " · ".join(f"<span style='color:rgb({c[0]},{c[1]},{c[2]})'>■</span> {n}"
                                    for n, c in legend.items())
                    colours = ["#%02x%02x%02x" % tuple(c) for c in legend.values()]
                    value = {"background": np.asarray(labels.convert("RGBA")), "layers": [], "composite": None}
                    yield (gr.update(value=value, brush=gr.Brush(colors=colours, default_color=colours[0],
                                                                  color_mode="fixed")), md, legend)

            seg_btn.click(ui_segment, [session], [seg_ed, legend_md, seg_legend], api_visibility=PRIVATE,
                          concurrency_id=ENGINE, concurrency_limit=16)

        if "paint" in available or "vector" in available:
            def ui_concepts(model_id, request: gr.Request):
                try:
                    d = kinds.list_concepts(model_id or None, backend.device,
                                            namespace=namespace_of(client_key(request)))
                except Exception as e:  # a model without concepts: the lists stay empty
                    log.warning("no concepts for %s: %s", model_id, e)
                    return gr.update(choices=[]), gr.update(choices=[])
                names = [c["name"] if isinstance(c, dict) else str(c) for c in d.get("concepts", [])]
                vecs = [v["name"] if isinstance(v, dict) else str(v) for v in d.get("vectors", [])]
                return (gr.update(choices=names, value=names[0] if names else None),
                        gr.update(choices=vecs, value=vecs[0] if vecs else None))
            c_out = [concept if "paint" in available else gr.State(), vec if "vector" in available else gr.State()]
            model.change(ui_concepts, [model], c_out, api_visibility=PRIVATE)
            demo.load(ui_concepts, [model], c_out, api_visibility=PRIVATE)

        # -- the API (docs/api.md) -------------------------------------------------------------
        with gr.Column(visible=False):
            a_image = gr.File(label="image", type="filepath")
            a_mask = gr.File(label="mask", type="filepath")
            a_box = gr.Textbox(label="box")
            a_model = gr.Textbox(label="model")
            a_steps = gr.Number(label="steps", precision=0, value=backend.default_steps)
            a_seed = gr.Number(label="seed", precision=0, value=0)
            a_adapt = gr.Checkbox(label="adapt", value=False)
            a_session = gr.Textbox(label="session")
            a_edits = gr.Textbox(label="edits", value="[]")
            a_files = gr.File(label="files", file_count="multiple", type="filepath")
            a_composite = gr.Textbox(label="composite", value="detail")
            a_id = gr.Textbox(label="id")
            o_status = gr.Textbox(label="status")
            o_json = gr.Textbox(label="json")
            o_crop = gr.Image(label="crop", format="png", type="pil")
            o_recon = gr.Image(label="reconstruction", format="png", type="pil")
            o_adapted = gr.Image(label="adapted", format="png", type="pil")
            o_result = gr.Image(label="result", format="png", type="pil", image_mode=None)
            o_layer = gr.Image(label="layer", format="png", type="pil", image_mode="RGBA")
            o_preview = gr.Image(label="preview", format="png", type="pil")
            o_labels = gr.Image(label="labels", format="png", type="pil")
            trigger = gr.Button(visible=False)

        trigger.click(user_errors(backend.models), None, o_json, api_name="models", concurrency_limit=None)
        trigger.click(user_errors(backend.download), [a_model], o_status, api_name="download",
                      concurrency_id="download", concurrency_limit=2)
        trigger.click(user_errors(backend.project), [a_image, a_mask, a_box, a_model, a_steps, a_seed, a_adapt],
                      [o_status, o_crop, o_recon, o_adapted], api_name="project",
                      concurrency_id=ENGINE, concurrency_limit=16)
        trigger.click(user_errors(backend.edit), [a_session, a_edits, a_adapt, a_files, a_composite],
                      [o_status, o_result, o_layer, o_preview], api_name="edit",
                      concurrency_id=ENGINE, concurrency_limit=16)
        trigger.click(user_errors(backend.preview), [a_session, a_edits], o_preview, api_name="preview",
                      concurrency_id="preview", concurrency_limit=4)
        trigger.click(user_errors(backend.cancel), [a_id], o_status, api_name="cancel", concurrency_limit=None)
        trigger.click(user_errors(backend.directions), [a_model], o_json, api_name="directions",
                      concurrency_limit=None)
        trigger.click(user_errors(backend.concepts), [a_model], o_json, api_name="concepts",
                      concurrency_limit=None)
        trigger.click(user_errors(backend.segment), [a_session], [o_status, o_labels], api_name="segment",
                      concurrency_id=ENGINE, concurrency_limit=16)
    demo.backend = backend
    return demo
