"""The plug-in's dialogs (GTK 3 through GimpUi): the generated procedure dialogs with the
backend's choices added, the Semantic edit dialog with its live preview, Settings and the
download question. Nothing here touches the image; the procedures decide what happens on OK.
"""

import hashlib
import os

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import GLib, GObject  # noqa: E402

from gimp_bridge import catalog, ops, words  # noqa: E402
from gimp_bridge import settings as bridge_settings  # noqa: E402
from gimp_bridge.client import Client  # noqa: E402
from gimp_bridge.watchdog import JobGuard  # noqa: E402

from tracing import trace  # noqa: E402

PLUG_IN_BINARY = "priorpaint"
GUIDE = "gimp.md"     # the user guide (docs/usage/gimp.md), installed beside the plug-in


def composite_of(config):
    """The procedure's ``composite`` argument, "detail" unless it names a known mode."""
    value = str(config.get_property("composite") or "detail")
    return value if value in ops.COMPOSITE_MODES else "detail"


def gtk():
    gi.require_version("GimpUi", "3.0")
    gi.require_version("Gtk", "3.0")
    from gi.repository import GimpUi, Gtk
    GimpUi.init(PLUG_IN_BINARY)
    return GimpUi, Gtk


def guide_path():
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), GUIDE)


def add_help(dialog):
    """The dialog's Help opens the plug-in's own guide, not GIMP's manual (which has no page for
    a plug-in and, when not installed, says so in a box of its own). GimpDialog.add_button with
    the Help response replaces GIMP's Help button; its response is stopped here, so the dialog
    stays open. F1 (and Shift+F1) would ask GIMP's help system for the procedure's page of the
    manual through the focused widget's ``show-help`` binding; the dialog's key handler runs
    first and opens the same guide instead."""
    _, Gtk = gtk()
    gi.require_version("Gdk", "3.0")
    from gi.repository import Gdk
    dialog.add_button("_Help", Gtk.ResponseType.HELP)

    def on_response(d, response):
        if response == Gtk.ResponseType.HELP:
            GObject.signal_stop_emission_by_name(d, "response")
            show_guide(d)

    def on_key(d, event):
        if event.keyval in (Gdk.KEY_F1, Gdk.KEY_KP_F1):
            trace("help-key")
            show_guide(d)
            return True                 # handled: GIMP's help is not asked
        return False
    dialog.connect("response", on_response)
    dialog.connect("key-press-event", on_key)


def show_guide(parent):
    """The guide in a window of its own (plain text: it reads as well as it renders)."""
    _, Gtk = gtk()
    try:
        with open(guide_path(), encoding="utf-8") as f:
            text = f.read()
    except OSError:
        text = ("The priorpaint guide for GIMP was not installed beside the plug-in (%s). It is "
                "docs/usage/gimp.md in priorpaint's sources; `priorpaint install-gimp-plugin` installs it."
                % guide_path())
    window = Gtk.Dialog(title="priorpaint: Help", transient_for=parent, modal=True)
    window.add_button("_Close", Gtk.ResponseType.CLOSE)
    window.set_default_size(640, 520)
    view = Gtk.TextView(editable=False, cursor_visible=False, wrap_mode=Gtk.WrapMode.WORD, left_margin=8,
                        right_margin=8)
    view.get_buffer().set_text(text)
    scroll = Gtk.ScrolledWindow(vexpand=True)
    scroll.add(view)
    window.get_content_area().pack_start(scroll, True, True, 0)
    window.show_all()
    trace("help", path=guide_path(), chars=len(text), installed=os.path.exists(guide_path()))
    window.run()
    window.destroy()


def about_label(dialog, about):
    """A line at the top of a dialog saying what the run will edit."""
    if not about:
        return
    _, Gtk = gtk()
    label = Gtk.Label(label=about, xalign=0.0)
    label.set_line_wrap(True)
    label.set_max_width_chars(60)
    label.show()
    dialog.get_content_area().pack_start(label, False, False, 6)
    trace("about", text=about)


def interactive_dialog(procedure, config, title, properties, extra=None, after=None, about=None):
    """Show a GimpUi.ProcedureDialog. ``extra(dialog)`` adds widgets above the generated ones,
    ``after(dialog)`` below them; either may return a function run on OK. True when confirmed."""
    GimpUi, Gtk = gtk()
    dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config, title=title)
    add_help(dialog)
    about_label(dialog, about)
    on_ok = []
    if extra is not None:
        on_ok.append(extra(dialog))
    dialog.fill(properties)
    if after is not None:
        on_ok.append(after(dialog))
    trace("dialog", title=title)
    confirmed = dialog.run()
    trace("dialog-closed", title=title, confirmed=bool(confirmed))
    if confirmed:
        for fn in on_ok:
            if fn is not None:
                fn()
    dialog.destroy()
    return confirmed


def range_text(lo, hi):
    """A strength range in words: "-1.5 to +1.5"."""
    return "%g to %+g" % (lo, hi)


def entry_label(name, description, width=60):
    """A combo entry: the name and as much of the description as fits (the tooltip has all of it)."""
    if not description:
        return name
    text = "%s — %s" % (name, description)
    return text if len(text) <= width else text[:width - 1].rstrip() + "…"


def choice_combo(dialog, config, prop, mnemonic, values, descriptions, on_change=None):
    """A combo box of the backend's ``values`` bound to the string argument ``prop``: Reset and
    GIMP's saved settings move it like the generated widgets. The full description of the
    chosen entry shows below it and as its tooltip."""
    _, Gtk = gtk()
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


def pixbuf(image, size):
    from gi.repository import GdkPixbuf
    rgb = image.to_rgb()
    pb = GdkPixbuf.Pixbuf.new_from_bytes(GLib.Bytes.new(rgb.data), GdkPixbuf.Colorspace.RGB, False, 8,
                                         rgb.width, rgb.height, rgb.width * 3)
    scale = size / float(max(rgb.width, rgb.height))
    w, h = max(1, int(round(rgb.width * scale))), max(1, int(round(rgb.height * scale)))
    return pb.scale_simple(w, h, GdkPixbuf.InterpType.BILINEAR)


# -- Semantic edit: the dialog with its live preview ------------------------------------------------

PREVIEW_SIZE = 192


def semantic_dialog(procedure, config, crop, directions, client, s, base=(), about=None):
    """The Semantic edit dialog: direction list, strength slider with the direction's range,
    composite and adapt choices, and a live preview (the selection's square before and after).

    The preview is the selection's square as the edit will blend it into the photo, at the
    photo's resolution (the backend's detail compositing, shrunk to the preview's size), in
    the chosen Blend mode. The fit it starts is watched by a JobGuard: if this process dies
    with the dialog open (GIMP ends it, a crash), the watcher cancels that backend job.

    Returns (confirmed, worker, guard): the worker's projection is reused by the edit, so OK
    does not project again; the caller finishes the guard when the edit is done.
    """
    GimpUi, Gtk = gtk()
    from gimp_bridge.preview import PreviewWorker

    dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config, title="priorpaint: Semantic edit")
    add_help(dialog)
    about_label(dialog, about)
    ranges = {d["name"]: catalog.direction_range(directions, d["name"]) for d in directions}
    descriptions = {}
    for d in directions:
        lo, hi, _ = ranges[d["name"]]
        text = str(d.get("description") or "").strip()
        text = text.rstrip(".") + ". " if text else ""
        descriptions[d["name"]] = text + "Strength from %s." % range_text(lo, hi)
    # "wanted": the strength the user chose last; a direction with a narrower range shows it
    # clamped, and the next direction whose range holds it gets it back
    state = {"worker": None, "timer": 0, "spin": None, "wanted": float(config.get_property("strength")),
             "adjusting": False}
    # editing a result: a direction it already carries starts at the result's own strength
    # (the new strength replaces it), the others at the user's last strength
    own = {str(e["name"]): float(e.get("strength", 0.0)) for e in catalog.carried(base)}

    def key():
        return (config.get_property("direction") or "", round(float(config.get_property("strength")), 3),
                composite_of(config))

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
            trace("preview-request", direction=d, strength=strength, composite=composite)
            worker.composite = composite
            edits = catalog.with_edit(base, catalog.direction_spec(d, strength)) if d else list(base)
            worker.request((d, strength, composite), edits)
        return False

    def strength_changed(*_):
        if not state["adjusting"]:
            state["wanted"] = float(config.get_property("strength"))
            own.pop(config.get_property("direction") or "", None)     # the user chose: keep theirs
            trace("strength", value=state["wanted"])
        schedule()

    def direction_changed(name):
        lo, hi, _ = ranges.get(name, (-3.0, 3.0, 0.0))
        spin = state["spin"]
        if spin is None:
            return
        state["adjusting"] = True
        try:
            spin.set_range(lo, hi)
            config.set_property("strength", min(max(own.get(name, state["wanted"]), lo), hi))
        finally:
            state["adjusting"] = False
        spin.set_tooltip_text("How far to move along %s: from %s" % (name, range_text(lo, hi)))
        trace("strength-range", direction=name, min=lo, max=hi, wanted=state["wanted"], own=own.get(name),
              strength=float(config.get_property("strength")))
        schedule()

    values = [(d["name"], entry_label(d["name"] + " (%s)" % range_text(*ranges[d["name"]][:2]),
                                      str(d.get("description") or ""))) for d in directions]
    choice_combo(dialog, config, "direction", "_Direction", values, descriptions, on_change=direction_changed)
    trace("directions", labels=[t for _, t in values])
    spin = dialog.get_spin_scale("strength", 1.0)
    spin.set_digits(2)
    spin.set_increments(0.1, 0.5)
    state["spin"] = spin
    direction_changed(config.get_property("direction") or "")
    dialog.fill(["strength", "composite", "adapt"])

    # the preview: the selection's square as it is, and as the edit would make it
    frame = Gtk.Frame(label="Preview (blended into the photo; OK also fits the model to this photo when that is on)")
    box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=4, border_width=6)
    images = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=6)
    before = Gtk.Image.new_from_pixbuf(pixbuf(crop.image, PREVIEW_SIZE))
    after = Gtk.Image.new_from_pixbuf(pixbuf(crop.image, PREVIEW_SIZE))
    before.set_tooltip_text("the selection's square now")
    after.set_tooltip_text("the square as the edit will blend it into the photo, at the photo's resolution "
                           "(shrunk to fit), with this direction, strength and blend mode; the final "
                           "result is also fitted to this photo when 'Fit to this photo' is on")
    images.pack_start(before, False, False, 0)
    images.pack_start(after, False, False, 0)
    status = Gtk.Label(label="Fitting the selection to the model…", xalign=0.0)
    status.set_line_wrap(True)
    warning = Gtk.Label(xalign=0.0)      # the backend's verdict: the edit is not carried, or was held back
    warning.set_line_wrap(True)
    warning.set_tooltip_text("the backend compared the preview with the selection: this edit does not "
                             "change the picture the way the direction intends, or only in part")
    box.pack_start(images, False, False, 0)
    box.pack_start(status, False, False, 0)
    box.pack_start(warning, False, False, 0)
    frame.add(box)
    frame.show_all()
    warning.hide()
    dialog.get_content_area().pack_start(frame, False, False, 6)

    def on_progress(fraction, text):
        GLib.idle_add(status.set_text, "%s… %d %%" % (text, int(100 * fraction)))

    def on_ready(projection):
        GLib.idle_add(ready)

    def ready():
        projection = state["worker"].projection
        before.set_from_pixbuf(pixbuf(ops.layer_view(projection), PREVIEW_SIZE))  # what the preview edits
        psnr = projection.status.get("psnr_projection")
        fit = words.fit_words(psnr)
        text = "Ready. Move the strength to see the edit."
        if fit:
            text = "The model reproduced your selection %s. %s" % (fit, text)
            status.set_tooltip_text("how closely the model reproduced your selection: %.1f dB (PSNR)" % psnr)
        status.set_text(text)
        trace("projected", status=text)     # the worker now renders the newest request made while it fitted
        return False

    def on_image(k, image, seconds):
        GLib.idle_add(show, k, image, seconds)

    def show(k, image, seconds):
        after.set_from_pixbuf(pixbuf(image, PREVIEW_SIZE))
        status.set_text("Preview of %s %+g (%.2f s)" % (k[0], k[1], seconds))
        trace("preview-shown", direction=k[0], strength=k[1], composite=k[2], seconds=seconds,
               size=[image.width, image.height], digest=hashlib.sha1(image.data).hexdigest())
        return False

    def on_approximate(k, image, flag):
        GLib.idle_add(show_approximate, k, image, flag)

    def show_approximate(k, image, flag):     # a slow model: a predicted frame now, the exact one follows
        after.set_from_pixbuf(pixbuf(image, PREVIEW_SIZE))
        status.set_text("Preview of %s %+g (quick estimate; the exact preview follows)" % (k[0], k[1]))
        trace("preview-approximate", direction=k[0], strength=k[1], method=flag.get("method"))
        return False

    def on_verdict(k, message):
        GLib.idle_add(judge, k, message)

    def judge(k, message):
        if message:
            warning.set_markup("<b>⚠ %s</b>" % GLib.markup_escape_text(message))
            warning.show()
        else:
            warning.set_text("")
            warning.hide()
        trace("verdict-shown", direction=k[0], strength=k[1], composite=k[2], message=message or "")
        return False

    def on_error(message):
        GLib.idle_add(status.set_text, "No preview: %s" % message)

    config.connect("notify::strength", strength_changed)
    config.connect("notify::composite", schedule)
    guard = JobGuard(Client(settings=s))
    worker = PreviewWorker(Client(settings=s), crop, model=s.model, on_progress=on_progress, on_ready=on_ready,
                           on_image=on_image, on_error=on_error, on_job=guard.set_job, on_verdict=on_verdict,
                           composite=composite_of(config), size=PREVIEW_SIZE, on_approximate=on_approximate)
    state["worker"] = worker
    worker.start()
    trace("dialog", title="priorpaint: Semantic edit")
    try:
        confirmed = dialog.run()
    finally:
        if state["timer"]:
            GLib.source_remove(state["timer"])
    trace("dialog-closed", title="priorpaint: Semantic edit", confirmed=bool(confirmed))
    dialog.destroy()
    if not confirmed:
        worker.abandon()                # cancels a projection still running on the backend, now
        guard.finish()
        return False, None, None
    return True, worker, guard


def ask_download(row):
    """Ask whether to download a model the backend does not have yet; True for yes."""
    _, Gtk = gtk()
    dialog = Gtk.MessageDialog(modal=True, message_type=Gtk.MessageType.QUESTION, buttons=Gtk.ButtonsType.YES_NO,
                               text="Download %s?" % row["id"], title="priorpaint: Download model")
    dialog.format_secondary_text("The model %s is not downloaded yet: the backend fetches its weights once from "
                                 "the Hugging Face Hub (progress in GIMP's status bar) and checks them." % row["id"])
    dialog.set_default_response(Gtk.ResponseType.YES)
    trace("ask-download", model=row["id"])
    answer = dialog.run()
    dialog.destroy()
    return answer == Gtk.ResponseType.YES




def settings_dialog(procedure, config, saved, models, unreachable=None):
    """Settings: the URL (generated), the model (the backend's listing, when it answers, each
    described for users) and the token in a masked field of its own; a line says when the
    backend cannot be reached, and one that OK keeps these settings. Returns (confirmed, token)."""
    entry = {}

    def notes(dialog):
        _, Gtk = gtk()
        box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=4)
        lines = [unreachable + ". Or enter another address below."] if unreachable else []
        lines.append("OK saves these settings in %s and uses them from then on (they take the place of "
                     "$PRIORPAINT_URL)." % bridge_settings.settings_path())
        for text in lines:
            note = Gtk.Label(label=text, xalign=0.0)
            note.set_line_wrap(True)
            note.set_max_width_chars(60)
            box.pack_start(note, False, False, 0)
        box.show_all()
        dialog.get_content_area().pack_start(box, False, False, 6)
        trace("settings-notes", lines=lines)
        if models:
            model_field(dialog)

    def model_field(dialog):
        default = next((m for m in models if m.get("default")), None)
        values = [("", "The backend's default" + (" (%s)" % default["id"] if default else ""))]
        values += [(m["id"], catalog.model_label(m)) for m in models]
        descriptions = {"": words.model_about(default, models) if default else
                        "Whatever model the backend was started with"}
        descriptions.update({m["id"]: words.model_about(m, models) for m in models})
        choice_combo(dialog, config, "model", "_Model", values, descriptions)
        trace("models", labels=[t for _, t in values], about=descriptions)

    def token_field(dialog):
        _, Gtk = gtk()
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
        trace("token-field", masked=not field.get_visibility())
        return lambda: entry.update(token=field.get_text())

    confirmed = interactive_dialog(procedure, config, "priorpaint: Settings", ["url"] if models else ["url", "model"],
                                   extra=notes, after=token_field)
    return confirmed, entry.get("token", saved.token)
