"""What makes a drag faster keeps what it computes: the drag runs on one torch and one OpenCV thread
and gives both back (edits/drag_optimise.py); the bench reports its seconds by the number of points."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from priorpaint.bench.drag import seconds_summary
from priorpaint.edits import drag_optimise as O


def test_the_drag_runs_on_one_thread_each_and_gives_the_threads_back(tiny_gen, monkeypatch):
    z = tiny_gen.sample_latents(1, seed=3)
    with torch.no_grad():
        h = tiny_gen.forward_to(z, "b8")
    before = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(2)
    cv2.setNumThreads(2)
    seen = []
    try:
        O.optimise(tiny_gen, z, h, "b8", np.array([[4.0, 5.0]]), np.array([[4.0, 2.0]]), steps=2,
                   progress=lambda *a: seen.append((torch.get_num_threads(), cv2.getNumThreads())))
        assert seen and set(seen) == {(1, 1)}
        assert (torch.get_num_threads(), cv2.getNumThreads()) == (2, 2)
        monkeypatch.setattr(O, "THREADS", None)          # None: the process's own threads
        seen.clear()
        O.optimise(tiny_gen, z, h, "b8", np.array([[4.0, 5.0]]), np.array([[4.0, 2.0]]), steps=1,
                   progress=lambda *a: seen.append((torch.get_num_threads(), cv2.getNumThreads())))
        assert set(seen) == {(2, 2)}
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])


def test_the_bench_reports_the_seconds_of_one_three_and_five_points():
    rows = [{"pairs": 1, "seconds_drag": 0.5, "seconds_per_step": 0.02, "steps_run": 25},
            {"pairs": 1, "seconds_drag": 1.5, "seconds_per_step": 0.025, "steps_run": 60},
            {"pairs": 3, "seconds_drag": 4.0, "seconds_per_step": 0.066, "steps_run": 60}]
    faces = {"5 points": {"seconds_mean": 5.0, "rows": [{"seconds": 4.0, "steps": 40}, {"seconds": 6.0, "steps": 60}]}}
    got = seconds_summary(rows, faces)
    assert got["1 pair"]["seconds_drag"] == [0.5, 1.5] and got["1 pair"]["steps_run"] == [25, 60]
    assert got["3 pairs"]["seconds_per_step"] == [0.066, 0.066]
    assert got["5 points"] == {"seconds_drag_mean": 5.0, "seconds_drag_max": 6.0, "seconds_per_step_mean": 0.1}
    assert got["goal_seconds_drag"] == 3.0
    assert seconds_summary([], {})["5 points"]["seconds_drag_max"] is None


def test_drags_running_at_once_give_the_process_its_threads_back(tiny_gen):
    """Two drags in two threads (the app's jobs): while either runs, one thread each; after both,
    the process's own setting, whichever finished first."""
    import threading
    z = tiny_gen.sample_latents(1, seed=5)
    with torch.no_grad():
        h = tiny_gen.forward_to(z, "b8")
    before = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(2)
    cv2.setNumThreads(2)
    gate, seen, errors = threading.Barrier(2), [], []

    def drag(steps):
        try:
            O.optimise(tiny_gen, z, h, "b8", np.array([[4.0, 5.0]]), np.array([[4.0, 2.0]]), steps=steps,
                       progress=lambda *a: (a[2]["step"] == 0 and gate.wait(timeout=30),
                                            seen.append(cv2.getNumThreads())))
        except Exception as e:   # noqa: BLE001 - reported below
            errors.append(e)
    try:
        jobs = [threading.Thread(target=drag, args=(n,)) for n in (1, 4)]
        for j in jobs:
            j.start()
        for j in jobs:
            j.join(timeout=60)
        assert not errors and seen and set(seen) == {1}
        assert (torch.get_num_threads(), cv2.getNumThreads()) == (2, 2)
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])
