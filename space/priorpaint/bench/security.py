"""``security``: issue 16's probe cases, rerun against a live server (``report["security"]``).

Starts ``priorpaint serve`` (loopback, ``--slots 2``, a temporary folder of its own) and:

* **probes**: each case of the issue's table sent over plain HTTP — whether it is refused
  (HTTP status or ``error`` event, with the one-line message) or stopped, and the seconds
  until the refusal arrives or the job has stopped (a cancelled interpolation with a
  nested 5000-step projection; a client that hangs up mid-job, with the latency of an
  unrelated request right after — the event loop must not stall);
* **oversized**: 20 requests carrying 20 MB fields (an edit spec's ``pad``, a cancel id, a
  model name): the server's RSS before and after;
* **fair sharing**: 16 honest clients (their own session hash each) run ``project`` +
  ``edit`` while one hostile client floods 30 ``project`` calls of 5000 steps it never
  reads: the honest clients' p50/p95 seconds and completions, how many hostile calls were
  refused, the server's peak RSS;
* **behind a proxy** (issue 28): the server trusts its loopback peer as a proxy
  (``--forwarded-allow-ips 127.0.0.1``); two visitors at one forwarded address, each with its
  own cookie: the second cannot edit, preview or cancel the first's session; a cookie-less
  visitor cannot edit the session its own previous request made; the client cookie's
  attributes on http and on https (``X-Forwarded-Proto``);
* **shutdown**: SIGTERM — exit code, seconds, files left in the server's folder.

Loopback only; every loop is bounded.  The machine is shared: the seconds are noisy.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import List

from .fixtures import photo_path
from .live import CookieHttp, Http, LiveServer, file_data

HONEST = 16
HOSTILE_CALLS = 30
BOX = "140,20,180,180"
PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "camera.png"]


def _photo(name: str) -> Path:
    return photo_path(name)


def _msg(ev) -> str:
    kind, payload = ev
    if isinstance(payload, dict):
        payload = payload.get("error")
    if kind == "http":
        return f"HTTP {payload[0]}: {payload[1][:160]}"
    return str(payload)[:200]


def run(report: dict, args) -> None:
    import psutil

    honest_clients = int(getattr(args, "honest_clients", HONEST))   # --smallest: a small flood
    hostile_calls = int(getattr(args, "hostile_calls", HOSTILE_CALLS))

    fig: dict = {"machine": "shared 2-core machine: seconds are noisy"}
    report["security"] = fig
    # trusting the loopback peer as a proxy changes nothing for requests without X-Forwarded-For
    with LiveServer("security", ["--slots", "2", "--steps", "20", "--forwarded-allow-ips", "127.0.0.1"],
                    stop_timeout=10) as srv:
        proc, http, server_tmp, log_path = srv.proc, srv.http, srv.server_tmp, srv.log_path
        sp = psutil.Process(proc.pid)

        def rss_mb():
            return round((sp.memory_info().rss + sum(c.memory_info().rss for c in sp.children(True))) / 2 ** 20, 1)
        peak = [0.0]
        stop = threading.Event()

        def sampler():
            while not stop.is_set():
                try:
                    peak[0] = max(peak[0], rss_mb())
                except psutil.Error:
                    pass
                time.sleep(0.1)
        threading.Thread(target=sampler, daemon=True).start()
        fig["rss_idle_mb"] = rss_mb()

        status, body = http.upload([("a.png", _photo("astronaut.png").read_bytes())])
        photo = json.loads(body)[0]
        status, body = http.upload([("c.png", _photo("chelsea.png").read_bytes())])
        other = json.loads(body)[0]
        ev = http.call("project", [file_data(photo), None, BOX, "", 20, 0, False])
        sid = json.loads(ev[1][0])["session"]
        probes = {}

        def probe(name, fn):
            t0 = time.perf_counter()
            result = fn()
            probes[name] = dict(result, seconds=round(time.perf_counter() - t0, 3))

        def refused(ev):
            return {"refused": ev[0] in ("error", "http"), "message": _msg(ev)}

        # 1 / 10: unbounded steps and edit counts
        probe("1_interpolate_steps_1e9", lambda: refused(http.call("edit", [sid, json.dumps(
            [{"kind": "interpolate", "other": "file:0", "t": 0.5, "steps": 10 ** 9}]), False, [file_data(other)], "detail"])))
        probe("10_400000_edits", lambda: refused(http.call("edit", [sid, json.dumps(
            [{"kind": "direction", "name": "sefa0", "strength": 0.1}] * 400_000), False, None, "detail"])))
        probe("10_preview_20000_edits", lambda: refused(http.call("preview", [sid, json.dumps(
            [{"kind": "direction", "name": "sefa0", "strength": 0.1}] * 20_000)])))

        # 1 / 2: cancel reaches the nested projection of an interpolation (5000 steps, allowed)
        def cancel_interpolate():
            eid, err = http.submit("edit", [sid, json.dumps(
                [{"kind": "interpolate", "other": "file:0", "t": 0.5, "steps": 5000}]), False, [file_data(other)], "detail"])
            job = {}

            def seen(event, value):
                if event == "generating":
                    st = json.loads(value[0])
                    if st.get("job"):  # a status may arrive before the job has an id
                        job["id"] = st["job"]
                    return "id" in job and st.get("stage") == "project" and st.get("fraction", 0) > 0.01
                return False
            _, resp = http.events("edit", eid, seen)
            if "id" not in job:
                return {"error": "the job ended before any status carried its id"}
            t0 = time.perf_counter()
            cev = http.call("cancel", [job["id"]])
            rest, _ = http.events("edit", eid, resp=resp)  # read on: the stream ends with the error
            stopped = time.perf_counter() - t0
            t1 = time.perf_counter()
            http.call("project", [file_data(photo), None, BOX, "", 5, 0, False])
            return {"cancelled": json.loads(cev[1][0])["cancelled"], "stopped_s": round(stopped, 3),
                    "ended_with": rest[-1][0] if rest else None,
                    "next_job_s": round(time.perf_counter() - t1, 3)}
        probe("1_cancel_interpolate_nested_projection", cancel_interpolate)

        # 3: a client hangs up mid-job; an unrelated request right after must not stall
        def hang_up():
            eid, _ = http.submit("project", [file_data(photo), None, BOX, "", 5000, 0, False])
            job = {}

            def seen(event, value):
                if event == "generating":
                    st = json.loads(value[0])
                    if st.get("job"):  # a status may arrive before the job has an id
                        job["id"] = st["job"]
                    return "id" in job and st.get("stage") == "project"
                return False
            _, resp = http.events("project", eid, seen)
            resp.close()
            if "id" not in job:
                return {"error": "the job ended before any status carried its id"}
            t0 = time.perf_counter()
            status, _ = http.request("/gradio_api/info")
            latency = time.perf_counter() - t0
            deadline = time.monotonic() + 60
            while f"job {job['id']} stopped before it finished" not in open(log_path).read():
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            return {"info_status": status, "info_latency_s": round(latency, 3),
                    "stopped_s": round(time.perf_counter() - t0, 3)}
        probe("3_disconnect_mid_job", hang_up)

        # 5: a model name as a path
        probe("5_directions_traversal", lambda: refused(http.call("directions", ["../../../../tmp/x/app-config"])))
        probe("5_directions_absolute", lambda: refused(http.call("directions", ["/etc/hostname"])))
        # 8: DNS rebinding / cross origin
        probe("8_host_evil", lambda: {"status": http.request("/gradio_api/info", headers={"Host": "evil.example"})[0]})
        probe("8_origin_evil_upload", lambda: {"status": http.request(
            "/gradio_api/upload", "POST", b"x", {"Origin": "http://evil.example",
                                                 "Content-Type": "multipart/form-data; boundary=x"})[0]})
        # 9: many files in one request
        probe("9_three_20MB_files_one_request", lambda: {"status": http.upload(
            [(f"f{i}.bin", os.urandom(20 * 2 ** 20)) for i in range(3)])[0]})
        # 12: ?token= on POST is not a thing without a token server; 13: unclear errors
        probe("13_box_inf", lambda: refused(http.call("project", [file_data(photo), None, "inf,0,10,10", "", 5, 0, False])))
        probe("13_seed_2e70", lambda: refused(http.call("project", [file_data(photo), None, BOX, "", 5, 2 ** 70, False])))
        probe("13_list_in_image_field", lambda: refused(http.call("project", [[1, 2], None, BOX, "", 5, 0, False])))
        probe("13_deep_nesting", lambda: refused(http.call("edit", [sid, "[" * 100_000 + "]" * 100_000, False, None, "detail"])))
        probe("13_unknown_model_directions", lambda: refused(http.call("directions", ["nope"])))
        probe("28_behind_a_proxy", lambda: _behind_a_proxy(http.url, photo))
        for p in probes.values():
            if "message" in p:
                p["one_line"] = "\n" not in p["message"] and p["message"] not in ("None", "null") \
                    and "internal error" not in p["message"]
        fig["probes"] = probes

        # 6: oversized fields
        before = rss_mb()
        big = "x" * (20 * 2 ** 20)
        t0 = time.perf_counter()
        answers = []
        for i in range(20):
            if i % 3 == 0:
                ev = http.call("edit", [sid, json.dumps([{"kind": "direction", "name": "sefa0", "pad": big}]),
                                        False, None, "detail"])
            elif i % 3 == 1:
                ev = http.call("cancel", [big])
            else:
                ev = http.call("directions", [big])
            answers.append(ev[0])
        fig["oversized_20x20MB"] = {"rss_before_mb": before, "rss_after_mb": rss_mb(),
                                    "all_refused": all(a in ("error", "http") for a in answers),
                                    "seconds": round(time.perf_counter() - t0, 2),
                                    "log_mb": round(os.path.getsize(log_path) / 2 ** 20, 3)}

        # 4 / 7: 16 honest clients while one hostile client floods
        hostile_refused, hostile_accepted = [], []

        hostile_http = CookieHttp(http.url)   # one client: the server's id in its cookie

        def hostile():
            for i in range(hostile_calls):
                eid, err = hostile_http.submit("project", [file_data(photo), None, BOX, "", 5000, i, False])
                (hostile_refused if err else hostile_accepted).append(eid or err)
        lat: List[float] = []
        done = [0]
        errors: List[str] = []
        sessions_ok = [0]

        def honest(i):
            sh = f"honest-{i}-{uuid.uuid4().hex[:8]}"
            t0 = time.perf_counter()
            try:
                st, body = http.upload([(PHOTOS[i % 4], _photo(PHOTOS[i % 4]).read_bytes())])
                path = json.loads(body)[0]
                ev = http.call("project", [file_data(path), None, "100,60,160,160", "", 20, i, False], sh)
                if ev[0] != "complete":
                    errors.append(_msg(ev))
                    return
                s_id = json.loads(ev[1][0])["session"]
                ev = http.call("edit", [s_id, json.dumps([{"kind": "direction", "name": "sefa0", "strength": 1}]),
                                        False, None, "detail"], sh)
                if ev[0] != "complete":
                    errors.append(_msg(ev))
                    return
                sessions_ok[0] += 1
                lat.append(time.perf_counter() - t0)
                done[0] += 1
            except Exception as e:  # counted, not raised: the figure is the completion rate
                errors.append(f"{type(e).__name__}: {e}")
        peak[0] = 0.0
        h = threading.Thread(target=hostile)
        h.start()
        h.join(120)
        t0 = time.perf_counter()
        threads = [threading.Thread(target=honest, args=(i,)) for i in range(honest_clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(900)
        lat.sort()
        fig["fair_sharing"] = {
            "honest_clients": honest_clients, "honest_completed": done[0], "honest_errors": errors[:3],
            "honest_p50_s": round(lat[len(lat) // 2], 2) if lat else None,
            "honest_p95_s": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 2) if lat else None,
            "wall_s": round(time.perf_counter() - t0, 2),
            "hostile_calls": hostile_calls, "hostile_accepted_by_gradio": len(hostile_accepted),
            "hostile_refused_at_submit": len(hostile_refused),
            "server_peak_rss_mb": round(peak[0], 1),
        }
        # (the hostile client's events that Gradio queued are refused by the per-client cap when they
        # reach the app; its admitted jobs are stopped by the shutdown below)
        stop.set()

        # 9: SIGTERM
        files_before = sum(len(f) for _, _, f in os.walk(server_tmp))
        t0 = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(60)
        except subprocess.TimeoutExpired:
            rc = None
        left = sum(len(f) for _, _, f in os.walk(server_tmp)) if os.path.isdir(server_tmp) else 0
        fig["sigterm"] = {"exit_code": rc, "seconds": round(time.perf_counter() - t0, 2),
                          "files_before": files_before, "files_left": left}
        log_text = open(log_path).read()
        fig["fair_sharing"]["hostile_jobs_refused_in_app"] = log_text.count("refused a job of client")


VISITOR = "198.51.100.7"


class _Visitor(Http):
    """A visitor as a proxy forwards it (``X-Forwarded-For``), keeping the server's cookie;
    ``cookies=False``: a browser that keeps none (every request a new client)."""

    def __init__(self, url: str, cookies: bool = True):
        import http.cookiejar
        import urllib.request

        class Forward(urllib.request.BaseHandler):
            def http_request(self, req):
                req.add_unredirected_header("X-Forwarded-For", VISITOR)
                req.add_unredirected_header("X-Forwarded-Proto", "http")
                return req
        super().__init__(url)
        handlers = [Forward()] + ([urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())] if cookies else [])
        self.opener = urllib.request.build_opener(*handlers)

    def _open(self, req, timeout):
        return self.opener.open(req, timeout=timeout)


def _cookie_of(url: str, proto: str) -> str:
    import urllib.request
    req = urllib.request.Request(url + "/gradio_api/info", headers={"X-Forwarded-For": VISITOR,
                                                                    "X-Forwarded-Proto": proto})
    with urllib.request.urlopen(req, timeout=60) as r:
        return "; ".join(sorted(p.strip() for p in (r.headers.get("Set-Cookie") or "").split(";")[1:]))


def _behind_a_proxy(url: str, photo: str) -> dict:
    """Issue 28: what one visitor behind a proxy can do with another's session, and the cookie."""
    alice, bob, bare = _Visitor(url), _Visitor(url), _Visitor(url, cookies=False)
    spec = json.dumps([{"kind": "direction", "name": "sefa0", "strength": 1.0}])
    ev = alice.call("project", [file_data(photo), None, BOX, "", 5, 0, False])
    if ev[0] != "complete":
        return {"error": _msg(ev)}
    sid = json.loads(ev[1][0])["session"]
    other_edit, other_preview = bob.call("edit", [sid, spec, False, None, "detail"]), bob.call("preview", [sid, spec])
    other_cancel = bob.call("cancel", [sid])
    own_edit = alice.call("edit", [sid, spec, False, None, "detail"])
    ev = bare.call("project", [file_data(photo), None, BOX, "", 5, 0, False])
    bare_edit = bare.call("edit", [json.loads(ev[1][0])["session"], spec, False, None, "detail"]) if ev[0] == "complete" else ev
    refused = [e[0] == "error" and "unknown or expired session" in _msg(e) for e in (other_edit, other_preview, bare_edit)]
    return {"other_visitor_refused": refused[:2], "other_visitor_cancelled": json.loads(other_cancel[1][0])["jobs"],
            "owner_edit": own_edit[0], "cookieless_next_request_refused": refused[2],
            "message": _msg(other_edit), "cookie_http": _cookie_of(url, "http"),
            "cookie_https": _cookie_of(url, "https"),
            "refused": all(refused) and own_edit[0] == "complete"}
