"""``priorpaint bench --markdown``: the report as a markdown page (what ``docs/benchmarks.md`` is).

:func:`machine` describes where the figures were measured (date, CPU model and cores, torch
version and threads, device, load average); :func:`render` turns it, the sections that ran
and the report (a dict of dicts, as printed as JSON) into markdown: a heading per section
with its one-line description, one table of its scalar figures, and a table per nested dict
(a sub-heading; a dict of flat dicts, such as per photo or per variant, is one table with a
row each) or list of dicts (one row each).  Standard library only; torch is read only
if it is already imported.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

#: headings deeper than this render their dict as inline JSON instead of another heading
MAX_LEVEL = 4


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def load_average() -> Optional[Tuple[float, float, float]]:
    """The 1, 5 and 15 minute load averages, or None where the system has none."""
    try:
        return tuple(round(v, 2) for v in os.getloadavg())
    except (OSError, AttributeError):
        return None


def machine() -> Dict[str, object]:
    """Where the bench runs: date (UTC), CPU, cores, Python, torch and its device and threads."""
    info: Dict[str, object] = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        from ..device import default_device
        dev = default_device()
        name = str(dev)
        if dev.type == "cuda":
            name += f" ({torch.cuda.get_device_name(dev)})"
        info.update({"torch": torch.__version__, "torch_threads": torch.get_num_threads(), "device": name})
    return info


def _cell(value) -> str:
    """One table cell: numbers and words as they are, lists of scalars comma-separated, the rest as JSON."""
    if value is None:
        text = "—"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, (int, float, str)):
        text = str(value)
    elif isinstance(value, (list, tuple)) and all(_scalar(v) for v in value):
        text = ", ".join(_cell(v) for v in value)
    else:
        text = "`" + json.dumps(value, default=str, separators=(", ", ": ")) + "`"
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _scalar(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _flat(value) -> bool:
    """A scalar or a list of scalars: one table cell."""
    return _scalar(value) or (isinstance(value, (list, tuple)) and all(_scalar(v) for v in value))


def _table(header: Sequence[str], rows: Sequence[Sequence]) -> List[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _rows_of_records(value) -> bool:
    """A dict of two or more flat dicts (per photo, per variant): one table, a row each."""
    return (isinstance(value, Mapping) and len(value) >= 2
            and all(isinstance(v, Mapping) and v and all(_flat(x) for x in v.values()) for v in value.values()))


def _records(items: Sequence[Mapping]) -> List[str]:
    """A list of dicts as one table: a row each, the columns in first-seen order."""
    columns: List[str] = []
    for item in items:
        columns += [k for k in item if k not in columns]
    return _table(columns, [[item.get(c) for c in columns] for item in items])


def _block(title: str, data: Mapping, level: int) -> List[str]:
    lines = ["#" * level + " " + title, ""]
    flat = [(k, v) for k, v in data.items() if _flat(v) or level >= MAX_LEVEL]
    if flat:
        lines += _table(["figure", "value"], flat)
    for key, value in data.items():
        if _flat(value) or level >= MAX_LEVEL:
            continue
        sub = f"{title} › {key}"
        if _rows_of_records(value):
            lines += ["#" * (level + 1) + " " + sub, ""] + _records([{"": k, **v} for k, v in value.items()])
        elif isinstance(value, Mapping):
            lines += _block(sub, value, level + 1)
        elif all(isinstance(v, Mapping) for v in value):
            lines += ["#" * (level + 1) + " " + sub, ""] + _records(value)
        else:
            lines += _block(sub, {str(i): v for i, v in enumerate(value)}, level + 1)
    return lines


def render(report: Mapping, sections: Sequence[Tuple[str, str, Sequence[str], float]],
           before: Mapping, after: Mapping, command: str, left_out: Sequence[str] = ()) -> str:
    """The markdown page.

    ``sections``: ``(name, description, report keys it added, seconds)`` for each section
    that ran; ``before`` / ``after``: :func:`machine` and ``load`` at the start and the end;
    ``command``: the command line that made the page (so anyone can run it again);
    ``left_out``: the sections that did not run (the page says how to get them).
    """
    load0, load1 = before.get("load"), after.get("load")
    names = ", ".join(f"`{name}`" for name, *_ in sections)
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `priorpaint bench --markdown` — do not edit by hand; run the command again. "
        f"Sections in this page: {names}.",
        "",
        f"Command: `{command}`",
        "",
    ]
    if left_out:
        lines += [f"Not in this page: {', '.join(f'`{n}`' for n in left_out)}. Every section: "
                  f"`priorpaint bench --markdown FILE` (all of them take long on a small CPU).", ""]
    rows = [(k, before[k]) for k in ("date", "cpu", "cores", "python", "torch", "torch_threads", "device")
            if k in before]
    rows += [("load average before (1, 5, 15 min)", load0), ("load average after (1, 5, 15 min)", load1)]
    for key in ("steps", "peak_rss_mb"):
        if key in report:
            rows.append((key, report[key]))
    rows.append(("seconds per section", ", ".join(f"{n} {s:.1f}" for n, _, _, s in sections)))
    lines += ["## Machine", ""] + _table(["machine", "value"], rows)
    for name, description, keys, _ in sections:
        lines += [f"## {name}", "", description, ""]
        for key in keys:
            value = report.get(key)
            if isinstance(value, Mapping):
                lines += _block(key, value, 3)
            else:
                lines += _table(["figure", "value"], [(key, value)])
    return "\n".join(lines).rstrip() + "\n"


__all__ = ["cpu_model", "load_average", "machine", "render"]
