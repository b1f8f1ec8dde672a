"""The ``verdict`` endpoint's request: whether the fast edits of a session can be carried on its
photo, measured on the live preview's square before anything is rendered
(:meth:`priorpaint.session.EditSession.preview_verdict`).  Its own module so that the contract
stays one readable page; the options and their bounds are declared in :mod:`.contract`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from .contract import (PREVIEW_MAX_SIZE, VERDICT_DEFAULT_SIZE, VERDICT_OPTIONS, Composite, choice, json_options,
                       number, parse_edit_list)
from .limits import Limits

EXAMPLE = '{"size": 256}'


@dataclass(frozen=True)
class VerdictRequest:
    """``options``: a JSON object (or ``""``), every key optional: ``composite``
    ("detail"|"replace"|"warp", default "detail") and ``size`` (16..1024 px, default 256)."""
    session: str
    edits: Tuple[dict, ...] = ()
    composite: Composite = Composite.DETAIL
    size: int = VERDICT_DEFAULT_SIZE

    @classmethod
    def parse(cls, session, edits="[]", options="", limits: Optional[Limits] = None) -> "VerdictRequest":
        L = limits or Limits()
        sid = L.text(session, "session")
        text = L.text(options, "options") if options is not None else ""
        opts = json_options(text, "verdict options", VERDICT_OPTIONS, EXAMPLE, "verdict options")
        mode = choice(Composite, opts.get("composite"), "composite", Composite.DETAIL)
        size = opts.get("size")
        size = VERDICT_DEFAULT_SIZE if size in (None, "") else number(size, "verdict size", 16, PREVIEW_MAX_SIZE)
        specs = parse_edit_list(edits, files=[], limits=L)
        return cls(session=sid, edits=tuple(specs), composite=mode, size=int(size))
