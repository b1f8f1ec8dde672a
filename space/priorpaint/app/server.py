"""Launching the app: ``priorpaint serve`` and the Space entry (``space/app.py``).

Binding: 127.0.0.1 by default.  A non-loopback ``--host`` without a token is **refused**
(exit code 2): the API runs arbitrary-length jobs on the machine and hands out the
uploaded photos, so it must not be open to a network by accident.  Inside a Hugging Face
Space the app binds 0.0.0.0 (the container's port is reached only through the Space's
proxy); ``space/app.py`` does that without the check.

Token auth (``--token`` or ``PRIORPAINT_TOKEN``, at least 16 characters): every request
carries ``Authorization: Bearer <token>`` (gradio_client:
``Client(url, headers={"Authorization": "Bearer T"})``) or the cookie ``priorpaint_token``
(browsers: open ``http://host:port/?token=T`` once; the page route sets the cookie).
Without a token on a loopback bind, only loopback ``Host`` names with the server's port and
no foreign ``Origin`` are answered (no DNS rebinding).  Both checks, and the bounds on
upload requests and upload disk, are :class:`~priorpaint.app.guard.Guard`, which wraps the
whole ASGI app handed to uvicorn (Gradio's own CORS layer included).

The server keeps its uploads and results in a folder of its own (``GRADIO_TEMP_DIR``), bounded
and swept by :class:`~priorpaint.app.disk.UploadDisk` (expiry after ``--max-file-age-s``, the
oldest unused files evicted under pressure, partial uploads removed); SIGTERM / SIGINT stop the jobs, remove that folder and exit 0.  The bounds on each request
and each client are :class:`~priorpaint.app.limits.Limits` (flags of ``priorpaint serve``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
from typing import Optional

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from ..errors import InputError
from .guard import COOKIE, Guard, check_token  # noqa: F401  (COOKIE: part of the API)
from .limits import Limits

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_UPLOAD_MB = 50.0


def is_loopback(host: str) -> bool:
    host = (host or "").strip().strip("[]")
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback
                       for info in socket.getaddrinfo(host, None))
        except OSError:
            return False


def check_bind(host: str, token: Optional[str]) -> None:
    """Refuse a non-loopback bind without a token."""
    if not is_loopback(host) and not token:
        raise InputError(f"refusing to serve on {host} without a token: anyone who can reach it could run "
                         f"jobs and read uploads; give --token T (or PRIORPAINT_TOKEN), or bind 127.0.0.1")


def build(model: Optional[str] = None, max_sessions: int = 32, max_session_mb: float = 512.0,
          session_ttl_s: float = 3600.0, slots: int = 2, default_steps: Optional[int] = None, device=None,
          limits: Optional[Limits] = None):
    """The Gradio Blocks app and its backend (``default_steps`` None: the served default the
    projection settings declare)."""
    from .endpoints import Backend
    from .sessions import JobRegistry, SessionStore
    from .ui.app import build_app

    limits = limits or Limits()
    from ..edits import vectors
    vectors.QUOTA.update(client_bytes=int(limits.max_client_vectors_mb * 1024 * 1024),
                         total_bytes=int(limits.max_vectors_mb * 1024 * 1024))
    vectors.QUOTA.update(address_bytes=int(limits.max_address_vectors_mb * 1024 * 1024))
    store = SessionStore(max_sessions, int(max_session_mb * 1024 * 1024), session_ttl_s,
                         max_client_sessions=min(limits.max_client_sessions, max_sessions),
                         max_client_bytes=int(max_session_mb * 1024 * 1024 / 4),
                         max_address_sessions=min(limits.max_address_sessions, max_sessions),
                         max_address_bytes=int(max_session_mb * 1024 * 1024 / 2))
    backend = Backend(model=model, device=device, default_steps=default_steps, store=store,
                      jobs=JobRegistry(slots, limits.max_client_jobs, limits.max_jobs, limits.max_address_jobs),
                      limits=limits)
    return build_app(backend), backend


def server_temp_dir() -> str:
    """A folder of this server's own for Gradio's uploads and results (``GRADIO_TEMP_DIR``).

    Set before gradio is imported (it reads the variable at import and when the app is
    built); removed at shutdown.  A ``GRADIO_TEMP_DIR`` set by the caller is used as the parent.
    """
    d = os.environ.get("PRIORPAINT_SERVER_TMP")
    if d and os.path.isdir(d):
        os.environ["GRADIO_TEMP_DIR"] = d
        return d
    parent = os.environ.get("GRADIO_TEMP_DIR") or None
    if parent:
        os.makedirs(parent, exist_ok=True)
    d = tempfile.mkdtemp(prefix="priorpaint-serve-", dir=parent)
    os.environ["PRIORPAINT_SERVER_TMP"] = d
    os.environ["GRADIO_TEMP_DIR"] = d
    return d


class Running:
    """A started server: ``stop()`` ends it (jobs cancelled, this server's files removed)."""

    def __init__(self, server, thread, backend, temp_dir, disk=None):
        self.server, self.thread, self.backend, self.temp_dir = server, thread, backend, temp_dir
        self.disk = disk

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(15)
        if self.disk is not None:
            self.disk.stop()
        cleanup(self.backend, self.temp_dir)


def cleanup(backend, temp_dir: Optional[str]) -> dict:
    """Stop every job, drop the sessions, remove this server's uploads and results."""
    jobs = backend.jobs.cancel_all() if backend is not None else 0
    alive = 0
    if backend is not None:
        alive = backend.jobs.join_workers(15.0)  # cancelled workers stop within one step
        backend.store.clear()
    removed = 0
    if temp_dir and os.path.isdir(temp_dir):
        for _root, _dirs, files in os.walk(temp_dir):
            removed += len(files)
        shutil.rmtree(temp_dir, ignore_errors=True)
    return {"jobs_cancelled": jobs, "files_removed": removed, "workers_alive": alive}


def launch(demo, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, token: Optional[str] = None,
           max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB, block: bool = True, quiet: bool = False,
           limits: Optional[Limits] = None, loopback_only: Optional[bool] = None, warm_up: bool = True,
           forwarded_allow_ips: Optional[str] = None):
    """Serve ``demo`` with uvicorn behind :class:`Guard`; blocks until SIGTERM/SIGINT when ``block``.

    With ``warm_up`` the backend's default model is loaded and run once in a background
    thread while the server starts (:meth:`Backend.warm_up`), so the first request is as
    quick as the next.  ``forwarded_allow_ips``: the proxies whose ``X-Forwarded-For`` /
    ``-Proto`` are believed (:meth:`TrustedProxies.from_setting`: none unless named; in a Space,
    its private networks); uvicorn's own reading of them is off, so only the guard decides.
    Returns the cleanup summary when ``block``, else a :class:`Running`
    server.
    """
    import gradio as gr
    import uvicorn
    from fastapi import FastAPI

    token = check_token(token)
    if max_upload_mb <= 0:
        raise InputError("--max-upload-mb must be positive")
    limits = (limits or Limits()).validate()
    temp_dir = os.environ.get("PRIORPAINT_SERVER_TMP") or None
    if loopback_only is None:
        loopback_only = not token and is_loopback(host)
    from .guard import one_line_gradio_errors
    one_line_gradio_errors()
    outer = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app = gr.mount_gradio_app(outer, demo, path="/", server_name=host, server_port=int(port),
                              max_file_size=int(max_upload_mb * 1024 * 1024), show_error=True,
                              ssr_mode=False, footer_links=["api"])
    disk = None
    if temp_dir:
        from .disk import UploadDisk
        disk = UploadDisk(temp_dir, int(limits.max_upload_disk_mb * 1024 * 1024), limits.max_file_age_s)
        disk.start(every_s=min(60.0, max(1.0, limits.max_file_age_s / 4)))
    from .clients import TrustedProxies
    guarded = Guard(app, token=token, loopback_port=int(port) if loopback_only else None,
                    max_request_mb=limits.max_request_mb, max_upload_disk_mb=limits.max_upload_disk_mb,
                    max_body_mb=limits.max_body_mb, disk=disk, files_dir=temp_dir or _gradio_upload_folder(),
                    proxies=TrustedProxies.from_setting(forwarded_allow_ips))
    bind = host.strip("[]")
    # proxy_headers off: uvicorn would believe X-Forwarded-For from 127.0.0.1 by default
    config = uvicorn.Config(guarded, host=bind, port=int(port), log_level="warning" if quiet else "info",
                            timeout_graceful_shutdown=5, lifespan="on", proxy_headers=False)
    server = uvicorn.Server(config)
    backend = getattr(demo, "backend", None)
    warming = None
    if warm_up and backend is not None:
        warming = threading.Thread(target=_warm_up, args=(backend,), name="priorpaint-warm-up", daemon=True)
        warming.start()
    if not block:
        t = threading.Thread(target=server.run, name="priorpaint-serve", daemon=True)
        t.start()
        return Running(server, t, backend, temp_dir, disk)
    stopped = {}

    def on_signal(sig, frame):  # stop the jobs first, so the graceful shutdown is quick
        stopped["signal"] = signal.Signals(sig).name
        if backend is not None:
            backend.jobs.cancel_all()
        server.should_exit = True

    server.capture_signals = _no_capture  # uvicorn would re-raise the signal after shutdown (exit != 0)
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
        if disk is not None:
            disk.stop()
        summary = cleanup(backend, temp_dir)
        if warming is not None:
            # a stop right after the start: let the warm-up's few steps end, so no thread is
            # inside torch while the interpreter exits (cmd_serve ends at once if one still is)
            warming.join(15.0)
            summary["workers_alive"] += int(warming.is_alive())
        summary.update(stopped)
        print(f"priorpaint: stopped ({stopped.get('signal', 'exit')}); cancelled {summary['jobs_cancelled']} "
              f"job(s), removed {summary['files_removed']} temporary file(s)", flush=True)
    return summary


def _gradio_upload_folder() -> str:
    """Where Gradio keeps uploads and results when this server has no folder of its own."""
    from gradio.utils import get_upload_folder
    return get_upload_folder()


def _warm_up(backend) -> None:
    """Run ``backend.warm_up()`` and say in one line what it did."""
    try:
        done = backend.warm_up()
    except Exception as e:  # a warm-up is an optimisation: the first request reports any real problem
        print(f"priorpaint: warm-up failed ({type(e).__name__}: {e}); the first request loads the model",
              flush=True)
        return
    if "skipped" in done:
        print(f"priorpaint: default model not loaded ahead: {done['skipped']}", flush=True)
    else:
        print(f"priorpaint: {done['model']} loaded and warmed up on {done['device']} "
              f"({'hybrid' if done['init'] == 'encoder' else 'search'} projection) in {done['seconds']:.1f} s",
              flush=True)


@contextlib.contextmanager
def _no_capture():
    yield


def cmd_serve(args) -> int:
    token = args.token if args.token is not None else os.environ.get("PRIORPAINT_TOKEN") or None
    token = check_token(token)
    host = args.host.strip()
    check_bind(host, token)
    if not (0 < args.port < 65536):
        raise InputError(f"--port must be 1..65535, got {args.port}")
    from .limits import from_args
    limits = from_args(args)
    if args.model:
        from ..models.manifest import get_entry
        get_entry(args.model)  # an unknown model fails now, with the list of known ones
    if args.max_sessions < 1 or args.max_session_mb <= 0:
        raise InputError("--max-sessions and --max-session-mb must be positive")
    server_temp_dir()  # before gradio is imported: uploads and results go to this server's own folder
    demo, _ = build(model=args.model, max_sessions=args.max_sessions, max_session_mb=args.max_session_mb,
                    session_ttl_s=args.session_ttl, slots=args.slots, default_steps=args.steps, limits=limits)
    shown = f"[{host}]" if ":" in host else host
    print(f"priorpaint: serving on http://{shown}:{args.port}"
          + (" (token required)" if token else " (loopback only: other Host names and origins refused)"), flush=True)
    summary = launch(demo, host, args.port, token, args.max_upload_mb, block=True, quiet=not args.verbose_server,
                     limits=limits, forwarded_allow_ips=getattr(args, "forwarded_allow_ips", None))
    if summary.get("workers_alive"):
        # a worker stuck in one long native step would abort the interpreter at exit; everything of
        # this server is already cleaned up, so end here with the documented status
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


SPACE_FILES = ("app.py", "README.md", "requirements.txt")


def export_space(dest, force: bool = False):
    """Write a folder deployable as a Space as-is into ``dest``: the Space's own files
    (``priorpaint.space``: ``app.py``, its card, ``requirements.txt``), the ``priorpaint`` package
    and its manifests (``dest/priorpaint/manifests``, the data package ``priorpaint.manifests``).

    Everything is read from the installed package with :mod:`importlib.resources`, so a wheel
    install exports the same folder as a source checkout.  The GIMP plug-in is left out."""
    from importlib.resources import files
    from pathlib import Path

    import priorpaint
    from ..models.manifest import packaged_dir

    try:
        space_files = files("priorpaint.space")
        contents = {name: space_files.joinpath(name).read_bytes() for name in SPACE_FILES}
    except (ModuleNotFoundError, FileNotFoundError, OSError) as e:
        raise InputError(f"space-export: the Space's files (priorpaint.space) are missing from this install: {e}; "
                         "reinstall priorpaint") from None
    package, manifests = Path(priorpaint.__file__).resolve().parent, packaged_dir()
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        if not force:
            raise InputError(f"{dest} exists and is not empty; give --force to replace its contents")
        if (dest / ".git").exists():
            raise InputError(f"{dest} is a git repository; export into an empty folder and copy from there")
        shutil.rmtree(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        (dest / name).write_bytes(data)
    # a wheel holds the manifests, the Space's files and the plug-in inside the package: the
    # Space gets the manifests from packaged_dir() below, and neither of the others
    def ignore(folder, names):
        top = {"gimp_plugin", "space", "manifests"} if Path(folder) == package else set()
        return [n for n in names if n in top or n == "__pycache__" or n.endswith((".pyc", ".egg-info"))]

    shutil.copytree(package, dest / "priorpaint", ignore=ignore)
    shutil.copytree(manifests, dest / "priorpaint" / "manifests",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def cmd_space_export(args) -> int:
    dest = export_space(args.dir, force=args.force)
    print(f"wrote a deployable Space to {dest}; upload it with:\n"
          f"  huggingface-cli upload <user>/<space> {dest} . --repo-type space")
    return 0
