"""``app``: load and fault figures of the app, on a live server (``report["app"]``).

Starts ``priorpaint serve`` in a subprocess on a free loopback port (``--slots 2``), then:

* 8 concurrent gradio_client clients each run ``project`` (50 steps) + ``edit`` (a SeFa
  direction, no G′) on different photos/selections of scikit-image's pictures: wall time,
  per-client seconds, whether every result is its own photo outside its own selection
  (no session mixes results), the server's peak RSS (process and children);
* cancel: a long projection cancelled through the ``cancel`` endpoint — seconds until the
  client sees the error, and until the next short job completes (the slot is free);
* disconnect: a long projection whose plain-HTTP client closes the stream — seconds
  until the server logs that the job's worker stopped.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import urllib.request

from .fixtures import ASTRONAUT_BOX, box_text, photo_path
from .live import LiveServer, file_data

CLIENTS = 8
STEPS = 50
JOBS = [
    ("astronaut.png", ASTRONAUT_BOX), ("astronaut.png", (300, 250, 150, 150)),
    ("chelsea.png", (120, 60, 180, 140)), ("chelsea.png", (20, 20, 100, 100)),
    ("coffee.png", (150, 100, 200, 200)), ("coffee.png", (350, 20, 120, 120)),
    ("camera.png", (200, 60, 160, 160)), ("astronaut.png", (10, 300, 120, 120)),
]


def _outside_equal(out, src, box) -> bool:
    import numpy as np
    if src.ndim == 2:
        src = np.repeat(src[..., None], 3, axis=2)
    x, y, w, h = box
    keep = np.ones(src.shape[:2], bool)
    keep[y:y + h, x:x + w] = False
    return out.shape == src.shape and bool((out[keep] == src[keep]).all())


def run(report: dict, args) -> None:
    import numpy as np
    import psutil
    from PIL import Image
    from gradio_client import Client, handle_file

    clients = max(1, min(len(JOBS), int(getattr(args, "clients", CLIENTS))))  # --smallest: fewer, shorter
    steps = int(getattr(args, "app_steps", STEPS))
    fig: dict = {"clients": clients, "slots": 2, "steps": steps}
    with LiveServer("app", ["--slots", "2", "--steps", steps], own_tmp=False, stop_timeout=15) as srv:
        url, proc = srv.url, srv.proc
        fig["server_start_s"] = round(srv.start_seconds, 2)
        sp = psutil.Process(proc.pid)
        fig["server_rss_idle_mb"] = round(sp.memory_info().rss / 2 ** 20, 1)
        peak, stop = [0], threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    peak[0] = max(peak[0], sp.memory_info().rss + sum(c.memory_info().rss for c in sp.children(True)))
                except psutil.Error:
                    pass
                time.sleep(0.05)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        edits = json.dumps([{"kind": "direction", "name": "sefa0", "strength": 1.5}])
        results, errors = [None] * clients, []
        dl = tempfile.mkdtemp(prefix="priorpaint-bench-")

        def client(i):
            try:
                photo, box = JOBS[i]
                c = Client(url, verbose=False, download_files=dl)
                a = time.perf_counter()
                st, *_ = c.predict(handle_file(str(photo_path(photo))), None, box_text(box), "", steps, i,
                                   False, api_name="/project")
                b = time.perf_counter()
                est, result, _, _ = c.predict(json.loads(st)["session"], edits, False, None, api_name="/edit")
                ok = _outside_equal(np.asarray(Image.open(result)), np.asarray(Image.open(photo_path(photo))), box)
                results[i] = (json.loads(st)["session"], ok, b - a, time.perf_counter() - b,
                              json.loads(est)["changed_outside_mask"])
            except Exception as e:
                errors.append(f"client {i}: {type(e).__name__}: {e}")

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        fig["wall_s"] = round(time.perf_counter() - t0, 2)
        stop.set()
        sampler.join()
        done = [r for r in results if r]
        fig.update({
            "completed": len(done), "errors": errors,
            "distinct_sessions": len({r[0] for r in done}),
            "all_results_own_photo_outside_selection": all(r[1] for r in done) and len(done) == clients,
            "changed_outside_mask": sum(r[4] for r in done),
            "project_s_max": round(max((r[2] for r in done), default=0), 2),
            "edit_s_max": round(max((r[3] for r in done), default=0), 2),
            "server_rss_peak_mb": round(peak[0] / 2 ** 20, 1),
        })
        # cancel through the endpoint
        c = Client(url, verbose=False, download_files=dl)
        photo = handle_file(str(photo_path("astronaut.png")))
        job = c.submit(photo, None, box_text(ASTRONAUT_BOX), "", 5000, 0, False, api_name="/project")
        job_id = None
        while job_id is None and not job.done():
            outs = [json.loads(o[0]) for o in job.outputs() if o and o[0]]
            # a status may arrive before the job has an id
            job_id = next((s["job"] for s in outs if s.get("stage") == "project" and s.get("job")), None)
            time.sleep(0.05)
        t0 = time.perf_counter()
        if job_id is not None:
            c.predict(job_id, api_name="/cancel")
        try:
            job.result(timeout=60)
        except Exception:
            pass
        fig["cancel_to_error_s"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        c.predict(photo, None, box_text(ASTRONAUT_BOX), "", 10, 0, False, api_name="/project")
        fig["next_job_after_cancel_s"] = round(time.perf_counter() - t0, 3)
        # a plain-HTTP client hangs up mid-job
        astronaut = photo_path("astronaut.png")
        upload = file_data(json.loads(srv.http.upload([(astronaut.name, astronaut.read_bytes())])[1])[0])
        body = json.dumps({"data": [upload, None, box_text(ASTRONAUT_BOX), "", 5000, 0, False]}).encode()
        req = urllib.request.Request(url + "/gradio_api/call/project", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        event_id = json.loads(urllib.request.urlopen(req, timeout=60).read())["event_id"]
        resp = urllib.request.urlopen(url + f"/gradio_api/call/project/{event_id}", timeout=120)
        job = None
        while job is None:
            line = resp.readline().decode()
            if not line:  # the stream ended before a status carried the job's id
                break
            if line.startswith("data:"):
                try:
                    data = json.loads(line[5:])
                    st = json.loads(data[0]) if isinstance(data, list) and data and isinstance(data[0], str) else {}
                except ValueError:
                    st = {}
                if isinstance(st, dict) and st.get("stage") == "project" and st.get("job"):
                    job = st["job"]
        resp.close()
        t0 = time.perf_counter()
        while job is not None and f"job {job} stopped before it finished" not in srv.log_text():
            if time.perf_counter() - t0 > 60:
                break
            time.sleep(0.05)
        fig["disconnect_to_worker_stopped_s"] = round(time.perf_counter() - t0, 3)
        fig["rss_bound_mb"] = 2000
        fig["targets"] = ("8 clients complete, distinct sessions, results their own outside the selection; "
                          "server peak RSS < 2000 MB; a cancelled or disconnected job stops within seconds")
    report["app"] = fig
