"""Launching the app: ``priorpaint serve`` and the Space entry (``space/app.py``).

Binding: 127.0.0.1 by default.  A non-loopback ``--host`` without a token is **refused**
(exit code 2): the API runs arbitrary-length jobs on the machine and hands out the
uploaded photos, so it must not be open to a network by accident.  Inside a Hugging Face
Space the app binds 0.0.0.0 (the container's port is reached only through the Space's
proxy); ``space/app.py`` does that without the check.

Token auth (``--token`` or ``PRIORPAINT_TOKEN``): an ASGI middleware in front of every
route.  A request is let through when it carries ``Authorization: Bearer <token>``
(gradio_client: ``Client(url, headers={"Authorization": "Bearer T"})``; plain HTTP:
the same header), or the cookie ``priorpaint_token`` (browsers: open
``http://host:port/?token=T`` once; the middleware sets the cookie).  Anything else gets
401 with a one-line JSON ``detail``.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import socket
from http.cookies import SimpleCookie
from typing import Optional
from urllib.parse import parse_qs

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from ..errors import InputError

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_UPLOAD_MB = 50.0
COOKIE = "priorpaint_token"
#: Gradio's launch() checks its own start-up with this request (no token); it only runs
#: the app's start-up events once and returns a boolean, so it is left open.
OPEN_PATHS = frozenset({"/gradio_api/startup-events"})


class TokenAuth:
    """ASGI middleware: every HTTP/websocket request must carry the token."""

    def __init__(self, app, token: str):
        self.app = app
        self.token = token.encode("utf-8")

    def _ok(self, value: Optional[str]) -> bool:
        return bool(value) and hmac.compare_digest(value.encode("utf-8"), self.token)

    async def __call__(self, scope, receive, send):
        if scope.get("type") not in ("http", "websocket") or scope.get("path") in OPEN_PATHS:
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        auth = headers.get("authorization", "")
        bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:
            pass
        from_cookie = cookie[COOKIE].value if COOKIE in cookie else None
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        from_query = (query.get("token") or [None])[0]
        if self._ok(bearer) or self._ok(from_cookie):
            return await self.app(scope, receive, send)
        if self._ok(from_query) and scope["type"] == "http":
            # A browser opening ?token=T: remember it in an HttpOnly cookie for the page's own requests.
            async def send_with_cookie(message):
                if message["type"] == "http.response.start":
                    hdrs = list(message.get("headers", []))
                    hdrs.append((b"set-cookie", f"{COOKIE}={from_query}; Path=/; HttpOnly; SameSite=Strict".encode()))
                    message = dict(message, headers=hdrs)
                await send(message)
            return await self.app(scope, receive, send_with_cookie)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({"detail": "missing or wrong token: send the header 'Authorization: Bearer <token>' "
                                     "(browsers: open the page once with ?token=<token>)"}).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"),
                                (b"www-authenticate", b'Bearer realm="priorpaint"'),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def is_loopback(host: str) -> bool:
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
          session_ttl_s: float = 3600.0, slots: int = 2, default_steps: int = 200, device=None):
    """The Gradio Blocks app and its backend."""
    from .api import Backend
    from .sessions import JobRegistry, SessionStore
    from .ui import build_app

    backend = Backend(model=model, device=device, default_steps=default_steps,
                      store=SessionStore(max_sessions, int(max_session_mb * 1024 * 1024), session_ttl_s),
                      jobs=JobRegistry(slots))
    return build_app(backend), backend


def launch(demo, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, token: Optional[str] = None,
           max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB, block: bool = True, quiet: bool = False):
    """Launch ``demo``; returns what ``Blocks.launch`` returns."""
    app_kwargs = {}
    if token:
        from starlette.middleware import Middleware
        app_kwargs["middleware"] = [Middleware(TokenAuth, token=token)]
    if max_upload_mb <= 0:
        raise InputError("--max-upload-mb must be positive")
    return demo.launch(
        server_name=host, server_port=int(port), max_file_size=int(max_upload_mb * 1024 * 1024),
        app_kwargs=app_kwargs, prevent_thread_lock=not block, quiet=quiet, show_error=False,
        ssr_mode=False, inbrowser=False, share=False,
    )


def cmd_serve(args) -> int:
    token = args.token if args.token is not None else os.environ.get("PRIORPAINT_TOKEN") or None
    check_bind(args.host, token)
    if not (0 < args.port < 65536):
        raise InputError(f"--port must be 1..65535, got {args.port}")
    if args.model:
        from ..models.manifest import get_entry
        get_entry(args.model)  # an unknown model fails now, with the list of known ones
    demo, _ = build(model=args.model, max_sessions=args.max_sessions, max_session_mb=args.max_session_mb,
                    session_ttl_s=args.session_ttl, slots=args.slots, default_steps=args.steps)
    print(f"priorpaint: serving on http://{args.host}:{args.port}"
          + (" (token required)" if token else ""), flush=True)
    launch(demo, args.host, args.port, token, args.max_upload_mb, block=True, quiet=not args.verbose_server)
    return 0


def export_space(dest, force: bool = False):
    """Copy ``space/`` and ``weights_manifest/`` into ``dest``: a folder deployable as a Space as-is.

    The manifest goes to ``dest/priorpaint/weights_manifest`` (where
    :func:`priorpaint.models.manifest.manifest_dirs` looks first).  Needs the source
    checkout (the Space files are not part of an installed wheel).
    """
    import shutil
    from pathlib import Path

    space = Path(__file__).resolve().parents[2]
    repo = space.parent
    manifest = repo / "weights_manifest"
    missing = [str(p) for p in (space / "app.py", space / "README.md", space / "requirements.txt", manifest)
               if not p.exists()]
    if missing:
        raise InputError(f"space-export needs the priorpaint source checkout; missing: {', '.join(missing)}")
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        if not force:
            raise InputError(f"{dest} exists and is not empty; give --force to replace its contents")
        if (dest / ".git").exists():
            raise InputError(f"{dest} is a git repository; export into an empty folder and copy from there")
        shutil.rmtree(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("app.py", "README.md", "requirements.txt"):
        shutil.copy2(space / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(space / "priorpaint", dest / "priorpaint", ignore=ignore)
    shutil.copytree(manifest, dest / "priorpaint" / "weights_manifest", ignore=ignore, dirs_exist_ok=True)
    return dest


def cmd_space_export(args) -> int:
    dest = export_space(args.dir, force=args.force)
    print(f"wrote a deployable Space to {dest}; upload it with:\n"
          f"  huggingface-cli upload <user>/<space> {dest} . --repo-type space")
    return 0
