"""The server's declared bounds on one request's work, checked before any work starts.

Every long endpoint of the app (:mod:`priorpaint.app.api`) checks its request against a
:class:`Limits` *before* it registers a job: a request over a bound is refused with one
line naming the bound and the flag that sets it.  ``priorpaint serve --help`` prints these
bounds (:func:`add_flags`, from each field's help text) and ``docs/api.md`` lists them.

The bounds on the *server* (engine slots, sessions, upload disk) live beside them: they are
flags of ``priorpaint serve`` too, and every one of them is a number here, so a test or a
bench can build a server with small bounds.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from typing import Any, List, Optional

from ..errors import InputError

MB = 1024 * 1024


def _bound(default, text: str):
    """A field of :class:`Limits`: its default and the help text its ``serve`` flag prints."""
    return field(default=default, metadata={"help": text})


@dataclass
class Limits:
    max_steps: int = _bound(5000, "optimisation steps of one projection or one edit (`steps` in an edit spec)")
    max_edits: int = _bound(64, "edit specs in one edit/preview request")
    max_spec_chars: int = _bound(64 * 1024, "characters of one request's edits JSON")
    max_json_depth: int = _bound(8, "nesting depth of the edits JSON (a list of objects is depth 2)")
    max_text_chars: int = _bound(256, "characters of a session/job/model id, name or box")
    max_image_mp: float = _bound(40.0, "megapixels of any image a request uses (photo, mask, strokes, ...)")
    max_request_mb: float = _bound(50.0, "MB of one upload request, all its files together (HTTP 413)")
    max_body_mb: float = _bound(4.0, "MB of any other request body, e.g. an API call's JSON (HTTP 413)")
    max_upload_disk_mb: float = _bound(1024.0, "MB of uploads and results this server keeps on disk; the "
                                               "oldest unused files are evicted to make room (HTTP 507 "
                                               "only when every file is in use)")
    max_file_age_s: float = _bound(3600.0, "seconds an upload or a result is kept on disk before it expires")
    max_request_steps: int = _bound(20000, "optimisation steps of one request, all its edits together")
    max_work_mb: float = _bound(2048.0, "MB of memory one request's full-resolution work may need, estimated "
                                        "from its pixels before it starts")
    max_client_vectors_mb: float = _bound(16.0, "MB of saved editing vectors one client keeps (its least "
                                                "recently used go first)")
    max_vectors_mb: float = _bound(512.0, "MB of saved editing vectors of all clients (the largest "
                                          "holder's least recently used go first)")
    max_client_jobs: int = _bound(4, "jobs one client may have waiting or running")
    max_jobs: int = _bound(32, "jobs of all clients waiting or running")
    max_client_sessions: int = _bound(8, "sessions one client may hold (its own oldest go first, "
                                         "never another client's)")
    max_address_jobs: int = _bound(8, "jobs of all clients of one remote address waiting or running (a "
                                      "client that drops its cookie is a new client, never a new address)")
    max_address_sessions: int = _bound(16, "sessions all clients of one remote address may hold (the "
                                           "address's largest holder's oldest go first)")
    max_address_vectors_mb: float = _bound(64.0, "MB of saved editing vectors of all clients of one address "
                                                 "(its largest holder's least recently used go first)")

    @staticmethod
    def flag(name: str) -> str:
        return "--" + name.replace("_", "-")

    def validate(self) -> "Limits":
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not v > 0:
                raise InputError(f"{self.flag(f.name)} must be a positive number, got {v!r}")
        return self

    # -- checks --------------------------------------------------------------------------
    def text(self, value: Any, what: str, allow_empty: bool = True) -> str:
        """A short text field, stripped; refused (without echoing it) when too long or not text."""
        if value is None:
            value = ""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise InputError(f"{what} must be a string, got {type(value).__name__}")
        if len(value) > self.max_text_chars:
            raise InputError(f"{what} is {len(value)} characters; the limit is {self.max_text_chars}")
        value = value.strip()
        if not value and not allow_empty:
            raise InputError(f"no {what} given")
        return value

    def steps(self, value: Any, what: str = "steps") -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            try:
                value = float(value)
            except (TypeError, ValueError, OverflowError):
                raise InputError(f"{what} must be a whole number, got {_short(value)}") from None
        if value != value or value in (float("inf"), float("-inf")) or value < 0 or value > self.max_steps \
                or int(value) != value:
            raise InputError(f"{what} must be between 0 and {self.max_steps} (a whole number; --max-steps), "
                             f"got {_short(value)}")
        return int(value)

    def edits_json(self, edits: Any) -> Any:
        """The parsed ``edits`` value (a JSON string or an already-decoded list), within the bounds."""
        if edits is None:
            return []
        if isinstance(edits, str):
            if len(edits) > self.max_spec_chars:
                raise InputError(f"edits are {len(edits)} characters; the limit is {self.max_spec_chars} "
                                 "(--max-spec-chars)")
            text = edits.strip()
            if not text:
                return []
            depth_of_text(text, self.max_json_depth)
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as e:
                raise InputError(f"edits must be a JSON list of edit specs: {e}") from None
        else:
            raw = edits
            depth(raw, self.max_json_depth)
            if len(json.dumps(raw, default=str)) > self.max_spec_chars:
                raise InputError(f"edits are over {self.max_spec_chars} characters (--max-spec-chars)")
        if isinstance(raw, dict):
            raw = [raw]
        if not isinstance(raw, list):
            raise InputError(f"edits must be a JSON list of edit specs, got {type(raw).__name__}")
        if len(raw) > self.max_edits:
            raise InputError(f"{len(raw)} edits in one request; the limit is {self.max_edits} (--max-edits)")
        return raw

    def spec_steps(self, specs: List[dict]) -> None:
        """Every ``steps`` of an edit spec within ``max_steps`` (each kind checks its own range
        too), and all of them together within ``max_request_steps``."""
        total = 0
        for i, spec in enumerate(specs):
            if isinstance(spec, dict) and spec.get("steps") is not None:
                total += self.steps(spec["steps"], f"edit {i} ({_short(spec.get('kind'))}): steps")
        if total > self.max_request_steps:
            raise InputError(f"this request's edits ask for {total} optimisation steps in all; the limit is "
                             f"{self.max_request_steps} (--max-request-steps)")

    @staticmethod
    def file_index(ref: Any, count: int) -> Optional[int]:
        """``N`` of a ``"file:N"`` reference when it is ASCII digits naming one of ``count``
        files, else ``None`` (``str.isdigit`` would accept "²", which ``int`` refuses)."""
        if not isinstance(ref, str) or not ref or len(ref) > 6 or not (ref.isascii() and ref.isdigit()):
            return None
        n = int(ref)
        return n if n < count else None

    def image_pixels(self, path: Optional[str], what: str) -> None:
        """Refuse an image over ``max_image_mp`` from its header alone (nothing is decoded)."""
        if not path:
            return
        from PIL import Image
        try:
            with Image.open(path) as im:
                w, h = im.size
        except Exception:  # not an image: the engine's reader names the problem
            return
        if w * h > self.max_image_mp * 1e6:
            raise InputError(f"{what} is {w}x{h} = {w * h / 1e6:.1f} megapixels; this server's limit is "
                             f"{self.max_image_mp:g} megapixels (--max-image-mp)")


    # -- memory ------------------------------------------------------------------------------
    def work(self, pixels: float, per_pixel: float, what: str) -> float:
        """Refuse work whose estimated peak memory (``pixels × per_pixel`` bytes) is over
        ``max_work_mb``, before it starts; the estimate in MB otherwise."""
        need = pixels * per_pixel / MB
        if need > self.max_work_mb:
            raise InputError(f"{what} would need about {need:,.0f} MB of memory ({pixels / 1e6:.1f} megapixels); "
                             f"this server's limit is {self.max_work_mb:g} MB (--max-work-mb): select a smaller "
                             "part of the photo or send a smaller photo")
        return need

    def project_work(self, path: Optional[str], adapt: bool = False) -> float:
        """``project``'s estimate: the decoded photo and its square (and a full composite with ``adapt``)."""
        size = image_size(path)
        if size is None:
            return 0.0
        per = OPEN_BYTES_PER_PX + (RENDER_BYTES_PER_PX if adapt else 0)
        return self.work(size[0] * size[1], per, "this projection" + (" with adapt" if adapt else ""))

    def render_work(self, session) -> float:
        """``edit``'s estimate: one full-resolution composite of the session's square."""
        side = int(session.crop.square[2])
        return self.work(side * side, RENDER_BYTES_PER_PX, f"this edit's {side}x{side} selection square")


#: peak bytes per pixel of the selection's square that one full-resolution composite (detail
#: mode, with its photo metrics) adds, and per pixel of the photo that opening one adds;
#: measured by ``priorpaint bench --only memory`` (36 MP: render ~35 B/px, open ~13 B/px)
RENDER_BYTES_PER_PX = 40
OPEN_BYTES_PER_PX = 20


def image_size(path: Optional[str]):
    """(width, height) from an image file's header, or ``None`` (no file, not an image)."""
    if not path:
        return None
    from PIL import Image
    try:
        with Image.open(path) as im:
            return im.size
    except Exception:
        return None


def depth(value: Any, limit: int, _d: int = 1) -> None:
    """Refuse a decoded JSON value nested deeper than ``limit`` (iteratively: no recursion bomb)."""
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (list, tuple, dict)):
            if d > limit:
                raise InputError(f"edits are nested deeper than {limit} levels (--max-json-depth)")
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))


_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def depth_of_text(text: str, limit: int) -> None:
    """Refuse JSON text nested deeper than ``limit`` before parsing it (strings are skipped)."""
    d = 0
    for m in _BRACKETS.finditer(text):
        t = m.group()
        if t in "[{":
            d += 1
            if d > limit:
                raise InputError(f"edits are nested deeper than {limit} levels (--max-json-depth)")
        elif t in "]}":
            d -= 1


def _short(v: Any, n: int = 40) -> str:
    """``repr`` of a value cut to ``n`` characters (errors never echo a large field)."""
    r = repr(v)
    return r if len(r) <= n else r[:n] + f"... ({len(r)} characters)"


def add_flags(parser) -> None:
    g = parser.add_argument_group("bounds on each request and each client (refused with one line, before any work)")
    for f in fields(Limits):
        g.add_argument(Limits.flag(f.name), dest=f.name, type=type(f.default), default=f.default,
                       help=f"{f.metadata['help']} (default {f.default:g})")


def from_args(args) -> Limits:
    return Limits(**{f.name: getattr(args, f.name) for f in fields(Limits) if hasattr(args, f.name)}).validate()
