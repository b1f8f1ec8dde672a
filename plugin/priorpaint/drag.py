"""Drag points…: the active path's strokes, or the image's sample points in pairs, each a handle →
target, drag the selection's content.

Each stroke of the active path with two anchors is one drag pair (first anchor: the handle, the
point of the photo to move; second: its target). With no path selected, the image's sample points
are read in the order they were made: handle, target, handle, target, … (a selected path wins:
selecting it is this call's deliberate act, while sample points stay in an image for colour
picking and for marking the eyes). The points are read before any dialog opens or any byte
travels; a stroke with another number of anchors, or an odd number of sample points, is a one-line
error. The dialog lists the pairs and has a Preview button: a drag takes seconds, so the preview
runs the drag once (without fitting the model to the photo) in the background, its picture follows
the handles as the backend reports them, and Stop ends it; then it shows the selection's square as
the result would look. OK keeps that projection. The result is a new layer, as for every edit.
"""

import threading
import time

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, GLib  # noqa: E402

import canvas  # noqa: E402
import dialogs  # noqa: E402
import procedures  # noqa: E402
from gimp_bridge import drag as bdrag  # noqa: E402
from gimp_bridge import ops  # noqa: E402
from gimp_bridge.client import BridgeError, Cancelled  # noqa: E402
from tracing import trace  # noqa: E402

NO_PATH = ("no path is active and the image has no sample points: " + bdrag.HOW + " (or put sample points "
           "in pairs: a handle, then its target), then run Drag points… again")
#: the dialog's picture follows the handles at most this often (seconds)
LIVE_EVERY = 0.1


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


def read_pairs(image, drawable):
    """(pairs in the drawable's coordinates, where they came from): the selected path's strokes, or
    with no path selected and sample points present, the sample points in pairs."""
    if not list(image.get_selected_paths() or []):
        samples = canvas.sample_points(image)
        if samples:
            _, ox, oy = drawable.get_offsets()
            return bdrag.pairs_from_sample_points(samples, (ox, oy)), "sample points"
    return read_path_pairs(image, drawable), "path"


def run_drag(procedure, run_mode, image, drawables, config, data):
    shared = {"projection": None}
    try:
        drawable, crop, offsets, base, about = procedures._prepare(drawables, image, "Drags")
        pairs, source = read_pairs(image, drawable)
        points = bdrag.pairs_in_crop(pairs, crop)
        if source == "sample points":
            crop.eyes = None        # the sample points are the drag's, not the eyes
        trace("drag-points", points=points, source=source)
        if run_mode == Gimp.RunMode.INTERACTIVE:
            if not _dialog(procedure, config, crop, points, base, about, shared, source):
                return procedures._cancel(procedure)
        steps = int(config.get_property("steps")) or None     # 0: the backend's default
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


def _dialog(procedure, config, crop, points, base, about, shared, source="path"):
    """The procedure's dialog with the pairs, a Preview button whose picture follows the handles
    while the drag runs, and Stop; True on OK."""
    client, s = procedures._client()
    state = {"busy": False, "cancelled": False, "stop": False, "drawn": 0.0}

    def extra(dialog):
        _, Gtk = dialogs.gtk()
        box = dialog.get_content_area()
        lines = ["%d. (%g, %g) → (%g, %g)" % (i + 1, p[0] + crop.x, p[1] + crop.y, p[2] + crop.x, p[3] + crop.y)
                 for i, p in enumerate(points)]
        label = Gtk.Label(label="Handles → targets (layer pixels, from the %s):\n%s" % (source, "\n".join(lines)),
                          xalign=0.0)
        label.show()
        box.pack_start(label, False, False, 6)
        picture = Gtk.Image.new_from_pixbuf(dialogs.pixbuf(bdrag.with_pairs(crop.image, points), dialogs.PREVIEW_SIZE))
        picture.show()
        box.pack_start(picture, False, False, 6)
        status = Gtk.Label(label="Preview runs the drag once (a few seconds).", xalign=0.0)
        status.show()
        box.pack_start(status, False, False, 2)
        row = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=6)
        button = Gtk.Button.new_with_mnemonic("_Preview")
        stop = Gtk.Button.new_with_mnemonic("S_top the preview")
        stop.set_sensitive(False)
        row.pack_start(button, False, False, 0)
        row.pack_start(stop, False, False, 0)
        row.show_all()
        box.pack_start(row, False, False, 2)

        def shown(image, text):
            if image is not None:
                picture.set_from_pixbuf(dialogs.pixbuf(image, dialogs.PREVIEW_SIZE))
            status.set_text(text)
            button.set_sensitive(True)
            stop.set_sensitive(False)
            state["busy"] = False
            trace("drag-preview", text=text, shown=image is not None)
            return False

        def moving(image, live):
            if state["busy"] and not state["stop"]:
                picture.set_from_pixbuf(dialogs.pixbuf(image, dialogs.PREVIEW_SIZE))
                status.set_text("Dragging: step %s; %s" % (live["step"], "; ".join(
                    "handle %d at (%.1f, %.1f)" % (i + 1, x + crop.x, y + crop.y)
                    for i, (x, y) in enumerate(live["handles"]))))
                trace("drag-live", step=live["step"], handles=live["handles"])
            return False

        def on_live(live):
            """A drag step's handles (the bridge's thread): drawn at most every LIVE_EVERY seconds."""
            now = time.monotonic()
            if now - state["drawn"] < LIVE_EVERY:
                return
            state["drawn"] = now
            GLib.idle_add(moving, bdrag.with_pairs(crop.image, points, current=live["handles"]), live)

        def worker(steps):
            try:
                if shared["projection"] is None:
                    shared["projection"] = ops.project(client, crop, model=s.model, adapt=False,
                                                       fetch_images=False,
                                                       should_cancel=lambda: state["cancelled"] or state["stop"])
                layer = bdrag.drag_edit(client, crop, points, adapt=False, steps=steps,
                                        projection=shared["projection"], base_edits=base,
                                        should_cancel=lambda: state["cancelled"] or state["stop"],
                                        on_live=on_live)
                notes = ops.notes_of(layer.status)
                tracked = next((e.get("tracked") for e in layer.status.get("edits") or []
                                if isinstance(e, dict) and e.get("kind") == "drag"), None)
                final = tracked if tracked and len(tracked) == len(points) else None
                image = bdrag.with_pairs(bdrag.over_crop(crop, layer), points, current=final)
                GLib.idle_add(shown, image, "; ".join(notes) or "Preview of the drag (without fitting to the photo).")
            except Cancelled:
                GLib.idle_add(shown, None, "Preview cancelled.")
            except BridgeError as exc:
                GLib.idle_add(shown, None, "Preview failed: %s" % exc)

        def clicked(*_):
            if state["busy"]:
                return
            state["busy"], state["stop"] = True, False
            button.set_sensitive(False)
            stop.set_sensitive(True)
            status.set_text("Dragging…")
            threading.Thread(target=worker, args=(int(config.get_property("steps")) or None,), daemon=True).start()

        def stopped(*_):
            state["stop"] = True       # the bridge cancels the job at its next progress event
            stop.set_sensitive(False)
            status.set_text("Stopping…")
        button.connect("clicked", clicked)
        stop.connect("clicked", stopped)
        return None

    confirmed = dialogs.interactive_dialog(procedure, config, "priorpaint: Drag points", ["steps", "adapt"],
                                           after=extra, about=about)
    state["cancelled"] = True     # a preview still running stops at its next progress event
    return confirmed
