"""What the GIMP plug-in asks the backend, in terms of crops and layers.

Only the crop travels: the plug-in cuts the selection's bounding square (with the same
context margin as the backend, clipped to the image) from the drawable and sends that
crop with its selection mask. Results come back placed inside the crop; the functions
here add the crop's offset so that every returned layer is in image coordinates.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import png
from .catalog import carried, clamp_strength, direction_spec, edits_title, list_directions, list_models, with_edit
from .client import BackendError, BridgeError, Client, ProgressFn, status_of
from .verdict import verdict_message

MARGIN = 0.1      # context margin on each side, as a fraction of the selection's longer side
MIN_SIZE = 8      # the backend refuses selections smaller than this (px)

# What a layer the plug-in adds is (recorded in the layer's parasite, never read from its name):
ROLE_RESULT = "result"                   # an edit's result, masked, over the photo
ROLE_RECONSTRUCTION = "reconstruction"   # Project: the model tuned to the photo re-rendering it
ROLE_MODEL_RENDERING = "model-rendering" # Project: the plain model's rendering of the selection
ROLE_LABELS = "labels"                   # Segment: the label map to paint on
ROLES = (ROLE_RESULT, ROLE_RECONSTRUCTION, ROLE_MODEL_RENDERING, ROLE_LABELS)


def layer_name(what: str) -> str:
    """A new layer's name, what it holds first (GIMP's Layers panel shows only its start):
    "head_turn +2 — priorpaint"."""
    return f"{what} — priorpaint"


def square_around(box: Sequence[int], size: Tuple[int, int], margin: float = MARGIN) -> Tuple[int, int, int]:
    """The margin-widened bounding square of ``box`` (x, y, w, h), slid inside the image where it fits.

    The same rule as the backend's crop, so the backend's square inside the crop equals
    this square.
    """
    x, y, w, h = box
    W, H = size
    side = int(math.ceil(max(w, h) * (1.0 + 2.0 * margin)))
    cx, cy = x + w / 2.0, y + h / 2.0
    x0, y0 = int(round(cx - side / 2.0)), int(round(cy - side / 2.0))
    x0 = min(x0, x)
    y0 = min(y0, y)
    x0 = max(x0, x + w - side)
    y0 = max(y0, y + h - side)
    if side <= W:
        x0 = min(max(x0, 0), W - side)
    if side <= H:
        y0 = min(max(y0, 0), H - side)
    return x0, y0, side


def crop_rect(box: Sequence[int], size: Tuple[int, int], margin: float = MARGIN) -> Tuple[int, int, int, int]:
    """The rectangle (x, y, w, h) to cut from the image: the square clipped to the image."""
    x0, y0, side = square_around(box, size, margin)
    W, H = size
    x1, y1 = min(x0 + side, W), min(y0 + side, H)
    x0, y0 = max(x0, 0), max(y0, 0)
    return x0, y0, x1 - x0, y1 - y0


def check_selection(box: Optional[Sequence[int]], size: Tuple[int, int]) -> Tuple[int, int, int, int]:
    """Validate a selection's bounding box (image coordinates); raise a user-facing error."""
    if box is None:
        raise BridgeError("the selection is empty: select the region to edit first (e.g. with the rectangle select tool)")
    x, y, w, h = (int(v) for v in box)
    W, H = size
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x1 <= x0 or y1 <= y0:
        raise BridgeError("the selection does not overlap the image: select a region inside the image")
    if x1 - x0 < MIN_SIZE or y1 - y0 < MIN_SIZE:
        raise BridgeError(f"the selection is {x1 - x0}x{y1 - y0} px; it must be at least {MIN_SIZE}x{MIN_SIZE} px")
    return x0, y0, x1 - x0, y1 - y0


@dataclass
class Crop:
    """What travels: the crop's pixels, its selection mask, and where it sits in the image."""
    x: int
    y: int
    image: png.Image          # RGB (3 channels) crop
    mask: bytes               # crop-sized gray selection mask, 0..255
    #: two eye centres (x1, y1, x2, y2) in crop pixels (continuous coordinates) for a face
    #: model's alignment, e.g. from two GIMP sample points on the eyes; None: detected
    eyes: Optional[Tuple[float, float, float, float]] = None

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height

    @classmethod
    def from_pixels(cls, x: int, y: int, w: int, h: int, pixels: bytes, channels: int, mask: bytes) -> "Crop":
        """Build from the drawable's pixels (1..4 channels) and the selection mask.

        Alpha is folded into the mask (transparent pixels are not selected) and the image
        is sent as RGB; gray is converted to RGB.
        """
        img = png.Image(w, h, channels, pixels)
        if len(mask) != w * h:
            raise ValueError(f"mask has {len(mask)} bytes for a {w}x{h} crop")
        if channels in (2, 4):
            alpha = img.channel(channels - 1)
            if alpha.count(255) != len(alpha):
                mask = bytes((m * a + 127) // 255 for m, a in zip(mask, alpha))
        if not any(mask):
            raise BridgeError("the selection is empty (or covers only transparent pixels): select a region to edit")
        return cls(x, y, img.to_rgb(), bytes(mask))

    def upload(self, client: Client) -> Tuple[dict, dict]:
        image = client.upload_file_data(png.encode_image(self.image), "crop.png")
        mask = client.upload_file_data(png.encode(self.width, self.height, 1, self.mask), "mask.png")
        return image, mask


@dataclass
class Layer:
    """A result layer in image coordinates: RGBA pixels, alpha = feathered edit mask."""
    name: str
    x: int
    y: int
    image: png.Image
    status: Dict[str, Any] = field(default_factory=dict)
    #: model-resolution pixels for a square of this side (the plug-in scales them); None: the
    #: layer is at the photo's resolution, alpha = feathered edit mask
    scale_to: Optional[int] = None
    role: str = ROLE_RESULT                  #: one of ROLES
    edits: List[dict] = field(default_factory=list)   #: the edit specs that made it


@dataclass
class Projection:
    session: str
    status: Dict[str, Any]
    crop: Crop
    square: Tuple[int, int, int]            # in image coordinates (may extend outside the image)
    reconstruction: Optional[png.Image]     # G(z_h) at model resolution
    adapted: Optional[png.Image]            # G'(z_h) at model resolution, when adapted


@dataclass
class Segmentation:
    session: str
    legend: Dict[str, List[int]]
    labels: Layer                            # label map (RGB(A)) placed over the layer box


# What the backend's stage names mean, in the words GIMP shows in its progress bar.
STAGE_WORDS = {
    "queued": "waiting in the backend's queue",
    "waiting for a free slot": "waiting for the backend (it is busy with other jobs)",
    "starting": "starting",
    "load": "loading the model",
    "crop": "cutting out the selection",
    "project": "fitting the selection to the model",
    "refine": "fitting the selection to the model",
    "edit": "applying the edit",
    "adapt": "tuning the model to this photo",
    "render": "blending the result into the photo",
    "composite": "blending the result into the photo",
    "segment": "finding the parts",
    "paint": "painting the concept",
}

COMPOSITE_MODES = ("detail", "replace", "warp")
COMPOSITE_LABELS = {"detail": "Keep photo detail", "replace": "Replace with generated pixels",
                    "warp": "Move the photo's pixels (pose edits)"}


def stage_words(stage: str) -> str:
    """A backend stage name (``project``, ``adapt``, ...) in plain words."""
    stage = (stage or "").strip()
    return STAGE_WORDS.get(stage, stage.replace("_", " "))


class Progress:
    """Maps each backend call onto a slice of one overall progress bar."""

    def __init__(self, callback: Optional[Callable[[float, str], None]], slices: Sequence[Tuple[str, float]]):
        self.callback = callback
        self.slices = list(slices)
        self.index = 0

    def stage(self, index: int) -> ProgressFn:
        start = sum(w for _, w in self.slices[:index])
        width = self.slices[index][1]
        label = self.slices[index][0]

        def report(fraction: float, stage: str, status: dict) -> None:
            if self.callback is not None:
                text = stage_words(stage) if stage and stage != "done" else label
                text = text[:1].upper() + text[1:]
                self.callback(min(1.0, start + width * max(0.0, min(1.0, fraction))), text)

        return report


def eyes_in_crop(points: Sequence[Tuple[float, float]], crop_rect: Sequence[int]) -> Optional[Tuple[float, ...]]:
    """Two points (image pixels of a drawable, e.g. GIMP sample points) inside the crop
    rectangle ``(x, y, w, h)`` -> eye centres in crop pixels (pixel centres: ``+ 0.5``);
    any other number of points inside: None (the backend detects the eyes)."""
    x, y, w, h = (int(v) for v in crop_rect)
    inside = [(px, py) for px, py in points if x <= px < x + w and y <= py < y + h]
    if len(inside) != 2:
        return None
    (ax, ay), (bx, by) = sorted(inside)
    return (ax - x + 0.5, ay - y + 0.5, bx - x + 0.5, by - y + 0.5)


def model_aligns(client: Client, model: str = "") -> bool:
    """Whether ``model`` (``""``: the backend's default) declares a face alignment (``models``)."""
    for row in list_models(client):
        if (row.get("id") == model) if model else row.get("default"):
            return bool(row.get("aligned"))
    return False


def project(client: Client, crop: Crop, model: str = "", steps: Optional[int] = None, seed: int = 0,
            adapt: bool = False,
            on_progress: Optional[ProgressFn] = None, on_job=None, should_cancel=None,
            fetch_images: bool = True) -> Projection:
    """Project the crop's selection; the session id is reused by later edits.

    ``steps=None`` leaves the number of optimisation steps to the backend's default. The
    crop's ``eyes`` go to a face model (one the ``models`` listing marks ``aligned``)
    through ``project_options``; a backend without that endpoint detects them (a note says so).
    """
    image, mask = crop.upload(client)
    data: List[Any] = [image, mask, "", model, None if steps is None else int(steps), int(seed), bool(adapt)]
    api, notes = "project", []
    if crop.eyes is not None and model_aligns(client, model):
        if client.endpoint_inputs("project_options"):
            api = "project_options"
            data.append(json.dumps({"eyes": ",".join(f"{v:g}" for v in crop.eyes)}))
        else:
            notes.append("this backend cannot take eye positions: it detected the eyes itself")
    outputs = client.call(api, data, on_progress=on_progress, on_job=on_job, should_cancel=should_cancel)
    st = status_of(outputs)
    if notes:
        st["notes"] = notes + _status_notes(st)
    session = st.get("session")
    if not session:
        raise BackendError(f"the backend's projection returned no session: {st!r}")
    sq = st.get("square") or [0, 0, max(crop.width, crop.height)]
    square = (int(sq[0]) + crop.x, int(sq[1]) + crop.y, int(sq[2]))
    recon = adapted = None
    if fetch_images:
        if len(outputs) > 2 and outputs[2]:
            recon = png.decode(client.download(outputs[2]))
        if len(outputs) > 3 and outputs[3]:
            adapted = png.decode(client.download(outputs[3]))
    return Projection(session=str(session), status=st, crop=crop, square=square,
                      reconstruction=recon, adapted=adapted)


def layer_view(projection: Projection) -> png.Image:
    """The crop's part under the session's layers (the status's ``layer`` box, crop pixels):
    what a photo-resolution preview shows edited. Unaligned, the whole crop; an aligned face
    crop (a rotated square): the box around it."""
    crop, lb = projection.crop, projection.status.get("layer")
    if not isinstance(lb, dict):
        return crop.image
    x, y, w, h = (int(lb.get(k, 0)) for k in ("x", "y", "w", "h"))
    if (x, y, w, h) == (0, 0, crop.width, crop.height) or w <= 0 or h <= 0:
        return crop.image
    return crop.image.crop(x, y, w, h)


def supports_composite(client: Client) -> bool:
    """Whether the backend's ``edit`` endpoint takes the ``composite`` input (from /gradio_api/info)."""
    names = client.endpoint_inputs("edit")
    return bool(names) and ("composite" in names or len(names) >= 5)


def _check_composite(composite: Optional[str]) -> None:
    if composite is not None and composite not in COMPOSITE_MODES:
        raise BridgeError(f"composite must be one of {', '.join(COMPOSITE_MODES)}, got {composite!r}")


def edit(client: Client, projection: Projection, edits: List[dict], adapt: bool, name: str,
         files: Optional[List[bytes]] = None, on_progress: Optional[ProgressFn] = None, on_job=None,
         should_cancel=None, composite: Optional[str] = None) -> Layer:
    """Apply edit specs to a projected session; return the result layer in image coordinates.

    ``composite`` (``"detail"``, ``"replace"`` or ``"warp"``, None = the backend's default) is sent
    only to a backend whose ``edit`` declares it; otherwise the layer's status carries a
    note saying the backend's own compositing was used.
    """
    _check_composite(composite)
    file_refs = None
    if files:
        file_refs = [client.upload_file_data(b, f"spec{i}.png") for i, b in enumerate(files)]
    data: List[Any] = [projection.session, json.dumps(edits), bool(adapt), file_refs]
    local_notes: List[str] = []
    if supports_composite(client):
        data.append(composite or "detail")   # a backend with the choice needs all five inputs
    elif composite is not None:
        local_notes.append(f"this backend has no compositing choice; '{COMPOSITE_LABELS[composite]}' "
                           f"was not applied (update the backend)")
    outputs = client.call("edit", data, on_progress=on_progress, on_job=on_job, should_cancel=should_cancel)
    st = status_of(outputs)
    if local_notes:
        st["notes"] = list(st.get("notes") or []) + local_notes
    box = st.get("layer")
    if not isinstance(box, dict) or len(outputs) < 3 or not outputs[2]:
        raise BackendError(f"the backend's edit returned no layer: {st!r}")
    layer_img = png.decode(client.download(outputs[2])).to_rgba()
    if (layer_img.width, layer_img.height) != (int(box["w"]), int(box["h"])):
        raise BackendError(f"the layer image is {layer_img.width}x{layer_img.height} but the status says "
                           f"{box['w']}x{box['h']}")
    return Layer(name=name, x=int(box["x"]) + projection.crop.x, y=int(box["y"]) + projection.crop.y,
                 image=layer_img, status=st, edits=list(edits))


def _status_notes(status: Dict[str, Any]) -> List[str]:
    notes = status.get("notes") if isinstance(status, dict) else None
    return [str(n) for n in notes] if isinstance(notes, list) else []


def notes_of(status: Dict[str, Any]) -> List[str]:
    """The backend's notes in a status (clamped strengths, resized inputs, ...), each one line;
    the verdict's line first when the edit was not carried (never a silent smear)."""
    lines = _status_notes(status)
    message = verdict_message(status)
    return ([message] if message and message not in lines else []) + lines


def preview(client: Client, projection: Projection, edits: List[dict], should_cancel=None,
            composite: Optional[str] = None, size: Optional[int] = None, on_outputs=None) -> png.Image:
    """A fast preview of the edit for the selection's square (no G′).

    ``on_outputs``: as :meth:`Client.call`'s (a slow model's backend streams an approximate
    frame first; :class:`~gimp_bridge.preview.PreviewWorker` shows it); the exact frame is returned.

    With ``composite`` (``"detail"`` / ``"replace"``): the square composited at the photo's
    resolution as the edit will be, shrunk by the backend to at most ``size`` px a side. A
    backend without that option answers with an error once; then (and without
    ``composite``) the preview is ``G_F`` of the edited latent at model resolution, and
    ``client.preview_model_only`` is set so later previews do not ask again.
    """
    data = json.dumps(edits)
    _check_composite(composite)
    if composite is not None and not client.preview_model_only:
        options: Dict[str, Any] = {"edits": edits, "composite": composite}
        if size is not None:
            options["size"] = int(size)
        try:
            outputs = client.call("preview", [projection.session, json.dumps(options)], should_cancel=should_cancel,
                                  on_outputs=on_outputs)
        except BackendError as exc:
            if "session" in str(exc):
                raise
            client.preview_model_only = True     # an older backend: edits must be a list there
            outputs = client.call("preview", [projection.session, data], should_cancel=should_cancel,
                                  on_outputs=on_outputs)
    else:
        outputs = client.call("preview", [projection.session, data], should_cancel=should_cancel,
                              on_outputs=on_outputs)
    if not outputs or not outputs[0]:
        raise BackendError("the backend's preview returned no image")
    return png.decode(client.download(outputs[0])).to_rgb()


def semantic_edit(client: Client, crop: Crop, direction: str, strength: float, adapt: bool = True,
                  model: str = "", steps: Optional[int] = None, progress: Optional[Callable[[float, str], None]] = None,
                  on_job=None, should_cancel=None, projection: Optional[Projection] = None,
                  directions: Optional[Sequence[dict]] = None, composite: Optional[str] = None,
                  base_edits: Sequence[dict] = ()) -> Layer:
    """Project the crop (unless ``projection`` is given), move along a named direction, return the layer.

    ``base_edits``: an earlier result's edits to start from (the direction replaces its own).

    The strength is clamped to the direction's range (from ``directions``, else the
    backend's listing) and the layer is named with the strength actually used.
    """
    notes: List[str] = []
    if direction:
        if directions is None:
            directions = list_directions(client, model)
        strength, note = clamp_strength(directions, direction, strength)
        if note:
            notes.append(note)
    if projection is None:
        p = Progress(progress, [("Fitting the selection to the model", 0.5), ("Editing", 0.5)])
        projection = project(client, crop, model=model, steps=steps, adapt=False, on_progress=p.stage(0),
                             on_job=on_job, should_cancel=should_cancel, fetch_images=False)
        stage = p.stage(1)
    else:
        stage = Progress(progress, [("Editing", 1.0)]).stage(0)
    edits = with_edit(base_edits, direction_spec(direction, strength)) if direction else list(base_edits)
    name = layer_name(edits_title(edits) or "reconstruction")
    layer = edit(client, projection, edits, adapt, name, on_progress=stage, on_job=on_job,
                 should_cancel=should_cancel, composite=composite)
    if notes:
        layer.status["notes"] = notes + [n for n in _status_notes(layer.status) if "clamped" not in n]
    return layer


def paint_concept(client: Client, crop: Crop, concept: str, mode: str, adapt: bool = True, model: str = "",
                  steps: Optional[int] = None, progress=None, on_job=None, should_cancel=None,
                  composite: Optional[str] = None, base_edits: Sequence[dict] = ()) -> Layer:
    """Add or remove a concept's units inside the selection (the painted region is the selection),
    after ``base_edits`` (an earlier result's directions)."""
    if mode not in ("add", "remove"):
        raise BridgeError(f"mode must be 'add' or 'remove', got {mode!r}")
    p = Progress(progress, [("Fitting the selection to the model", 0.5), ("Painting", 0.5)])
    proj = project(client, crop, model=model, steps=steps, adapt=False, on_progress=p.stage(0),
                   on_job=on_job, should_cancel=should_cancel, fetch_images=False)
    paint_mask = png.encode(crop.width, crop.height, 1, crop.mask)
    spec = {"kind": "paint", "concept": concept, "mode": mode, "mask": "file:0"}
    specs = carried(base_edits) + [spec]
    return edit(client, proj, specs, adapt, layer_name(edits_title(specs)), files=[paint_mask],
                on_progress=p.stage(1), on_job=on_job, should_cancel=should_cancel, composite=composite)


def project_layers(client: Client, crop: Crop, model: str = "", steps: Optional[int] = None, adapt: bool = True,
                   progress=None, on_job=None, should_cancel=None) -> Tuple[Projection, List[Layer]]:
    """Projection as layers: G(z) and (with ``adapt``) the round trip through G′ composited.

    The G(z) reconstruction comes at model resolution and is returned with the square's
    geometry (``scale_to``); the plug-in scales it to the square. An aligned face crop (the
    status's ``alignment``: a rotated square) gets its G(z) layer from the edit endpoint
    instead, warped back into the photo like every result layer. The G′ layer is the edit
    endpoint's round trip (no edits) composited with ``replace`` (a ``detail`` round trip
    would be the photo itself), placed like any result layer.
    """
    p = Progress(progress, [("Fitting the selection to the model", 0.6 if adapt else 1.0)]
                 + ([("Tuning the model to this photo", 0.4)] if adapt else []))
    proj = project(client, crop, model=model, steps=steps, adapt=False, on_progress=p.stage(0),
                   on_job=on_job, should_cancel=should_cancel)
    layers: List[Layer] = []
    gz_name = layer_name("model's own rendering")
    if proj.status.get("alignment"):
        layers.append(edit(client, proj, [], False, gz_name, on_job=on_job, should_cancel=should_cancel,
                           composite="replace"))
        layers[-1].role = ROLE_MODEL_RENDERING
    elif proj.reconstruction is not None:
        x0, y0, side = proj.square
        layers.append(Layer(name=gz_name, x=x0, y=y0, image=proj.reconstruction.to_rgba(), status=proj.status,
                            scale_to=side, role=ROLE_MODEL_RENDERING))
    if adapt:
        layers.append(edit(client, proj, [], True, layer_name("fit to this photo"), on_progress=p.stage(1),
                           on_job=on_job, should_cancel=should_cancel, composite="replace"))
        layers[-1].role = ROLE_RECONSTRUCTION
    return proj, layers


def segment(client: Client, crop: Crop, model: str = "", steps: Optional[int] = None, progress=None, on_job=None,
            should_cancel=None) -> Segmentation:
    """Project the crop and return the label map over the layer box (image coordinates)."""
    p = Progress(progress, [("Fitting the selection to the model", 0.8), ("Finding the parts", 0.2)])
    proj = project(client, crop, model=model, steps=steps, adapt=False, on_progress=p.stage(0),
                   on_job=on_job, should_cancel=should_cancel, fetch_images=False)
    outputs = client.call("segment", [proj.session], on_progress=p.stage(1), on_job=on_job,
                          should_cancel=should_cancel)
    st = status_of(outputs)
    legend = st.get("legend") or {}
    if len(outputs) < 2 or not outputs[1]:
        raise BackendError(f"the backend's segmentation returned no label map: {st!r}")
    labels = png.decode(client.download(outputs[1])).to_rgba()
    box = st.get("layer")
    if isinstance(box, dict):
        x, y = int(box["x"]) + crop.x, int(box["y"]) + crop.y
    else:
        # The label map covers the layer box: the square clipped to the image, i.e. the crop.
        x, y = crop.x, crop.y
    return Segmentation(session=proj.session, legend={str(k): list(v) for k, v in legend.items()},
                        labels=Layer(name=layer_name("labels"), x=x, y=y, image=labels, status=st,
                                     role=ROLE_LABELS))


def apply_segmentation(client: Client, session: str, labels: png.Image, crop_origin: Tuple[int, int],
                       adapt: bool = True, save_vector: str = "", legend: Optional[Dict[str, Sequence[int]]] = None,
                       progress=None, on_job=None, should_cancel=None, composite: Optional[str] = None) -> Layer:
    """Apply an edited label map (sized like the layer box) to the session it came from.

    The label map goes as painted (GIMP's brushes antialias): the spec asks the backend to
    snap its colours to the legend (``snap``); with ``legend``, the legend travels with it.
    """
    spec: Dict[str, Any] = {"kind": "segment", "labels": "file:0", "snap": True}
    if legend:
        spec["legend"] = {k: [int(c) for c in v[:3]] for k, v in legend.items()}
    if save_vector:
        spec["save_vector"] = save_vector
    dummy = Crop(crop_origin[0], crop_origin[1], png.Image(1, 1, 3, b"\0\0\0"), b"\xff")
    proj = Projection(session=session, status={}, crop=dummy, square=(0, 0, 0), reconstruction=None, adapted=None)
    p = Progress(progress, [("Segmentation edit", 1.0)])
    return edit(client, proj, [spec], adapt, layer_name("segmentation edit"),
                files=[png.encode_image(labels.to_rgba())], on_progress=p.stage(0), on_job=on_job,
                should_cancel=should_cancel, composite=composite)
