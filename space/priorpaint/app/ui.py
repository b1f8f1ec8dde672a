"""The Gradio Blocks layout: the web demo and the named API endpoints of ``docs/api.md``.

The page: upload a photo into the editor and paint the region to edit with the translucent
brush (the mask is the alpha of the paint layer; the layer's eye icon hides it; a box
``X,Y,W,H`` works too), choose the model (one that is not downloaded says so and downloads
with progress on request), *Project* (the crop, ``G(z_h)``, the ``G′`` reconstruction and
PSNR, at a readable size), add edits from the tabs to the **edit list** (the only thing Render
applies, in order, each with its strength), watch the live preview of the cheap edits (the
selection at the photo's resolution, ``detail`` composite through G), *Render* (always
visible: G′ + composite), compare the selection before and after, go back to an earlier
render in the history and download the full-resolution PNG.

Uploads: a photo editor's value is uploaded by the browser every time an event reads it.
So an editor is an input only of the one click that needs it (Project, or a tab's *Add*
button); that click turns it into server-side files held in the page's ``gr.State``, and
every streaming event (Project's progress, Render, the preview) reads only states, sliders
and text.

The API endpoints are separate events on hidden components, so their inputs and outputs
are exactly the contract (JSON strings and PNG files) whatever the page looks like; the
page's own events are private.
"""

from __future__ import annotations

import inspect
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

from ..errors import InputError
from . import kinds, views
from .api import IMAGE_FIELDS, Backend, client_key, namespace_of, one_line, parse_edit_list, user_errors

log = logging.getLogger(__name__)

MAX_DIRECTION_SLIDERS = 16
ENGINE = "engine"  # the concurrency group of the engine endpoints
PRIVATE = "private"
SELECTION_COLOUR = ("#ff3366", 0.45)  # translucent: the photo shows through the selection

INTRO = """# priorpaint — semantic photo editing with a GAN prior
Upload a photo and **paint over the region to edit** (the brush is translucent; the eye icon under
*Layers* hides it) or type a box `X,Y,W,H`, then **Project**. Add edits from the tabs to the
**edit list** — Render applies exactly that list, in order — watch the live preview, then **Render**
to blend the result into the full-resolution photo: pixels outside the region stay exactly as they were.
"""

PSNR_HELP = ("PSNR: how close each image is to your photo inside the selection (dB, higher is closer; "
             "above ~25 dB looks alike). G(z): the best latent alone; G(z_h): after refining the split-layer "
             "feature; G′: the generator fitted to this photo, which Render uses when *fit G′* is on.")


class Scratch:
    """A private folder for the page's temporary PNGs; files older than ``max_age_s`` are removed."""

    def __init__(self, max_age_s: float = 3600.0):
        # inside the server's own temporary folder when it has one (removed at shutdown)
        self.dir = Path(tempfile.mkdtemp(prefix="priorpaint-ui-", dir=os.environ.get("PRIORPAINT_SERVER_TMP") or None))
        self.max_age_s = max_age_s

    def save(self, im: Image.Image, stem: str, name: Optional[str] = None) -> str:
        now = time.time()
        for p in self.dir.rglob("*.png"):
            try:
                if now - p.stat().st_mtime > self.max_age_s:
                    p.unlink()
            except OSError:
                pass
        if name:  # a chosen download name, in its own folder so names never collide
            folder = Path(tempfile.mkdtemp(prefix=stem + "-", dir=self.dir))
            path = str(folder / name)
        else:
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


#: a browser-side function: an ImageEditor's value (background, layers) as a list of uploaded files
EDITOR_FILES_JS = "(v) => [v ? [v.background || v.composite, ...(v.layers || [])].filter(Boolean) : []]"
#: the Project click's relay: the editor's files and the name of the file the user picked
#: (the editor keeps only pixels; the page remembers the name when the file input changes)
PROJECT_RELAY_JS = ("(v, name) => [v ? [v.background || v.composite, ...(v.layers || [])].filter(Boolean) : [], "
                    "window.__pp_photo_name || name || '']")
#: remembers the picked file's name in the page (read by PROJECT_RELAY_JS), and says at once when
#: a file picked or dropped into the photo editor is not an image (the editor ignores it silently)
NAME_JS = """() => {
  const say = (f) => {
    const box = document.querySelector('#pp-upload-msg');
    const ok = !f.type || f.type.startsWith('image/');
    if (ok) window.__pp_photo_name = f.name;
    if (box) box.innerText = ok ? '' : `“${f.name}” is not an image (${f.type}): upload a PNG, JPEG or WebP photo`;
  };
  document.addEventListener('change', (e) => { const t = e.target;
    if (t && t.type === 'file' && t.closest && t.closest('#pp-editor') && t.files && t.files[0]) say(t.files[0]);
  }, true);
  document.addEventListener('drop', (e) => { const t = e.target;
    if (t && t.closest && t.closest('#pp-editor') && e.dataTransfer && e.dataTransfer.files[0])
      say(e.dataTransfer.files[0]);
  }, true);
}"""
#: a browser-side function: an image shown by the server becomes the background of editors
FILL_EDITORS_JS = "(im) => Array({n}).fill(im ? {{background: im, layers: [], composite: null}} : null)"


def editor_value(files) -> Optional[dict]:
    """An ImageEditor value (numpy RGBA background and layers) from the files relayed by
    :data:`EDITOR_FILES_JS` (the background first)."""
    paths = [f if isinstance(f, str) else getattr(f, "path", None) or (f or {}).get("path") for f in files or []]
    paths = [p for p in paths if p]
    if not paths:
        return None
    try:
        arrays = [np.asarray(Image.open(p).convert("RGBA")) for p in paths]
    except (OSError, ValueError):
        raise InputError("the photo is not an image the page can read: upload a PNG, JPEG or WebP") from None
    return {"background": arrays[0], "layers": arrays[1:], "composite": None}


def paint_over_labels(labels: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """The label map with the painted layer on top (pixels painted at least half opaque).
    The brush antialiases: the segment spec asks the server to snap colours to the legend."""
    out = np.array(labels[..., :3], dtype=np.uint8)
    painted = layer[..., 3] >= 128
    out[painted] = layer[..., :3][painted]
    return out


def _db(v) -> str:
    return "—" if v is None else f"{v:.2f} dB"


def _status_md(st: dict, selection_note: str = "") -> str:
    lines = [f"**session** `{st.get('session', '')[:8]}…` · model `{st.get('model', '')}`",
             f"PSNR G(z) {_db(st.get('psnr_z'))} · G(z_h) {_db(st.get('psnr_projection'))} · "
             f"G′ {_db(st.get('psnr_adapted'))}"]
    sec = st.get("seconds") or {}
    if sec.get("total") is not None:
        lines.append(f"{sec['total']:.1f} s")
    if selection_note:
        lines.append(selection_note)
    for n in st.get("notes") or []:
        lines.append(f"note: {n}")
    return "  \n".join(lines)


def _model_row(backend: Backend, model_id: str) -> Optional[dict]:
    try:
        rows = json.loads(backend.models())
    except Exception:
        return None
    return next((r for r in rows if r.get("id") == model_id), None)


def _model_present(backend: Backend, model_id: str) -> Optional[bool]:
    row = _model_row(backend, model_id)
    return None if row is None else bool(row.get("present"))


def _legend_brush(model_id: Optional[str], backend: Backend):
    """A brush in the label map's legend colours of ``model_id`` (the default brush when it has none)."""
    try:
        legend = kinds.list_concepts(model_id or None, backend.device).get("legend") or {}
    except Exception as e:  # a model without parts: any colour
        log.info("no legend for %s: %s", model_id, e)
        legend = {}
    colours = ["#%02x%02x%02x" % tuple(int(v) for v in c[:3]) for c in legend.values()]
    return gr.Brush(colors=colours, default_color=colours[0], color_mode="fixed") if colours else None


def _not_downloaded(model_id: str) -> str:
    return (f"model {model_id} is not downloaded on this server: click “Download the model” under the model "
            f"menu (or run `priorpaint download {model_id}` there)")


def _mb(n) -> str:
    return f"{(n or 0) / 1e6:.1f} MB"


def model_status(backend: Backend, model_id: Optional[str]) -> tuple:
    """(the line under the model menu, whether the Download button shows) for ``model_id``."""
    row = _model_row(backend, model_id) if model_id else None
    if row is None or row.get("present"):
        return "", False
    if not row.get("downloadable"):
        return (f"model **{model_id}**: its weights are not on this server ({row.get('source')}) and it has "
                "no Hub source to download"), False
    from ..models.manifest import get_entry
    hub = next((s for s in get_entry(model_id).sources if s.type == "hub"), None)
    size = f", {_mb(hub.size)}" if hub is not None and hub.size else ""
    where = f"the Hub repo {hub.repo_id} (file {hub.filename}{size})" if hub is not None else row.get("source")
    return (f"model **{model_id}** is not downloaded here: **Download the model** fetches it from {where} "
            f"and verifies its sha256 (or run `priorpaint download {model_id}` on the server)"), True


def download_line(status: dict) -> str:
    """The download's progress line: a bar, the bytes so far and the share."""
    done, total = status.get("bytes_done") or 0, status.get("bytes_total")
    if not total:
        return f"downloading **{status.get('model')}**: {_mb(done)} so far"
    return (f"downloading **{status.get('model')}**: <progress value=\"{done}\" max=\"{total}\"></progress> "
            f"{_mb(done)} of {_mb(total)} ({100 * done / total:.0f} %)")


def build_app(backend: Backend) -> gr.Blocks:
    scratch = Scratch()
    available = kinds.edit_kinds()
    choices = backend.model_choices()
    default_model = next((c[1] for c in choices if c[1] == (backend.model or "dcgan-digiface-64")),
                         choices[0][1] if choices else None)
    # The photo-resolution compositing mode of the edit endpoint, where this version has one.
    edit_params = inspect.signature(backend.edit).parameters
    has_composite = "composite" in edit_params

    with gr.Blocks(title="priorpaint", delete_cache=(900, 3600)) as demo:
        session = gr.State("")
        direction_rows = gr.State([])     # [{name, description, min, max, default}] of the sliders
        page = gr.State({})               # photo path, input name, layer box and model of the projection
        edit_list = gr.State([])          # [{spec, label, range}]: what Render applies, in order
        history = gr.State([])            # the last renders: [{n, path, name, before, after, caption}]
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1):
                editor = gr.ImageEditor(
                    label="Photo: paint over the region to edit (Layers → eye icon hides the selection)",
                    type="numpy", image_mode="RGBA", format="png", sources=("upload", "clipboard"),
                    transforms=(), brush=gr.Brush(colors=[SELECTION_COLOUR], default_color=SELECTION_COLOUR,
                                                  default_size=24, color_mode="fixed"),
                    elem_id="pp-editor", height=520)
                photo_name = gr.Textbox(visible=False, elem_id="pp-photo-name")
                gr.HTML("", elem_id="pp-upload-msg")
                with gr.Row():
                    box = gr.Textbox(label="or a box X,Y,W,H (Enter projects)", placeholder="140,20,180,180",
                                     elem_id="pp-box")
                    model = gr.Dropdown(choices=choices, value=default_model, label="model", elem_id="pp-model")
                model_md = gr.Markdown("", elem_id="pp-model-status")
                model_dl = gr.Button("Download the model", visible=False, elem_id="pp-model-download", size="sm")
                with gr.Row():
                    steps = gr.Slider(0, 1000, value=backend.default_steps, step=10, label="projection steps",
                                      elem_id="pp-steps")
                    seed = gr.Number(value=0, precision=0, label="seed", minimum=0)
                    adapt = gr.Checkbox(value=True, label="fit G′ (slower, more faithful; Project and Render)",
                                        elem_id="pp-adapt")
                with gr.Row():
                    project_btn = gr.Button("Project", variant="primary", elem_id="pp-project")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="pp-stop")
                status = gr.Markdown("Project a selection to start.", elem_id="pp-status")
                notice = gr.Markdown("", elem_id="pp-notice")
            with gr.Column(scale=1):
                with gr.Row():
                    crop_img = gr.Image(label="selection (photo resolution)", format="png", interactive=False,
                                        elem_id="pp-crop", height=300)
                    recon_img = gr.Image(label="G(z_h)", format="png", interactive=False, elem_id="pp-recon",
                                         height=300)
                with gr.Row():
                    adapted_img = gr.Image(label="G′ (fitted to the photo)", format="png", interactive=False,
                                           elem_id="pp-adapted", height=300)
                    preview_img = gr.Image(label="live preview (the selection at the photo's resolution, G without G′)", format="png",
                                           interactive=False, elem_id="pp-preview", height=300)
                preview_md = gr.Markdown("", elem_id="pp-preview-md")
                gr.Markdown(PSNR_HELP, elem_id="pp-psnr-help")

        # -- the edit list and Render: always visible ------------------------------------------
        with gr.Row():
            with gr.Column(scale=1):
                gr.Markdown("### Edit list — Render applies exactly these, top to bottom")
                edits_df = gr.Dataframe(headers=["#", "edit", "strength", "preview"], value=[],
                                        datatype=["number", "str", "str", "str"], interactive=False,
                                        elem_id="pp-edits", wrap=True)
                with gr.Row():
                    pick = gr.Number(value=1, precision=0, minimum=1, label="edit #", elem_id="pp-pick")
                    new_strength = gr.Number(value=1.0, label="strength", elem_id="pp-strength")
                    set_btn = gr.Button("Set strength", elem_id="pp-set-strength")
                with gr.Row():
                    up_btn = gr.Button("↑ up", elem_id="pp-up", size="sm")
                    down_btn = gr.Button("↓ down", elem_id="pp-down", size="sm")
                    remove_btn = gr.Button("Remove", elem_id="pp-remove", size="sm")
                    clear_btn = gr.Button("Clear", elem_id="pp-clear", size="sm")
                list_md = gr.Markdown("The list is empty: add edits from the tabs below.", elem_id="pp-list-md")
                with gr.Row():
                    render_btn = gr.Button("Render (G′ + composite)", variant="primary", elem_id="pp-render")
                    composite = gr.Radio(["detail", "replace"], value="detail", label="compositing",
                                         info="detail keeps the photo's fine detail; replace pastes the generator's "
                                              "pixels", visible=has_composite, elem_id="pp-composite")
                render_md = gr.Markdown("", elem_id="pp-render-md")
            with gr.Column(scale=1):
                compare = gr.ImageSlider(label="before ↔ after (the selection at the photo's resolution)",
                                         type="pil", format="png", interactive=False, elem_id="pp-compare",
                                         height=360)
                download = gr.File(label="download the full-resolution PNG", interactive=False, elem_id="pp-download")
                result_img = gr.Image(label="the full photo", format="png", interactive=False,
                                      elem_id="pp-result", height=300)
                gallery = gr.Gallery(label="render history (click one to go back to it)", columns=6, height=150,
                                     allow_preview=False, elem_id="pp-history")

        # -- one tab per edit kind of this version ---------------------------------------
        sliders: List[gr.Slider] = []
        region_editors: List[gr.ImageEditor] = []  # tabs that paint over the selection's square
        cheap_inputs: List[gr.components.Component] = []  # what the live preview reads (no editors)
        with gr.Tabs():
            if "direction" in available:
                with gr.Tab("Directions"):
                    gr.Markdown("Move a slider: the preview updates live. **Add** puts the non-zero sliders "
                                "on the edit list.")
                    for i in range(MAX_DIRECTION_SLIDERS):
                        sliders.append(gr.Slider(-3, 3, value=0, step=0.1, label=f"direction {i}", visible=False,
                                                 elem_id=f"pp-dir-{i}"))
                    with gr.Row():
                        dir_add = gr.Button("Add the directions to the edit list", elem_id="pp-dir-add")
                        dir_reset = gr.Button("Reset the sliders", elem_id="pp-dir-reset")
            if "paint" in available:
                with gr.Tab("Concept paint"):
                    concept = gr.Dropdown(choices=[], label="concept", allow_custom_value=True)
                    paint_mode = gr.Radio(["add", "remove"], value="add", label="mode")
                    paint_ed = gr.ImageEditor(label="paint where the concept goes (the selection's square)", type="numpy",
                                              image_mode="RGBA", format="png", transforms=(),
                                              brush=gr.Brush(colors=[("#ffffff", 0.6)], color_mode="fixed"),
                                              elem_id="pp-paint-editor")
                    paint_add = gr.Button("Add the concept paint to the edit list", elem_id="pp-paint-add")
                    region_editors.append(paint_ed)
            if "segment" in available:
                with gr.Tab("Label map"):
                    seg_btn = gr.Button("Get the label map of the selection", elem_id="pp-seg-get")
                    legend_md = gr.Markdown("", elem_id="pp-legend")
                    seg_ed = gr.ImageEditor(label="paint classes over the photo (the brush colours are the legend's)",
                                            type="numpy", image_mode="RGBA", format="png", transforms=(),
                                            brush=_legend_brush(default_model, backend), elem_id="pp-seg-editor")
                    seg_shown = gr.Image(type="numpy", format="png", image_mode="RGBA", visible=False,
                                         interactive=False)
                    seg_name = gr.Textbox(label="save as editing vector (optional name)", elem_id="pp-seg-name")
                    seg_legend = gr.State({})
                    seg_labels = gr.State("")  # the label map itself (the editor shows it over the photo)
                    seg_add = gr.Button("Add the label edit to the edit list", elem_id="pp-seg-add")
            if "scribble" in available:
                with gr.Tab("Colour scribble"):
                    scr_ed = gr.ImageEditor(label="scribble colours (the selection's square)", type="numpy",
                                            image_mode="RGBA", format="png", transforms=(),
                                            brush=gr.Brush(color_mode="defaults"), elem_id="pp-scribble-editor")
                    scr_add = gr.Button("Add the scribble to the edit list", elem_id="pp-scribble-add")
                    region_editors.append(scr_ed)
            if "interpolate" in available:
                with gr.Tab("Interpolate"):
                    other = gr.Image(label="other photo (same region)", type="filepath", format="png",
                                     elem_id="pp-other")
                    t = gr.Slider(0, 1, value=0.5, step=0.05, label="t",
                                  info="0 = your photo, 1 = the other one; release to preview (the first preview "
                                       "projects the other photo)", elem_id="pp-t")
                    interp_add = gr.Button("Add the interpolation to the edit list", elem_id="pp-interp-add")
            if "vector" in available:
                with gr.Tab("Editing vectors"):
                    vec = gr.Dropdown(choices=[], label="vector", allow_custom_value=True, elem_id="pp-vector")
                    vec_s = gr.Slider(-3, 3, value=0, step=0.1, label="strength", info="the preview updates live",
                                      elem_id="pp-vector-strength")
                    vec_add = gr.Button("Add the vector to the edit list", elem_id="pp-vector-add")
        cheap_inputs = [direction_rows, *sliders]
        if "vector" in available:
            cheap_inputs += [vec, vec_s]

        def slider_specs(rows, values) -> List[dict]:
            return [{"kind": "direction", "name": r["name"], "strength": float(v)}
                    for r, v in zip(rows or [], values) if v]

        def staged_cheap(values) -> List[dict]:
            """The cheap edits the tabs show right now (direction sliders, the vector strength)."""
            rows, rest = values[0], values[1:]
            out = slider_specs(rows, rest[:len(sliders)])
            if "vector" in available:
                n, s = rest[len(sliders):len(sliders) + 2]
                if n and s:
                    out.append({"kind": "vector", "name": n, "strength": float(s)})
            return out

        def files_of(spec_list: List[dict]) -> tuple:
            """(edits JSON, files): image fields become "file:N" references to server paths."""
            out, files = [], []
            for spec in spec_list:
                spec = dict(spec)
                for k in IMAGE_FIELDS:
                    if isinstance(spec.get(k), str):
                        files.append(spec[k])
                        spec[k] = f"file:{len(files) - 1}"
                out.append(spec)
            return json.dumps(out), files

        def list_outputs(items, msg):
            return items, views.table(items), msg

        list_out = [edit_list, edits_df, list_md]

        # -- page events: Project ---------------------------------------------------------------
        @user_errors
        def ui_selection(files, name, box_text, model_id):
            """The editor's photo and selection as server-side files (the editor travels once, here)."""
            bg, alpha = _editor_layers(editor_value(files))
            if bg is None:
                raise InputError("upload a photo first (PNG, JPEG or WebP; other files are not images)")
            box_t = views.parse_box_text(box_text)
            mask = views.selection_mask(alpha)
            if box_t is None and mask is None:
                raise InputError("paint over the region to edit (or give a box X,Y,W,H) before projecting")
            note = ""
            if box_t is not None and mask is not None:
                note = (f"selection: the box {','.join(map(str, box_t))} (the painted region is ignored; "
                        "clear the box to use it)")
            elif mask is not None:
                note = "selection: the painted region"
            if model_id and _model_present(backend, model_id) is False:
                raise InputError(_not_downloaded(model_id))
            return {"photo": scratch.save(_photo_image(bg), "photo"), "name": name or "",
                    "mask": None if box_t else scratch.save(Image.fromarray(mask, "L"), "mask"),
                    "box": ",".join(map(str, box_t)) if box_t else "", "note": note}

        @user_errors
        def ui_project(sel, model_id, n_steps, seed_v, adapt_v, items, request: gr.Request, progress=gr.Progress()):
            if not sel or not sel.get("photo"):
                raise InputError("upload a photo first")
            model_id = model_id or ""
            image_path, mask_path, box_arg, note = sel["photo"], sel["mask"], sel["box"], sel["note"]
            bg = np.asarray(Image.open(image_path).convert("RGBA"))
            name = sel.get("name", "")
            progress(0.0, desc="starting")
            for st, crop, recon, adapted in backend.project(image_path, mask_path, box_arg, model_id,
                                                            n_steps, seed_v, adapt_v, request=request):
                d = json.loads(st)
                if not d.get("done"):
                    progress(d.get("fraction", 0.0), desc=d.get("stage", ""))
                    yield (gr.skip(),) * len(project_outputs)
                    continue
                rows, updates = [], []
                if sliders:
                    try:
                        rows = kinds.list_directions(d.get("model"), backend.device)[:MAX_DIRECTION_SLIDERS]
                    except InputError:
                        rows = []
                    for i, s in enumerate(sliders):
                        if i < len(rows):
                            r = rows[i]
                            updates.append(gr.update(visible=True, label=r["name"], info=r.get("description") or None,
                                                     minimum=r.get("min", -3), maximum=r.get("max", 3),
                                                     value=r.get("default", 0)))
                        else:
                            updates.append(gr.update(visible=False, value=0))
                lb = d["layer"]   # where the session's layers go: the square in the photo (aligned: its box)
                layer = [lb["x"], lb["y"], lb["w"], lb["h"]]
                region = views.box_crop(bg, layer)
                if region.ndim == 3 and region.shape[2] == 3:
                    region = np.dstack([region, np.full(region.shape[:2], 255, np.uint8)])
                # A new selection: the region-shaped edits of the list no longer fit it.
                kept = [it for it in items or [] if it["spec"].get("kind") in ("direction", "vector", "interpolate")]
                dropped = len(items or []) - len(kept)
                msg = (f"the new projection dropped {dropped} region edit(s) from the list (paint them again)"
                       if dropped else gr.skip())
                state = {"photo": image_path, "name": name or "", "layer": layer, "model": d.get("model")}
                side = views.rgb(region).shape[0]
                yield (d["session"], views.readable(Image.fromarray(views.rgb(region))),
                       views.readable(recon, max(side, views.MIN_PREVIEW)),
                       views.readable(adapted, max(side, views.MIN_PREVIEW)),
                       _status_md(d, note), rows, state, kept, views.table(kept), msg, "", *updates)

        region_png = gr.Image(type="pil", format="png", image_mode="RGBA", visible=False, interactive=False)

        def ui_fill_editors(state):
            """The paint and scribble tabs start on the photo's layer box (the selection's square)."""
            bg = np.asarray(Image.open(state["photo"]).convert("RGBA"))
            return Image.fromarray(views.box_crop(bg, state["layer"]), "RGBA")

        project_outputs = [session, crop_img, recon_img, adapted_img, status, direction_rows, page,
                           edit_list, edits_df, list_md, notice, *sliders]
        demo.load(None, None, None, js=NAME_JS, api_visibility=PRIVATE, queue=False)
        # Two steps: a quick one reads the editor (its value is uploaded for this click only), the
        # streaming projection reads the files it left in ``selection``.
        selection = gr.State({})
        editor_files = gr.File(file_count="multiple", type="filepath", visible=False)
        sel_inputs = [editor_files, photo_name, box, model]
        project_inputs = [selection, model, steps, seed, adapt, edit_list]
        project_events = []
        for trigger_evt in (project_btn.click, box.submit):
            # Gradio's page re-reads (and re-uploads) an editor on every status message of any
            # event once the editor was an input or output of a server event; a browser-side
            # relay reads it once, for this click, and hands the server its uploaded files.
            relay = trigger_evt(None, [editor, photo_name], [editor_files, photo_name], js=PROJECT_RELAY_JS,
                                api_visibility=PRIVATE, queue=False)
            grab = relay.then(ui_selection, sel_inputs, selection, api_visibility=PRIVATE, show_progress="hidden")
            proj = grab.success(ui_project, project_inputs, project_outputs, api_visibility=PRIVATE,
                                concurrency_id=ENGINE, concurrency_limit=16, show_progress_on=[status])
            project_events += [grab, proj]
            if region_editors:  # set in the browser: as outputs of a server event they would re-upload
                proj.success(ui_fill_editors, [page], region_png, api_visibility=PRIVATE,
                             show_progress="hidden").then(
                    None, [region_png], region_editors, js=FILL_EDITORS_JS.format(n=len(region_editors)),
                    api_visibility=PRIVATE, queue=False)

        # -- the live preview: the cheap edits only, and it says so ---------------------------------
        def composite_preview(sid, edits, files) -> Image.Image:
            """The selection at the photo's resolution with the edits composited (``detail``,
            through G: no G′ fit), as Render would blend it; bounded like the API's preview."""
            s = backend._session(sid)
            s.require_projection()
            specs = parse_edit_list(edits, files, backend.limits)
            return views.readable(Image.fromarray(views.rgb(s.preview_layer(s.apply(specs) if specs else None,
                                                                             "detail"))))

        @user_errors
        def ui_preview(sid, items, *values, extra=None):
            if not sid:
                return gr.skip(), gr.skip()
            staged = staged_cheap(values)
            listed = views.specs(items)
            names = {(s["kind"], s["name"]) for s in staged}
            listed = [s for s in listed if (s.get("kind"), s.get("name")) not in names]  # the tab's value wins
            run, skipped = views.cheap(listed)
            run = run + staged + (extra or [])
            edits, files = files_of(run)
            img = composite_preview(sid, edits, files)
            note = views.preview_note(len(run), skipped)
            if extra:
                note += " (with the interpolation being set)"
            return img, note

        preview_kw = dict(api_visibility=PRIVATE, trigger_mode="always_last", concurrency_id="preview",
                          concurrency_limit=4, show_progress="minimal")
        preview_in = [session, edit_list, *cheap_inputs]
        for s in sliders:
            s.change(ui_preview, preview_in, [preview_img, preview_md], **preview_kw)
        if "vector" in available:
            vec_s.change(ui_preview, preview_in, [preview_img, preview_md], **preview_kw)
        if "interpolate" in available:
            @user_errors
            def ui_preview_t(sid, items, o, tv, *values):
                extra = [{"kind": "interpolate", "other": o, "t": float(tv)}] if o else []
                return ui_preview(sid, items, *values, extra=extra)
            t.release(ui_preview_t, [session, edit_list, other, t, *cheap_inputs], [preview_img, preview_md],
                      **preview_kw)

        # -- building the edit list from the tabs ----------------------------------------------------
        def ranges(rows):
            return {r["name"]: (float(r.get("min", -3)), float(r.get("max", 3))) for r in rows or []}

        if sliders:
            @user_errors
            def ui_dir_add(items, rows, *values):
                new = slider_specs(rows, values)
                if not new:
                    raise InputError("every direction slider is at 0: move one first")
                msgs = []
                for spec in new:
                    items, m = views.add(items, spec, ranges(rows))
                    msgs.append(m)
                return list_outputs(items, "; ".join(msgs))
            dir_add.click(ui_dir_add, [edit_list, direction_rows, *sliders], list_out, api_visibility=PRIVATE)

            def ui_dir_reset(rows):
                return [gr.update(value=(rows[i].get("default", 0) if i < len(rows or []) else 0))
                        for i in range(len(sliders))]
            # Changing the values fires the sliders' change events: the preview refreshes.
            dir_reset.click(ui_dir_reset, [direction_rows], sliders, api_visibility=PRIVATE)

        if "paint" in available:
            @user_errors
            def ui_paint_add(items, c, mode, ed):
                layer = _stroke_layer(ed)
                if not c:
                    raise InputError("pick a concept first")
                if layer is None:
                    raise InputError("paint where the concept goes first (Project fills the canvas with the selection)")
                spec = {"kind": "paint", "concept": c, "mode": mode, "mask": scratch.save(layer, "paint")}
                return list_outputs(*views.add(items, spec))
            paint_files = gr.File(file_count="multiple", type="filepath", visible=False)
            paint_add.click(None, [paint_ed], [paint_files], js=EDITOR_FILES_JS, api_visibility=PRIVATE,
                            queue=False).then(
                user_errors(lambda items, c, mode, f: ui_paint_add(items, c, mode, editor_value(f))),
                [edit_list, concept, paint_mode, paint_files], list_out, api_visibility=PRIVATE)

        if "segment" in available:
            @user_errors
            def ui_seg_add(items, ed, name, legend, labels_path):
                layer = _stroke_layer(ed)
                if not legend or not labels_path:
                    raise InputError("get the label map of the selection first")
                if layer is None:
                    raise InputError("paint classes over the label map first")
                labels = np.asarray(Image.open(labels_path).convert("RGB"))
                layer = np.asarray(layer)
                if layer.shape[:2] != labels.shape[:2]:
                    raise InputError("the label map changed size: get the label map again")
                out = paint_over_labels(labels, layer)
                spec = {"kind": "segment", "labels": scratch.save(Image.fromarray(out, "RGB"), "labels"),
                        "legend": legend, "snap": True}
                if (name or "").strip():
                    spec["save_vector"] = name.strip()
                return list_outputs(*views.add(items, spec))
            seg_files = gr.File(file_count="multiple", type="filepath", visible=False)
            seg_add.click(None, [seg_ed], [seg_files], js=EDITOR_FILES_JS, api_visibility=PRIVATE,
                          queue=False).then(
                user_errors(lambda items, f, name, legend, lab: ui_seg_add(items, editor_value(f), name, legend, lab)),
                [edit_list, seg_files, seg_name, seg_legend, seg_labels], list_out, api_visibility=PRIVATE)

        if "scribble" in available:
            @user_errors
            def ui_scr_add(items, ed):
                layer = _stroke_layer(ed)
                if layer is None:
                    raise InputError("scribble colours over the selection first")
                return list_outputs(*views.add(items, {"kind": "scribble", "strokes": scratch.save(layer, "strokes")}))
            scr_files = gr.File(file_count="multiple", type="filepath", visible=False)
            scr_add.click(None, [scr_ed], [scr_files], js=EDITOR_FILES_JS, api_visibility=PRIVATE,
                          queue=False).then(user_errors(lambda items, f: ui_scr_add(items, editor_value(f))),
                                            [edit_list, scr_files], list_out, api_visibility=PRIVATE)

        if "interpolate" in available:
            @user_errors
            def ui_interp_add(items, o, tv):
                if not o:
                    raise InputError("upload the other photo first")
                return list_outputs(*views.add(items, {"kind": "interpolate", "other": o, "t": float(tv)}))
            interp_add.click(ui_interp_add, [edit_list, other, t], list_out, api_visibility=PRIVATE)

        if "vector" in available:
            @user_errors
            def ui_vec_add(items, n, s):
                if not n:
                    raise InputError("pick a saved vector first (save one from the label map tab)")
                if not s:
                    raise InputError("the vector strength is 0: set one first")
                return list_outputs(*views.add(items, {"kind": "vector", "name": n, "strength": float(s)}))
            vec_add.click(ui_vec_add, [edit_list, vec, vec_s], list_out, api_visibility=PRIVATE)

        set_btn.click(user_errors(lambda items, n, v: list_outputs(*views.set_strength(items, n, v))),
                      [edit_list, pick, new_strength], list_out, api_visibility=PRIVATE)
        up_btn.click(user_errors(lambda items, n: list_outputs(*views.move(items, n, -1))),
                     [edit_list, pick], list_out, api_visibility=PRIVATE)
        down_btn.click(user_errors(lambda items, n: list_outputs(*views.move(items, n, +1))),
                       [edit_list, pick], list_out, api_visibility=PRIVATE)
        remove_btn.click(user_errors(lambda items, n: list_outputs(*views.remove(items, n))),
                         [edit_list, pick], list_out, api_visibility=PRIVATE)
        clear_btn.click(lambda: list_outputs([], "the list is empty: Render shows the reconstruction alone"),
                        None, list_out, api_visibility=PRIVATE)

        # -- Render: exactly the listed edits ---------------------------------------------------------
        def vector_update(model_id, request):
            if "vector" not in available:
                return gr.skip()
            try:
                d = kinds.list_concepts(model_id or None, backend.device,
                                        namespace=namespace_of(client_key(request)))
            except Exception as e:
                log.warning("no vectors for %s: %s", model_id, e)
                return gr.skip()
            return gr.update(choices=[v["name"] if isinstance(v, dict) else str(v) for v in d.get("vectors", [])])

        @user_errors
        def ui_render(sid, items, adapt_v, comp, state, hist, request: gr.Request, progress=gr.Progress()):
            if not sid:
                raise InputError("project a selection first")
            progress(0.0, desc="starting")
            spec_list = views.specs(items)
            edits, files = files_of(spec_list)
            args = (sid, edits, adapt_v, files) + ((comp,) if has_composite else ())
            for st, result, _layer, _generated in backend.edit(*args, request=request):
                d = json.loads(st)
                if not d.get("done"):
                    progress(d.get("fraction", 0.0), desc=d.get("stage", ""))
                    yield (gr.skip(),) * len(render_outputs)
                    continue
                n = (hist[0]["n"] + 1) if hist else 1
                name = views.download_name((state or {}).get("name"), n)
                path = scratch.save(result, "result", name=name)
                lb = d.get("layer") or {}
                box_ = (lb.get("x", 0), lb.get("y", 0), lb.get("w", result.width), lb.get("h", result.height))
                before_arr = np.asarray(Image.open(state["photo"])) if state.get("photo") else np.asarray(result)
                before, after = views.compare_pair(before_arr, np.asarray(result), box_)
                pa = d.get("psnr_adapted")
                applied = d.get("edits") or []
                pp, dk = d.get("psnr_photo"), d.get("detail_kept")
                msg = (f"changed outside the mask: **{d.get('changed_outside_mask')}** px · "
                       f"PSNR G′ {'—' if pa is None else f'{pa:.2f} dB'} · "
                       + (f"{d.get('composite')}: PSNR at the photo's resolution "
                          f"{'—' if pp is None else f'{pp:.1f} dB'}, detail kept {'—' if dk is None else f'{dk:.2f}'} · "
                          if d.get("composite") else "")
                       + f"{(d.get('seconds') or {}).get('total', 0):.1f} s  \n"
                       f"edits: {', '.join(e.get('kind', '?') for e in applied) or 'none'}")
                notes = d.get("notes") or []
                if notes:
                    msg += "  \n" + "  \n".join(f"note: {x}" for x in notes)
                caption = f"#{n}: " + (", ".join(it["label"] for it in items or []) or "no edits")
                hist = views.push_history(hist, {"n": n, "path": path, "name": name, "caption": caption,
                                                 "before": scratch.save(before, "before"),
                                                 "after": scratch.save(after, "after")})
                saved = any(s.get("save_vector") for s in spec_list)
                gal = [(h["after"], h["caption"]) for h in hist]
                yield ((before, after), path, msg, after, hist, gal,
                       vector_update(state.get("model"), request) if saved else gr.skip(),
                       f"preview: the last render's selection at the photo's resolution ({len(spec_list)} edit(s), "
                       f"{d.get('composite') or 'replace'} composite{', G′' if adapt_v else ''})",
                       result)

        vec_out = vec if "vector" in available else gr.State()
        render_outputs = [compare, download, render_md, preview_img, history, gallery, vec_out, preview_md,
                          result_img]
        render_evt = render_btn.click(ui_render, [session, edit_list, adapt, composite, page, history],
                                      render_outputs, api_visibility=PRIVATE, concurrency_id=ENGINE,
                                      concurrency_limit=16, show_progress_on=[render_md])

        def ui_history(hist, evt: gr.SelectData):
            h = (hist or [])[evt.index]
            return ((Image.open(h["before"]), Image.open(h["after"])), h["path"],
                    f"showing render {h['caption']}", h["path"])
        gallery.select(ui_history, [history], [compare, download, render_md, result_img], api_visibility=PRIVATE)

        def ui_stop(sid):
            hit = json.loads(backend.cancel(sid)) if sid else {"cancelled": False}
            return "**cancelled**" + (" (the running job stops within one step)" if hit.get("cancelled") else "")
        stop_btn.click(ui_stop, [session], notice, cancels=[*project_events, render_evt],
                       api_visibility=PRIVATE)

        if "segment" in available:
            @user_errors
            def ui_segment(sid, state, request: gr.Request, progress=gr.Progress()):
                if not sid:
                    raise InputError("project a selection first")
                for st, labels in backend.segment(sid, request=request):
                    d = json.loads(st)
                    if not d.get("done"):
                        progress(d.get("fraction", 0.0), desc=d.get("stage", ""))
                        yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
                        continue
                    legend = d.get("legend") or {}
                    md = "**legend** (the brush colours, in this order): " + " · ".join(
                        f"<span style='color:rgb({c[0]},{c[1]},{c[2]})'>■</span> {n}" for n, c in legend.items())
                    lab = np.asarray(labels.convert("RGB"))
                    shown = lab
                    if state.get("photo"):  # the label map over the photo, so the user sees what is where
                        photo = np.asarray(Image.open(state["photo"]).convert("RGB"))
                        region = views.box_crop(photo, state["layer"])
                        if region.shape[:2] == lab.shape[:2]:
                            shown = (0.55 * lab + 0.45 * region).round().astype(np.uint8)
                    value = {"background": np.dstack([shown, np.full(shown.shape[:2], 255, np.uint8)]),
                             "layers": [], "composite": None}
                    yield (value["background"], md, legend,
                           scratch.save(Image.fromarray(lab, "RGB"), "labelmap"))

            # The editor is filled in the browser (as a server output it would re-upload on every
            # later status message); its brush colours are the default model's legend.
            seg_btn.click(ui_segment, [session, page], [seg_shown, legend_md, seg_legend, seg_labels],
                          api_visibility=PRIVATE, concurrency_id=ENGINE, concurrency_limit=16,
                          show_progress_on=[legend_md]).then(
                None, [seg_shown], [seg_ed], js=FILL_EDITORS_JS.format(n=1), api_visibility=PRIVATE, queue=False)

        if "paint" in available or "vector" in available:
            def ui_concepts(model_id, request: gr.Request):
                if model_id and _model_present(backend, model_id) is False:  # the line under the menu says so
                    return gr.update(choices=[]), gr.update(choices=[]), ""
                try:
                    d = kinds.list_concepts(model_id or None, backend.device,
                                            namespace=namespace_of(client_key(request)))
                except Exception as e:  # a model without concepts: the lists stay empty
                    log.warning("no concepts for %s: %s", model_id, e)
                    return gr.update(choices=[]), gr.update(choices=[]), ""
                names = [c["name"] if isinstance(c, dict) else str(c) for c in d.get("concepts", [])]
                vecs = [v["name"] if isinstance(v, dict) else str(v) for v in d.get("vectors", [])]
                return (gr.update(choices=names, value=names[0] if names else None),
                        gr.update(choices=vecs, value=vecs[0] if vecs else None), "")
            c_out = [concept if "paint" in available else gr.State(), vec_out, notice]
            model.change(ui_concepts, [model], c_out, api_visibility=PRIVATE)
            demo.load(ui_concepts, [model], c_out, api_visibility=PRIVATE)
        else:
            ui_concepts, c_out = None, None

        # -- a model that is not downloaded says so and downloads with progress when asked ---------
        def ui_model_status(model_id):
            text, show = model_status(backend, model_id)
            return text, gr.update(visible=show, interactive=True)
        model.change(ui_model_status, [model], [model_md, model_dl], api_visibility=PRIVATE)
        demo.load(ui_model_status, [model], [model_md, model_dl], api_visibility=PRIVATE)

        def ui_download(model_id):
            if not model_id:
                raise gr.Error("pick a model first", print_exception=False)
            yield f"downloading **{model_id}**: starting", gr.update(interactive=False), gr.skip()
            try:
                for st in backend.download(model_id):
                    d = json.loads(st)
                    if not d.get("done"):
                        yield download_line(d), gr.skip(), gr.skip()
                        continue
                    yield (f"model **{model_id}** downloaded and sha256-verified ({_mb(d.get('bytes'))}"
                           + (", it was already here" if d.get("already_present") else "") + "): Project uses it now",
                           gr.update(visible=False), gr.update(choices=backend.model_choices(), value=model_id))
            except Exception as e:  # the line stays under the menu; the toast says it too
                from ..errors import PriorpaintError
                line = one_line(str(e)) if isinstance(e, PriorpaintError) else \
                    f"internal error in download ({type(e).__name__}); the server log has the details"
                if not isinstance(e, PriorpaintError):
                    log.exception("download of %s", model_id)
                yield f"**download failed:** {line}", gr.update(interactive=True), gr.skip()
                raise gr.Error(line, print_exception=False) from None
        dl_evt = model_dl.click(ui_download, [model], [model_md, model_dl, model], api_visibility=PRIVATE,
                                concurrency_id="download", concurrency_limit=2, show_progress="hidden")
        if ui_concepts is not None:
            dl_evt.success(ui_concepts, [model], c_out, api_visibility=PRIVATE)

        # -- the API (docs/api.md) -------------------------------------------------------------
        with gr.Column(visible=False):
            a_image = gr.File(label="image", type="filepath")
            a_mask = gr.File(label="mask", type="filepath")
            a_box = gr.Textbox(label="box")
            a_model = gr.Textbox(label="model")
            a_steps = gr.Number(label="steps", precision=0, value=backend.default_steps)
            a_seed = gr.Number(label="seed", precision=0, value=0)
            a_adapt = gr.Checkbox(label="adapt", value=False)
            a_options = gr.Textbox(label="options", value="")
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
        trigger.click(user_errors(backend.project_options),
                      [a_image, a_mask, a_box, a_model, a_steps, a_seed, a_adapt, a_options],
                      [o_status, o_crop, o_recon, o_adapted], api_name="project_options",
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
