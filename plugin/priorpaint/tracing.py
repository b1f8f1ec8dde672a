"""Test traces: one JSON line per event in $PRIORPAINT_TRACE, and nothing at all without it.

The GIMP tests read these lines to see which procedure GIMP ran, when a dialog opened and
what its preview showed. ``enabled()`` is read once per plug-in process (GIMP starts a
fresh one per run), so with tracing off no procedure is wrapped and no file is opened.
"""

import json
import os
import time


def enabled():
    return bool(os.environ.get("PRIORPAINT_TRACE"))


def trace(event, **fields):
    """Append one JSON line to $PRIORPAINT_TRACE; a no-op when tracing is off."""
    path = os.environ.get("PRIORPAINT_TRACE")
    if not path:
        return
    fields.update(event=event, t=time.monotonic())
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(fields) + "\n")
    except OSError:
        pass


def traced(name, func):
    """``func`` with a trace line when it starts and ends (tests see which entry GIMP ran);
    ``func`` itself when tracing is off."""
    if not enabled():
        return func

    def run(procedure, run_mode, *args):
        from gi.repository import Gimp
        trace("run", procedure=name, interactive=run_mode == Gimp.RunMode.INTERACTIVE)
        try:
            result = func(procedure, run_mode, *args)
        except BaseException as exc:
            trace("done", procedure=name, status="crash: %s" % type(exc).__name__)
            raise
        try:
            status = result.index(0).value_nick
        except Exception:
            status = "?"
        trace("done", procedure=name, status=status)
        return result
    return run
