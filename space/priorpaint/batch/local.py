"""Local workers: ``--workers N`` processes, each loading the generator once.

Each worker process is started with :func:`_init` (the pool's initializer), which builds
one :class:`~priorpaint.batch.photo.Worker`: torch's thread count, the generator
(``load_generator``) and the recipe checked against it; the derived artefacts an edit
needs (directions, parts, vectors) are loaded on its first photo and memoised by the
store for the rest.  Processes are started with ``spawn`` (torch and fork do not mix).
One worker runs in the calling process, without a pool.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Iterator, List, Optional

from .photo import Outputs, PhotoJob, Recipe, Worker

#: memory a worker needs with the embedded model (generator, projection batch, G′), bytes
WORKER_MEMORY = 1 << 30

_worker: Optional[Worker] = None


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def available_memory() -> Optional[int]:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def default_workers(photos: int, on_gpu: bool = False) -> int:
    """One worker per core (one per machine on a GPU: the workers would share it), no more
    than the free memory holds at :data:`WORKER_MEMORY` each, nor than there are photos."""
    n = 1 if on_gpu else cpu_count()
    mem = available_memory()
    if mem:
        n = min(n, max(1, mem // WORKER_MEMORY))
    return max(1, min(n, photos))


def threads_per_worker(workers: int) -> int:
    """torch threads per worker: the cores shared out (at least one)."""
    return max(1, cpu_count() // max(1, workers))


def _init(recipe: Recipe, outputs: Outputs, threads: int) -> None:
    global _worker
    _worker = Worker(recipe, outputs, threads=threads)


def _run(job: PhotoJob) -> dict:
    return _worker.run(job)


def run_local(jobs: List[PhotoJob], recipe: Recipe, outputs: Outputs, workers: int,
              threads: Optional[int] = None) -> Iterator[dict]:
    """Run ``jobs`` on ``workers`` processes; yield each photo's row as it finishes."""
    threads = threads or threads_per_worker(workers)
    if workers <= 1:
        import torch
        before = torch.get_num_threads()
        try:
            worker = Worker(recipe, outputs, threads=threads)
            for job in jobs:
                yield worker.run(job)
        finally:
            torch.set_num_threads(before)
        return
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init,
                               initargs=(recipe, outputs, threads))
    try:
        pending = {pool.submit(_run, job): job for job in jobs}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                job = pending.pop(fut)
                try:
                    yield fut.result()
                except Exception as e:  # a worker died (killed, out of memory): this photo failed
                    from .photo import one_line
                    yield {"input": job.source, "name": job.name, "status": "failed",
                           "error": f"the worker process failed: {one_line(e)}", "seconds": 0.0}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
