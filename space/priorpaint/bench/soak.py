"""``soak``: a real ``priorpaint serve`` under mixed use for a bounded time (``report["soak"]``).

Starts the server on loopback (a temporary folder of its own, ``--max-upload-disk-mb 24``,
``--max-file-age-s 60``, saved vectors under 0.5 MB per client and 1.5 MB in all in a cache
root of its own, so eviction and expiry all happen within the run) and runs
``--soak-clients`` client threads (default 4, each its own session hash) for ``--seconds``
(default 60: a smoke run; at most 600).  Each client loops over a weighted mix: uploads,
``project``, ``edit``, ``preview``, ``segment`` + a saved vector (a ``segment`` edit with
``save_vector``) and the ``concepts`` listing, aborted uploads (half a body, then the
connection closed) and ``cancel``.

Every second the server's RSS (with its children) and the bytes of its upload folder and of
the clients' saved vectors are sampled; ``artifacts/soak.png`` plots them.  *Flat*: the mean
of the last minute within 10 % of the second minute's (for a run under 3 minutes, the last
third against the second third).  Every request must be answered, or refused in one line:
anything else is counted in ``bad`` with its first 160 characters.
"""

from __future__ import annotations

import json
import os
import random
import socket
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

from .fixtures import photo_path
from .live import CookieHttp, Http, LiveServer, file_data
from .security import BOX

PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png"]
MIX = [("upload", 4), ("project", 2), ("edit", 3), ("preview", 4), ("concepts", 2), ("vector", 1),
       ("abort", 2), ("cancel", 1)]
MAX_SECONDS = 600
#: the soak server's small bounds, so that eviction happens within a short run
DISK_MB, CLIENT_VECTORS_MB, VECTORS_MB = 24, 0.5, 1.5


def _own_cache(root: str) -> Path:
    """A cache root of the soak's own: the derived data of the real one linked in (nothing is
    recomputed), an empty ``vectors`` folder (the soak never evicts anyone's saved vectors)."""
    from ..store import cache_root
    real, mine = cache_root(), Path(root)
    mine.mkdir(parents=True)
    if real.is_dir():
        for p in real.iterdir():
            if p.name != "vectors" and not p.name.startswith("."):
                (mine / p.name).symlink_to(p)
    return mine


def _abort(port: int, data: bytes) -> None:
    b = "----pp" + uuid.uuid4().hex
    body = (f"--{b}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.png\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{b}--\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall((f"POST /gradio_api/upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                   f"Content-Type: multipart/form-data; boundary={b}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
                  + body[: len(body) // 2])
        time.sleep(0.05)


def _grow_hair(png: bytes, legend: dict) -> bytes:
    """The label map with a band of hair painted across its top quarter (a real edit to save)."""
    import io

    import numpy as np
    from PIL import Image
    arr = np.array(Image.open(io.BytesIO(png)).convert("RGB"))
    colour = legend.get("hair") or next(iter(legend.values()), [255, 0, 0])
    h, w = arr.shape[:2]
    arr[h // 8: h // 4, w // 4: 3 * w // 4] = colour
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def _dir_bytes(folder) -> int:
    total = 0
    for root, _d, files in os.walk(folder):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def _one_line(kind, payload) -> bool:
    """An answer (complete / HTTP 200) or a refusal in one line."""
    if kind in ("complete", "ok"):
        return True
    if kind == "error":
        msg = payload.get("error") if isinstance(payload, dict) else payload
        return isinstance(msg, str) and bool(msg.strip()) and "\n" not in msg
    if kind == "http":
        status, text = payload
        try:
            detail = json.loads(text).get("detail")
        except (ValueError, AttributeError):
            detail = text
        return 400 <= status < 600 and isinstance(detail, str) and "\n" not in detail
    return False


class _Client(threading.Thread):
    def __init__(self, http: Http, port: int, stop: threading.Event, out: dict, seed: int):
        super().__init__(daemon=True)
        self.http, self.port, self.stop, self.out = http, port, stop, out
        self.rng = random.Random(seed)
        self.hash = uuid.uuid4().hex[:12]
        self.photo = None       # FileData of this client's last upload
        self.session = None
        self.n = 0

    def record(self, what: str, kind, payload) -> None:
        key = "answered" if kind in ("complete", "ok") else "refused"
        with self.out["lock"]:
            self.out["requests"][what] += 1
            if _one_line(kind, payload):
                self.out[key][what] += 1
            else:
                self.out["bad"].append(f"{what}: {kind} {str(payload)[:160]}")

    def call(self, what: str, api: str, data: list):
        kind, payload = self.http.call(api, data, self.hash)
        self.record(what, kind, payload)
        return kind, payload

    def upload(self):
        data = photo_path(self.rng.choice(PHOTOS)).read_bytes()
        status, body = self.http.upload([(f"p{self.n}.png", data)])
        if status == 200:
            self.photo = json.loads(body)[0]
            self.record("upload", "ok", None)
        else:
            self.record("upload", "http", (status, body.decode(errors="replace")))

    def step(self) -> None:
        self.n += 1
        what = self.rng.choices([m for m, _ in MIX], [w for _, w in MIX])[0]
        if what == "upload" or (what == "project" and self.photo is None):
            return self.upload()
        if what == "abort":
            _abort(self.port, photo_path(self.rng.choice(PHOTOS)).read_bytes())
            with self.out["lock"]:
                self.out["requests"]["abort"] += 1
                self.out["answered"]["abort"] += 1
            return
        if what == "concepts":
            return self.call("concepts", "concepts", [""])
        if what == "cancel":
            return self.call("cancel", "cancel", [self.session or "job-none"])
        if what == "project" or self.session is None:
            kind, payload = self.call("project", "project", [file_data(self.photo), None, BOX, "", 5, 0, False])
            if kind == "complete":
                self.session = json.loads(payload[0])["session"]
            else:
                self.photo = None  # expired or evicted: upload again
            return
        strength = round(self.rng.uniform(-2, 2), 2)
        spec = json.dumps([{"kind": "direction", "name": "sefa0", "strength": strength}])
        if what == "edit":
            kind, _ = self.call("edit", "edit", [self.session, spec, False, None, "detail"])
        elif what == "preview":
            kind, _ = self.call("preview", "preview", [self.session, spec])
        else:  # a saved vector: segment, then a segment edit of its label map saved under a name
            kind, payload = self.call("segment", "segment", [self.session])
            if kind == "complete" and isinstance(payload, list) and isinstance(payload[1], dict):
                with urllib.request.urlopen(payload[1]["url"], timeout=60) as r:
                    labels = _grow_hair(r.read(), json.loads(payload[0]).get("legend", {}))
                status, body = self.http.upload([("labels.png", labels)])
                if status == 200:
                    kind, _ = self.call("vector", "edit", [self.session, json.dumps(
                        [{"kind": "segment", "labels": "file:0", "steps": 5, "save_vector": f"v{self.n % 40}"}]),
                        False, [file_data(json.loads(body)[0])], "detail"])
        if kind == "error":
            self.session = None   # expired or evicted: the next turn projects again

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.step()
            except Exception as e:  # a broken connection is a bad answer, not the end of the run
                with self.out["lock"]:
                    self.out["bad"].append(f"exception: {type(e).__name__}: {str(e)[:160]}")


def _flat(series, seconds: float) -> dict:
    if seconds >= 180:
        a = [v for t, v in series if 60 <= t < 120]
        b = [v for t, v in series if t >= seconds - 60]
    else:
        a = [v for t, v in series if seconds / 3 <= t < 2 * seconds / 3]
        b = [v for t, v in series if t >= 2 * seconds / 3]
    if not a or not b:
        return {"flat": None}
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    return {"window_mean_early": round(ma, 1), "window_mean_last": round(mb, 1),
            "change": round((mb - ma) / max(ma, 1e-9), 4), "flat": abs(mb - ma) <= 0.1 * max(ma, 1e-9)}


def _plot(samples, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    t = [s["t"] for s in samples]
    fig, ax = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
    for a, key, label in ((ax[0], "rss_mb", "server RSS (MB)"), (ax[1], "disk_mb", "upload folder (MB)"),
                          (ax[2], "vectors_mb", "saved vectors (MB)")):
        a.plot(t, [s[key] for s in samples])
        a.set_ylabel(label)
        a.grid(alpha=0.3)
    ax[2].set_xlabel("seconds")
    fig.suptitle("priorpaint serve under a mixed soak")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _tracebacks(log_path) -> int:
    """Tracebacks in the server's log (an aborted upload logs one line, not a traceback)."""
    try:
        return Path(log_path).read_text(errors="replace").count("Traceback (most recent call last)")
    except OSError:
        return -1


def run(report: dict, args) -> None:
    import psutil

    seconds = float(getattr(args, "seconds", None) or 60)
    if not 0 < seconds <= MAX_SECONDS:
        from ..errors import InputError
        raise InputError(f"--seconds must be between 1 and {MAX_SECONDS}, got {seconds:g}")
    clients = int(getattr(args, "soak_clients", None) or 4)
    cache = _own_cache(os.path.join(tempfile.mkdtemp(prefix="priorpaint-bench-soak-cache-"), "cache"))
    out = {"lock": threading.Lock(), "requests": Counter(), "answered": Counter(), "refused": Counter(), "bad": []}
    samples = []
    serve_args = ["--slots", "2", "--steps", "5", "--max-upload-disk-mb", DISK_MB, "--max-file-age-s", 60,
                  "--max-client-jobs", 2, "--max-client-vectors-mb", CLIENT_VECTORS_MB, "--max-vectors-mb", VECTORS_MB]
    with LiveServer("soak", serve_args, env={"PRIORPAINT_CACHE": str(cache)}) as srv:
        proc, http, port, server_tmp, log_path = srv.proc, srv.http, srv.port, srv.server_tmp, srv.log_path
        sp = psutil.Process(proc.pid)
        vectors = cache / "vectors"
        stop = threading.Event()
        threads = [_Client(CookieHttp(http.url), port, stop, out, seed=i) for i in range(clients)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        while time.monotonic() - t0 < seconds:
            rss = sp.memory_info().rss + sum(c.memory_info().rss for c in sp.children(True))
            samples.append({"t": round(time.monotonic() - t0, 1), "rss_mb": round(rss / 2 ** 20, 1),
                            "disk_mb": round(_dir_bytes(server_tmp) / 2 ** 20, 2),
                            "vectors_mb": round(sum(_dir_bytes(p) for p in vectors.glob("*/clients")) / 2 ** 20, 2)})
            time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(120)
        settle = time.monotonic() + 15   # the last aborted uploads' connections end
        while True:
            strays = [n for n in os.listdir(server_tmp) if n.startswith("tmp")]
            if not strays or time.monotonic() > settle:
                break
            time.sleep(0.5)
        tracebacks = _tracebacks(log_path)
    png = Path("artifacts") / "soak.png"
    _plot(samples, png)
    total = sum(out["requests"].values())
    report["soak"] = {
        "seconds": seconds, "clients": clients, "requests": total, "by_kind": dict(out["requests"]),
        "answered": sum(out["answered"].values()), "refused_in_one_line": sum(out["refused"].values()),
        "refused_by_kind": dict(out["refused"]), "bad": len(out["bad"]), "bad_examples": out["bad"][:8],
        "rss": _flat([(s["t"], s["rss_mb"]) for s in samples], seconds),
        "disk": _flat([(s["t"], s["disk_mb"]) for s in samples], seconds),
        "rss_max_mb": max((s["rss_mb"] for s in samples), default=None),
        "disk_max_mb": max((s["disk_mb"] for s in samples), default=None), "disk_limit_mb": DISK_MB,
        "vectors_max_mb": max((s["vectors_mb"] for s in samples), default=None), "vectors_limit_mb": VECTORS_MB,
        "vectors": _flat([(s["t"], s["vectors_mb"]) for s in samples], seconds),
        "stray_partial_files": len(strays), "plot": str(png), "server_log": log_path,
        "server_log_tracebacks": tracebacks,
    }
