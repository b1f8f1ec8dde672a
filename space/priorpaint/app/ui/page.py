"""What every panel of the page shares: the :class:`Page` (its components by name and the
settings it was built with), the scratch folder for the page's PNGs, the photo editor's value
helpers and the browser-side relays.

Uploads: a photo editor's value is uploaded by the browser every time an event reads it.
So an editor is an input only of the one click that needs it (Project, or a tab's *Add*
button); that click turns it into server-side files held in the page's ``gr.State``, and
every streaming event (Project's progress, Render, the preview) reads only states, sliders
and text.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
from PIL import Image

import gradio as gr

from ...errors import InputError
from .. import views

log = logging.getLogger(__name__)

ENGINE = "engine"  # the concurrency group of the engine endpoints
PRIVATE = "private"
SELECTION_COLOUR = ("#ff3366", 0.45)  # translucent: the photo shows through the selection


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


class Page:
    """One page being built: its components by name (set by each panel's ``build``), the lists
    the panels share, and the settings the page was built with."""

    def __init__(self, available: Dict[str, object], choices: List[tuple], default_model: Optional[str],
                 default_steps: int, legend_brush=None):
        self.available = available            # the edit kinds of this version
        self.choices = choices                # the model menu
        self.default_model = default_model
        self.default_steps = default_steps
        self.legend_brush = legend_brush      # the label map editor's brush (the default model's legend)
        self.scratch = Scratch()
        self.sliders: List[gr.Slider] = []            # the direction sliders
        self.region_editors: List[gr.ImageEditor] = []  # tabs that paint over the selection's square
        self.cheap_inputs: List[gr.components.Component] = []  # what the live preview reads (no editors)
        self.project_events: list = []                # what Stop cancels, with the render
        self.render_events: list = []

    def has(self, kind: str) -> bool:
        return kind in self.available

    def list_outputs(self, items, msg):
        """The edit list's state, its table and its message line."""
        return items, views.table(items), msg

    @property
    def list_out(self) -> list:
        return [self.edit_list, self.edits_df, self.list_md]

    def state_or_sink(self, name: str):
        """The named component, or a throw-away state where this version lacks it."""
        found = getattr(self, name, None)
        return gr.State() if found is None else found


# -- the photo editor's value ------------------------------------------------------------------

def editor_layers(value) -> tuple:
    """(background RGBA array or None, paint alpha (H, W) uint8 or None) of an ImageEditor value."""
    if not value or not isinstance(value, dict):
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


def photo_image(bg: np.ndarray) -> Image.Image:
    if bg.ndim == 2:
        return Image.fromarray(bg, "L")
    if bg.shape[2] == 4:
        if bg[..., 3].min() == 255:
            return Image.fromarray(np.ascontiguousarray(bg[..., :3]), "RGB")
        return Image.fromarray(bg, "RGBA")
    return Image.fromarray(bg[..., :3], "RGB")


def stroke_layer(value) -> Optional[Image.Image]:
    """The painted layer (RGBA) of an ImageEditor, or None when nothing was painted."""
    if not value:
        return None
    layers = [np.asarray(x) for x in (value.get("layers") or []) if x is not None]
    layers = [x for x in layers if x.ndim == 3 and x.shape[2] == 4 and x[..., 3].any()]
    if not layers:
        return None
    out = layers[0].copy()
    for x in layers[1:]:
        m = x[..., 3] > 0
        out[m] = x[m]
    return Image.fromarray(out, "RGBA")


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


#: a browser-side function: an ImageEditor's value (background, layers) as a list of uploaded files
EDITOR_FILES_JS = "(v) => [v ? [v.background || v.composite, ...(v.layers || [])].filter(Boolean) : []]"
#: the Project click's relay: the editor's files and the name of the file the user picked
#: (the editor keeps only pixels; the page remembers the name when the file input changes)
#: and the size the editor shows the photo in (its canvas, "W,H" screen px: brush gaps are closed at that scale)
PROJECT_RELAY_JS = ("(v, name) => { const c = document.querySelector('#pp-editor canvas'); "
                    "const r = c ? c.getBoundingClientRect() : null; "
                    "return [v ? [v.background || v.composite, ...(v.layers || [])].filter(Boolean) : [], "
                    "window.__pp_photo_name || name || '', r ? `${Math.round(r.width)},${Math.round(r.height)}` : '']; }")
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


def relay_editor(page: Page, button, editor, handler, inputs: list) -> None:
    """``button`` reads ``editor`` once in the browser (its uploaded files), then ``handler``
    gets the editor's value as the second input, after the edit list."""
    files = gr.File(file_count="multiple", type="filepath", visible=False)
    button.click(None, [editor], [files], js=EDITOR_FILES_JS, api_visibility=PRIVATE, queue=False).then(
        handler, [page.edit_list, files, *inputs], page.list_out, api_visibility=PRIVATE)
