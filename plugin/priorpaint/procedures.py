"""What each menu entry does: read the selection, ask the backend, add the result.

Each ``run_*`` is a GIMP 3 image procedure's run function. Bad input returns GIMP's error
with one clear line before any dialog opens or any byte travels; the backend's errors come
back the same way; cancelling GIMP's progress cancels the backend's job (JobGuard). The
image changes only on success, in one undo step (canvas).
"""

import time

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, GLib  # noqa: E402

import canvas  # noqa: E402
import dialogs  # noqa: E402
from gimp_bridge import catalog, ops, words  # noqa: E402
from gimp_bridge.verdict import verdict_message  # noqa: E402
from gimp_bridge import settings as bridge_settings  # noqa: E402
from gimp_bridge.client import BridgeError, Cancelled, Client  # noqa: E402
from gimp_bridge.watchdog import JobGuard  # noqa: E402
from tracing import trace  # noqa: E402


def _fail(procedure, message):
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))


def _ok(procedure):
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def _cancel(procedure):
    return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())


def _client():
    s = bridge_settings.load()
    return Client(settings=s), s


def _message(lines):
    """Show the backend's notes (clamped strengths, resized inputs, ...) in GIMP's message area."""
    lines = [str(n) for n in lines if n]
    if lines:
        Gimp.message("priorpaint: " + "\n".join(lines))


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
    """Run ``work(client, settings, progress, guard)`` with progress, cancel and error mapping;
    (value, None) or (None, the procedure's return values)."""
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


def _prepare(drawables, image, verb="Edits"):
    """(photo layer, crop, offsets, edits to start from, what the dialog says will be edited);
    what is wrong is said before any dialog opens."""
    source, base, about = canvas.edit_target(image, canvas.single_layer(drawables), verb)
    crop, offsets = canvas.read_crop(image, source)
    trace("target", layer=source.get_name(), base=base, about=about)
    return source, crop, offsets, base, about


def _paste_result(procedure, image, drawable, result, offsets):
    """Add the backend's result as one new layer (one undo step), select it, show the notes."""
    canvas.add_result(image, drawable, result, offsets)
    trace("result-layer", name=result.name, alignment=(result.status.get("alignment") or {}).get("source"),
          not_carried=verdict_message(result.status) or "")
    _message(ops.notes_of(result.status))
    return _ok(procedure)


# -- Semantic edit ---------------------------------------------------------------------------

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
        drawable, crop, offsets, base, about = _prepare(drawables, image)
        if run_mode == Gimp.RunMode.INTERACTIVE:
            client, s = _client()
            directions = [d for d in catalog.list_directions(client, s.model) if isinstance(d, dict) and d.get("name")]
            if not directions:
                return _fail(procedure, "priorpaint: the backend's model has no named directions")
            confirmed, worker, dialog_guard = dialogs.semantic_dialog(procedure, config, crop, directions, client, s,
                                                                     base=base, about=about)
            if not confirmed:
                return _cancel(procedure)
            guards.append(dialog_guard)
        direction = (config.get_property("direction") or "").strip()
        strength = float(config.get_property("strength"))
        adapt = bool(config.get_property("adapt"))
        composite = dialogs.composite_of(config)
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
                                 directions=directions, composite=composite, base_edits=base)

    result, err = _run_backend(procedure, "priorpaint: %s" % direction, work)
    if err is not None:
        return err
    out = _paste_result(procedure, image, drawable, result, offsets)
    trace("layer-added", seconds_from_ok=time.monotonic() - t_ok, name=result.name)
    return out


# -- Paint concept ---------------------------------------------------------------------------

def run_paint_concept(procedure, run_mode, image, drawables, config, data):
    try:
        drawable, crop, offsets, base, about = _prepare(drawables, image)
        if run_mode == Gimp.RunMode.INTERACTIVE:
            client, s = _client()
            concepts = catalog.list_concepts(client, s.model).get("concepts") or []
            rows = [c if isinstance(c, dict) else {"name": str(c)} for c in concepts]
            descriptions = {}
            for c in rows:
                notes = c.get("notes") or c.get("description") or ""
                if isinstance(notes, list):
                    notes = "; ".join(str(n) for n in notes)
                descriptions[str(c.get("name"))] = str(notes)
            names = [(n, dialogs.entry_label(n, d)) for n, d in descriptions.items()]
            if not names:
                return _fail(procedure, "priorpaint: the backend's model has no concepts to paint")

            def extra(dialog):
                dialogs.choice_combo(dialog, config, "concept", "_Concept", names, descriptions)
            if not dialogs.interactive_dialog(procedure, config, "priorpaint: Paint concept",
                                              ["mode", "composite", "adapt"], extra, about=about):
                return _cancel(procedure)
        concept = (config.get_property("concept") or "").strip()
        mode = str(config.get_property("mode") or "add")
        adapt = bool(config.get_property("adapt"))
        composite = dialogs.composite_of(config)
        if not concept:
            raise BridgeError("no concept given (see the backend's `concepts` list)")
    except BridgeError as exc:
        return _fail(procedure, "priorpaint: %s" % exc)

    def work(client, s, progress, guard):
        return ops.paint_concept(client, crop, concept, mode, adapt=adapt, model=s.model,
                                 progress=progress, on_job=guard.set_job, composite=composite, base_edits=base)

    result, err = _run_backend(procedure, "priorpaint: %s %s" % (mode, concept), work)
    if err is not None:
        return err
    return _paste_result(procedure, image, drawable, result, offsets)


# -- Project selection -----------------------------------------------------------------------

def run_project(procedure, run_mode, image, drawables, config, data):
    try:
        drawable, crop, offsets, _, about = _prepare(drawables, image, "Shows how the model reproduces")
        if run_mode == Gimp.RunMode.INTERACTIVE:
            if not dialogs.interactive_dialog(procedure, config, "priorpaint: Project selection", ["adapt", "show"],
                                              about=about):
                return _cancel(procedure)
        adapt = bool(config.get_property("adapt"))
        show = bool(config.get_property("show"))
    except BridgeError as exc:
        return _fail(procedure, "priorpaint: %s" % exc)

    def work(client, s, progress, guard):
        return ops.project_layers(client, crop, model=s.model, adapt=adapt, progress=progress,
                                  on_job=guard.set_job)

    value, err = _run_backend(procedure, "priorpaint: projecting", work)
    if err is not None:
        return err
    proj, layers = value
    trace("projection", alignment=(proj.status.get("alignment") or {}).get("source"), layer=proj.status.get("layer"))
    canvas.add_projection(image, drawable, layers, offsets, show=show)
    rest = [r for r in layers if r.role != ops.ROLE_MODEL_RENDERING]
    fit = words.fit_sentence(proj.status.get("psnr_projection"))
    trace("fit", text=fit or "")
    _message([fit] + ops.notes_of(proj.status) + [n for r in rest for n in ops.notes_of(r.status)])
    return _ok(procedure)


# -- Segment and apply -----------------------------------------------------------------------

def _legend_text(legend):
    return ", ".join("%s #%02x%02x%02x" % (name, *rgb[:3]) for name, rgb in legend.items())


def run_segment(procedure, run_mode, image, drawables, config, data):
    try:
        drawable, crop, offsets, _, _ = _prepare(drawables, image)
    except BridgeError as exc:
        return _fail(procedure, "priorpaint: %s" % exc)

    def work(client, s, progress, guard):
        return ops.segment(client, crop, model=s.model, progress=progress, on_job=guard.set_job), client.url

    value, err = _run_backend(procedure, "priorpaint: finding the parts", work)
    if err is not None:
        return err
    seg, url = value
    meta = {"session": seg.session, "url": url, "legend": seg.legend,
            "crop": [crop.x, crop.y], "layer": [seg.labels.x, seg.labels.y,
                                                seg.labels.image.width, seg.labels.image.height],
            "source": drawable.get_name(), "gray": canvas.is_gray(drawable)}
    canvas.add_labels(image, drawable, seg.labels, offsets, meta)
    if seg.legend:
        _message(["paint on the layer '%s' with these colours, then run Apply segmentation edit: %s"
                  % (seg.labels.name, _legend_text(seg.legend))] + ops.notes_of(seg.labels.status))
    return _ok(procedure)


def run_apply_segmentation(procedure, run_mode, image, drawables, config, data):
    try:
        labels_layer = canvas.label_layer(image, drawables)
        meta = canvas.read_parasite(labels_layer, canvas.LABELS_PARASITE)
        if meta is None:
            raise BridgeError("the label layer's priorpaint data is unreadable; run 'Segment selection' again")
        if run_mode == Gimp.RunMode.INTERACTIVE:
            def legend_note(dialog):
                _, Gtk = dialogs.gtk()
                note = Gtk.Label(label="Legend: " + _legend_text(meta.get("legend") or {}), xalign=0.0)
                note.set_line_wrap(True)
                note.set_max_width_chars(56)
                note.show()
                dialog.get_content_area().pack_start(note, False, False, 6)
            if not dialogs.interactive_dialog(procedure, config, "priorpaint: Apply segmentation edit",
                                              ["composite", "adapt"], legend_note):
                return _cancel(procedure)
        adapt = bool(config.get_property("adapt"))
        composite = dialogs.composite_of(config)
        labels, offsets = canvas.read_labels(labels_layer, meta)
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
    canvas.add_result(image, labels_layer, result, offsets, hide=labels_layer)
    _message(ops.notes_of(result.status))
    return _ok(procedure)


# -- Settings --------------------------------------------------------------------------------

def _download(procedure, model):
    """Have the backend download ``model`` with GIMP's progress; None, or the error return."""
    def work(client, s, progress, guard):
        return catalog.download_model(client, model, progress=progress, on_job=guard.set_job)

    status, err = _run_backend(procedure, "priorpaint: downloading %s" % model, work)
    if err is None:
        trace("downloaded", model=model, status=status)
    return err


def run_settings(procedure, run_mode, image, drawables, config, data):
    """Backend URL, model and token. The token lives only in the settings file (mode 0600): the
    dialog shows it masked in a field of its own, and the argument GIMP would save as the
    procedure's last values is always left empty. The dialog lists the backend's models and
    says which are not downloaded yet; choosing one offers to download it, with progress."""
    saved = bridge_settings.load()
    models = []
    download = bool(config.get_property("download"))
    if run_mode == Gimp.RunMode.INTERACTIVE:
        download = False
        config.set_property("url", saved.url or bridge_settings.resolve_url(""))
        config.set_property("model", saved.model)
        config.set_property("token", "")
        unreachable = None
        client = Client(settings=saved, connect_retries=0, timeout=10)
        try:
            models = [m for m in catalog.list_models(client)     # the models to edit with, not their helpers
                      if isinstance(m, dict) and m.get("id") and m.get("kind", "generator") == "generator"]
        except BridgeError as exc:
            models = []          # no backend (yet): the model stays a plain text field, and the dialog says why
            unreachable = "Cannot reach the backend: %s" % str(exc).rstrip(".")
        confirmed, token = dialogs.settings_dialog(procedure, config, saved, models, unreachable)
        if not confirmed:
            return _cancel(procedure)
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
        elif dialogs.ask_download(row):
            download = True
    if download and saved.model:
        err = _download(procedure, saved.model)
        if err is not None:
            return err
    return _ok(procedure)
