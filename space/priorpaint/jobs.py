"""Progress reporting and cancellation shared by every long-running stage.

A stage takes ``progress`` (a callable ``progress(stage, fraction, info)`` or ``None``)
and ``cancel`` (a :class:`CancelToken` or ``None``) and calls :func:`checkpoint` once
per optimisation step, so a cancel is honoured within one step.
"""

import threading
from typing import Callable, Optional

from .errors import Cancelled

ProgressFn = Callable[[str, float, dict], None]


class CancelToken:
    """A thread-safe flag; ``cancel()`` makes the next :meth:`check` raise :class:`Cancelled`."""

    def __init__(self):
        self._event = threading.Event()
        self.reason = "cancelled"

    def cancel(self, reason: str = "cancelled") -> None:
        self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled(f"job {self.reason}")


def checkpoint(cancel: Optional[CancelToken], progress: Optional[ProgressFn],
               stage: str, fraction: float, info: Optional[dict] = None) -> None:
    """Raise if cancelled, then report progress (fraction in 0..1 of ``stage``)."""
    if cancel is not None:
        cancel.check()
    if progress is not None:
        progress(stage, float(min(max(fraction, 0.0), 1.0)), info or {})
