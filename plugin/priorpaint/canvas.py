"""The image side of the plug-in: reading the selection, adding layers, their place in the
stack and the parasites that say what each added layer is.

Every layer the plug-in adds carries the parasite ``priorpaint-result``: a small JSON object
with ``source`` (the tattoo of the user's layer it came from) and ``role`` (one of
``ops.ROLES``: an edit's result, Project's reconstruction or plain model rendering, or a
label map). Roles are read from there, never from layer names, so renaming a layer changes
nothing. Layers from older versions carry only ``source``; their role is inferred once from
the name prefix those versions wrote. The user's layers are never modified.
"""

import json

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402

from gimp_bridge import catalog, ops, png  # noqa: E402
from gimp_bridge.client import BridgeError  # noqa: E402

RESULT_PARASITE = "priorpaint-result"     # on every added layer: {"source": tattoo, "role": role}
LABELS_PARASITE = "priorpaint-segment"    # on a label map: the session, legend and geometry
# Saved with the XCF, and undoable: GIMP records a persistent parasite that is not undoable
# as a step it "can't undo" (gimp_item_parasite_attach pushes a cantundo step), so Ctrl+Z on
# a result would stop there with a message box instead of removing the layer.
PARASITE_FLAGS = getattr(Gimp, "PARASITE_PERSISTENT", 1) | getattr(Gimp, "PARASITE_UNDOABLE", 2)

NO_SELECTION = ("nothing is selected: select the part of the photo to edit first "
                "(Select > All edits the whole layer)")

# what versions before roles named their layers (read only to tell old layers apart)
_LEGACY_PREFIXES = (("priorpaint: G(z)", ops.ROLE_MODEL_RENDERING), ("priorpaint: G′", ops.ROLE_RECONSTRUCTION))


def is_gray(drawable):
    return not drawable.is_rgb() and drawable.is_gray()


def formats(drawable):
    """Babl format and channel count used to read the drawable (gray is read as gray+alpha)."""
    if is_gray(drawable):
        return "Y'A u8", 2
    return "R'G'B'A u8", 4


def buffer_get(buffer, x, y, w, h, fmt, abyss=None):
    rect = Gegl.Rectangle.new(x, y, w, h)
    data = buffer.get(rect, 1.0, fmt, Gegl.AbyssPolicy.NONE if abyss is None else abyss)
    return bytes(data)


def single_layer(drawables):
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

    No selection is refused (NO_SELECTION): on a portrait the whole layer gives a haze over
    half the picture, so the user says so with Select > All. Returns (crop, (offset_x,
    offset_y)) where the crop is in drawable coordinates and the offsets turn drawable
    coordinates into image coordinates.
    """
    ok, non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
    if not ok or not non_empty:
        raise BridgeError(NO_SELECTION)
    _, ox, oy = drawable.get_offsets()
    dw, dh = drawable.get_width(), drawable.get_height()
    box = ops.check_selection((x1 - ox, y1 - oy, x2 - x1, y2 - y1), (dw, dh))
    cx, cy, cw, ch = ops.crop_rect(box, (dw, dh))
    fmt, channels = formats(drawable)
    pixels = buffer_get(drawable.get_buffer(), cx, cy, cw, ch, fmt, Gegl.AbyssPolicy.CLAMP)
    # the selection channel lives in image coordinates; outside the canvas it is empty
    mask = buffer_get(image.get_selection().get_buffer(), cx + ox, cy + oy, cw, ch, "Y u8", Gegl.AbyssPolicy.NONE)
    crop = ops.Crop.from_pixels(cx, cy, cw, ch, pixels, channels, mask)
    # two sample points on the crop (Ctrl-drag from the rulers onto the eyes): a face model's eyes
    crop.eyes = ops.eyes_in_crop([(x - ox, y - oy) for x, y in sample_points(image)], (cx, cy, cw, ch))
    return crop, (ox, oy)


def sample_points(image):
    """The image's sample points, image pixels."""
    points, sp = [], image.find_next_sample_point(0)
    while sp:
        pos = image.get_sample_point_position(sp)
        points.append((int(pos[0]), int(pos[1])))
        sp = image.find_next_sample_point(sp)
    return points


# -- parasites -------------------------------------------------------------------------------

def read_parasite(item, name):
    """The JSON object in ``item``'s parasite ``name``, or None (absent or unreadable)."""
    parasite = item.get_parasite(name)
    if parasite is None:
        return None
    try:
        value = json.loads(bytes(parasite.get_data()).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def attach_parasite(item, name, value):
    item.attach_parasite(Gimp.Parasite.new(name, PARASITE_FLAGS, list(json.dumps(value).encode("utf-8"))))


def role_of(layer):
    """What a layer is: one of ops.ROLES for a layer the plug-in added, else None (the user's)."""
    meta = read_parasite(layer, RESULT_PARASITE)
    if meta is None:
        return ops.ROLE_LABELS if layer.get_parasite(LABELS_PARASITE) is not None else None
    role = meta.get("role")
    if role in ops.ROLES:
        return role
    if layer.get_parasite(LABELS_PARASITE) is not None:
        return ops.ROLE_LABELS
    name = layer.get_name()
    for prefix, legacy in _LEGACY_PREFIXES:
        if name.startswith(prefix):
            return legacy
    return ops.ROLE_RESULT


def _source_tattoo(layer):
    meta = read_parasite(layer, RESULT_PARASITE)
    try:
        return int(meta["source"]) if meta is not None else None
    except (KeyError, TypeError, ValueError):
        return None


def result_source(image, drawable):
    """The user's layer a result came from (results of results lead back to it), else ``drawable``."""
    tattoo = _source_tattoo(drawable)
    if tattoo is not None:
        source = image.get_layer_by_tattoo(tattoo)
        if source is not None:
            return source
    return drawable


def is_result_of(layer, source):
    return _source_tattoo(layer) == source.get_tattoo()


def edit_target(image, drawable, verb="Edits"):
    """What a run on ``drawable`` edits: (the photo layer, the edits to start from, a sentence
    for the dialog that starts with ``verb``). A priorpaint layer stands for the photo it came
    from, so edits never pile up on a reconstruction or an earlier result; a result's
    directions are the starting point."""
    role = role_of(drawable)
    if role is None:
        return drawable, [], "%s the layer '%s' inside the selection." % (verb, drawable.get_name())
    source = result_source(image, drawable)
    if source.get_id() == drawable.get_id():
        raise BridgeError("the photo layer that '%s' came from is gone: select a photo layer to edit"
                          % drawable.get_name())
    base = catalog.carried((read_parasite(drawable, RESULT_PARASITE) or {}).get("edits") or []) \
        if role == ops.ROLE_RESULT else []
    about = "%s the photo layer '%s' (the layer '%s' came from)" % (verb, source.get_name(), drawable.get_name())
    about += (", starting from that result's edits: %s." % catalog.edits_title(base)) if base else \
        ", from the photo itself."
    return source, base, about


def result_position(image, drawable):
    """(source, parent, position) for a new result: directly above the topmost priorpaint result
    of the same source layer, else directly above the source, in the source's layer group."""
    source = result_source(image, drawable)
    parent = source.get_parent()
    siblings = parent.get_children() if parent is not None else image.get_layers()
    above = source
    for layer in siblings:                      # top of the stack first
        if layer.get_id() == source.get_id():
            break
        if is_result_of(layer, source):
            above = layer
            break
    return source, parent, image.get_item_position(above)


# -- new layers ------------------------------------------------------------------------------

def _layer_bytes(image_rgba, gray):
    if gray:
        return Gimp.ImageType.GRAYA_IMAGE, "Y'A u8", png.convert(image_rgba.data, 4, 2)
    return Gimp.ImageType.RGBA_IMAGE, "R'G'B'A u8", image_rgba.data


def new_layer(image, source, parent, position, result, offsets, gray, mask_from_alpha=True, scale_to=None):
    """Insert ``result`` (ops.Layer, drawable coordinates) as a new layer at ``position`` in
    ``parent``, its role and source recorded in its parasite."""
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
    meta = {"source": source.get_tattoo(), "role": result.role, "edits": result.edits}
    verdict = result.status.get("verdict") if isinstance(result.status, dict) else None
    if isinstance(verdict, dict):       # the layer remembers whether its edit was carried
        meta["verdict"] = {"carried": verdict.get("carried"), "message": str(verdict.get("message") or "")}
    attach_parasite(layer, RESULT_PARASITE, meta)
    layer.update(0, 0, layer.get_width(), layer.get_height())
    return layer


def select(image, layer):
    """Make ``layer`` itself (not its mask) the selected drawable."""
    if layer.get_mask() is not None:
        layer.set_edit_mask(False)
    image.set_selected_layers([layer])


def add_result(image, drawable, result, offsets, hide=None):
    """The backend's result as one new layer (one undo step) above the source's earlier results,
    selected; ``hide``, a layer hidden in the same undo step. Returns the new layer."""
    image.undo_group_start()
    try:
        source, parent, position = result_position(image, drawable)
        layer = new_layer(image, source, parent, position, result, offsets, is_gray(drawable))
        if hide is not None:
            hide.set_visible(False)
    finally:
        image.undo_group_end()
    select(image, layer)
    Gimp.displays_flush()
    return layer


def add_projection(image, drawable, layers, offsets, show=False):
    """Project's layers in one undo step, the reconstruction on top of the plain model rendering;
    hidden unless ``show`` (then the top one is visible). ``drawable``, the photo, stays
    selected: the next edit works on the photo, not on a reconstruction. Returns the layers."""
    gray = is_gray(drawable)
    model = [r for r in layers if r.role == ops.ROLE_MODEL_RENDERING]
    rest = [r for r in layers if r.role != ops.ROLE_MODEL_RENDERING]
    added = []
    image.undo_group_start()
    try:
        source, parent, position = result_position(image, drawable)
        for result in model:       # model resolution -> the square's size, at the square's offset
            layer = new_layer(image, source, parent, position, result, offsets, gray,
                              mask_from_alpha=result.scale_to is None, scale_to=result.scale_to)
            layer.set_visible(show and not rest)
            added.append(layer)
        for result in rest:
            added.append(new_layer(image, source, parent, position, result, offsets, gray))
            added[-1].set_visible(show)
    finally:
        image.undo_group_end()
    select(image, drawable)
    Gimp.displays_flush()
    return added


def add_labels(image, drawable, labels, offsets, meta):
    """Segment's label map as a new unmasked layer carrying ``meta`` (session, legend, geometry)."""
    image.undo_group_start()
    try:
        source, parent, position = result_position(image, drawable)
        layer = new_layer(image, source, parent, position, labels, offsets, is_gray(drawable),
                          mask_from_alpha=False)
        attach_parasite(layer, LABELS_PARASITE, meta)
    finally:
        image.undo_group_end()
    select(image, layer)
    Gimp.displays_flush()
    return layer


def label_layer(image, drawables):
    """The label map to apply: the selected one, else the first in the image."""
    for d in list(drawables) + list(image.get_layers()):
        if d.get_parasite(LABELS_PARASITE) is not None:
            return d
    raise BridgeError("no priorpaint label layer found: run 'Segment selection' first, paint on the labels "
                      "layer with the legend's colours, then apply")


def read_labels(labels_layer, meta):
    """The painted label map as a png.Image and its offset relative to the labels' crop."""
    lx, ly, lw, lh = meta["layer"]
    if (labels_layer.get_width(), labels_layer.get_height()) != (lw, lh):
        raise BridgeError("the labels layer was resized; run 'Segment selection' again")
    fmt, channels = formats(labels_layer)
    pixels = buffer_get(labels_layer.get_buffer(), 0, 0, lw, lh, fmt, Gegl.AbyssPolicy.CLAMP)
    _, ox, oy = labels_layer.get_offsets()
    # the result comes back in crop coordinates; place it relative to the labels layer
    return png.Image(lw, lh, channels, pixels), (ox - lx, oy - ly)
