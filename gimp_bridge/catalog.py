"""What the backend offers, read from its listings: models, named directions and concepts.

The plug-in's dialogs show these (a model's size and what it is good for, a direction's
range); the edits in ``ops`` clamp a strength with the same range.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .client import BackendError, Client, status_of


def _loads(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise BackendError(f"the backend sent malformed JSON: {value[:200]!r}") from None
    return value


def list_models(client: Client) -> List[dict]:
    return list(_loads(client.call("models", [])[0]) or [])


def model_label(row: dict) -> str:
    """A model of the ``models`` listing as the Settings list shows it: id, size and domain,
    and whether its weights still have to be downloaded."""
    text = str(row.get("id", "?"))
    if row.get("resolution") or row.get("domain"):
        text += f" ({row.get('resolution', '?')} px {row.get('domain', '')})".replace(" )", ")")
    if not row.get("present", True):
        text += " — not downloaded" + ("" if row.get("downloadable") else ", not available")
    return text


def download_model(client: Client, model: str, progress: Optional[Callable[[float, str], None]] = None,
                   on_job=None, should_cancel=None) -> dict:
    """Have the backend download (and verify) a model's weights; its final status.

    ``progress(fraction, text)`` gets the bytes as they arrive ("12.5 of 131.1 MB"). An
    offline backend's error is its one line naming the model, the repo and the command.
    """
    def report(fraction: float, stage: str, status: dict) -> None:
        if progress is None:
            return
        done, total = status.get("bytes_done"), status.get("bytes_total")
        if isinstance(done, (int, float)) and isinstance(total, (int, float)) and total > 0:
            text = f"Downloading {model}: {done / 1e6:.1f} of {total / 1e6:.1f} MB"
        elif isinstance(done, (int, float)) and done:
            text = f"Downloading {model}: {done / 1e6:.1f} MB"
        elif stage == "done":
            text = f"Downloaded {model}"
        else:
            text = f"Downloading {model}"
        progress(max(0.0, min(1.0, float(fraction or 0.0))), text)

    outputs = client.call("download", [model], on_progress=report, on_job=on_job, should_cancel=should_cancel)
    st = status_of(outputs)
    if not st.get("done"):
        raise BackendError(f"the backend's download of {model!r} ended without a final status: {st!r}")
    return st


def list_directions(client: Client, model: str = "") -> List[dict]:
    value = _loads(client.call("directions", [model])[0])
    return list(value or [])


def list_concepts(client: Client, model: str = "") -> Dict[str, Any]:
    value = _loads(client.call("concepts", [model])[0])
    return value if isinstance(value, dict) else {"concepts": list(value or [])}


def direction_spec(direction: str, strength: float) -> dict:
    return {"kind": "direction", "name": direction, "strength": float(strength)}


def direction_range(directions: Sequence[dict], name: str) -> Tuple[float, float, float]:
    """(min, max, default) of a listed direction; (-3, 3, 0) when the listing gives none."""
    for d in directions:
        if isinstance(d, dict) and d.get("name") == name:
            try:
                lo, hi = float(d.get("min", -3.0)), float(d.get("max", 3.0))
                default = float(d.get("default", 0.0) or 0.0)
            except (TypeError, ValueError):
                break
            if lo < hi:
                return lo, hi, min(max(default, lo), hi)
            break
    return -3.0, 3.0, 0.0


def clamp_strength(directions: Sequence[dict], name: str, strength: float) -> Tuple[float, Optional[str]]:
    """The strength the backend will use (clamped to the direction's range) and a note when clamped."""
    lo, hi, _ = direction_range(directions, name)
    s = float(strength)
    if lo <= s <= hi:
        return s, None
    used = min(max(s, lo), hi)
    return used, f"strength {s:g} of {name!r} is outside its range [{lo:g}, {hi:g}]; used {used:g}"




def carried(edits: Sequence[dict]) -> List[dict]:
    """The specs of an earlier result that a next edit starts from: its named directions (a
    painted concept or label map belongs to the selection it was made for)."""
    return [dict(e) for e in edits if isinstance(e, dict) and e.get("kind") == "direction" and e.get("name")]


def with_edit(base: Sequence[dict], spec: dict) -> List[dict]:
    """``base`` plus ``spec``; a direction already in ``base`` takes the new strength in its place."""
    out = [dict(e) for e in base]
    if spec.get("kind") == "direction":
        for i, e in enumerate(out):
            if e.get("kind") == "direction" and e.get("name") == spec.get("name"):
                out[i] = dict(spec)
                return out
    return out + [dict(spec)]


def edits_title(edits: Sequence[dict]) -> str:
    """Edit specs in a few words: "exposure +1.5, remove hair"."""
    words = []
    for e in edits:
        if e.get("kind") == "direction":
            words.append(f"{e.get('name')} {float(e.get('strength', 0.0)):+g}")
        elif e.get("kind") == "paint":
            words.append(f"{e.get('mode')} {e.get('concept')}")
        else:
            words.append(str(e.get("kind")))
    return ", ".join(words)
