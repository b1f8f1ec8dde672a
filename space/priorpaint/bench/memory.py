"""``memory``: RSS and seconds of one full-selection edit at 1, 12 and 36 megapixels
(``report["memory"]``).

Each size runs in a child process of its own (a fresh interpreter, so one size's freed
memory does not hide the next one's peak): the astronaut scaled to N megapixels, a mask
selecting the *whole* photo, then ``open`` → ``project`` → ``apply`` (a concept paint edit:
hair added across the forehead) → ``render`` in ``detail`` mode, the way the app's ``project`` + ``edit``
run.  A sampler thread reads the process's RSS every 10 ms; each stage reports its peak
RSS above the RSS before the photo was read, and its seconds.  ``torch._dynamo`` (which the
optimiser's first use imports: several seconds) is imported first, as a server's warm-up has.  The issue's target: a 36 MP
photo's project + edit raises RSS by at most 1.5 GB and takes at most 30 s on a 2-core CPU.

``--memory-sizes 1,12`` picks the sizes (default 1,12,36).  The machine is shared: the
seconds are noisy, the RSS is not.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

SIZES = (1, 12, 36)


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


class _Sampler:
    def __init__(self):
        self.peak = _rss_mb()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _loop(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _rss_mb())

    def reset(self) -> float:
        now = _rss_mb()
        self.peak = now
        return now

    def stop(self):
        self._stop.set()
        self._t.join(1)


def one_size(mp: float, steps: int = 20, model=None) -> dict:
    """One size's stages, in this process (the child's entry)."""
    import gc

    import numpy as np
    import torch
    from PIL import Image

    from ..images import load_photo
    from ..projection.project import ProjectionConfig
    from ..session import EditSession
    from .fixtures import photo_path

    torch.set_num_threads(max(1, torch.get_num_threads()))
    # what a server has loaded before its first request (its warm-up runs a projection): the
    # optimiser's first use imports torch._dynamo, seconds that no served request pays
    import torch._dynamo  # noqa: F401
    src = Image.open(photo_path("astronaut.png")).convert("RGB")
    side = int(round((mp * 1e6) ** 0.5))
    img = np.asarray(src.resize((side, side), Image.BICUBIC))
    del src
    gc.collect()
    sampler = _Sampler()
    base = sampler.reset()
    out = {"megapixels": round(side * side / 1e6, 2), "side": side, "stages": {}}
    mask = np.full((side, side), 255, np.uint8)
    t_all = time.perf_counter()

    def stage(name, fn):
        sampler.reset()
        t0 = time.perf_counter()
        r = fn()
        out["stages"][name] = {"seconds": round(time.perf_counter() - t0, 2),
                               "peak_rss_above_start_mb": round(sampler.peak - base, 1)}
        return r

    s = stage("open", lambda: EditSession.open(load_photo(img), mask=mask, model=model))
    del img
    stage("project", lambda: s.project(ProjectionConfig(steps=steps, seed=0)))
    r = s.gen.resolution
    paint = np.zeros((r, r), np.uint8)
    paint[r // 8: r // 3, r // 4: 3 * r // 4] = 255
    state = stage("edit", lambda: s.apply([{"kind": "paint", "concept": "hair", "mode": "add", "mask": paint}]))
    result = stage("render", lambda: s.render(state, composite="detail"))
    out["seconds_total"] = round(time.perf_counter() - t_all, 2)
    out["peak_rss_above_start_mb"] = round(max(v["peak_rss_above_start_mb"] for v in out["stages"].values()), 1)
    out["changed_pixels"] = int(result.metrics.get("changed_pixels", -1)) if hasattr(result, "metrics") else None
    sampler.stop()
    return out


def run(report, args) -> None:
    sizes = [float(x) for x in str(getattr(args, "memory_sizes", None) or ",".join(map(str, SIZES))).split(",")]
    rows = {}
    for mp in sizes:
        code = ("import json,sys; from priorpaint.bench.memory import one_size; "
                f"print('RESULT'+json.dumps(one_size({mp!r}, model={getattr(args, 'model', None)!r})))")
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
        line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT")), None)
        rows[f"{mp:g}mp"] = json.loads(line[6:]) if line else {"error": (p.stderr or p.stdout).strip()[-400:]}
        print(f"[bench] memory {mp:g} MP: {rows[f'{mp:g}mp']}", file=sys.stderr)
    big = rows.get("36mp", {})
    report["memory"] = {"sizes": rows, "targets": {"rss_above_start_mb_36mp_max": 1536, "seconds_36mp_max": 30},
                        "rss_36mp_ok": big.get("peak_rss_above_start_mb", 1e9) <= 1536 if big else None,
                        "seconds_36mp_ok": big.get("seconds_total", 1e9) <= 30 if big else None}
