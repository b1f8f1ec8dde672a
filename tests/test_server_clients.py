"""Who a request comes from, behind a proxy too (issue 28's last item).

Every client, remote ones included, is keyed by the id the server issued it (``host|id``):
behind a Hugging Face Space's proxy every visitor has the proxy's address. What a client
could escape by dropping its cookie (a new id each request) is bounded per address as well.
``X-Forwarded-For`` / ``-Proto`` are believed from the proxies named, never from any peer. The
cookie works in a Space's cross-site iframe (``SameSite=None; Secure; Partitioned`` on https).
A session's progressive-preview frames count toward ``--max-session-mb``.

A remote peer is simulated with the guard's ASGI scope (a non-loopback client address) and,
live, with a real server trusting its loopback peer as a proxy (``--forwarded-allow-ips``).
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import urllib.request
import uuid

import pytest
import torch

from priorpaint.app.clients import (CLIENT_COOKIE, CLIENT_HEADER, PRIVATE_NETWORKS, TrustedProxies, address,
                                    client_key, owner)
from priorpaint.app.guard import COOKIE, Guard
from priorpaint.app.sessions import JobRegistry, SessionStore
from priorpaint.errors import InputError

from app_server import Server, file_data
from conftest import skimage_data

PROXY = "10.16.3.80"          # a Space's proxy, as the container sees it
VISITOR = "198.51.100.7"      # a visitor's public address, as the proxy forwards it


class Req:
    """What :func:`client_key` reads of a Gradio request."""

    def __init__(self, host, ident=None):
        self.client = type("C", (), {"host": host})()
        self.headers = {CLIENT_HEADER: ident} if ident else {}


# -- keys, owners, addresses ----------------------------------------------------------------------

def test_remote_peers_are_keyed_by_their_id_not_the_address_alone():
    a, b = client_key(Req(PROXY, "id-a")), client_key(Req(PROXY, "id-b"))
    assert a == f"{PROXY}|id-a" and a != b and address(a) == address(b) == PROXY
    assert client_key(Req(PROXY)) != client_key(Req(PROXY))           # no cookie: a client of its own
    assert owner(a) != owner(b) and owner(a) == a                     # remote: the id owns
    assert owner("127.0.0.1|x") == owner("127.0.0.1|y") == "127.0.0.1"  # loopback: the machine owns


# -- trusted proxies --------------------------------------------------------------------------------

def test_forwarded_for_is_believed_only_from_a_named_proxy():
    proxies = TrustedProxies(["10.0.0.0/8"])
    assert proxies.resolve("203.0.113.9", VISITOR, "https") == ("203.0.113.9", None)   # not a proxy: ignored
    assert proxies.resolve(PROXY, VISITOR, "https") == (VISITOR, "https")
    # what the client wrote itself is left of what the proxy appended: never read
    assert proxies.resolve(PROXY, f"6.6.6.6, {VISITOR}", "")[0] == VISITOR
    assert proxies.resolve(PROXY, f"{VISITOR}, 10.1.2.3", "")[0] == VISITOR             # two proxies
    assert proxies.resolve(PROXY, "not-an-address", "http")[0] == PROXY
    assert proxies.resolve(PROXY, "[2001:db8::1]:443", "")[0] == "2001:db8::1"
    assert proxies.resolve(PROXY, "", "ftp") == (PROXY, None)
    assert not TrustedProxies.from_setting("") and not TrustedProxies([])


def test_a_space_trusts_its_private_proxies_and_nothing_is_trusted_elsewhere(monkeypatch):
    monkeypatch.delenv("PRIORPAINT_FORWARDED_ALLOW_IPS", raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert not TrustedProxies.from_setting(None)
    monkeypatch.setenv("SPACE_ID", "someone/priorpaint")
    space = TrustedProxies.from_setting(None)
    assert len(space.networks) == len(PRIVATE_NETWORKS) and space.trusts(PROXY) and not space.trusts(VISITOR)
    assert not TrustedProxies.from_setting("192.0.2.1").trusts(PROXY)     # the flag wins
    with pytest.raises(InputError, match="--forwarded-allow-ips") as e:
        TrustedProxies.from_setting("10.0.0.0/8,proxy.example")
    assert "\n" not in str(e.value)


# -- the guard: forwarded addresses and the cookie's attributes ---------------------------------------

def _drive(make, peer, headers=(), path="/config", scheme="http", query=b""):
    """One GET through the guard ``make(app)`` builds, from ``peer``; (response headers, the scope
    the app saw)."""
    seen, sent = [], []

    async def app(scope, receive, send):
        seen.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(m):
        sent.append(m)
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": query,
             "scheme": scheme, "headers": [(k.encode(), v.encode()) for k, v in headers], "client": (peer, 5)}
    asyncio.run(make(app)(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return [(k.decode(), v.decode()) for k, v in start["headers"]], (seen[0] if seen else None)


def _guard(tmp_path, **kw):
    def make(app):
        return Guard(app, files_dir=str(tmp_path), **kw)
    return make


def _set_cookie(headers, name=CLIENT_COOKIE):
    return next(v for k, v in headers if k == "set-cookie" and v.startswith(name + "="))


def test_the_guard_takes_the_address_a_trusted_proxy_forwards_and_ignores_it_from_others(tmp_path, monkeypatch):
    monkeypatch.setenv("PRIORPAINT_CACHE", str(tmp_path / "cache"))
    trusting = _guard(tmp_path, proxies=TrustedProxies(["10.0.0.0/8"]))
    _, scope = _drive(trusting, PROXY, [("x-forwarded-for", f"6.6.6.6, {VISITOR}"), ("x-forwarded-proto", "https")])
    assert scope["client"][0] == VISITOR and scope["scheme"] == "https"
    _, scope = _drive(trusting, "203.0.113.9", [("x-forwarded-for", VISITOR), ("x-forwarded-proto", "https")])
    assert scope["client"][0] == "203.0.113.9" and scope["scheme"] == "http"
    _, scope = _drive(_guard(tmp_path), PROXY, [("x-forwarded-for", VISITOR)])    # nothing trusted by default
    assert scope["client"][0] == PROXY


def test_the_client_cookie_is_strict_on_http_and_partitioned_on_https(tmp_path, monkeypatch):
    monkeypatch.setenv("PRIORPAINT_CACHE", str(tmp_path / "cache"))
    plain, _ = _drive(_guard(tmp_path), VISITOR)
    cookie = _set_cookie(plain)
    assert "SameSite=Strict" in cookie and "Secure" not in cookie and "Partitioned" not in cookie
    for headers in (_drive(_guard(tmp_path), VISITOR, scheme="https")[0],
                    _drive(_guard(tmp_path, proxies=TrustedProxies([PROXY])), PROXY,
                           [("x-forwarded-proto", "https"), ("x-forwarded-for", VISITOR)])[0]):
        parts = [p.strip() for p in _set_cookie(headers).split(";")]
        assert {"SameSite=None", "Secure", "Partitioned", "HttpOnly"} <= set(parts), parts
    # X-Forwarded-Proto from a peer that is not a trusted proxy changes nothing
    spoofed, _ = _drive(_guard(tmp_path), VISITOR, [("x-forwarded-proto", "https")])
    assert "SameSite=Strict" in _set_cookie(spoofed) and "Secure" not in _set_cookie(spoofed)


def test_the_token_cookie_is_partitioned_on_https_too(tmp_path, monkeypatch):
    monkeypatch.setenv("PRIORPAINT_CACHE", str(tmp_path / "cache"))
    token = "t" * 24
    headers, _ = _drive(_guard(tmp_path, token=token), VISITOR, path="/", scheme="https",
                        query=f"token={token}".encode())
    assert {"SameSite=None", "Secure", "Partitioned"} <= {p.strip() for p in _set_cookie(headers, COOKIE).split(";")}
    headers, _ = _drive(_guard(tmp_path, token=token), VISITOR, path="/", query=f"token={token}".encode())
    assert "SameSite=Strict" in _set_cookie(headers, COOKIE)


def test_the_bridge_keeps_a_partitioned_cookie_and_sends_it_back_over_https():
    """The GIMP bridge's cookie jar (the standard library's) takes the https cookie's attributes."""
    jar = http.cookiejar.CookieJar()
    req = urllib.request.Request("https://someone-priorpaint.hf.space/config")

    class Answer:
        def info(self):
            import email.message
            m = email.message.Message()
            m["Set-Cookie"] = (f"{CLIENT_COOKIE}=abcdefgh.sig; Path=/; Max-Age=31536000; HttpOnly; "
                               "SameSite=None; Secure; Partitioned")
            return m
    jar.extract_cookies(Answer(), req)
    again = urllib.request.Request("https://someone-priorpaint.hf.space/gradio_api/call/edit")
    jar.add_cookie_header(again)
    assert again.get_header("Cookie") == f"{CLIENT_COOKIE}=abcdefgh.sig"


# -- ownership ---------------------------------------------------------------------------------------

class Held:
    """A stand-in session: an id and a size (the store reads nothing else)."""

    def __init__(self, n=1000):
        self.id, self.n = uuid.uuid4().hex, n

    def nbytes(self):
        return self.n


def test_a_session_is_used_only_by_the_id_that_made_it():
    store = SessionStore()
    alice, bob = f"{PROXY}|alice", f"{PROXY}|bob"
    sid = store.put(Held(), alice)
    assert store.get(sid, alice).id == sid
    with pytest.raises(InputError) as other:
        store.get(sid, bob)                                   # same proxy address, another id
    with pytest.raises(InputError) as unknown:
        store.get("no-such-session", bob)
    assert str(other.value).replace(sid, "X") == str(unknown.value).replace("no-such-session", "X")
    with pytest.raises(InputError):
        store.get(sid, client_key(Req(PROXY)))               # a request without a cookie: a fresh id
    local = store.put(Held(), "127.0.0.1|page")
    assert store.get(local, "127.0.0.1|call-xyz").id == local   # loopback: the machine's user


def test_a_reloaded_page_resumes_only_its_own_clients_session():
    """The page's resume (``Service.holds`` with the page's client key) and its live preview (the
    service's preview and verdict with it) read another visitor's session as not held."""
    from priorpaint.app.service import Service
    svc = Service()
    alice, bob = f"{PROXY}|alice", f"{PROXY}|bob"
    class Projected(Held):
        def require_projection(self):
            return None

    sid = svc.store.put(Projected(), alice)
    assert svc.holds(sid, alice) is True
    assert svc.holds(sid, bob) is False
    with pytest.raises(InputError):
        svc.session(sid, bob)


def test_cancel_stops_only_the_callers_own_jobs_behind_one_proxy():
    jobs = JobRegistry()
    alice, bob = f"{PROXY}|alice", f"{PROXY}|bob"
    job = jobs.new("edit", "sess-1", client=alice)
    assert jobs.cancel(job.id, client=bob) == [] and jobs.cancel("sess-1", client=bob) == []
    assert jobs.cancel(job.id, client=client_key(Req(PROXY))) == []
    assert not job.token.cancelled
    assert jobs.cancel("sess-1", client=alice) == [job.id] and job.token.cancelled
    local = jobs.new("edit", "sess-2", client="127.0.0.1|bridge")
    assert jobs.cancel(local.id, client="127.0.0.1|call-abc") == [local.id]   # loopback: the machine


# -- bounds a client cannot escape by dropping its cookie ----------------------------------------------

def test_cookieless_requests_from_one_address_share_its_job_bound():
    jobs = JobRegistry(max_client_jobs=4, max_jobs=32, max_address_jobs=3)
    for _ in range(3):
        jobs.new("project", client=client_key(Req(VISITOR)))     # each a fresh id
    with pytest.raises(InputError, match="--max-address-jobs") as e:
        jobs.new("project", client=client_key(Req(VISITOR)))
    assert "\n" not in str(e.value)
    jobs.new("project", client=client_key(Req("203.0.113.9")))    # another address is not held up
    for _ in range(4):   # loopback: the machine's clients are bound per client and in all only
        jobs.new("project", client=client_key(Req("127.0.0.1")))


def test_a_new_id_of_an_address_just_served_does_not_jump_the_queue():
    """Round robin over remote addresses: a cookie-less client's next request (a new id, never
    served) waits its address's turn instead of going before a client served longer ago."""
    jobs = JobRegistry(slots=2, max_client_jobs=4, max_jobs=32, max_address_jobs=8)
    honest, first = client_key(Req("203.0.113.9", "honest")), client_key(Req(VISITOR))
    for who in (honest, first):              # the honest client is served, then the other address
        job = jobs.new("t", client=who)
        jobs.acquire(job, lambda: None)
        jobs.release(job)
        jobs.finish(job)
    again = jobs.new("t", client=client_key(Req(VISITOR)))     # a fresh id of the address just served
    mine = jobs.new("t", client=honest)
    again.waiting_since, mine.waiting_since = 1.0, 2.0          # the fresh id asked first
    jobs._waiting.extend([again, mine])
    assert jobs._next_locked() is mine


def test_cookieless_sessions_from_one_address_stay_within_its_bound():
    store = SessionStore(max_sessions=32, max_bytes=10 ** 9, max_client_sessions=8, max_address_sessions=4)
    neighbour = store.put(Held(), "203.0.113.9|n")
    kept = store.put(Held(5000), f"{VISITOR}|keeps-its-cookie")
    for _ in range(20):
        store.put(Held(), client_key(Req(VISITOR)))
    mine = [sid for sid, o in store._owner.items() if address(o) == VISITOR]
    assert len(mine) == 4 and neighbour in store
    assert kept not in store          # the address's largest holder lost first (its own bound)
    local = [store.put(Held(), client_key(Req("127.0.0.1"))) for _ in range(6)]
    assert all(sid in store for sid in local)    # loopback: no per-address bound
    store = SessionStore(max_sessions=32, max_bytes=10 ** 9, max_address_bytes=3500)
    for _ in range(10):
        store.put(Held(1000), client_key(Req(VISITOR)))
    assert sum(store._bytes[s] for s, o in store._owner.items() if address(o) == VISITOR) <= 3500


def test_cookieless_vectors_from_one_address_stay_within_its_quota(tmp_cache, monkeypatch):
    from priorpaint.edits import vectors
    from priorpaint.store import client_namespace, namespace_group
    a, b = client_namespace(f"{VISITOR}|x"), client_namespace(f"{VISITOR}|y")
    assert a != b and namespace_group(a) == namespace_group(b) != namespace_group(client_namespace("203.0.113.9|x"))
    one = vectors.save_vector("m", "v", torch.zeros(1, 64, 4, 4), {"split": "b8"},
                              namespace=client_namespace("203.0.113.9|n"))
    size = one.stat().st_size + one.with_suffix(".json").stat().st_size
    monkeypatch.setitem(vectors.QUOTA, "address_bytes", 3 * size)
    for i in range(8):
        vectors.save_vector("m", f"v{i}", torch.zeros(1, 64, 4, 4), {"split": "b8"},
                            namespace=client_namespace(client_key(Req(VISITOR))))
    held = [it for it in vectors._client_vectors() if namespace_group(it[2]) == namespace_group(a)]
    assert 1 <= len(held) <= 3 and one.exists()


# -- the progressive preview's frames count toward --max-session-mb ------------------------------------

def test_a_sessions_preview_frames_are_counted_and_evicted_or_refused_by_the_stores_rule(tiny_session):
    from priorpaint.app.api import Backend
    from priorpaint.progressive import PreviewLines
    client = f"{VISITOR}|painter"
    b = Backend()
    store = b.store
    old = store.put(Held(10_000), client)
    sid = store.put(tiny_session, client)
    before = store.nbytes
    store.max_client_bytes = before + 1          # room for what it holds now, not for a preview's frames
    tiny_session.cache["preview-lines"] = PreviewLines(budget_s=0.0)   # keep every exact frame
    try:
        for a in (1.0, 2.0, 3.0):
            spec = json.dumps([{"kind": "direction", "name": "sefa0", "strength": a}])
            list(b.service.preview_frames(_preview(sid, spec), client=client))
        grown = tiny_session.cache["preview-lines"].nbytes()
        assert grown > 0 and store._bytes[sid] == tiny_session.nbytes()
        assert old not in store and sid in store    # over the client's bytes: its own oldest session went
        # a session that outgrows what the store can keep beside another client's is refused
        other = store.put(Held(store._bytes[sid] - 1), "203.0.113.9|other")
        store.max_bytes = store.nbytes + 1
        store.max_client_bytes = store.max_bytes
        spec = json.dumps([{"kind": "direction", "name": "sefa0", "strength": 0.5}])
        with pytest.raises(InputError, match="--max-session-mb"):
            list(b.service.preview_frames(_preview(sid, spec), client=client))
        assert sid not in store and other in store
    finally:
        tiny_session.cache.pop("preview-lines", None)


def _preview(sid, spec):
    from priorpaint.app import contract as C
    return C.PreviewRequest.parse(sid, spec, None)


# -- live: a real server behind a (simulated) proxy ------------------------------------------------------

class Visitor:
    """Plain HTTP through the 'proxy' (this test, trusted as one): X-Forwarded-For on every request;
    with ``cookies`` the server's cookie is kept, without it every request is cookie-less."""

    def __init__(self, url, cookies=True, forwarded=VISITOR):
        self.url, self.forwarded = url, forwarded
        handlers = [urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())] if cookies else []
        self.opener = urllib.request.build_opener(*handlers)

    def open(self, path, body=None, headers=None):
        req = urllib.request.Request(self.url + path, data=body, headers={
            "X-Forwarded-For": self.forwarded, "X-Forwarded-Proto": "http", **(headers or {})})
        with self.opener.open(req, timeout=300) as r:
            return r.read()

    def upload(self, data):
        b = "----pp" + uuid.uuid4().hex
        body = (f"--{b}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"p.png\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{b}--\r\n".encode()
        return json.loads(self.open("/gradio_api/upload", body, {"Content-Type": f"multipart/form-data; boundary={b}"}))[0]

    def call(self, api, data):
        eid = json.loads(self.open(f"/gradio_api/call/{api}", json.dumps({"data": data}).encode(),
                                   {"Content-Type": "application/json"}))["event_id"]
        text = self.open(f"/gradio_api/call/{api}/{eid}").decode()
        last = [ln for ln in text.splitlines() if ln.startswith(("event:", "data:"))][-2:]
        return last[0][6:].strip(), json.loads(last[1][5:].strip())


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory):
    tmp, cache = tmp_path_factory.mktemp("proxy-tmp"), tmp_path_factory.mktemp("proxy-cache")
    s = Server("--steps", "5", "--forwarded-allow-ips", "127.0.0.1",
               env={"PRIORPAINT_SERVER_TMP": str(tmp), "PRIORPAINT_CACHE": str(cache)})
    yield s
    s.stop()


BOX = "140,20,180,180"


@pytest.mark.e2e
def test_live_visitors_behind_one_proxy_own_their_sessions_and_jobs(behind_proxy):
    photo = skimage_data("astronaut.png").read_bytes()
    alice, bob = Visitor(behind_proxy.url), Visitor(behind_proxy.url)
    event, out = alice.call("project", [file_data(alice.upload(photo)), None, BOX, "", 5, 0, False])
    assert event == "complete", out
    sid = json.loads(out[0])["session"]
    spec = json.dumps([{"kind": "direction", "name": "sefa0", "strength": 1.0}])
    event, out = bob.call("edit", [sid, spec, False, None, "detail"])           # same address, another id
    assert event == "error" and "unknown or expired session" in json.dumps(out), out
    event, out = bob.call("preview", [sid, spec])
    assert event == "error" and "unknown or expired session" in json.dumps(out), out
    event, out = bob.call("cancel", [sid])
    assert event == "complete" and json.loads(out[0])["jobs"] == []
    event, out = alice.call("edit", [sid, spec, False, None, "detail"])
    assert event == "complete", out

    # a visitor whose browser sends no cookie: each request is a fresh id, owning only what it made
    bare = Visitor(behind_proxy.url, cookies=False)
    event, out = bare.call("project", [file_data(bare.upload(photo)), None, BOX, "", 5, 0, False])
    assert event == "complete", out
    event, out = bare.call("edit", [json.loads(out[0])["session"], spec, False, None, "detail"])
    assert event == "error" and "unknown or expired session" in json.dumps(out), out


@pytest.mark.e2e
def test_live_the_gimp_bridge_stays_one_client_across_its_clients_and_runs(behind_proxy, tmp_path, monkeypatch):
    """A dialog's preview worker projects with one bridge Client and the procedure edits with
    another; Apply segmentation runs in a later process than Segment selection. Against a
    remote backend (here: behind the trusted 'proxy') they must be one client: one jar per
    process, and a remote backend's cookie kept on disk (mode 0600) for the next run."""
    import os
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import gimp_bridge.client as bridge
    from gimp_bridge.client import BridgeError, Client

    class Proxied(Client):
        def _headers(self, extra=None):
            return dict(super()._headers(extra), **{"X-Forwarded-For": VISITOR})

    monkeypatch.setenv("PRIORPAINT_SETTINGS", str(tmp_path / "gimp.json"))
    monkeypatch.setattr(bridge, "_JAR", None)
    worker, procedure = Proxied(behind_proxy.url), Proxied(behind_proxy.url)
    worker.keep_cookies = True                      # a remote backend's (its URL here is loopback)
    photo = skimage_data("astronaut.png").read_bytes()
    outs = worker.call("project", [file_data(worker.upload(photo, "astronaut.png")), None, BOX, "", 5, 0, False])
    session = json.loads(outs[0])["session"]
    spec = json.dumps([{"kind": "direction", "name": "sefa0", "strength": 1.0}])
    procedure.call("edit", [session, spec, False, None, "detail"])          # the same client
    saved = bridge.cookie_path()
    assert saved.exists() and (os.stat(saved).st_mode & 0o777) == 0o600 and CLIENT_COOKIE in saved.read_text()
    monkeypatch.setattr(bridge, "_JAR", None)                                 # a later run of the plug-in
    Proxied(behind_proxy.url).call("edit", [session, spec, False, None, "detail"])
    monkeypatch.setenv("PRIORPAINT_SETTINGS", str(tmp_path / "elsewhere" / "gimp.json"))
    monkeypatch.setattr(bridge, "_JAR", None)                                 # another machine's bridge
    with pytest.raises(BridgeError, match="unknown or expired session"):
        Proxied(behind_proxy.url).call("edit", [session, spec, False, None, "detail"])
