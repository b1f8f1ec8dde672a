"""The photo panel: the photo editor and its selection (painted, or a box), the model menu,
the projection settings, *Project* and *Stop*; and what a projection fills in (the crop,
``G(z_h)``, ``G′``, the status, the direction sliders, the tabs' canvases)."""

from __future__ import annotations

import numpy as np
from PIL import Image

import gradio as gr

from ...errors import InputError
from .. import contract as C
from .. import views
from ..endpoints import client_key, stoppable, user_errors
from . import models, selection
from .page import (ENGINE, FILL_EDITORS_JS, NAME_JS, PRIVATE, PROJECT_RELAY_JS, SELECTION_COLOUR, Page,
                   editor_layers, editor_value, photo_image)

MAX_DIRECTION_SLIDERS = 16


MODEL_HELP = ("the default dcgan-digiface-64 is a small 64 px face model: good for faces, appearance edits "
              "(light, colour, skin and hair tone) and small structural changes; the larger models, once "
              "downloaded, add detail at their own resolution and larger structural edits (head turn, smile)")
#: a selection whose short side is below this share of the model's resolution is warned about
TINY_SHARE = 0.5


def _db(v) -> str:
    return "—" if v is None else f"{v:.2f} dB"


def fit_words(db) -> str:
    """How closely the model alone reproduced the selection, in words (from the G(z_h) PSNR)."""
    if db is None:
        return "not measured"
    if db >= 27:
        return "closely"
    if db >= 21:
        return "fairly: the broad shapes and colours match, fine detail differs"
    return "poorly: the model cannot represent this selection well, so edits may look wrong"


def status_md(st: dict, selection_note: str = "") -> str:
    """The plain-words status of a finished projection (its status object); the figures are
    :func:`figures_md`, behind the *details* toggle."""
    lines = [f"**Projected** with model `{st.get('model', '')}`: the model reproduces your selection "
             f"{fit_words(st.get('psnr_projection'))}. Now move a slider or add edits, then **Render**."]
    if selection_note:
        lines.append(selection_note)
    for n in st.get("notes") or []:
        lines.append(f"note: {n}")
    return "  \n".join(lines)


def figures_md(st: dict) -> str:
    """The projection's figures (PSNR and time) for the *details* toggle."""
    sec = st.get("seconds") or {}
    return (f"PSNR inside the selection: the model alone, G(z) {_db(st.get('psnr_z'))} · refined, G(z_h) "
            f"{_db(st.get('psnr_projection'))} · fitted to this photo, G′ {_db(st.get('psnr_adapted'))}"
            + (f" · {sec['total']:.1f} s" if sec.get("total") is not None else ""))


def tiny_note(box, resolution) -> str:
    """A warning when the selection (x, y, w, h) is far below the model's resolution ("" otherwise)."""
    if not box or not resolution:
        return ""
    short = min(int(box[2]), int(box[3]))
    if short >= TINY_SHARE * resolution:
        return ""
    return (f"⚠ the selection is only {int(box[2])}×{int(box[3])} px, far below the model's {resolution} px: "
            "the model sees an enlarged blur, so the result will be soft; select a larger region")


def where_image(bg: np.ndarray, mask, box, side: int = 480) -> Image.Image:
    """The photo, shrunk to ``side`` px, with the selection (a mask or a box) outlined on it."""
    import cv2

    h, w = bg.shape[:2]
    f = min(1.0, side / max(h, w))
    small = cv2.resize(views.rgb(bg), (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    m = np.zeros(small.shape[:2], np.uint8)
    if box is not None:
        x, y, bw, bh = box
        m[max(0, round(y * f)):max(0, round((y + bh) * f)), max(0, round(x * f)):max(0, round((x + bw) * f))] = 255
    elif mask is not None:
        m = cv2.resize(mask, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_NEAREST)
    return Image.fromarray(views.selection_outline(small, m))


def slider_updates(service, sliders, model_id) -> tuple:
    """(the model's direction rows, an update per slider: label, range, description)."""
    rows, updates = [], []
    if not sliders:
        return rows, updates
    try:
        rows = service.directions(model_id)[:MAX_DIRECTION_SLIDERS]
    except InputError:
        rows = []
    for i in range(len(sliders)):
        if i < len(rows):
            r = rows[i]
            updates.append(gr.update(visible=True, label=r["name"], info=r.get("description") or None,
                                     minimum=r.get("min", -3), maximum=r.get("max", 3),
                                     value=r.get("default", 0)))
        else:
            updates.append(gr.update(visible=False, value=0))
    return rows, updates


def build(page: Page) -> None:
    """The left column (inside the page's first row)."""
    page.editor = gr.ImageEditor(
        label="Photo: paint over the region to edit (Layers → eye icon hides the selection)",
        type="numpy", image_mode="RGBA", format="png", sources=("upload", "clipboard"),
        transforms=(), brush=gr.Brush(colors=[SELECTION_COLOUR], default_color=SELECTION_COLOUR,
                                      default_size=24, color_mode="fixed"),
        elem_id="pp-editor", height=520)
    page.photo_name = gr.Textbox(visible=False, elem_id="pp-photo-name")
    page.shown_size = gr.Textbox(visible=False, elem_id="pp-shown-size")  # the editor canvas, "W,H" screen px
    gr.HTML("", elem_id="pp-upload-msg")
    with gr.Row():
        page.box = gr.Textbox(label="or a box X,Y,W,H (Enter projects)", placeholder="140,20,180,180",
                              elem_id="pp-box")
        page.model = gr.Dropdown(choices=page.choices, value=page.default_model, label="model", elem_id="pp-model",
                                 info=MODEL_HELP)
    models.build(page)
    with gr.Row():
        page.steps = gr.Slider(0, 1000, value=page.default_steps, step=10, label="projection steps",
                               elem_id="pp-steps")
        page.seed = gr.Number(value=0, precision=0, label="seed", minimum=0)
        page.adapt = gr.Checkbox(value=True, label="fit G′ (slower, more faithful; Project and Render)",
                                 elem_id="pp-adapt")
    with gr.Row():
        page.project_btn = gr.Button("Project", variant="primary", elem_id="pp-project")
        page.stop_btn = gr.Button("Stop", variant="stop", elem_id="pp-stop")
    page.status = gr.Markdown("Project a selection to start.", elem_id="pp-status")
    page.where_img = gr.Image(label="what is selected (outlined on your photo)", format="png", interactive=False,
                              elem_id="pp-where", height=200, visible=False)
    page.notice = gr.Markdown("", elem_id="pp-notice")


def wire(page: Page, service) -> None:
    scratch = page.scratch
    sliders = page.sliders

    @user_errors
    def ui_selection(files, name, box_text, model_id, shown):
        """The editor's photo and selection as server-side files (the editor travels once, here);
        a painted selection is closed at the scale the editor shows the photo at."""
        bg, alpha = editor_layers(editor_value(files))
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
            mask, info = selection.close_gaps(mask, selection.display_scale(shown, bg.shape[:2]))
            note = "selection: the painted region" + selection.note(info)
        if model_id and models.present(service, model_id) is False:
            raise InputError(models.not_downloaded(model_id))
        row = service.model_row(model_id or service.model) or {}
        if box_t is not None:
            views.box_crop(bg, box_t)   # a box outside the photo: said now, in one line
            extent = box_t
        else:
            ys, xs = np.nonzero(mask)
            extent = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
        tiny = tiny_note(extent, row.get("resolution"))
        note = "  \n".join(x for x in (note, tiny) if x)
        return {"photo": scratch.save(photo_image(bg), "photo"), "name": name or "",
                "mask": None if box_t else scratch.save(Image.fromarray(mask, "L"), "mask"),
                "box": ",".join(map(str, box_t)) if box_t else "", "note": note,
                "where": scratch.save(where_image(bg, mask if box_t is None else None, box_t), "where")}

    @stoppable
    def ui_project(sel, model_id, n_steps, seed_v, adapt_v, items, request: gr.Request, progress=gr.Progress()):
        if not sel or not sel.get("photo"):
            raise InputError("upload a photo first")
        image_path, note = sel["photo"], sel["note"]
        req = C.ProjectRequest.parse(image_path, sel["mask"], sel["box"], model_id or "", n_steps, seed_v, adapt_v,
                                     limits=service.limits)
        bg = np.asarray(Image.open(image_path).convert("RGBA"))
        progress(0.0, desc="starting")
        first = [gr.skip()] * len(outputs)
        first[outputs.index(page.status)] = "**projecting the selection…** (progress above; Stop cancels)"
        first[outputs.index(page.where_img)] = gr.update(value=sel.get("where"), visible=bool(sel.get("where")))
        yield tuple(first)
        try:
            yield from project_steps(req, request, progress, bg, note, image_path, sel, items)
        except Exception as e:   # the status must not keep saying "projecting" after a failure
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
            first[outputs.index(page.status)] = f"**the projection stopped:** {why}"
            first[outputs.index(page.where_img)] = gr.skip()
            yield tuple(first)
            raise

    def project_steps(req, request, progress, bg, note, image_path, sel, items):
        for step in service.project(req, client_key(request)):
            if isinstance(step, C.Progress):
                progress(step.fraction, desc=step.stage)
                yield (gr.skip(),) * len(outputs)
                continue
            rows, updates = slider_updates(service, sliders, step.model)
            layer = list(step.layer.tuple())   # where the session's layers go (aligned: the rotated square's box)
            region = views.box_crop(bg, layer)
            if region.ndim == 3 and region.shape[2] == 3:
                region = np.dstack([region, np.full(region.shape[:2], 255, np.uint8)])
            # A new selection: the region-shaped edits of the list no longer fit it.
            kept, dropped = views.kept_on_reprojection(items)
            msg = (f"the new projection dropped {dropped} region edit(s) from the list (paint them again)"
                   if dropped else gr.skip())
            state = {"photo": image_path, "name": sel.get("name", "") or "", "layer": layer, "model": step.model}
            side = views.rgb(region).shape[0]
            yield (step.session, views.readable(Image.fromarray(views.rgb(region))),
                   views.readable(step.reconstruction, max(side, views.MIN_PREVIEW)),
                   views.readable(step.adapted, max(side, views.MIN_PREVIEW)),
                   status_md(C.status(step), note), rows, state, kept, views.table(kept), msg, "",
                   figures_md(C.status(step)), gr.skip(), *updates)

    def ui_fill_editors(state):
        """The paint and scribble tabs start on the photo's layer box (the selection's square)."""
        bg = np.asarray(Image.open(state["photo"]).convert("RGBA"))
        return Image.fromarray(views.box_crop(bg, state["layer"]), "RGBA")

    region_png = gr.Image(type="pil", format="png", image_mode="RGBA", visible=False, interactive=False)
    outputs = [page.session, page.crop_img, page.recon_img, page.adapted_img, page.status, page.direction_rows,
               page.page_state, page.edit_list, page.edits_df, page.list_md, page.notice, page.figures_md,
               page.where_img, *sliders]
    page.demo.load(None, None, None, js=NAME_JS, api_visibility=PRIVATE, queue=False)
    # Two steps: a quick one reads the editor (its value is uploaded for this click only), the
    # streaming projection reads the files it left in ``selected``.
    selected = gr.State({})
    editor_files = gr.File(file_count="multiple", type="filepath", visible=False)
    sel_inputs = [editor_files, page.photo_name, page.box, page.model, page.shown_size]
    inputs = [selected, page.model, page.steps, page.seed, page.adapt, page.edit_list]
    for trigger in (page.project_btn.click, page.box.submit):
        # Gradio's page re-reads (and re-uploads) an editor on every status message of any
        # event once the editor was an input or output of a server event; a browser-side
        # relay reads it once, for this click, and hands the server its uploaded files.
        relay = trigger(None, [page.editor, page.photo_name], [editor_files, page.photo_name, page.shown_size],
                        js=PROJECT_RELAY_JS,
                        api_visibility=PRIVATE, queue=False)
        grab = relay.then(ui_selection, sel_inputs, selected, api_visibility=PRIVATE, show_progress="hidden")
        proj = grab.success(ui_project, inputs, outputs, api_visibility=PRIVATE,
                            concurrency_id=ENGINE, concurrency_limit=16, show_progress_on=[page.status])
        page.project_events += [grab, proj]
        if page.region_editors:  # set in the browser: as outputs of a server event they would re-upload
            proj.success(ui_fill_editors, [page.page_state], region_png, api_visibility=PRIVATE,
                         show_progress="hidden").then(
                None, [region_png], page.region_editors, js=FILL_EDITORS_JS.format(n=len(page.region_editors)),
                api_visibility=PRIVATE, queue=False)
