"""Who a request comes from: a client id the server issues, and the client key built on it.

The guard (:mod:`.guard`) gives every client without one a random id in the signed cookie
:data:`CLIENT_COOKIE` (HttpOnly, SameSite=Strict; signed with the cache's namespace secret, so
it survives a restart and cannot be made outside) and hands the verified id to the app in
:data:`CLIENT_HEADER`, dropping any such header the client sent.  :func:`client_key` reads it:
what a loopback client owns (its saved vectors, its per-client bounds) is bound to that id,
never to a value the client chooses such as Gradio's ``session_hash``.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from typing import Optional, Tuple

CLIENT_COOKIE = "priorpaint_client"
#: the verified client id, as the guard hands it to the app
CLIENT_HEADER = "x-priorpaint-client"


class ClientIds:
    """Issues and verifies client ids (``<id>.<signature>`` cookie values)."""

    def __init__(self, key: Optional[bytes] = None):
        self._key = key

    def _sign(self, ident: str) -> str:
        if self._key is None:
            from ..store import namespace_secret
            self._key = hmac.new(namespace_secret(), b"priorpaint-client-cookie", "sha256").digest()
        return hmac.new(self._key, ident.encode("ascii"), "sha256").hexdigest()[:32]

    def verify(self, cookie_value: Optional[str]) -> Optional[str]:
        """The id of a cookie value whose signature holds, else None."""
        ident, _, sig = (cookie_value or "").partition(".")
        if not (8 <= len(ident) <= 64 and ident.isascii() and ident.replace("-", "").replace("_", "").isalnum()):
            return None
        return ident if hmac.compare_digest(sig, self._sign(ident)) else None

    def issue(self, secure: bool) -> Tuple[str, bytes]:
        """A new id and its ``Set-Cookie`` header value."""
        ident = secrets.token_urlsafe(18)
        value = (f"{CLIENT_COOKIE}={ident}.{self._sign(ident)}; Path=/; Max-Age=31536000; HttpOnly; "
                 "SameSite=Strict" + ("; Secure" if secure else ""))
        return ident, value.encode()


def client_key(request) -> str:
    """Who a request comes from, for the per-client bounds and the client's own saved vectors:
    the peer address, and on a loopback peer also the client id the guard verified from its
    signed cookie (one per browser, gradio_client ``Client`` or bridge). A loopback request
    without one (a client that keeps no cookies) is a client of its own."""
    if request is None:
        return ""
    try:
        host = request.client.host or ""
    except Exception:
        host = ""
    try:
        loop = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loop = host in ("", "localhost", "testclient")
    if not loop:
        return host
    try:
        ident = str(request.headers.get(CLIENT_HEADER) or "")[:64]
    except Exception:
        ident = ""
    return f"{host}|{ident or 'call-' + secrets.token_urlsafe(12)}"
