"""Label map: get the selection's part label map, paint classes over it in the legend's
colours, and put the label edit on the list (optionally saved as an editing vector)."""

from __future__ import annotations

import numpy as np
from PIL import Image

import gradio as gr

from ....errors import InputError
from ... import contract as C
from ... import views
from ...endpoints import client_key, stoppable, user_errors
from ..page import ENGINE, FILL_EDITORS_JS, PRIVATE, Page, editor_value, relay_editor, stroke_layer

KIND = "segment"
TITLE = "Label map"


def paint_over_labels(labels: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """The label map with the painted layer on top (pixels painted at least half opaque).
    The brush antialiases: the segment spec asks the server to snap colours to the legend."""
    out = np.array(labels[..., :3], dtype=np.uint8)
    painted = layer[..., 3] >= 128
    out[painted] = layer[..., :3][painted]
    return out


def legend_markdown(legend: dict) -> str:
    return "**legend** (the brush colours, in this order): " + " · ".join(
        f"<span style='color:rgb({c[0]},{c[1]},{c[2]})'>■</span> {n}" for n, c in legend.items())


def build(page: Page) -> None:
    page.seg_btn = gr.Button("Get the label map of the selection", elem_id="pp-seg-get")
    page.legend_md = gr.Markdown("", elem_id="pp-legend")
    page.seg_ed = gr.ImageEditor(label="paint classes over the photo (the brush colours are the legend's)",
                                 type="numpy", image_mode="RGBA", format="png", transforms=(),
                                 brush=page.legend_brush, elem_id="pp-seg-editor",
                                 height=460)   # room for the named swatches
    page.seg_shown = gr.Image(type="numpy", format="png", image_mode="RGBA", visible=False, interactive=False)
    page.seg_name = gr.Textbox(label="save as editing vector (optional name)", elem_id="pp-seg-name")
    page.seg_legend = gr.State({})
    page.seg_labels = gr.State("")  # the label map itself (the editor shows it over the photo)
    page.seg_add = gr.Button("Add the label edit to the edit list", elem_id="pp-seg-add")


def wire(page: Page, service) -> None:
    scratch = page.scratch

    @stoppable
    def ui_segment(sid, state, request: gr.Request, progress=gr.Progress()):
        if not sid:
            raise InputError("project a selection first")
        for step in service.segment(sid, client_key(request)):
            if isinstance(step, C.Progress):
                progress(step.fraction, desc=step.stage)
                yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
                continue
            legend = step.legend or {}
            lab = np.ascontiguousarray(np.asarray(step.labels)[..., :3])
            shown = lab
            if state.get("photo"):  # the label map over the photo, so the user sees what is where
                photo = np.asarray(Image.open(state["photo"]).convert("RGB"))
                region = views.box_crop(photo, state["layer"])
                if region.shape[:2] == lab.shape[:2]:
                    shown = (0.55 * lab + 0.45 * region).round().astype(np.uint8)
            yield (np.dstack([shown, np.full(shown.shape[:2], 255, np.uint8)]), legend_markdown(legend), legend,
                   scratch.save(Image.fromarray(lab, "RGB"), "labelmap"))

    # The editor is filled in the browser (as a server output it would re-upload on every
    # later status message); its brush colours are the default model's legend.
    page.seg_btn.click(ui_segment, [page.session, page.page_state],
                       [page.seg_shown, page.legend_md, page.seg_legend, page.seg_labels],
                       api_visibility=PRIVATE, concurrency_id=ENGINE, concurrency_limit=16,
                       show_progress_on=[page.legend_md]).then(
        None, [page.seg_shown], [page.seg_ed], js=FILL_EDITORS_JS.format(n=1), api_visibility=PRIVATE, queue=False)

    @user_errors
    def ui_seg_add(items, files, name, legend, labels_path):
        layer = stroke_layer(editor_value(files))
        if not legend or not labels_path:
            raise InputError("get the label map of the selection first")
        if layer is None:
            raise InputError("paint classes over the label map first")
        labels = np.asarray(Image.open(labels_path).convert("RGB"))
        layer = np.asarray(layer)
        if layer.shape[:2] != labels.shape[:2]:
            raise InputError("the label map changed size: get the label map again")
        out = paint_over_labels(labels, layer)
        spec = {"kind": KIND, "labels": scratch.save(Image.fromarray(out, "RGB"), "labels"),
                "legend": legend, "snap": True}
        if (name or "").strip():
            spec["save_vector"] = name.strip()
        return page.list_outputs(*views.add(items, spec))
    relay_editor(page, page.seg_add, page.seg_ed, ui_seg_add, [page.seg_name, page.seg_legend, page.seg_labels])
