#!/usr/bin/env python3
"""priorpaint for GIMP 3: edit the selection with a GAN prior; the result is a new layer.

Procedures (Filters > Generative > priorpaint), the scripting contract:

- ``priorpaint-project``             Project selection: G(z) and G' reconstructions as layers
- ``priorpaint-semantic-edit``       direction (string), strength (double), adapt (boolean)
- ``priorpaint-paint-concept``       concept (string), mode (add/remove), adapt (boolean)
- ``priorpaint-segment``             a label-map layer (legend in its name and a parasite)
- ``priorpaint-apply-segmentation``  applies the painted label-map layer; adapt (boolean)
- ``priorpaint-settings``            url, model, token (saved; see gimp_bridge.settings)

Only the selection's bounding square (with context margin) travels to the backend. Each
result is a new layer above the source layer, at the selection's offset, with a layer
mask from the feathered edit mask, added inside one undo group. The user's layers are
never modified. Cancelling GIMP's progress cancels the backend job (gimp_bridge.watchdog).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gi  # noqa: E402

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

from gimp_bridge import ops, png  # noqa: E402
from gimp_bridge import settings as bridge_settings  # noqa: E402
from gimp_bridge.client import BridgeError, Cancelled, Client  # noqa: E402
from gimp_bridge.watchdog import JobGuard  # noqa: E402

PLUG_IN_BINARY = "priorpaint"
MENU = "<Image>/Filters/Generative/priorpaint"
PARASITE = "priorpaint-segment"
RW = GObject.ParamFlags.READWRITE

PROC_PROJECT = "priorpaint-project"
PROC_EDIT = "priorpaint-semantic-edit"
PROC_PAINT = "priorpaint-paint-concept"
PROC_SEGMENT = "priorpaint-segment"
PROC_APPLY_SEG = "priorpaint-apply-segmentation"
PROC_SETTINGS = "priorpaint-settings"


# -- helpers ---------------------------------------------------------------------------------

def _fail(procedure, message):
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))


def _ok(procedure):
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def _cancel(procedure):
    return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())


def _client():
    s = bridge_settings.load()
    return Client(settings=s), s


def _is_gray(drawable):
    return not drawable.is_rgb() and drawable.is_gray()


def _formats(drawable):
    """Babl format and channel count used to read the drawable (gray is read as gray+alpha)."""
    if _is_gray(drawable):
        return "Y'A u8", 2
    return "R'G'B'A u8", 4


def _buffer_get(buffer, x, y, w, h, fmt, abyss=None):
    rect = Gegl.Rectangle.new(x, y, w, h)
    data = buffer.get(rect, 1.0, fmt, Gegl.AbyssPolicy.NONE if abyss is None else abyss)
    return bytes(data)


def _single_layer(drawables):
    if len(drawables) != 1:
        raise BridgeError("select exactly one layer to edit (%d are selected)" % len(drawables))
    drawable = drawables[0]
    if not isinstance(drawable, Gimp.Layer):
        raise BridgeError("the active drawable is not a layer (a mask or channel?): select a layer")
    return drawable


def read_crop(image, drawable):
    """Cut the selection's bounding square (with margin) from the drawable, plus its soft mask.

    Returns (crop, (offset_x, offset_y)) where the crop is in drawable coordinates and the
    offsets turn drawable coordinates into image coordinates.
    """
    ok, non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
    if not ok or not non_empty:
        raise BridgeError("the selection is empty: select the region to edit first "
                          "(e.g. with the rectangle or ellipse select tool)")
    _, ox, oy = drawable.get_offsets()
    dw, dh = drawable.get_width(), drawable.get_height()
    box = ops.check_selection((x1 - ox, y1 - oy, x2 - x1, y2 - y1), (dw, dh))
    cx, cy, cw, ch = ops.crop_rect(box, (dw, dh))
    fmt, channels = _formats(drawable)
    pixels = _buffer_get(drawable.get_buffer(), cx, cy, cw, ch, fmt, Gegl.AbyssPolicy.CLAMP)
    # The selection channel lives in image coordinates; outside the canvas it is empty.
    mask = _buffer_get(image.get_selection().get_buffer(), cx + ox, cy + oy, cw, ch, "Y u8",
                       Gegl.AbyssPolicy.NONE)
    crop = ops.Crop.from_pixels(cx, cy, cw, ch, pixels, channels, mask)
    return crop, (ox, oy)


def _layer_bytes(image_rgba, gray):
    if gray:
        return Gimp.ImageType.GRAYA_IMAGE, "Y'A u8", png.convert(image_rgba.data, 4, 2)
    return Gimp.ImageType.RGBA_IMAGE, "R'G'B'A u8", image_rgba.data


def new_layer(image, above, result, offsets, gray, mask_from_alpha=True, scale_to=None):
    """Insert ``result`` (ops.Layer, drawable coordinates) as a new layer above ``above``."""
    img = result.image.to_rgba()
    ltype, fmt, data = _layer_bytes(img, gray)
    layer = Gimp.Layer.new(image, result.name, img.width, img.height, ltype, 100.0, Gimp.LayerMode.NORMAL)
    parent = above.get_parent()
    position = image.get_item_position(above)
    image.insert_layer(layer, parent, position)
    buffer = layer.get_buffer()
    buffer.set(Gegl.Rectangle.new(0, 0, img.width, img.height), fmt, data)
    buffer.flush()
    if scale_to is not None and scale_to != img.width:
        layer.scale(scale_to, scale_to, False)
    layer.set_offsets(result.x + offsets[0], result.y + offsets[1])
    if mask_from_alpha:
        mask = layer.create_mask(Gimp.AddMaskType.ALPHA_TRANSFER)
        layer.add_mask(mask)
    layer.update(0, 0, layer.get_width(), layer.get_height())
    return layer


class _GimpProgress:
    def __init__(self, title):
        self.title = title
        Gimp.progress_init(title)

    def __call__(self, fraction, text):
        Gimp.progress_set_text("%s — %s" % (self.title, text) if text else self.title)
        Gimp.progress_update(max(0.0, min(1.0, fraction)))

    def end(self):
        Gimp.progress_end()


def _run_backend(procedure, title, work):
    """Run ``work(client, settings, progress, guard)`` with progress, cancel and error mapping."""
    client, s = _client()
    progress = _GimpProgress(title)
    try:
        with JobGuard(client) as guard:
            value = work(client, s, progress, guard)
    except Cancelled:
        return None, _cancel(procedure)
    except BridgeError as exc:
        return None, _fail(procedure, "priorpaint: %s" % exc)
    except (ValueError, KeyError, TypeError, OSError) as exc:
        # e.g. a reply this plug-in version cannot read: say so instead of crashing the plug-in
        return None, _fail(procedure, "priorpaint: unexpected reply from the backend at %s (%s: %s); "
                                      "is the backend the same priorpaint version?"
                           % (client.url, type(exc).__name__, exc))
    finally:
        progress.end()
    return value, None


def _interactive_dialog(procedure, config, title, properties, extra=None):
    """Show a GimpUi.ProcedureDialog; ``extra(dialog)`` may add widgets. True when confirmed."""
    gi.require_version("GimpUi", "3.0")
    from gi.repository import GimpUi
    GimpUi.init(PLUG_IN_BINARY)
    dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config, title=title)
    on_ok = None
    if extra is not None:
        on_ok = extra(dialog)
    dialog.fill(properties)
    confirmed = dialog.run()
    if confirmed and on_ok is not None:
        on_ok()
    dialog.destroy()
    return confirmed


def _label(name, description, width=70):
    """A combo entry: the name and as much of the description as fits."""
    if not description:
        return name
    text = "%s — %s" % (name, description)
    return text if len(text) <= width else text[:width - 1].rstrip() + "…"


def _choice_combo(dialog, config, prop, label, values):
    """Add a combo box filled with ``values`` (from the backend) that writes ``prop``."""
    gi.require_version("Gtk", "3.0")
    from gi.repository import Gtk
    box = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=6)
    box.pack_start(Gtk.Label(label=label), False, False, 0)
    combo = Gtk.ComboBoxText()
    current = config.get_property(prop) or ""
    for i, (value, text) in enumerate(values):
        combo.append(value, text)
        if value == current:
            combo.set_active(i)
    if combo.get_active() < 0 and values:
        combo.set_active(0)
    box.pack_start(combo, True, True, 0)
    box.show_all()
    dialog.get_content_area().pack_start(box, False, False, 6)

    def on_ok():
        value = combo.get_active_id()
        if value is not None:
            config.set_property(prop, value)
    return on_ok


# -- procedures ------------------------------------------------------------------------------

def run_semantic_edit(procedure, run_mode, image, drawables, config, data):
    try:
        drawable = _single_layer(drawables)
        if run_mode == Gimp.RunMode.INTERACTIVE:
            client, s = _client()
            try:
                choices = [(d["name"], _label(d["name"], d.get("description", "")))
                           for d in ops.list_directions(client, s.model)]
            except BridgeError as exc:
                return _fail(procedure, "priorpaint: %s" % exc)
            if not choices:
                return _fail(procedure, "priorpaint: the backend's model has no named directions")
            extra = lambda dialog: _choice_combo(dialog, config, "direction", "Direction", choices)  # noqa: E731
            if not _interactive_dialog(procedure, config, "priorpaint: Semantic edit", ["strength", "adapt"], extra):
                return _cancel(procedure)
        direction = (config.get_property("direction") or "").strip()
        strength = float(config.get_property("strength"))
        adapt = bool(config.get_property("adapt"))
        if not direction:
            raise BridgeError("no direction given (see the backend's `directions` list)")
        crop, offsets = read_crop(image, drawable)
    except BridgeError as exc:
        return _fail(procedure, "priorpaint: %s" % exc)

    def work(client, s, progress, guard):
        return ops.semantic_edit(client, crop, direction, strength, adapt=adapt, model=s.model,
                                 progress=progress, on_job=guard.set_job)

    result, err = _run_backend(procedure, "priorpaint: %s" % direction, work)
    if err is not None:
        return err
    return _paste_result(procedure, image, drawable, result, offsets)


def _paste_result(procedure, image, drawable, result, offsets):
    """Add the backend's result as one new layer (one undo step) and report success."""
    image.undo_group_start()
    try:
        new_layer(image, drawable, result, offsets, _is_gray(drawable))
    finally:
        image.undo_group_end()
    Gimp.displays_flush()
    return _ok(procedure)


def run_paint_concept(procedure, run_mode, image, drawables, config, data):
    try:
        drawable = _single_layer(drawables)
        if run_mode == Gimp.RunMode.INTERACTIVE:
            client, s = _client()
            try:
                concepts = ops.list_concepts(client, s.model).get("concepts") or []
            except BridgeError as exc:
                return _fail(procedure, "priorpaint: %s" % exc)
            names = [(str(c.get("name") if isinstance(c, dict) else c),) * 2 for c in concepts]
            if not names:
                return _fail(procedure, "priorpaint: the backend's model has no concepts to paint")
            extra = lambda dialog: _choice_combo(dialog, config, "concept", "Concept", names)  # noqa: E731
            if not _interactive_dialog(procedure, config, "priorpaint: Paint concept", ["mode", "adapt"], extra):
                return _cancel(procedure)
        concept = (config.get_property("concept") or "").strip()
        mode = str(config.get_property("mode") or "add")
        adapt = bool(config.get_property("adapt"))
        if not concept:
            raise BridgeError("no concept given (see the backend's `concepts` list)")
        crop, offsets = read_crop(image, drawable)
    except BridgeError as exc:
        return _fail(procedure, "priorpaint: %s" % exc)

    def work(client, s, progress, guard):
        return ops.paint_concept(client, crop, concept, mode, adapt=adapt, model=s.model,
                                 progress=progress, on_job=guard.set_job)

    result, err = _run_backend(procedure, "priorpaint: %s %s" % (mode, concept), work)
    if err is not None:
        return err
    return _paste_result(procedure, image, drawable, result, offsets)


def run_project(procedure, run_mode, image, drawables, config, data):
    try:
        drawable = _single_layer(drawables)
        if run_mode == Gimp.RunMode.INTERACTIVE:
            if not _interactive_dialog(procedure, config, "priorpaint: Project selection", ["adapt"]):
                return _cancel(procedure)
        adapt = bool(config.get_property("adapt"))
        crop, offsets = read_crop(image, drawable)
    except BridgeError as exc:
        return _fail(procedure, "priorpaint: %s" % exc)

    def work(client, s, progress, guard):
        return ops.project_layers(client, crop, model=s.model, adapt=adapt, progress=progress,
                                  on_job=guard.set_job)

    value, err = _run_backend(procedure, "priorpaint: projecting", work)
    if err is not None:
        return err
    proj, layers = value
    gray = _is_gray(drawable)
    image.undo_group_start()
    try:
        for result in layers:
            if result.name.startswith("priorpaint: G(z)"):
                # model resolution -> the square's size, at the square's offset
                new_layer(image, drawable, result, offsets, gray, mask_from_alpha=False, scale_to=proj.square[2])
            else:
                new_layer(image, drawable, result, offsets, gray)
    finally:
        image.undo_group_end()
    Gimp.displays_flush()
    return _ok(procedure)


def run_segment(procedure, run_mode, image, drawables, config, data):
    try:
        drawable = _single_layer(drawables)
        crop, offsets = read_crop(image, drawable)
    except BridgeError as exc:
        return _fail(procedure, "priorpaint: %s" % exc)

    def work(client, s, progress, guard):
        return ops.segment(client, crop, model=s.model, progress=progress, on_job=guard.set_job), client.url

    value, err = _run_backend(procedure, "priorpaint: segmenting", work)
    if err is not None:
        return err
    seg, url = value
    legend = ", ".join("%s=#%02x%02x%02x" % (name, *rgb[:3]) for name, rgb in seg.legend.items())
    seg.labels.name = "priorpaint labels [%s]" % legend if legend else "priorpaint labels"
    meta = {"session": seg.session, "url": url, "legend": seg.legend,
            "crop": [crop.x, crop.y], "layer": [seg.labels.x, seg.labels.y,
                                                seg.labels.image.width, seg.labels.image.height],
            "source": drawable.get_name(), "gray": _is_gray(drawable)}
    image.undo_group_start()
    try:
        layer = new_layer(image, drawable, seg.labels, offsets, _is_gray(drawable), mask_from_alpha=False)
        layer.attach_parasite(Gimp.Parasite.new(PARASITE, 0, list(json.dumps(meta).encode("utf-8"))))
    finally:
        image.undo_group_end()
    Gimp.displays_flush()
    return _ok(procedure)


def _label_layer(image, drawables):
    for d in drawables:
        if d.get_parasite(PARASITE) is not None:
            return d
    for layer in image.get_layers():
        if layer.get_parasite(PARASITE) is not None:
            return layer
    raise BridgeError("no priorpaint label layer found: run 'Segment selection' first, paint on the labels "
                      "layer with the legend's colours, then apply")


def run_apply_segmentation(procedure, run_mode, image, drawables, config, data):
    try:
        labels_layer = _label_layer(image, drawables)
        if run_mode == Gimp.RunMode.INTERACTIVE:
            if not _interactive_dialog(procedure, config, "priorpaint: Apply segmentation edit", ["adapt"]):
                return _cancel(procedure)
        adapt = bool(config.get_property("adapt"))
        meta = json.loads(bytes(labels_layer.get_parasite(PARASITE).get_data()).decode("utf-8"))
        lx, ly, lw, lh = meta["layer"]
        if (labels_layer.get_width(), labels_layer.get_height()) != (lw, lh):
            raise BridgeError("the labels layer was resized; run 'Segment selection' again")
        fmt, channels = ("Y'A u8", 2) if _is_gray(labels_layer) else ("R'G'B'A u8", 4)
        pixels = _buffer_get(labels_layer.get_buffer(), 0, 0, lw, lh, fmt, Gegl.AbyssPolicy.CLAMP)
        labels = png.Image(lw, lh, channels, pixels)
        _, ox, oy = labels_layer.get_offsets()
        # The result comes back in crop coordinates; place it relative to the labels layer.
        offsets = (ox - lx, oy - ly)
    except BridgeError as exc:
        return _fail(procedure, "priorpaint: %s" % exc)

    def work(client, s, progress, guard):
        if meta.get("url") and meta["url"] != client.url:
            raise BridgeError("the labels came from the backend at %s but the settings now point to %s; "
                              "run 'Segment selection' again" % (meta["url"], client.url))
        return ops.apply_segmentation(client, meta["session"], labels, tuple(meta["crop"]), adapt=adapt,
                                      legend=meta.get("legend"), progress=progress, on_job=guard.set_job)

    result, err = _run_backend(procedure, "priorpaint: segmentation edit", work)
    if err is not None:
        return err
    image.undo_group_start()
    try:
        new_layer(image, labels_layer, result, offsets, _is_gray(labels_layer))
        labels_layer.set_visible(False)
    finally:
        image.undo_group_end()
    Gimp.displays_flush()
    return _ok(procedure)


def run_settings(procedure, run_mode, image, drawables, config, data):
    saved = bridge_settings.load()
    if run_mode == Gimp.RunMode.INTERACTIVE:
        config.set_property("url", saved.url or bridge_settings.resolve_url(""))
        config.set_property("model", saved.model)
        config.set_property("token", saved.token)
        if not _interactive_dialog(procedure, config, "priorpaint: Settings", ["url", "model", "token"]):
            return _cancel(procedure)
    saved.url = (config.get_property("url") or "").strip()
    saved.model = (config.get_property("model") or "").strip()
    saved.token = (config.get_property("token") or "").strip()
    try:
        bridge_settings.save(saved)
    except OSError as exc:
        return _fail(procedure, "priorpaint: cannot save settings: %s" % exc)
    return _ok(procedure)


# -- registration ----------------------------------------------------------------------------

PROCEDURES = {
    PROC_PROJECT: ("Project selection", "Reconstruct the selection with the GAN (G(z) and G′) as new layers",
                   run_project),
    PROC_EDIT: ("Semantic edit…", "Move the selection along a named latent direction; result as a new layer",
                run_semantic_edit),
    PROC_PAINT: ("Paint concept…", "Add or remove a concept inside the selection; result as a new layer",
                 run_paint_concept),
    PROC_SEGMENT: ("Segment selection", "Add a label-map layer for the selection (paint on it, then apply)",
                   run_segment),
    PROC_APPLY_SEG: ("Apply segmentation edit", "Edit the photo so its parts follow the painted label layer",
                     run_apply_segmentation),
    PROC_SETTINGS: ("Settings…", "Backend URL (local or a Space), model and token for priorpaint",
                    run_settings),
}


class PriorPaint(Gimp.PlugIn):
    def do_set_i18n(self, name):
        return False

    def do_query_procedures(self):
        return list(PROCEDURES)

    def do_create_procedure(self, name):
        label, blurb, func = PROCEDURES[name]
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, func, None)
        procedure.set_menu_label(label)
        procedure.add_menu_path(MENU)
        procedure.set_documentation(blurb, blurb + ". Uses the priorpaint backend (priorpaint serve).", name)
        procedure.set_attribution("priorpaint", "priorpaint (MIT)", "2026")
        if name == PROC_SETTINGS:
            procedure.set_image_types("*")
            procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.ALWAYS)
            procedure.add_string_argument("url", "Backend URL",
                                          "empty: PRIORPAINT_URL, else http://127.0.0.1:7860", "", RW)
            procedure.add_string_argument("model", "Model", "empty: the backend's default", "", RW)
            procedure.add_string_argument("token", "Token", "bearer token for a server started with --token",
                                          "", RW)
            return procedure
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        if name == PROC_EDIT:
            procedure.add_string_argument("direction", "Direction", "a direction name from the backend",
                                          "", RW)
            procedure.add_double_argument("strength", "Strength", "how far to move along the direction",
                                          -10.0, 10.0, 1.0, RW)
        elif name == PROC_PAINT:
            procedure.add_string_argument("concept", "Concept", "a concept name from the backend", "", RW)
            mode = Gimp.Choice.new()
            mode.add("add", 0, "Add", "")
            mode.add("remove", 1, "Remove", "")
            procedure.add_choice_argument("mode", "Mode", "add or remove the concept", mode, "add", RW)
        if name in (PROC_PROJECT, PROC_EDIT, PROC_PAINT, PROC_APPLY_SEG):
            procedure.add_boolean_argument("adapt", "Adapt G′",
                                           "fit the image-specific generator so unedited parts stay faithful",
                                           True, RW)
        return procedure


Gimp.main(PriorPaint.__gtype__, sys.argv)
