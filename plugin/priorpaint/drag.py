"""Drag points…: the active path's strokes, each a handle → target, drag the selection's content.

Each stroke of the active path with two anchors is one drag pair (first anchor: the handle, the
point of the photo to move; second: its target). The path is read before any dialog opens or any
byte travels; a stroke with another number of anchors is a one-line error. The dialog lists the
pairs and has a Preview button: a drag takes seconds, so the preview runs the drag once (without
fitting the model to the photo) in the background and shows the selection's square as the result
would look. OK keeps that projection. The result is a new layer, as for every edit.
"""

import threading

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, GLib  # noqa: E402

import dialogs  # noqa: E402
import procedures  # noqa: E402
from gimp_bridge import drag as bdrag  # noqa: E402
from gimp_bridge import ops  # noqa: E402
from gimp_bridge.client import BridgeError, Cancelled  # noqa: E402
from tracing import trace  # noqa: E402

NO_PATH = ("no path is active: " + bdrag.HOW + ", then run Drag points… again")


def read_path_pairs(image, drawable):
    """``[[hx, hy, tx, ty], …]`` in the drawable's coordinates from the image's active path."""
    paths = list(image.get_selected_paths() or [])
    if not paths:
        raise BridgeError(NO_PATH)
    if len(paths) > 1:
        raise BridgeError("%d paths are selected; select the one path whose strokes are the drags" % len(paths))
    path = paths[0]
    strokes = []
    for sid in path.get_strokes():
        kind, controlpoints, closed = path.stroke_get_points(sid)
        strokes.append((kind == Gimp.PathStrokeType.BEZIER, list(controlpoints), bool(closed)))
    _, ox, oy = drawable.get_offsets()
    return bdrag.pairs_from_strokes(path.get_name(), strokes, (ox, oy))


def run_drag(procedure, run_mode, image, drawables, config, data):
    shared = {"projection": None}
    try:
        drawable, crop, offsets, base, about = procedures._prepare(drawables, image, "Drags")
        points = bdrag.pairs_in_crop(read_path_pairs(image, drawable), crop)
        trace("drag-points", points=points)
        if run_mode == Gimp.RunMode.INTERACTIVE:
            if not _dialog(procedure, config, crop, points, base, about, shared):
                return procedures._cancel(procedure)
        steps = int(config.get_property("steps"))
        adapt = bool(config.get_property("adapt"))
    except BridgeError as exc:
        return procedures._fail(procedure, "priorpaint: %s" % exc)

    def work(client, s, progress, guard):
        return bdrag.drag_edit(client, crop, points, adapt=adapt, model=s.model, steps=steps, progress=progress,
                               on_job=guard.set_job, projection=shared["projection"], base_edits=base)

    result, err = procedures._run_backend(procedure, "priorpaint: %s" % bdrag.drag_title(points), work)
    if err is not None:
        return err
    return procedures._paste_result(procedure, image, drawable, result, offsets)


def _dialog(procedure, config, crop, points, base, about, shared):
    """The procedure's dialog with the pairs and a Preview button; True on OK."""
    client, s = procedures._client()
    state = {"busy": False, "cancelled": False}

    def extra(dialog):
        _, Gtk = dialogs.gtk()
        box = dialog.get_content_area()
        lines = ["%d. (%g, %g) → (%g, %g)" % (i + 1, p[0] + crop.x, p[1] + crop.y, p[2] + crop.x, p[3] + crop.y)
                 for i, p in enumerate(points)]
        label = Gtk.Label(label="Handles → targets (layer pixels):\n" + "\n".join(lines), xalign=0.0)
        label.show()
        box.pack_start(label, False, False, 6)
        picture = Gtk.Image.new_from_pixbuf(dialogs.pixbuf(bdrag.with_pairs(crop.image, points), dialogs.PREVIEW_SIZE))
        picture.show()
        box.pack_start(picture, False, False, 6)
        status = Gtk.Label(label="Preview runs the drag once (a few seconds).", xalign=0.0)
        status.show()
        box.pack_start(status, False, False, 2)
        button = Gtk.Button.new_with_mnemonic("_Preview")
        button.show()
        box.pack_start(button, False, False, 2)

        def shown(image, text):
            if image is not None:
                picture.set_from_pixbuf(dialogs.pixbuf(image, dialogs.PREVIEW_SIZE))
            status.set_text(text)
            button.set_sensitive(True)
            state["busy"] = False
            trace("drag-preview", text=text, shown=image is not None)
            return False

        def worker(steps):
            try:
                if shared["projection"] is None:
                    shared["projection"] = ops.project(client, crop, model=s.model, adapt=False,
                                                       fetch_images=False,
                                                       should_cancel=lambda: state["cancelled"])
                layer = bdrag.drag_edit(client, crop, points, adapt=False, steps=steps,
                                        projection=shared["projection"], base_edits=base,
                                        should_cancel=lambda: state["cancelled"])
                notes = ops.notes_of(layer.status)
                image = bdrag.with_pairs(bdrag.over_crop(crop, layer), points)
                GLib.idle_add(shown, image, "; ".join(notes) or "Preview of the drag (without fitting to the photo).")
            except Cancelled:
                GLib.idle_add(shown, None, "Preview cancelled.")
            except BridgeError as exc:
                GLib.idle_add(shown, None, "Preview failed: %s" % exc)

        def clicked(*_):
            if state["busy"]:
                return
            state["busy"] = True
            button.set_sensitive(False)
            status.set_text("Dragging…")
            threading.Thread(target=worker, args=(int(config.get_property("steps")),), daemon=True).start()
        button.connect("clicked", clicked)
        return None

    confirmed = dialogs.interactive_dialog(procedure, config, "priorpaint: Drag points", ["steps", "adapt"],
                                           after=extra, about=about)
    state["cancelled"] = True     # a preview still running stops at its next progress event
    return confirmed
