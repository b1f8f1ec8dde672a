"""``spaces.GPU`` when the Hugging Face ``spaces`` package imports; a no-op otherwise.

Every engine job of the app runs through :func:`engine_call`, decorated once at import.
On a Space with dedicated hardware (CPU or a GPU) and everywhere else, ``spaces.GPU``
is effect-free and the job runs in-process, where the session store lives.  ZeroGPU
runs a decorated function in a separate worker process; the app's sessions (projections,
fitted G′) live in the server process and would not come back from it, so this app is
meant for CPU or dedicated-GPU Space hardware (see space/README.md).
"""

from __future__ import annotations

import logging
from typing import Callable

log = logging.getLogger(__name__)

#: seconds a GPU is requested for one engine job (projection + G′ of one selection)
GPU_DURATION = 120


def _gpu_decorator(duration: int) -> Callable[[Callable], Callable]:
    try:
        import spaces  # type: ignore[import-not-found]
    except Exception:
        return lambda fn: fn
    log.info("spaces package found: engine jobs are wrapped with spaces.GPU(duration=%d)", duration)
    return spaces.GPU(duration=duration)


@_gpu_decorator(GPU_DURATION)
def engine_call(work: Callable, progress, cancel):
    """Run one engine job: ``work(progress, cancel)``."""
    return work(progress, cancel)
