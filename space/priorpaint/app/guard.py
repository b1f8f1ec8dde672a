"""The ASGI layer in front of the *whole* app (Gradio's own middleware included).

:class:`Guard` wraps the application handed to uvicorn, so it sees every request before
Gradio's CORS layer (which copies a request's ``Origin`` into ``Access-Control-Allow-Origin``
whenever the ``Host`` is not a localhost name) and before any route:

* **Loopback means loopback** (a loopback bind without a token): the ``Host`` header must be
  a loopback name or address (``localhost``, ``127.0.0.1``, ``[::1]``) with the server's
  port, and a request that carries an ``Origin`` must come from such an origin — a web page
  elsewhere (DNS rebinding, a cross-site form or fetch) gets 403 and its upload is never read.
* **Token** (``--token``): ``Authorization: Bearer T`` or the ``priorpaint_token`` cookie on
  every request; ``?token=T`` is honoured on the page route only (``GET /``), where it sets
  the HttpOnly cookie (SameSite=Strict on http; ``SameSite=None; Secure; Partitioned`` on
  https, where the page may run in a Space's cross-site iframe: :func:`.clients.cookie_attributes`).
* **Trusted proxies** (``--forwarded-allow-ips``; in a Space its private networks): a request
  from such a peer comes from the address its ``X-Forwarded-For`` names and with the scheme of
  its ``X-Forwarded-Proto`` (:class:`.clients.TrustedProxies`); from any other peer both
  headers are ignored.
* **Uploads**: one upload request may carry at most ``max_request_mb`` in all (413, checked on
  ``Content-Length`` and on the bytes actually received), and this server's upload folder
  at most ``max_upload_disk_mb``: each upload reserves its size before a byte is read, the
  oldest unused files are evicted to make room, 507 only when every file is in use
  (:class:`~priorpaint.app.disk.UploadDisk`); any other request body (an API call's JSON) at
  most ``max_body_mb`` (413), before Gradio parses it.
* **No server paths out**: text responses name the server's file folder by an opaque prefix,
  mapped back in the ``file=`` route and in JSON bodies (:mod:`.filenames`); responses are
  not compressed (``Accept-Encoding`` is dropped) so that every byte can be checked.
* **A client id of the server's own**: the first response to a client without one sets the
  ``priorpaint_client`` cookie; the app reads the verified id from the header the guard puts
  on every request, never the client's own (:mod:`.clients`).

Every refusal is one JSON line ``{"detail": "..."}``.
"""

from __future__ import annotations

import hmac
import json
import logging
from http.cookies import SimpleCookie
from typing import Optional
from urllib.parse import parse_qs, urlsplit

from .clients import CLIENT_COOKIE, CLIENT_HEADER, ClientIds, TrustedProxies, cookie_attributes
from .filenames import PUBLIC, text_response

log = logging.getLogger(__name__)

COOKIE = "priorpaint_token"
#: paths served as-is (scripts, styles, fonts: compressed, no server paths in them)
STATIC_PREFIXES = ("/assets/", "/static/", "/gradio_api/assets/", "/favicon")
#: Gradio's start-up check; it only runs the app's start-up events once and returns a boolean
OPEN_PATHS = frozenset({"/gradio_api/startup-events"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
MIN_TOKEN = 16
MB = 1024 * 1024


def check_token(token: Optional[str]) -> Optional[str]:
    """The token, or ``None``; a token shorter than 16 characters (or with spaces) is refused."""
    from ..errors import InputError
    if token is None:
        return None
    if token != token.strip() or any(c.isspace() for c in token) or len(token) < MIN_TOKEN:
        raise InputError(f"--token must be at least {MIN_TOKEN} characters without spaces "
                         "(for example: python -c 'import secrets; print(secrets.token_urlsafe(24))')")
    return token


def split_host(value: str):
    """(name, port or None) of a Host header or an origin's netloc; IPv6 brackets removed."""
    value = (value or "").strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None, None
        name, rest = value[1:end], value[end + 1:]
        port = rest[1:] if rest.startswith(":") else None
    else:
        name, _, port = value.partition(":")
        port = port or None
    try:
        return name, (int(port) if port is not None else None)
    except ValueError:
        return None, None


def is_loopback_name(name: Optional[str]) -> bool:
    if name in LOOPBACK_NAMES:
        return True
    import ipaddress
    try:
        return ipaddress.ip_address(name or "").is_loopback
    except ValueError:
        return False


def _one_line(status: int, detail: str, extra=()):
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers.extend(extra)
    return status, headers, body


class _TooLarge(Exception):
    pass


class Guard:
    def __init__(self, app, *, token: Optional[str] = None, loopback_port: Optional[int] = None,
                 max_request_mb: float = 50.0, upload_dir: Optional[str] = None,
                 max_upload_disk_mb: float = 1024.0, max_body_mb: float = 4.0, disk=None,
                 files_dir: Optional[str] = None, proxies: Optional[TrustedProxies] = None):
        from .disk import UploadDisk
        from .filenames import FileNames
        self.app = app
        self.token = token.encode("utf-8") if token else None
        self.loopback_port = loopback_port
        self.max_request = int(max_request_mb * MB)
        self.max_disk = int(max_upload_disk_mb * MB)
        self.max_body = int(max_body_mb * MB)
        #: the upload folder's bytes, reservations, eviction and expiry (:mod:`.disk`)
        self.disk = disk if disk is not None else (
            UploadDisk(upload_dir, self.max_disk) if upload_dir is not None else None)
        self.refused = 0
        #: the server's file folder as clients see it (None: no folder to hide)
        folder = files_dir or (self.disk.folder if self.disk is not None else None)
        self.names = FileNames(str(folder)) if folder else None
        self.ids = ClientIds()
        #: whose X-Forwarded-For / X-Forwarded-Proto are believed (none unless named)
        self.proxies = proxies if proxies is not None else TrustedProxies()

    # -- helpers ---------------------------------------------------------------------------
    def _ok(self, value: Optional[str]) -> bool:
        return bool(value) and self.token is not None and hmac.compare_digest(value.encode("utf-8"), self.token)

    async def _refuse(self, scope, send, status: int, detail: str, extra=()):
        self.refused += 1
        log.info("refused %s %s: %s", scope.get("method", scope["type"]), scope.get("path", "")[:80], detail)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        status, headers, body = _one_line(status, detail, extra)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _loopback_problem(self, headers: dict) -> Optional[str]:
        host = headers.get("host", "")
        name, port = split_host(host)
        if not is_loopback_name(name) or port != self.loopback_port:
            return (f"Host {host[:80]!r} is not this server's loopback address (localhost, 127.0.0.1 or [::1] "
                    f"with port {self.loopback_port}): refused (a server without a token answers only loopback "
                    "names, so a web page cannot reach it by DNS rebinding)")
        origin = headers.get("origin")
        if origin is not None:
            parts = urlsplit(origin.strip())
            oname, oport = split_host(parts.netloc)
            if parts.scheme not in ("http", "https") or not is_loopback_name(oname) or oport != self.loopback_port:
                return (f"cross-origin request from {origin[:80]!r} refused: this server answers only its own "
                        "page and clients without an Origin")
        return None

    def _prepare(self, scope, send, cookie, secure: bool, extra_headers=()):
        """The request as the app sees it and the ``send`` its answers go through: the verified
        client id in :data:`CLIENT_HEADER` (a new one, and its cookie, when the client has none),
        no ``Accept-Encoding`` (uncompressed, so that paths can be hidden), the public name of a
        ``file=`` route mapped to the server's path; text answers with the paths hidden."""
        extra = list(extra_headers)
        ident = self.ids.verify(cookie[CLIENT_COOKIE].value) if CLIENT_COOKIE in cookie else None
        if ident is None:
            ident, value = self.ids.issue(secure)
            extra.append((b"set-cookie", value))
        path = scope.get("path", "")
        static = path.startswith(STATIC_PREFIXES)
        drop = {CLIENT_HEADER.encode()} | (set() if static else {b"accept-encoding"})
        scope = dict(scope, headers=[(k, v) for k, v in scope.get("headers", []) if k.lower() not in drop]
                     + [(CLIENT_HEADER.encode(), ident.encode())])
        if self.names is not None and "/file=" in path:
            real = self.names.request_path(path)
            if real is not None:
                from urllib.parse import quote
                scope.update(path=real, raw_path=quote(real).encode())
            elif "/file=" + PUBLIC in path:
                scope["priorpaint.bad_name"] = True
        if scope["type"] != "http" or (not extra and (self.names is None or static)):
            return scope, send
        names = None if static else self.names
        state = {"text": False, "start": None, "parts": [], "held": b""}

        async def answer(message):
            kind = message["type"]
            if kind == "http.response.start":
                headers = list(message.get("headers", [])) + extra
                if names is not None:
                    headers = [(k, names.hide(v)) for k, v in headers]
                    # a HEAD answer has no body to rewrite: its length stays the GET's
                    state["text"] = text_response(headers) and scope.get("method") != "HEAD"
                message = dict(message, headers=headers)
                if state["text"] and any(k.lower() == b"content-length" for k, _ in headers):
                    state["start"] = message  # sent with the rewritten body's length
                    return
            elif kind == "http.response.body" and state["text"]:
                body, more = message.get("body", b""), message.get("more_body", False)
                if state["start"] is not None:
                    state["parts"].append(body)
                    if more:
                        return
                    data = names.hide(b"".join(state["parts"]))
                    start = state["start"]
                    state["start"], state["parts"] = None, []
                    await send(dict(start, headers=[(k, str(len(data)).encode() if k.lower() == b"content-length"
                                                     else v) for k, v in start["headers"]]))
                    message = dict(message, body=data)
                else:
                    out, state["held"] = names.hide_stream(state["held"], body, not more)
                    message = dict(message, body=out)
            await send(message)
        return scope, answer

    def _forwarded(self, scope, headers: dict):
        """The request as it came to a trusted proxy: its client address and scheme from the
        proxy's ``X-Forwarded-For`` / ``X-Forwarded-Proto``; from any other peer, as it is."""
        if not self.proxies:
            return scope
        peer = (scope.get("client") or ("", 0))
        host, proto = self.proxies.resolve(peer[0], headers.get("x-forwarded-for", ""),
                                           headers.get("x-forwarded-proto", ""))
        if host == peer[0] and proto is None:
            return scope
        scope = dict(scope, client=(host, peer[1] if len(peer) > 1 else 0))
        if proto is not None:
            scope["scheme"] = ({"http": "ws", "https": "wss"}[proto] if scope["type"] == "websocket" else proto)
        return scope

    # -- ASGI --------------------------------------------------------------------------------
    async def __call__(self, scope, receive, send):
        if scope.get("type") not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.loopback_port is not None:
            problem = self._loopback_problem(headers)
            if problem:
                return await self._refuse(scope, send, 403, problem)
        scope = self._forwarded(scope, headers)
        path = scope.get("path", "")
        secure = scope.get("scheme") in ("https", "wss")
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:
            pass
        if self.token is not None and path not in OPEN_PATHS:
            auth = headers.get("authorization", "")
            bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
            from_cookie = cookie[COOKIE].value if COOKIE in cookie else None
            if not (self._ok(bearer) or self._ok(from_cookie)):
                query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
                from_query = (query.get("token") or [None])[0]
                page = scope["type"] == "http" and scope.get("method") == "GET" and path in ("/", "")
                if page and self._ok(from_query):
                    value = f"{COOKIE}={from_query}; Path=/; HttpOnly; " + cookie_attributes(secure)
                    scope, send = self._prepare(scope, send, cookie, secure, [(b"set-cookie", value.encode())])
                    return await self.app(scope, receive, send)
                return await self._refuse(
                    scope, send, 401, "missing or wrong token: send the header 'Authorization: Bearer <token>' "
                                      "(browsers: open the page once with ?token=<token>)",
                    [(b"www-authenticate", b'Bearer realm="priorpaint"')])
        scope, send = self._prepare(scope, send, cookie, secure)
        if scope.get("priorpaint.bad_name"):  # a public name with a '..' segment
            return await self._refuse(scope, send, 404, "no such file")
        path = scope["path"]
        if scope["type"] == "http" and scope.get("method") == "POST" and path.rstrip("/").endswith("/gradio_api/upload"):
            return await self._upload(scope, receive, send, headers)
        if scope["type"] == "http" and scope.get("method") in ("POST", "PUT", "PATCH"):
            return await self._bounded(scope, receive, send, headers)
        return await self.app(scope, receive, send)

    async def _bounded(self, scope, receive, send, headers):
        """Any other body (an API call's JSON) at most ``max_body``: refused before it is parsed."""
        detail = (f"this request's body is over {self.max_body / MB:g} MB, the limit for an API call "
                  "(--max-body-mb); send large images as uploads")
        try:
            declared = int(headers.get("content-length", "0") or 0)
        except ValueError:
            return await self._refuse(scope, send, 400, "Content-Length is not a number")
        if declared > self.max_body:
            await self._drain(receive)
            return await self._refuse(scope, send, 413, detail)
        reveal = self.names is not None and headers.get("content-type", "").lower().startswith("application/json")
        await self._run_counted(scope, receive, send, self.max_body, detail, reveal=reveal)

    async def _run_counted(self, scope, receive, send, limit: int, detail: str, reveal: bool = False) -> None:
        """Run the app on a body counted as it streams: past ``limit`` bytes the app sees a
        disconnect and, if it had not answered yet, the client gets a 413 with ``detail``.
        With ``reveal`` the body (JSON) is read whole and handed on with the public file names
        turned back into the server's paths."""
        state = {"seen": 0, "over": False, "started": False}

        async def counted():
            message = await receive()
            if message["type"] == "http.request":
                state["seen"] += len(message.get("body", b""))
                if state["seen"] > limit:
                    state["over"] = True
                    return {"type": "http.disconnect"}
                if reveal:
                    parts = [message.get("body", b"")]
                    while message.get("more_body", False):
                        message = await receive()
                        if message["type"] != "http.request":
                            return message
                        parts.append(message.get("body", b""))
                        state["seen"] += len(parts[-1])
                        if state["seen"] > limit:
                            state["over"] = True
                            return {"type": "http.disconnect"}
                    return {"type": "http.request", "body": self.names.reveal(b"".join(parts)), "more_body": False}
            return message

        async def guarded_send(message):
            if state["over"]:
                return  # the refusal below answers instead
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, counted, guarded_send)
        except Exception as e:
            if type(e).__name__ == "ClientDisconnect" and not state["over"]:
                # the client hung up while sending: one line, not a traceback per aborted upload
                log.warning("%s %s: the client disconnected after %d bytes of its body; nothing kept",
                            scope.get("method", ""), scope.get("path", "")[:80], state["seen"])
                return
            if not state["over"]:
                raise
        if state["over"] and not state["started"]:
            await self._drain(receive)
            await self._refuse(scope, send, 413, detail)

    @staticmethod
    async def _drain(receive, cap: int = 64 * MB) -> None:
        """Read and drop what is left of a refused request body (up to ``cap``), so the client,
        still sending, reads the refusal instead of a broken connection; nothing is kept."""
        seen = 0
        while seen < cap:
            message = await receive()
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    async def _upload(self, scope, receive, send, headers):
        try:
            declared = int(headers.get("content-length", "0") or 0)
        except ValueError:
            return await self._refuse(scope, send, 400, "Content-Length is not a number")
        limit_mb = self.max_request / MB
        if declared > self.max_request:
            await self._drain(receive)
            return await self._refuse(scope, send, 413, f"this upload request is {declared / MB:.1f} MB; the limit "
                                                        f"for one request (all its files) is {limit_mb:g} MB "
                                                        "(--max-request-mb)")
        reserve = declared if declared > 0 else self.max_request  # chunked: the most it may send
        if self.disk is not None and not self.disk.reserve(reserve):
            await self._drain(receive)
            return await self._refuse(scope, send, 507, f"this server's uploads fill their {self.disk.max_bytes / MB:g} "
                                                        "MB (--max-upload-disk-mb) and every file is in use; try "
                                                        "again in a few seconds")
        try:
            await self._run_counted(scope, receive, send, min(self.max_request, reserve),
                                    f"this upload request is over {limit_mb:g} MB, the limit for one "
                                    "request (all its files) (--max-request-mb)")
        finally:
            if self.disk is not None:
                self.disk.release(reserve)  # and, the last one in flight, removes every partial file


# -- Gradio's own rejections as one line ------------------------------------------------------

_DROP = ("for further information", "wanted inputs:", "received inputs:", "check if the event handler")


def gradio_error_line(text: str, limit: int = 300) -> str:
    """One line of a Gradio/pydantic rejection (which spans lines and lists component objects)."""
    from .api import no_paths
    kept = []
    for raw in str(text).splitlines():
        line = raw.strip()
        if not line:
            continue
        if any(line.lower().startswith(d) for d in _DROP):
            if line.lower().startswith(("wanted inputs:", "received inputs:")):
                break
            continue
        if line.startswith("[<gradio.") or " object at 0x" in line:
            continue
        kept.append(line)
    out = no_paths(" ".join(kept)) or "the request was rejected before it reached the app"
    return out if len(out) <= limit else out[:limit] + "..."


def one_line_gradio_errors() -> None:
    """Make every error Gradio itself reports (a bad input caught before the app's code runs)
    one clear line: its payload builder is wrapped where the queue and the routes call it."""
    import gradio.queueing as gq
    import gradio.utils as gu
    if getattr(gu.error_payload, "_priorpaint", False):
        return
    original = gu.error_payload

    def error_payload(error, show_error):
        content = original(error, show_error)
        msg = content.get("error")
        if isinstance(msg, str):
            content["error"] = gradio_error_line(msg)
        elif error is not None and not show_error:
            content["error"] = f"the request was rejected: {type(error).__name__}"
        return content
    error_payload._priorpaint = True
    gu.error_payload = error_payload
    if hasattr(gq, "error_payload"):
        gq.error_payload = error_payload
