"""The API's typed contract: what a request asks, what a job reports while it runs and what
it returns, and the one serialiser between these and the JSON the wire carries.

Nothing here knows Gradio.  :mod:`priorpaint.app.service` takes and yields these types;
:mod:`priorpaint.app.endpoints` only translates a Gradio call's positional values into a
request (:meth:`ProjectRequest.parse` and friends) and a result into the endpoint's outputs
(:func:`status` / :func:`to_wire` for the status JSON, the images as they are).

The choices a request may make are Enums read from where the method declares them:
:class:`Init` from :data:`priorpaint.projection.project.PUBLIC_INITS`, :class:`Composite`
from :data:`priorpaint.compositing.warp.RENDER_MODES`, :class:`Method` from
:data:`priorpaint.adaptation.gprime.METHODS`.  A result's figures (PSNRs, seconds, notes, the
measures a session report carries) travel in its ``report`` dict, passed through as they come.
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..adaptation.gprime import METHODS
from ..compositing.warp import RENDER_MODES
from ..errors import InputError
from ..projection.project import PUBLIC_INITS
from . import kinds
from .limits import Limits


def _choices(name: str, values: Sequence[str], doc: str):
    e = enum.Enum(name, {v.upper(): v for v in values}, type=str, module=__name__)
    e.__doc__ = doc
    return e


Init = _choices("Init", PUBLIC_INITS, "How a projection starts (``projection.project.PUBLIC_INITS``).")
Composite = _choices("Composite", RENDER_MODES, "How a render is blended into the photo (``warp.RENDER_MODES``).")
Method = _choices("Method", METHODS, "How G′ is fitted (``adaptation.gprime.METHODS``).")

PREVIEW_MAX_SIZE = 1024
#: the ``verdict`` endpoint's options object (:class:`priorpaint.app.verdict.VerdictRequest`) and its size
VERDICT_OPTIONS, VERDICT_DEFAULT_SIZE = ("composite", "size"), 256


# -- loose wire values -> typed values -------------------------------------------------------

def number(value, what: str, lo: float, hi: float, integer: bool = True):
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
    if isinstance(value, bool):
        raise InputError(f"{what} must be a number, got {shown}")
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{what} must be a number, got {shown}") from None
    if not math.isfinite(v) or v < lo or v > hi:
        a, b = (int(lo), int(hi)) if integer else (f"{lo:g}", f"{hi:g}")
        raise InputError(f"{what} must be between {a} and {b}, got {shown}")
    if integer:
        if v != int(v):
            raise InputError(f"{what} must be a whole number, got {value!r}")
        return int(v)
    return v


def flag(value, what: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", ""):
        return value.strip().lower() in ("true", "1")
    raise InputError(f"{what} must be true or false, got a {type(value).__name__}")


def choice(enum_cls, value, what: str, default):
    """``value`` as a member of ``enum_cls`` (``default`` for null or empty text)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, enum_cls):
        return value
    names = ", ".join(m.value for m in enum_cls)
    try:
        return enum_cls(value.strip())
    except (AttributeError, ValueError):
        shown = value.strip()[:40] if isinstance(value, str) else value
        raise InputError(f"{what} must be one of {names}, got {shown!r}") from None


def file_path(value: Any, what: str, required: bool = True) -> Optional[str]:
    """The server path of a Gradio file value (a path string, a FileData dict or object)."""
    if value is None or value == "" or value == []:
        if required:
            raise InputError(f"no {what} given: upload one")
        return None
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise InputError(f"{what} must be one file, got {len(value)}")
        value = value[0]
    if isinstance(value, dict):
        value = value.get("path") or value.get("name")
    else:
        value = getattr(value, "path", None) or getattr(value, "name", None) or value
    if not isinstance(value, (str, Path)) or not str(value):
        raise InputError(f"{what} is not a file")
    return str(value)


def resolve_files(specs: List[dict], files: Sequence) -> List[dict]:
    """Replace ``"file:N"`` references in edit specs by the server path of ``files[N]``.  The
    fields that name files are those the edit kinds declare (``file_fields``): there a client
    can only use files it uploaded, never read other files on the server."""
    image_fields, inline = kinds.file_fields(), kinds.inline_fields()
    paths = [file_path(f, f"file {i}") for i, f in enumerate(files or [])]
    out = []
    for spec in specs:
        spec = dict(spec)
        for k, v in list(spec.items()):
            if k in image_fields and isinstance(v, str) and not v.startswith("file:"):
                raise InputError(f"edit {spec.get('kind')!r}: {k} must be a reference \"file:N\" to the N-th "
                                 f"file sent with the edits, got {str(v)[:60]!r}")
            if k in inline and isinstance(v, dict):
                continue   # e.g. a legend given inline, {name: [r, g, b]} (checked by the edit)
            if k in image_fields and v is not None and not isinstance(v, str):
                raise InputError(f"edit {spec.get('kind')!r}: {k} must be a reference \"file:N\", "
                                 f"got a {type(v).__name__}")
            if isinstance(v, str) and v.startswith("file:"):
                index = Limits.file_index(v[5:], len(paths))
                if index is None:
                    raise InputError(f"edit {spec.get('kind')!r}: {k} refers to {v[:40]!r} but "
                                     f"{len(paths)} file(s) were sent with the edits (file:0 ... file:N)")
                spec[k] = paths[index]
        out.append(spec)
    return out


def refs_for_paths(value: Any, files: Sequence) -> Any:
    """``value`` (a status: dicts, lists, strings) with each server path of ``files[N]`` given
    back as the client's own ``"file:N"`` (an applied edit echoes its resolved spec, and no
    response carries a server path)."""
    paths = {}
    for i, f in enumerate(files or []):
        try:
            paths[file_path(f, f"file {i}")] = f"file:{i}"
        except InputError:
            continue
    if not paths:
        return value
    if isinstance(value, dict):
        return {k: refs_for_paths(v, files) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [refs_for_paths(v, files) for v in value]
    return paths.get(value, value) if isinstance(value, str) else value


def file_refs(spec_list: Sequence[dict]) -> Tuple[List[dict], List[str]]:
    """The reverse of :func:`resolve_files`: (specs with every file field a ``"file:N"``
    reference, the files in that order)."""
    image_fields, out, files = kinds.file_fields(), [], []
    for spec in spec_list:
        spec = dict(spec)
        for k in image_fields:
            if isinstance(spec.get(k), str):
                files.append(spec[k])
                spec[k] = f"file:{len(files) - 1}"
        out.append(spec)
    return out, files


def parse_edit_list(edits: Any, files: Sequence = (), limits: Optional[Limits] = None) -> List[dict]:
    """Edit specs from the API's JSON string (or a list), within the limits, with file references resolved."""
    from ..edits.registry import parse_specs

    limits = limits or Limits()
    raw = limits.edits_json(edits)
    for i, spec in enumerate(raw):
        if isinstance(spec, str) and len(spec) > limits.max_text_chars * 4:
            raise InputError(f"edit {i} is {len(spec)} characters; the limit is {limits.max_text_chars * 4}")
    specs = parse_specs(raw)
    limits.spec_steps(specs)
    out = resolve_files(specs, files)
    inline = kinds.inline_fields()
    for spec in out:
        for k in kinds.file_fields():
            if isinstance(spec.get(k), str) and k not in inline:
                limits.image_pixels(spec[k], f"edit {spec.get('kind')!r}: {k}")
    return out


def composite_mode(value) -> str:
    """The ``composite`` option of ``edit``: ``"detail"`` (default, also for ``""``/null), ``"replace"`` or ``"warp"``."""
    return choice(Composite, value, "composite", Composite.DETAIL).value


PROJECT_OPTIONS = ("align", "eyes", "init")


def json_options(text: str, what: str, allowed: Sequence[str], example: str, listing: str) -> dict:
    """A request's options: JSON object text (``""``: none), keys among ``allowed`` (``listing`` names them)."""
    if not text:
        return {}
    try:
        opts = json.loads(text)
    except ValueError:
        raise InputError(f"{what} must be a JSON object such as {example}, got {text[:60]!r}") from None
    if not isinstance(opts, dict):
        raise InputError(f"{what} must be a JSON object such as {example}, got a {type(opts).__name__}")
    unknown = sorted(set(opts) - set(allowed))
    if unknown:
        raise InputError(f"{listing} are {', '.join(allowed)}; unknown: {', '.join(map(str, unknown))[:80]}")
    return dict(opts)


def project_options(options: Any, limits: Limits) -> dict:
    """``project_options``'s JSON object -> the extra keywords of :meth:`ProjectRequest.parse`."""
    return json_options(limits.text(options, "options"), "options", PROJECT_OPTIONS, '{"align": false}',
                        "projection options")


# -- requests ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProjectRequest:
    image: str                                   # server path of the uploaded photo
    mask: Optional[str] = None                   # server path of the selection mask, or
    box: Optional[Tuple[int, int, int, int]] = None   # the selection box (exactly one of the two)
    model: Optional[str] = None                  # None: the server's default model
    steps: Optional[int] = None                  # None: the server's default steps
    seed: int = 0
    adapt: bool = False
    align: bool = True
    eyes: Optional[Tuple[float, float, float, float]] = None
    init: "Init" = Init.AUTO

    @classmethod
    def parse(cls, image, mask=None, box="", model="", steps=None, seed=0, adapt=False, align=True,
              eyes="", init="auto", limits: Optional[Limits] = None) -> "ProjectRequest":
        """A request from the endpoint's loose values (a clear one-line error for each bad one)."""
        from ..compositing.align import parse_eyes
        from ..compositing.crop import parse_box

        L = limits or Limits()
        path = file_path(image, "image")
        mask_path = file_path(mask, "mask", required=False)
        box_text = L.text(box, "box")
        if bool(mask_path) == bool(box_text):
            raise InputError("give exactly one of a mask or a box (\"X,Y,W,H\") for the selection")
        box_t = parse_box(box_text) if box_text else None
        if box_t is not None and any(abs(v) > 10 ** 6 for v in box_t):
            raise InputError(f"box {box_text!r} is far outside any image (values must be under 1000000)")
        steps = None if steps is None or steps == "" else L.steps(steps)
        seed = number(seed if seed not in (None, "") else 0, "seed", 0, 2 ** 31 - 1)
        model = L.text(model, "model") or None
        adapt = flag(adapt, "adapt")
        align = True if align in (None, "") else flag(align, "align")
        eyes_text = L.text(eyes, "eyes")
        eyes_t = parse_eyes(eyes_text) if eyes_text else None
        init_text = init.value if isinstance(init, Init) else (L.text(init, "init") or Init.AUTO.value)
        if init_text not in {m.value for m in Init}:
            names = [m.value for m in Init]
            raise InputError(f"init must be {', '.join(names[:-1])} or {names[-1]}, got {init_text!r}")
        init = Init(init_text)
        return cls(image=path, mask=mask_path, box=tuple(box_t) if box_t else None, model=model, steps=steps,
                   seed=seed, adapt=adapt, align=align, eyes=eyes_t, init=init)


@dataclass(frozen=True)
class EditRequest:
    session: str
    edits: Tuple[dict, ...] = ()                 # parsed specs, file references resolved to server paths
    adapt: bool = False
    composite: "Composite" = Composite.DETAIL
    method: Optional["Method"] = None            # None: G′'s default method

    @classmethod
    def parse(cls, session, edits="[]", adapt=False, files=None, composite="detail",
              limits: Optional[Limits] = None) -> "EditRequest":
        L = limits or Limits()
        mode = choice(Composite, composite, "composite", Composite.DETAIL)
        specs = parse_edit_list(edits, files or [], L)   # a bad spec is refused before any work
        return cls(session=L.text(session, "session"), edits=tuple(specs), adapt=flag(adapt, "adapt"),
                   composite=mode)


@dataclass(frozen=True)
class PreviewRequest:
    """The cheap edits of a session rendered at once.  ``composite`` None: the model-resolution
    rendering; else the selection's layer box composited at the photo's resolution, at most
    ``size`` pixels a side."""
    session: str
    edits: Tuple[dict, ...] = ()
    composite: Optional["Composite"] = None
    size: Optional[int] = None

    @classmethod
    def parse(cls, session, edits="[]", files=None, limits: Optional[Limits] = None) -> "PreviewRequest":
        """``edits``: a JSON list of specs, or an object ``{"edits": [...], "composite": ..., "size": N}``."""
        L = limits or Limits()
        sid = L.text(session, "session")
        raw = L.edits_json(edits)   # the length and depth bounds, before anything else
        mode = size = None
        if len(raw) == 1 and isinstance(raw[0], dict) and "edits" in raw[0] and "kind" not in raw[0]:
            opts = raw[0]
            unknown = sorted(set(opts) - {"edits", "composite", "size"})
            if unknown:
                raise InputError(f"preview options are edits, composite and size; unknown: {', '.join(unknown)}")
            mode = choice(Composite, opts.get("composite"), "composite", Composite.DETAIL)
            size = opts.get("size")
            size = PREVIEW_MAX_SIZE if size in (None, "") else number(size, "preview size", 16, PREVIEW_MAX_SIZE)
            raw = opts["edits"]
        specs = parse_edit_list(raw, files or [], L)
        return cls(session=sid, edits=tuple(specs), composite=mode, size=size)


# -- what a job yields ------------------------------------------------------------------------

@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int

    @classmethod
    def of(cls, box) -> "Box":
        x, y, w, h = (int(v) for v in box)
        return cls(x, y, w, h)

    def tuple(self) -> Tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)


@dataclass
class Progress:
    """A job (or a download) on its way: the stage it is in and how far it got."""
    stage: str
    fraction: float
    job: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)   # what else the job's status carries, as it is


@dataclass
class ProjectResult:
    job: str
    session: str
    model: str
    layer: Box                    # where every layer of the session goes in the photo
    report: Dict[str, Any]        # PSNRs, seconds, notes, alignment, ...: passed through
    crop: np.ndarray              # the selection at model resolution (RGB uint8)
    reconstruction: np.ndarray    # G(z_h)
    adapted: Optional[np.ndarray] = None   # G′ (with ``adapt``)


@dataclass
class EditResult:
    job: str
    session: str
    layer: Box
    adapt: bool
    report: Dict[str, Any]        # the render's measures, seconds, notes: passed through
    photo: Any                    # the whole photo with the edit composited (PIL image, the photo's mode)
    layer_image: np.ndarray       # the result layer (RGBA, alpha = the feathered edit mask)
    generated: np.ndarray         # the generator's square


@dataclass
class SegmentResult:
    job: str
    session: str
    legend: Dict[str, List[int]]
    report: Dict[str, Any]
    labels: np.ndarray


@dataclass
class DownloadResult:
    model: str
    path: str
    bytes: int
    already_present: bool


@dataclass
class CancelResult:
    id: str
    jobs: List[str]

    @property
    def cancelled(self) -> bool:
        return bool(self.jobs)


# -- what this server offers -------------------------------------------------------------------

#: the contract's version: 2 is the typed contract (``capabilities`` exists); clients of an
#: older server, without the ``capabilities`` endpoint, fall back to counting inputs
VERSION = 2


def capabilities(default_steps: int, max_steps: int) -> dict:
    """What a client may ask of this server, read from the declarations: the choices of each
    Enum, the steps, and per edit kind its preview cost, whether it survives a new
    projection, its strength field and range, and its file fields."""
    out = {"version": VERSION, "init": [m.value for m in Init], "composite": [m.value for m in Composite],
           "method": [m.value for m in Method], "default_steps": int(default_steps), "max_steps": int(max_steps),
           "preview_max_size": PREVIEW_MAX_SIZE, "kinds": {},
           "verdict": {"options": list(VERDICT_OPTIONS), "default_size": VERDICT_DEFAULT_SIZE,
                       "min_size": 16, "max_size": PREVIEW_MAX_SIZE}}
    for name, k in kinds.edit_kinds().items():
        s = k.strength
        out["kinds"][name] = {"preview": k.preview.value, "survives_reprojection": k.survives_reprojection,
                              "strength": None if s is None else {"field": s.field, "min": s.lo, "max": s.hi},
                              "file_fields": list(k.file_fields), "inline_fields": list(k.inline_fields)}
    return out


# -- the one serialiser -----------------------------------------------------------------------

def clean(v):
    """A value for JSON: NaN/inf become null, tuples lists, numpy scalars numbers, Enums their value."""
    if isinstance(v, dict):
        return {str(k): clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [clean(x) for x in v]
    if isinstance(v, enum.Enum):
        return v.value
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return v if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (str, int, bool)) or v is None:
        return v
    return str(v)


def _done(job: Optional[str], **rest) -> dict:
    d: Dict[str, Any] = {"done": True, "stage": "done", "fraction": 1.0}
    if job is not None:
        d["job"] = job
    d.update(rest)
    return d


def status(obj) -> dict:
    """The status object the wire carries for a progress step or a result (images left out)."""
    if isinstance(obj, Progress):
        d: Dict[str, Any] = {"done": False, "stage": obj.stage, "fraction": obj.fraction}
        if obj.job is not None:
            d["job"] = obj.job
        d.update(obj.extra)
        return clean(d)
    if isinstance(obj, ProjectResult):
        d = _done(obj.job, session=obj.session, model=obj.model)
        d.update(obj.report)
        d["layer"] = _box_dict(obj.layer)
        return clean(d)
    if isinstance(obj, EditResult):
        d = _done(obj.job, session=obj.session)
        d.update(obj.report)
        d.update(layer=_box_dict(obj.layer), adapt=bool(obj.adapt))
        return clean(d)
    if isinstance(obj, SegmentResult):
        d = _done(obj.job, session=obj.session, legend=obj.legend)
        d.update(obj.report)
        return clean(d)
    if isinstance(obj, DownloadResult):
        return clean(_done(None, model=obj.model, present=True, file=Path(obj.path).name, bytes=obj.bytes,
                           already_present=obj.already_present))
    if isinstance(obj, CancelResult):
        return {"cancelled": obj.cancelled, "id": obj.id, "jobs": list(obj.jobs)}
    if isinstance(obj, (ProjectRequest, EditRequest, PreviewRequest)):
        return clean({f.name: getattr(obj, f.name) for f in fields(obj)})
    raise TypeError(f"not a contract type: {type(obj).__name__}")


def _box_dict(box: Box) -> dict:
    return {"x": box.x, "y": box.y, "w": box.w, "h": box.h}


def to_wire(obj) -> str:
    """:func:`status` as the JSON text the endpoints send."""
    return json.dumps(status(obj), allow_nan=False)


def from_wire(text: str):
    """A status JSON text (as :func:`to_wire` writes it) back as a :class:`Progress`, or the
    finished status as a plain dict (a client reads its figures by name)."""
    d = json.loads(text)
    if not isinstance(d, dict):
        raise InputError("a status is a JSON object")
    if d.get("done") is False:
        extra = {k: v for k, v in d.items() if k not in ("done", "stage", "fraction", "job")}
        return Progress(stage=d.get("stage", ""), fraction=float(d.get("fraction") or 0.0), job=d.get("job"),
                        extra=extra)
    return d
