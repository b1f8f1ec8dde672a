"""Who a request comes from: a client id the server issues, the client key built on it, what a
client owns, and the address a request comes from behind a trusted proxy.

The guard (:mod:`.guard`) gives every client without one a random id in the signed cookie
:data:`CLIENT_COOKIE` (HttpOnly; signed with the cache's namespace secret, so it survives a
restart and cannot be made outside) and hands the verified id to the app in
:data:`CLIENT_HEADER`, dropping any such header the client sent.  :func:`client_key` reads it:
every client, loopback or remote, is ``host|id`` — what it owns (its saved vectors, its
sessions and jobs, its per-client bounds) is bound to that id, never to a value the client
chooses such as Gradio's ``session_hash``, nor to the address alone (behind a Space's proxy
every visitor has the proxy's address).

A client can rotate its id (drop the cookie: a request without one gets a fresh id), so the
bounds that must hold whatever a client does are kept per *address* too (:func:`address`):
jobs in flight and sessions of a remote address (:func:`bounded_address`), saved vectors of
any (``--max-address-*``).  The address is the peer's,
or, from a proxy trusted with ``--forwarded-allow-ips`` (:class:`TrustedProxies`), the one
its ``X-Forwarded-For`` names.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from typing import Iterable, Optional, Tuple

CLIENT_COOKIE = "priorpaint_client"
#: the verified client id, as the guard hands it to the app
CLIENT_HEADER = "x-priorpaint-client"
#: a Hugging Face Space sets this in its container
SPACE_ENV = "SPACE_ID"
FORWARDED_ENV = "PRIORPAINT_FORWARDED_ALLOW_IPS"
#: the proxies a Space's container is reached through: its platform's own network
PRIVATE_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8",
                    "fc00::/7", "::1/128")


def cookie_attributes(secure: bool) -> str:
    """The attributes of the server's cookies: on https ``SameSite=None; Secure; Partitioned``
    (a Space's page runs in a cross-site iframe on huggingface.co, where a SameSite=Strict or
    Lax cookie is never sent; Partitioned keeps it to that embedding site, CHIPS); on plain
    http ``SameSite=Strict`` (browsers reject SameSite=None without Secure)."""
    return "SameSite=None; Secure; Partitioned" if secure else "SameSite=Strict"


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
        """A new id and its ``Set-Cookie`` header value (:func:`cookie_attributes`)."""
        ident = secrets.token_urlsafe(18)
        value = (f"{CLIENT_COOKIE}={ident}.{self._sign(ident)}; Path=/; Max-Age=31536000; HttpOnly; "
                 + cookie_attributes(secure))
        return ident, value.encode()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in ("", "localhost", "testclient")


def client_key(request) -> str:
    """Who a request comes from: ``address|id``, the id the guard verified from the client's
    signed cookie (one per browser, gradio_client ``Client`` or bridge). A request without one
    (a client that keeps no cookies, or the first request of a new one) is a client of its own:
    it owns only what that request creates."""
    if request is None:
        return ""
    try:
        host = request.client.host or ""
    except Exception:
        host = ""
    try:
        ident = str(request.headers.get(CLIENT_HEADER) or "")[:64]
    except Exception:
        ident = ""
    return f"{host}|{ident or 'call-' + secrets.token_urlsafe(12)}"


def address(client: str) -> str:
    """The address part of a client key (the bounds kept per address read it)."""
    return (client or "").split("|", 1)[0]


def owner(client: str) -> str:
    """What owns a session or a job of ``client``: on loopback the machine itself (every caller
    is this machine's user, whom a loopback server already trusts; a plain-HTTP client such as
    the GIMP bridge without its cookie still reaches its own session), else the client key:
    another id, even from the same proxy address, neither uses nor cancels it."""
    host = address(client)
    return host if _is_loopback(host) else (client or "")


def bounded_address(client: str) -> Optional[str]:
    """The address whose per-address bounds on jobs and sessions ``client`` counts toward, or
    None on loopback (every caller is this machine's user: the per-client and global bounds
    apply, as before, so several local clients are not held to one address's share)."""
    host = address(client)
    return None if _is_loopback(host) else host


class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are believed.

    A request from a trusted peer comes from the rightmost ``X-Forwarded-For`` entry that is not
    itself a trusted proxy (each proxy appends the address it saw; what a client wrote itself is
    further left and never read); its scheme is the first ``X-Forwarded-Proto``.  From any other
    peer both headers are ignored.  Nothing is trusted unless named (``--forwarded-allow-ips`` or
    ``PRIORPAINT_FORWARDED_ALLOW_IPS``, comma-separated addresses or networks); inside a Space
    (``SPACE_ID`` set) the default is the private networks (:data:`PRIVATE_NETWORKS`), the
    platform's proxies the container is reached through.
    """

    def __init__(self, networks: Iterable[str] = ()):
        from ..errors import InputError
        self.networks = []
        for n in networks:
            n = n.strip()
            if not n:
                continue
            try:
                self.networks.append(ipaddress.ip_network(n, strict=False))
            except ValueError:
                raise InputError(f"--forwarded-allow-ips: {n[:60]!r} is not an IP address or network "
                                 "(give comma-separated addresses or networks, e.g. 10.0.0.0/8,127.0.0.1)") from None

    @classmethod
    def from_setting(cls, value: Optional[str] = None) -> "TrustedProxies":
        """From the flag's value, else the environment, else (in a Space) the private networks."""
        if value is None:
            value = os.environ.get(FORWARDED_ENV)
        if value is None and os.environ.get(SPACE_ENV):
            value = ",".join(PRIVATE_NETWORKS)
        return cls((value or "").split(","))

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, host: str) -> bool:
        try:
            ip = ipaddress.ip_address((host or "").strip().strip("[]"))
        except ValueError:
            return False
        return any(ip.version == n.version and ip in n for n in self.networks)

    def resolve(self, peer: str, forwarded_for: str, forwarded_proto: str) -> Tuple[str, Optional[str]]:
        """(the client's address, its scheme or None) of a request from ``peer``."""
        if not self.trusts(peer):
            return peer, None
        hops = [h.strip().strip('"') for h in (forwarded_for or "").split(",") if h.strip()]
        client = peer
        for hop in reversed(hops):
            if hop.startswith("[") and "]" in hop:
                hop = hop[1:hop.index("]")]
            elif hop.count(":") == 1:  # an IPv4 address with a port
                hop = hop.split(":")[0]
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                break  # not an address: nothing further left can be believed
            client = hop
            if not self.trusts(hop):
                break
        proto = (forwarded_proto or "").split(",")[0].strip().lower()
        return client, (proto if proto in ("http", "https") else None)
