#!/usr/bin/env python3
"""priorpaint for GIMP 3: edit the selection with a GAN prior; the result is a new layer.

Procedures (Filters > Generative > priorpaint, in workflow order), the scripting contract:

- ``priorpaint-project``             Project selection: G′ (visible) and G(z) (hidden) as layers; adapt
- ``priorpaint-semantic-edit``       direction (string), strength (double), composite, adapt (boolean)
- ``priorpaint-paint-concept``       concept (string), mode (add/remove), composite, adapt
- ``priorpaint-segment``             a label-map layer "priorpaint labels" (legend in its parasite)
- ``priorpaint-apply-segmentation``  applies the painted label-map layer; composite, adapt
- ``priorpaint-settings``            url, model, token (the token goes only to the 0600 settings file),
                                     download (the backend fetches the model's weights now, with progress)

``composite`` is "detail" (keep the photo's detail) or "replace" (the generated pixels).
Only the selection's bounding square (with context margin) travels to the backend; with
no selection the whole layer is used. Each result is a new layer at the selection's
offset with a layer mask from the feathered edit mask, placed directly above the
topmost earlier result of the same source layer (else above the source), added inside
one undo group and then selected (the layer, not its mask), so the next edit or Repeat
works on it. A layer mask given as the drawable stands for its layer. The user's layers
are never modified. Cancelling GIMP's progress cancels the backend job
(gimp_bridge.watchdog). The Semantic edit dialog previews the edit live
(gimp_bridge.preview: the selection composited at the photo's resolution by the backend)
and OK reuses the preview's projection; a watcher cancels that fit if the plug-in dies with
the dialog open. The Settings dialog lists the backend's models, marks those not
downloaded and offers to download the one chosen.

A face model (one whose manifest declares an alignment) crops the face rotated and scaled as
it was trained; the backend detects the eyes, or takes two sample points (Ctrl-drag from the
rulers) placed on the eyes inside the selection's square. Its layers are warped back into
the photo, upright as the photo is.
"""

import hashlib
import json
import os
import sys
import time

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
RESULT_PARASITE = "priorpaint-result"     # on every result layer: {"source": tattoo of the user's layer}
RW = GObject.ParamFlags.READWRITE
PERSISTENT = getattr(Gimp, "PARASITE_PERSISTENT", 1)   # parasites saved with the XCF

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


def _trace(event, **fields):
    """Append one JSON line to $PRIORPAINT_TRACE (tests measure the dialog with it); no-op otherwise."""
    path = os.environ.get("PRIORPAINT_TRACE")
    if not path:
        return
    fields.update(event=event, t=time.monotonic())
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(fields) + "\n")
    except OSError:
        pass


def _message(lines):
    """Show the backend's notes (clamped strengths, resized inputs, ...) in GIMP's message area."""
    lines = [str(n) for n in lines if n]
    if lines:
        Gimp.message("priorpaint: " + "\n".join(lines))


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
    """The one layer to edit; a selected layer mask stands for its layer."""
    if len(drawables) != 1:
        raise BridgeError("select exactly one layer to edit (%d are selected)" % len(drawables))
    drawable = drawables[0]
    if isinstance(drawable, Gimp.LayerMask):
        drawable = Gimp.Layer.from_mask(drawable)
    if not isinstance(drawable, Gimp.Layer):
        raise BridgeError("the active drawable is a channel, not a layer: select a layer in the Layers dialog")
    return drawable


def read_crop(image, drawable):
    """Cut the selection's bounding square (with margin) from the drawable, plus its soft mask.

    With no selection the whole layer is used, as GIMP's filters do. Returns
    (crop, (offset_x, offset_y)) where the crop is in drawable coordinates and the offsets
    turn drawable coordinates into image coordinates.
    """
    ok, non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
    _, ox, oy = drawable.get_offsets()
    dw, dh = drawable.get_width(), drawable.get_height()
    whole = not ok or not non_empty
    if whole:
        box = ops.check_selection((0, 0, dw, dh), (dw, dh))
    else:
        box = ops.check_selection((x1 - ox, y1 - oy, x2 - x1, y2 - y1), (dw, dh))
    cx, cy, cw, ch = ops.crop_rect(box, (dw, dh))
    fmt, channels = _formats(drawable)
    pixels = _buffer_get(drawable.get_buffer(), cx, cy, cw, ch, fmt, Gegl.AbyssPolicy.CLAMP)
    if whole:
        mask = b"\xff" * (cw * ch)
    else:
        # The selection channel lives in image coordinates; outside the canvas it is empty.
        mask = _buffer_get(image.get_selection().get_buffer(), cx + ox, cy + oy, cw, ch, "Y u8",
                           Gegl.AbyssPolicy.NONE)
    crop = ops.Crop.from_pixels(cx, cy, cw, ch, pixels, channels, mask)
    # two sample points on the crop (Ctrl-drag from the rulers onto the eyes): a face model's eyes
    crop.eyes = ops.eyes_in_crop([(x - ox, y - oy) for x, y in _sample_points(image)], (cx, cy, cw, ch))
    return crop, (ox, oy)


def _sample_points(image):
    """The image's sample points, image pixels."""
    points, sp = [], image.find_next_sample_point(0)
    while sp:
        pos = image.get_sample_point_position(sp)
        points.append((int(pos[0]), int(pos[1])))
        sp = image.find_next_sample_point(sp)
    return points


def _layer_bytes(image_rgba, gray):
    if gray:
        return Gimp.ImageType.GRAYA_IMAGE, "Y'A u8", png.convert(image_rgba.data, 4, 2)
    return Gimp.ImageType.RGBA_IMAGE, "R'G'B'A u8", image_rgba.data


def _result_source(image, drawable):
    """The user's layer a result came from (results of results lead back to it), else ``drawable``."""
    parasite = drawable.get_parasite(RESULT_PARASITE)
    if parasite is not None:
        try:
            tattoo = int(json.loads(bytes(parasite.get_data()).decode("utf-8"))["source"])
        except (ValueError, KeyError, TypeError):
            return drawable
        source = image.get_layer_by_tattoo(tattoo)
        if source is not None:
            return source
    return drawable


def _is_result_of(layer, source):
    parasite = layer.get_parasite(RESULT_PARASITE)
    if parasite is None:
        return False
    try:
        return int(json.loads(bytes(parasite.get_data()).decode("utf-8"))["source"]) == source.get_tattoo()
    except (ValueError, KeyError, TypeError):
        return False


def result_position(image, drawable):
    """(source, parent, position) for a new result: directly above the topmost priorpaint result
    of the same source layer, else directly above the source, in the source's layer group."""
    source = _result_source(image, drawable)
    parent = source.get_parent()
    siblings = parent.get_children() if parent is not None else image.get_layers()
    above = source
    for layer in siblings:                      # top of the stack first
        if layer.get_id() == source.get_id():
            break
        if _is_result_of(layer, source):
            above = layer
            break
    return source, parent, image.get_item_position(above)


def new_layer(image, source, parent, position, result, offsets, gray, mask_from_alpha=True, scale_to=None):
    """Insert ``result`` (ops.Layer, drawable coordinates) as a new layer at ``position`` in ``parent``."""
    img = result.image.to_rgba()
    ltype, fmt, data = _layer_bytes(img, gray)
    layer = Gimp.Layer.new(image, result.name, img.width, img.height, ltype, 100.0, Gimp.LayerMode.NORMAL)
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
        layer.set_edit_mask(False)      # the next filter works on the layer, not on its mask
    meta = {"source": source.get_tattoo()}
    layer.attach_parasite(Gimp.Parasite.new(RESULT_PARASITE, PERSISTENT,
                                            list(json.dumps(meta).encode("utf-8"))))
    layer.update(0, 0, layer.get_width(), layer.get_height())
    return layer


def _select(image, layer):
    """Make ``layer`` itself (not its mask) the selected drawable, so Repeat and the next edit use it."""
    if layer.get_mask() is not None:
        layer.set_edit_mask(False)
    image.set_selected_layers([layer])


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


def _gtk():
    gi.require_version("GimpUi", "3.0")
    gi.require_version("Gtk", "3.0")
    from gi.repository import GimpUi, Gtk
    GimpUi.init(PLUG_IN_BINARY)
    return GimpUi, Gtk


def _interactive_dialog(procedure, config, title, properties, extra=None, after=None):
    """Show a GimpUi.ProcedureDialog. ``extra(dialog)`` adds widgets above the generated ones,
    ``after(dialog)`` below them; either may return a function run on OK. True when confirmed."""
    GimpUi, Gtk = _gtk()
    dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config, title=title)
    on_ok = []
    if extra is not None:
        on_ok.append(extra(dialog))
    dialog.fill(properties)
    if after is not None:
        on_ok.append(after(dialog))
    _trace("dialog", title=title)
    confirmed = dialog.run()
    _trace("dialog-closed", title=title, confirmed=bool(confirmed))
    if confirmed:
        for fn in on_ok:
            if fn is not None:
                fn()
    dialog.destroy()
    return confirmed


def _label(name, description, width=60):
    """A combo entry: the name and as much of the description as fits (the tooltip has all of it)."""
    if not description:
        return name
    text = "%s — %s" % (name, description)
    return text if len(text) <= width else text[:width - 1].rstrip() + "…"


def _choice_combo(dialog, config, prop, mnemonic, values, descriptions, on_change=None):
    """A combo box of the backend's ``values`` bound to the string argument ``prop``: Reset and
    GIMP's saved settings move it like the generated widgets. The full description of the
    chosen entry shows below it and as its tooltip."""
    _, Gtk = _gtk()
    grid = Gtk.Grid(column_spacing=6, row_spacing=4)
    label = Gtk.Label.new_with_mnemonic(mnemonic)
    label.set_xalign(0.0)
    combo = Gtk.ComboBoxText()
    for value, text in values:
        combo.append(value, text)
    label.set_mnemonic_widget(combo)
    about = Gtk.Label(xalign=0.0)
    about.set_line_wrap(True)
    about.set_max_width_chars(56)
    grid.attach(label, 0, 0, 1, 1)
    grid.attach(combo, 1, 0, 1, 1)
    grid.attach(about, 1, 1, 1, 1)

    def changed(*_):
        value = combo.get_active_id()
        if value is None:
            return
        text = descriptions.get(value, "")
        about.set_text(text)
        combo.set_tooltip_text(text or value)
        if on_change is not None:
            on_change(value)

    combo.connect("changed", changed)
    config.bind_property(prop, combo, "active-id",
                         GObject.BindingFlags.BIDIRECTIONAL | GObject.BindingFlags.SYNC_CREATE)
    if combo.get_active() < 0 and values:
        combo.set_active(0)
    changed()
    grid.show_all()
    dialog.get_content_area().pack_start(grid, False, False, 6)
    return combo


def _pixbuf(image, size):
    from gi.repository import GdkPixbuf
    rgb = image.to_rgb()
    pb = GdkPixbuf.Pixbuf.new_from_bytes(GLib.Bytes.new(rgb.data), GdkPixbuf.Colorspace.RGB, False, 8,
                                         rgb.width, rgb.height, rgb.width * 3)
    scale = size / float(max(rgb.width, rgb.height))
    w, h = max(1, int(round(rgb.width * scale))), max(1, int(round(rgb.height * scale)))
    return pb.scale_simple(w, h, GdkPixbuf.InterpType.BILINEAR)


# -- Semantic edit: the dialog with its live preview ------------------------------------------------

PREVIEW_SIZE = 192


def _semantic_dialog(procedure, config, crop, directions, client, s):
    """The Semantic edit dialog: direction list, strength slider with the direction's range,
    composite and adapt choices, and a live preview (the selection's square before and after).

    The preview is the selection's square as the edit will blend it into the photo, at the
    photo's resolution (the backend's detail compositing, shrunk to the preview's size), in
    the chosen Blend mode. The fit it starts is watched by a JobGuard: if this process dies
    with the dialog open (GIMP ends it, a crash), the watcher cancels that backend job.

    Returns (confirmed, worker, guard): the worker's projection is reused by the edit, so OK
    does not project again; the caller finishes the guard when the edit is done.
    """
    GimpUi, Gtk = _gtk()
    from gimp_bridge.preview import PreviewWorker

    dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config, title="priorpaint: Semantic edit")
    ranges = {d["name"]: ops.direction_range(directions, d["name"]) for d in directions}
    descriptions = {d["name"]: str(d.get("description") or "") for d in directions}
    state = {"worker": None, "timer": 0, "spin": None}

    def key():
        return (config.get_property("direction") or "", round(float(config.get_property("strength")), 3),
                _composite(config))

    def schedule(*_):
        # debounce: a slider drag sends many changes; ask for the newest after 60 ms of quiet
        if state["timer"]:
            GLib.source_remove(state["timer"])
        state["timer"] = GLib.timeout_add(60, fire)

    def fire():
        state["timer"] = 0
        worker = state["worker"]
        if worker is not None:
            d, strength, composite = key()
            _trace("preview-request", direction=d, strength=strength, composite=composite)
            worker.composite = composite
            worker.request((d, strength, composite), [ops.direction_spec(d, strength)] if d else [])
        return False

    def direction_changed(name):
        lo, hi, _ = ranges.get(name, (-3.0, 3.0, 0.0))
        spin = state["spin"]
        if spin is not None:
            spin.set_range(lo, hi)          # clamps the strength into the direction's range
        schedule()

    _choice_combo(dialog, config, "direction", "_Direction", 
                  [(d["name"], _label(d["name"], descriptions[d["name"]])) for d in directions],
                  descriptions, on_change=direction_changed)
    spin = dialog.get_spin_scale("strength", 1.0)
    spin.set_digits(2)
    spin.set_increments(0.1, 0.5)
    state["spin"] = spin
    direction_changed(config.get_property("direction") or "")
    dialog.fill(["strength", "composite", "adapt"])

    # the preview: the selection's square as it is, and as the edit would make it
    frame = Gtk.Frame(label="Preview (the selection blended into the photo, without G′ tuning)")
    box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=4, border_width=6)
    images = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=6)
    before = Gtk.Image.new_from_pixbuf(_pixbuf(crop.image, PREVIEW_SIZE))
    after = Gtk.Image.new_from_pixbuf(_pixbuf(crop.image, PREVIEW_SIZE))
    before.set_tooltip_text("the selection's square now")
    after.set_tooltip_text("the square as the edit will blend it into the photo, at the photo's resolution "
                           "(shrunk to fit), with this direction, strength and blend mode; the final "
                           "result adds the tuning to this photo (G′) when it is on")
    images.pack_start(before, False, False, 0)
    images.pack_start(after, False, False, 0)
    status = Gtk.Label(label="Fitting the selection to the model…", xalign=0.0)
    status.set_line_wrap(True)
    box.pack_start(images, False, False, 0)
    box.pack_start(status, False, False, 0)
    frame.add(box)
    frame.show_all()
    dialog.get_content_area().pack_start(frame, False, False, 6)

    def on_progress(fraction, text):
        GLib.idle_add(status.set_text, "%s… %d %%" % (text, int(100 * fraction)))

    def on_ready(projection):
        GLib.idle_add(ready)

    def ready():
        projection = state["worker"].projection
        before.set_from_pixbuf(_pixbuf(ops.layer_view(projection), PREVIEW_SIZE))  # what the preview edits
        psnr = projection.status.get("psnr_projection")
        status.set_text("Ready%s. Move the strength to see the edit." %
                        (" (the model matches the selection to %.1f dB)" % psnr if isinstance(psnr, (int, float)) else ""))
        _trace("projected")     # the worker now renders the newest request made while it fitted
        return False

    def on_image(k, image, seconds):
        GLib.idle_add(show, k, image, seconds)

    def show(k, image, seconds):
        after.set_from_pixbuf(_pixbuf(image, PREVIEW_SIZE))
        status.set_text("Preview of %s %+g (%.2f s)" % (k[0], k[1], seconds))
        _trace("preview-shown", direction=k[0], strength=k[1], composite=k[2], seconds=seconds,
               size=[image.width, image.height], digest=hashlib.sha1(image.data).hexdigest())
        return False

    def on_error(message):
        GLib.idle_add(status.set_text, "No preview: %s" % message)

    config.connect("notify::strength", schedule)
    config.connect("notify::composite", schedule)
    guard = JobGuard(Client(settings=s))
    worker = PreviewWorker(Client(settings=s), crop, model=s.model, on_progress=on_progress, on_ready=on_ready,
                           on_image=on_image, on_error=on_error, on_job=guard.set_job,
                           composite=_composite(config), size=PREVIEW_SIZE)
    state["worker"] = worker
    worker.start()
    _trace("dialog", title="priorpaint: Semantic edit")
    try:
        confirmed = dialog.run()
    finally:
        if state["timer"]:
            GLib.source_remove(state["timer"])
    _trace("dialog-closed", title="priorpaint: Semantic edit", confirmed=bool(confirmed))
    dialog.destroy()
    if not confirmed:
        worker.abandon()                # cancels a projection still running on the backend, now
        guard.finish()
        return False, None, None
    return True, worker, guard


# -- procedures ------------------------------------------------------------------------------

def _prepare(drawables, image):
    drawable = _single_layer(drawables)
    crop, offsets = read_crop(image, drawable)     # say what is wrong before any dialog opens
    return drawable, crop, offsets


def _composite(config):
    value = str(config.get_property("composite") or "detail")
    return value if value in ops.COMPOSITE_MODES else "detail"


def run_semantic_edit(procedure, run_mode, image, drawables, config, data):
    guards = []
    try:
        return _semantic_edit(procedure, run_mode, image, drawables, config, guards)
    finally:
        for g in guards:                # the dialog's watcher of the fit: the edit has taken it over
            g.finish()


def _semantic_edit(procedure, run_mode, image, drawables, config, guards):
    worker = None
    directions = None
    try:
        drawable, crop, offsets = _prepare(drawables, image)
        if run_mode == Gimp.RunMode.INTERACTIVE:
            client, s = _client()
            directions = [d for d in ops.list_directions(client, s.model) if isinstance(d, dict) and d.get("name")]
            if not directions:
                return _fail(procedure, "priorpaint: the backend's model has no named directions")
            confirmed, worker, dialog_guard = _semantic_dialog(procedure, config, crop, directions, client, s)
            if not confirmed:
                return _cancel(procedure)
            guards.append(dialog_guard)
        direction = (config.get_property("direction") or "").strip()
        strength = float(config.get_property("strength"))
        adapt = bool(config.get_property("adapt"))
        composite = _composite(config)
        if not direction:
            raise BridgeError("no direction given (see the backend's `directions` list)")
    except BridgeError as exc:
        return _fail(procedure, "priorpaint: %s" % exc)
    t_ok = time.monotonic()

    def work(client, s, progress, guard):
        projection = None
        if worker is not None:
            progress(0.0, "Fitting the selection to the model")
            if worker.job:
                guard.set_job(worker.job)       # GIMP's Cancel now also cancels that projection
            projection = worker.wait_projection()
            worker.close()
            if projection is None and worker.error:
                raise BridgeError(worker.error)
        return ops.semantic_edit(client, crop, direction, strength, adapt=adapt, model=s.model,
                                 progress=progress, on_job=guard.set_job, projection=projection,
                                 directions=directions, composite=composite)

    result, err = _run_backend(procedure, "priorpaint: %s" % direction, work)
    if err is not None:
        return err
    out = _paste_result(procedure, image, drawable, result, offsets)
    _trace("layer-added", seconds_from_ok=time.monotonic() - t_ok, name=result.name)
    return out


def _paste_result(procedure, image, drawable, result, offsets):
    """Add the backend's result as one new layer (one undo step), select it, show the notes."""
    image.undo_group_start()
    try:
        source, parent, position = result_position(image, drawable)
        layer = new_layer(image, source, parent, position, result, offsets, _is_gray(drawable))
    finally:
        image.undo_group_end()
    _select(image, layer)
    Gimp.displays_flush()
    _trace("result-layer", name=result.name, alignment=(result.status.get("alignment") or {}).get("source"))
    _message(ops.notes_of(result.status))
    return _ok(procedure)


def run_paint_concept(procedure, run_mode, image, drawables, config, data):
    try:
        drawable, crop, offsets = _prepare(drawables, image)
        if run_mode == Gimp.RunMode.INTERACTIVE:
            client, s = _client()
            concepts = ops.list_concepts(client, s.model).get("concepts") or []
            rows = [c if isinstance(c, dict) else {"name": str(c)} for c in concepts]
            descriptions = {}
            for c in rows:
                notes = c.get("notes") or c.get("description") or ""
                if isinstance(notes, list):
                    notes = "; ".join(str(n) for n in notes)
                descriptions[str(c.get("name"))] = str(notes)
            names = [(n, _label(n, d)) for n, d in descriptions.items()]
            if not names:
                return _fail(procedure, "priorpaint: the backend's model has no concepts to paint")
            def extra(dialog):
                _choice_combo(dialog, config, "concept", "_Concept", names, descriptions)
            if not _interactive_dialog(procedure, config, "priorpaint: Paint concept",
                                       ["mode", "composite", "adapt"], extra):
                return _cancel(procedure)
        concept = (config.get_property("concept") or "").strip()
        mode = str(config.get_property("mode") or "add")
        adapt = bool(config.get_property("adapt"))
        composite = _composite(config)
        if not concept:
            raise BridgeError("no concept given (see the backend's `concepts` list)")
    except BridgeError as exc:
        return _fail(procedure, "priorpaint: %s" % exc)

    def work(client, s, progress, guard):
        return ops.paint_concept(client, crop, concept, mode, adapt=adapt, model=s.model,
                                 progress=progress, on_job=guard.set_job, composite=composite)

    result, err = _run_backend(procedure, "priorpaint: %s %s" % (mode, concept), work)
    if err is not None:
        return err
    return _paste_result(procedure, image, drawable, result, offsets)


def run_project(procedure, run_mode, image, drawables, config, data):
    try:
        drawable, crop, offsets = _prepare(drawables, image)
        if run_mode == Gimp.RunMode.INTERACTIVE:
            if not _interactive_dialog(procedure, config, "priorpaint: Project selection", ["adapt"]):
                return _cancel(procedure)
        adapt = bool(config.get_property("adapt"))
    except BridgeError as exc:
        return _fail(procedure, "priorpaint: %s" % exc)

    def work(client, s, progress, guard):
        return ops.project_layers(client, crop, model=s.model, adapt=adapt, progress=progress,
                                  on_job=guard.set_job)

    value, err = _run_backend(procedure, "priorpaint: projecting", work)
    if err is not None:
        return err
    proj, layers = value
    _trace("projection", alignment=(proj.status.get("alignment") or {}).get("source"), layer=proj.status.get("layer"))
    gray = _is_gray(drawable)
    # G′ (faithful outside the model's reach, masked) is the useful one: on top and visible;
    # the G(z) square (an aligned face: G(z) warped back under the selection) goes below it, hidden.
    gz = [r for r in layers if r.name.startswith("priorpaint: G(z)")]
    rest = [r for r in layers if not r.name.startswith("priorpaint: G(z)")]
    image.undo_group_start()
    try:
        source, parent, position = result_position(image, drawable)
        added = []
        for result in gz:       # model resolution -> the square's size, at the square's offset
            layer = new_layer(image, source, parent, position, result, offsets, gray,
                              mask_from_alpha=result.scale_to is None, scale_to=result.scale_to)
            layer.set_visible(not rest)
            added.append(layer)
        for result in rest:
            added.append(new_layer(image, source, parent, position, result, offsets, gray))
    finally:
        image.undo_group_end()
    if added:
        _select(image, added[-1])
    Gimp.displays_flush()
    _message(ops.notes_of(proj.status) + [n for r in rest for n in ops.notes_of(r.status)])
    return _ok(procedure)


def _legend_text(legend):
    return ", ".join("%s #%02x%02x%02x" % (name, *rgb[:3]) for name, rgb in legend.items())


def run_segment(procedure, run_mode, image, drawables, config, data):
    try:
        drawable, crop, offsets = _prepare(drawables, image)
    except BridgeError as exc:
        return _fail(procedure, "priorpaint: %s" % exc)

    def work(client, s, progress, guard):
        return ops.segment(client, crop, model=s.model, progress=progress, on_job=guard.set_job), client.url

    value, err = _run_backend(procedure, "priorpaint: finding the parts", work)
    if err is not None:
        return err
    seg, url = value
    seg.labels.name = "priorpaint labels"
    meta = {"session": seg.session, "url": url, "legend": seg.legend,
            "crop": [crop.x, crop.y], "layer": [seg.labels.x, seg.labels.y,
                                                seg.labels.image.width, seg.labels.image.height],
            "source": drawable.get_name(), "gray": _is_gray(drawable)}
    image.undo_group_start()
    try:
        source, parent, position = result_position(image, drawable)
        layer = new_layer(image, source, parent, position, seg.labels, offsets, _is_gray(drawable),
                          mask_from_alpha=False)
        layer.attach_parasite(Gimp.Parasite.new(PARASITE, PERSISTENT,
                                                list(json.dumps(meta).encode("utf-8"))))
    finally:
        image.undo_group_end()
    _select(image, layer)
    Gimp.displays_flush()
    if seg.legend:
        _message(["paint on the layer 'priorpaint labels' with these colours, then run Apply segmentation "
                  "edit: " + _legend_text(seg.legend)] + ops.notes_of(seg.labels.status))
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
        meta = json.loads(bytes(labels_layer.get_parasite(PARASITE).get_data()).decode("utf-8"))
        if run_mode == Gimp.RunMode.INTERACTIVE:
            def legend_note(dialog):
                _, Gtk = _gtk()
                note = Gtk.Label(label="Legend: " + _legend_text(meta.get("legend") or {}), xalign=0.0)
                note.set_line_wrap(True)
                note.set_max_width_chars(56)
                note.show()
                dialog.get_content_area().pack_start(note, False, False, 6)
            if not _interactive_dialog(procedure, config, "priorpaint: Apply segmentation edit",
                                       ["composite", "adapt"], legend_note):
                return _cancel(procedure)
        adapt = bool(config.get_property("adapt"))
        composite = _composite(config)
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
                                      legend=meta.get("legend"), progress=progress, on_job=guard.set_job,
                                      composite=composite)

    result, err = _run_backend(procedure, "priorpaint: segmentation edit", work)
    if err is not None:
        return err
    image.undo_group_start()
    try:
        source, parent, position = result_position(image, labels_layer)
        layer = new_layer(image, source, parent, position, result, offsets, _is_gray(labels_layer))
        labels_layer.set_visible(False)
    finally:
        image.undo_group_end()
    _select(image, layer)
    Gimp.displays_flush()
    _message(ops.notes_of(result.status))
    return _ok(procedure)


def _ask_download(row):
    """Ask whether to download a model the backend does not have yet; True for yes."""
    _, Gtk = _gtk()
    dialog = Gtk.MessageDialog(modal=True, message_type=Gtk.MessageType.QUESTION, buttons=Gtk.ButtonsType.YES_NO,
                               text="Download %s?" % row["id"], title="priorpaint: Download model")
    dialog.format_secondary_text("The model %s is not downloaded yet: the backend fetches its weights once from "
                                 "the Hugging Face Hub (progress in GIMP's status bar) and checks them." % row["id"])
    dialog.set_default_response(Gtk.ResponseType.YES)
    _trace("ask-download", model=row["id"])
    answer = dialog.run()
    dialog.destroy()
    return answer == Gtk.ResponseType.YES


def _download(procedure, model):
    """Have the backend download ``model`` with GIMP's progress; None, or the error return."""
    def work(client, s, progress, guard):
        return ops.download_model(client, model, progress=progress, on_job=guard.set_job)

    status, err = _run_backend(procedure, "priorpaint: downloading %s" % model, work)
    if err is None:
        _trace("downloaded", model=model, status=status)
    return err


def run_settings(procedure, run_mode, image, drawables, config, data):
    """Backend URL, model and token. The token lives only in the settings file (mode 0600): the
    dialog shows it masked in a field of its own, and the argument GIMP would save as the
    procedure's last values is always left empty. The dialog lists the backend's models and
    says which are not downloaded yet; choosing one offers to download it, with progress."""
    saved = bridge_settings.load()
    token = None
    models = []
    download = bool(config.get_property("download"))
    if run_mode == Gimp.RunMode.INTERACTIVE:
        download = False
        config.set_property("url", saved.url or bridge_settings.resolve_url(""))
        config.set_property("model", saved.model)
        config.set_property("token", "")
        try:
            models = [m for m in ops.list_models(Client(settings=saved, connect_retries=0, timeout=10))
                      if isinstance(m, dict) and m.get("id")]
        except BridgeError:
            models = []          # no backend (yet): the model stays a plain text field
        entry = {}

        def model_field(dialog):
            default = next((m["id"] for m in models if m.get("default")), "")
            values = [("", "The backend's default" + (" (%s)" % default if default else ""))]
            values += [(m["id"], ops.model_label(m)) for m in models]
            descriptions = {"": "Whatever model the backend was started with"}
            for m in models:
                text = str(m.get("description") or "")
                if not m.get("present", True):
                    text += (" Not downloaded yet: OK offers to download it." if m.get("downloadable")
                             else " Its weights are not on the backend's computer and it has no download source.")
                descriptions[m["id"]] = text.strip()
            _choice_combo(dialog, config, "model", "_Model", values, descriptions)
            _trace("models", labels=[t for _, t in values])

        def token_field(dialog):
            _, Gtk = _gtk()
            grid = Gtk.Grid(column_spacing=6)
            label = Gtk.Label.new_with_mnemonic("_Token")
            field = Gtk.Entry()
            field.set_visibility(False)             # shown as dots
            field.set_input_purpose(Gtk.InputPurpose.PASSWORD)
            field.set_text(saved.token)
            field.set_hexpand(True)
            field.set_tooltip_text("The password-like token of a backend started with --token (leave empty "
                                   "for a local backend). Saved only in %s, readable only by you."
                                   % bridge_settings.settings_path())
            label.set_mnemonic_widget(field)
            grid.attach(label, 0, 0, 1, 1)
            grid.attach(field, 1, 0, 1, 1)
            grid.show_all()
            dialog.get_content_area().pack_start(grid, False, False, 6)
            entry["field"] = field
            _trace("token-field", masked=not field.get_visibility())
            return lambda: entry.update(token=field.get_text())

        if not _interactive_dialog(procedure, config, "priorpaint: Settings", ["url"] if models else ["url", "model"],
                                   extra=model_field if models else None, after=token_field):
            return _cancel(procedure)
        token = entry.get("token", saved.token)
    else:
        token = config.get_property("token") or ""
    config.set_property("token", "")        # never part of what GIMP saves
    config.set_property("download", False)  # a one-off request, not a setting
    saved.url = (config.get_property("url") or "").strip()
    saved.model = (config.get_property("model") or "").strip()
    saved.token = (token or "").strip()
    try:
        bridge_settings.save(saved)
    except OSError as exc:
        return _fail(procedure, "priorpaint: cannot save settings: %s" % exc)
    row = next((m for m in models if m["id"] == saved.model), None)
    if row is not None and not row.get("present", True):
        if not row.get("downloadable"):
            _message(["the model %s is not on the backend's computer and has no download source" % saved.model])
        elif _ask_download(row):
            download = True
    if download and saved.model:
        err = _download(procedure, saved.model)
        if err is not None:
            return err
    return _ok(procedure)


# -- registration ----------------------------------------------------------------------------

# In workflow order; "…" where a dialog opens. GIMP 3 lists a plug-in menu's entries sorted by
# their labels (app/menus/plug-in-menus.c collates "menu path/label" when it builds the menus),
# whatever order the plug-in registers them in: the numbers make that sorted order the
# workflow order (digits sort before letters in every collation; Settings comes last).
PROCEDURES = {
    PROC_PROJECT: ("1 _Project selection…",
                   "See how the model reconstructs the selection",
                   "Fits the generative model to the selection (or the whole layer when nothing is selected) "
                   "and adds what it makes of it: the plain model rendering G(z) (hidden) and, with "
                   "'Tune the model to this photo', the faithful G′ rendering on top. Useful to judge "
                   "whether the model can edit this region well before editing it.",
                   run_project),
    PROC_EDIT: ("2 _Semantic edit…",
                "Change the selection along a named direction (head turn, smile, light, …)",
                "Moves the selection along one of the model's named directions at the strength you choose, "
                "with a live preview in the dialog. The result is a new layer with a mask, placed on top "
                "of the earlier results of the same layer and selected, so you can edit again right away.",
                run_semantic_edit),
    PROC_PAINT: ("3 Paint _concept…",
                 "Add or remove a concept (hair, door, …) inside the selection",
                 "Switches the model's units for a concept on or off where the selection is. The result is "
                 "a new layer with a mask, selected.",
                 run_paint_concept),
    PROC_SEGMENT: ("4 Se_gment selection",
                   "Add a label layer showing the parts the model sees in the selection",
                   "Adds the layer 'priorpaint labels': one colour per part (the legend appears in the message "
                   "area). Paint on it with the legend's colours, then run Apply segmentation edit.",
                   run_segment),
    PROC_APPLY_SEG: ("5 _Apply segmentation edit…",
                     "Edit the photo so its parts follow the painted label layer",
                     "Reads the painted 'priorpaint labels' layer and changes the photo so that its parts "
                     "follow the new labels. Pixels you erased to transparency are kept as they are.",
                     run_apply_segmentation),
    PROC_SETTINGS: ("Se_ttings…",
                    "Where the priorpaint backend runs (this computer or a Space), its model and token",
                    "The backend's address (empty: PRIORPAINT_URL, else http://127.0.0.1:7860), the model to "
                    "use (empty: the backend's default) and the token of a backend started with --token. "
                    "Saved in priorpaint's own settings file, readable only by you.",
                    run_settings),
}


def _traced(name, func):
    """``func`` with a trace line when it starts and ends (tests see which entry GIMP ran)."""
    def run(procedure, run_mode, *args):
        _trace("run", procedure=name, interactive=run_mode == Gimp.RunMode.INTERACTIVE)
        try:
            result = func(procedure, run_mode, *args)
        except BaseException as exc:
            _trace("done", procedure=name, status="crash: %s" % type(exc).__name__)
            raise
        try:
            status = result.index(0).value_nick
        except Exception:
            status = "?"
        _trace("done", procedure=name, status=status)
        return result
    return run


class PriorPaint(Gimp.PlugIn):
    def do_set_i18n(self, name):
        return False

    def do_query_procedures(self):
        return list(PROCEDURES)

    def do_create_procedure(self, name):
        label, blurb, help_text, func = PROCEDURES[name]
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, _traced(name, func), None)
        procedure.set_menu_label(label)
        procedure.add_menu_path(MENU)
        procedure.set_documentation(blurb, help_text + " Uses the priorpaint backend (priorpaint serve).", name)
        procedure.set_attribution("priorpaint", "priorpaint (MIT)", "2026")
        if name == PROC_SETTINGS:
            procedure.set_image_types("*")
            procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.ALWAYS)
            procedure.add_string_argument("url", "Backend _URL",
                                          "The backend's address; empty: PRIORPAINT_URL, else http://127.0.0.1:7860",
                                          "", RW)
            procedure.add_string_argument("model", "_Model", "The model to use; empty: the backend's default",
                                          "", RW)
            procedure.add_string_argument("token", "Token",
                                          "For scripts: the token of a backend started with --token. It is "
                                          "saved only in priorpaint's settings file (mode 0600), never in "
                                          "GIMP's saved values", "", RW)
            procedure.add_boolean_argument("download", "_Download the model",
                                           "For scripts: have the backend download the model's weights now "
                                           "(with progress) if it does not have them yet", False, RW)
            return procedure
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        if name == PROC_EDIT:
            procedure.add_string_argument("direction", "_Direction", "The name of one of the model's directions",
                                          "", RW)
            procedure.add_double_argument("strength", "Stre_ngth",
                                          "How far to move along the direction; the dialog's slider covers the "
                                          "direction's range, and a value outside it is brought into it",
                                          -10.0, 10.0, 1.0, RW)
        elif name == PROC_PAINT:
            procedure.add_string_argument("concept", "_Concept", "The name of one of the model's concepts", "", RW)
            mode = Gimp.Choice.new()
            mode.add("add", 0, "Add", "Make the concept appear where the selection is")
            mode.add("remove", 1, "Remove", "Make the concept disappear where the selection is")
            procedure.add_choice_argument("mode", "_Mode", "Add the concept or remove it", mode, "add", RW)
        if name in (PROC_EDIT, PROC_PAINT, PROC_APPLY_SEG):
            composite = Gimp.Choice.new()
            composite.add("detail", 0, ops.COMPOSITE_LABELS["detail"],
                          "The photo keeps its own fine detail; the model changes shapes, light and colour")
            composite.add("replace", 1, ops.COMPOSITE_LABELS["replace"],
                          "The edited region is the model's rendering, blended in at the mask's edge")
            procedure.add_choice_argument("composite", "_Blend", "How the result is blended into the photo",
                                          composite, "detail", RW)
        if name in (PROC_PROJECT, PROC_EDIT, PROC_PAINT, PROC_APPLY_SEG):
            procedure.add_boolean_argument("adapt", "_Tune the model to this photo (G′)",
                                           "Slower, but what you did not edit stays faithful to the photo",
                                           True, RW)
        return procedure


Gimp.main(PriorPaint.__gtype__, sys.argv)
