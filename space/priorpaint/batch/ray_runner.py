"""Ray: the same per-photo function as Ray actors, one generator per actor.

``--ray local`` starts a private Ray instance on this machine (loopback, no dashboard)
and stops it afterwards; ``--ray auto`` joins the cluster this machine belongs to
(``RAY_ADDRESS`` or a ``ray start`` on this node); ``--ray HOST:PORT`` (or
``ray://HOST:PORT`` for Ray Client) joins the cluster whose head answers there.  An address
is first probed with a TCP connection, then joined once from a child process, each bounded
by ``--ray-timeout`` (:data:`CONNECT_TIMEOUT` seconds by default), so an address that does
not answer, or answers but is no Ray head, is a one-line error, never a hang.

Each actor (:class:`PhotoActor`) builds one :class:`~priorpaint.batch.photo.Worker` (the
generator loaded once) and is sent the next photo whenever it is free; an actor asks for one GPU
when the cluster has GPUs (``num_gpus=1``; Ray then sets ``CUDA_VISIBLE_DEVICES`` for it)
and ``--threads`` CPUs (default 1), which are also its torch threads.

**Data: a shared path.** Actors read the photos and write the outputs at the paths the
driver planned, so inputs and the output folder must be on storage every node sees at the
same path (NFS, a cluster file system, or a single machine).  Nothing but the job
descriptions (paths, boxes, the recipe) and the summary rows travel through Ray's object
store.
"""

from __future__ import annotations

import os
import socket
from typing import Iterator, List, Optional, Tuple

from ..errors import InputError
from .photo import Outputs, PhotoJob, Recipe, Worker

#: seconds to wait for a Ray head to answer before giving up
CONNECT_TIMEOUT = 15.0


def _host_port(address: str) -> Optional[Tuple[str, int]]:
    text = address.split("://", 1)[-1].strip().rstrip("/")
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def probe(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Raise an :class:`InputError` unless something accepts TCP connections at ``address``."""
    hp = _host_port(address)
    if hp is None:
        raise InputError(f"--ray {address!r}: give auto, local or the head's address HOST:PORT "
                         "(e.g. 10.0.0.5:6379, or ray://10.0.0.5:10001 for Ray Client)")
    try:
        with socket.create_connection(hp, timeout=timeout):
            pass
    except OSError as e:
        raise InputError(f"no Ray cluster answers at {address} (within {timeout:.0f} s: "
                         f"{e.strerror or e}); check the head's address, or use --ray local") from None


_CHECK = """
import sys
import ray
ray.init(address=sys.argv[1], log_to_driver=False, logging_level="ERROR")
ray.shutdown()
"""


def check_joinable(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Join the cluster at ``address`` from a child process killed after ``timeout`` seconds.

    ``ray.init`` retries for minutes when something answers at the address but is no Ray
    head (and cannot be interrupted from another thread), so the first join is tried where
    it can be killed."""
    import subprocess
    import sys
    try:
        done = subprocess.run([sys.executable, "-c", _CHECK, address], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise InputError(f"the Ray cluster at {address} did not accept a driver within {timeout:.0f} s; "
                         "is it a Ray head (ray start --head) of the same Ray version?") from None
    if done.returncode != 0:
        lines = [l.strip() for l in (done.stderr or "").splitlines() if l.strip()]
        raise InputError(f"cannot join the Ray cluster at {address}: {lines[-1] if lines else 'ray.init failed'}")


def connect(address: str, cpus: int, timeout: float = CONNECT_TIMEOUT) -> bool:
    """Join or start Ray; True when this call started (and so must stop) it."""
    try:
        import ray
    except ImportError:
        raise InputError("--ray needs Ray: pip install 'priorpaint[ray]'") from None
    if ray.is_initialized():
        return False
    quiet = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                 configure_logging=True)
    if address == "local":
        ray.init(num_cpus=max(1, cpus), _node_ip_address="127.0.0.1", **quiet)
        return True
    if address == "auto":
        env = os.environ.get("RAY_ADDRESS", "").strip()
        if env and env != "auto":
            probe(env, timeout)
        check_joinable("auto", timeout)
    else:
        probe(address, timeout)
        check_joinable(address, timeout)
    if address.startswith("ray://"):
        ray.init(address=address, log_to_driver=False, logging_level="ERROR")
    else:
        ray.init(address=address, **quiet)
    return True


def cluster_gpus() -> int:
    import ray
    return int(ray.cluster_resources().get("GPU", 0))


def cluster_cpus() -> int:
    import ray
    return int(ray.cluster_resources().get("CPU", 1))


def _failed(job: PhotoJob, error: str) -> dict:
    return {"input": job.source, "name": job.name, "status": "failed", "error": error, "seconds": 0.0}


class PhotoActor:
    """One Ray actor: a :class:`Worker` (one generator), editing the photos the driver sends it
    (one at a time, as each actor becomes free)."""

    def __init__(self, recipe: Recipe, outputs: Outputs, threads: int):
        self.worker = Worker(recipe, outputs, threads=threads)

    def run(self, job: PhotoJob) -> dict:
        row = self.worker.run(job)
        row["node"] = socket.gethostname()
        return row


def run_ray(jobs: List[PhotoJob], recipe: Recipe, outputs: Outputs, workers: Optional[int] = None,
            threads: Optional[int] = None) -> Iterator[dict]:
    """Run ``jobs`` on Ray actors (Ray joined with :func:`connect`); yield each photo's row as it finishes."""
    import ray
    actors = []
    try:
        threads = threads or 1
        gpus = cluster_gpus()
        n = workers or (gpus if gpus else max(1, cluster_cpus() // threads))
        n = max(1, min(n, len(jobs)))
        per = {"num_gpus": 1, "num_cpus": threads} if gpus else {"num_cpus": threads}
        actor = ray.remote(**per)(PhotoActor)
        actors = [actor.remote(recipe, outputs, threads) for _ in range(n)]
        idle = list(actors)
        todo = list(reversed(jobs))
        running = {}  # object ref -> (job, actor)
        while todo or running:
            while todo and idle:
                job, a = todo.pop(), idle.pop()
                running[a.run.remote(job)] = (job, a)
            if not running:  # every actor died: the rest cannot run
                for job in reversed(todo):
                    yield _failed(job, "no Ray actor is left to run it")
                break
            ready, _ = ray.wait(list(running), num_returns=1)
            job, a = running.pop(ready[0])
            try:
                row = ray.get(ready[0])
            except ray.exceptions.RayError as e:  # the actor died (node lost, out of memory)
                from .photo import one_line
                yield _failed(job, f"its Ray actor failed: {one_line(e)}")
                continue
            idle.append(a)
            yield row
    finally:
        for a in actors:
            ray.kill(a)
