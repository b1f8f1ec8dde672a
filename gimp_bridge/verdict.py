"""Whether an edit is carried: the backend's ``verdict`` for the dialog, and its one line.

The backend's ``verdict`` endpoint (inputs ``session``, ``edits``, ``options``) says, for
the edits the preview shows, whether the picture changed the way the direction intends
(``carried`` true / false / null) with a one-line ``message``. The edit's own status
carries the same ``verdict``. An older backend without the endpoint gets no request:
:func:`verdict` answers None and the dialog shows nothing. Standard library only.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from .client import BackendError, Client


def verdict_message(status: Any) -> Optional[str]:
    """The backend's one line the user must read (its ``verdict.message``, on one line), from a
    status or a ``verdict`` answer: when ``verdict.carried`` is false, or when the verdict lists
    ``notes`` (a carried head edit that the selection held back says so, with the fix); None when
    carried without notes, unknown or absent."""
    verdict = status.get("verdict") if isinstance(status, dict) else None
    if not isinstance(verdict, dict):
        return None
    if verdict.get("carried") is not False and not (verdict.get("notes") and verdict.get("message")):
        return None
    message = " ".join(str(verdict.get("message") or "").split())
    return message or "this edit cannot be carried here: the picture did not change as the direction intends"


def supports_verdict(client: Client) -> bool:
    """Whether the backend declares the ``verdict`` endpoint (an older one does not)."""
    return bool(client.endpoint_inputs("verdict"))


def verdict(client: Client, session: str, edits: List[dict], composite: Optional[str] = None,
            size: Optional[int] = None, should_cancel=None) -> Optional[dict]:
    """The backend's ``{"structure", "verdict"}`` for these edits of a projected ``session``, or
    None from a backend without the ``verdict`` endpoint. Slow edit kinds are refused by the
    backend with an error (raised as :class:`BackendError`)."""
    if not supports_verdict(client):
        return None
    options: Dict[str, Any] = {}
    if composite is not None:
        options["composite"] = composite
    if size is not None:
        options["size"] = int(size)
    outputs = client.call("verdict", [session, json.dumps(edits), json.dumps(options)],
                          should_cancel=should_cancel)
    if not outputs or not isinstance(outputs[0], str):
        raise BackendError("the backend's verdict returned nothing")
    try:
        answer = json.loads(outputs[0])
    except ValueError as exc:
        raise BackendError(f"the backend's verdict is not JSON: {outputs[0][:200]!r}") from exc
    if not isinstance(answer, dict) or not isinstance(answer.get("verdict"), dict):
        raise BackendError(f"the backend's verdict has no verdict: {outputs[0][:200]!r}")
    return answer
