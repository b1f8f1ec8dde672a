"""The bench reports a drag's seconds by the number of points, beside the 3 s goal (bench/drag.py)."""

from __future__ import annotations

from priorpaint.bench.drag import seconds_summary


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


def test_the_bench_reports_each_drags_spread_over_runs_with_its_lr_nudged(tmp_path, monkeypatch, tmp_cache):
    """A drag's per-pair reach moves by up to ±0.2 when its lr moves by 10⁻⁴ (docs/method/drag.md): the
    bench runs each real-photo drag again with the lr nudged and reports the per-pair mean and range."""
    from types import SimpleNamespace

    from priorpaint.bench import drag as B
    from priorpaint.bench.photo import bench_photos
    got = B.ensemble([[0.9, 0.1], [0.7, 0.3], [0.8, 0.2]])
    assert got == {"mean": [0.8, 0.2], "range": [[0.7, 0.9], [0.1, 0.3]]}
    assert B.ensemble([[0.5]]) == {"mean": [0.5], "range": [[0.5, 0.5]]}
    assert B._runs(SimpleNamespace()) == B.RUNS and B._runs(SimpleNamespace(drag_runs=1)) == (1.0,)
    monkeypatch.chdir(tmp_path)
    B.ARTIFACTS.mkdir(parents=True)
    real = B._pairs
    monkeypatch.setattr(B, "_pairs", lambda box: dict(list(real(box).items())[:1]))   # the one-pair drag only
    row = B._real(bench_photos()[0], SimpleNamespace(model=None, drag_steps=2, drag_runs=2), steps=2)
    d = next(iter(row["drags"].values()))
    assert len(d["reach_independent_runs"]) == 2 and d["reach_independent_runs"][0] == d["reach_independent"]
    lo, hi = d["reach_independent_range"][0]
    assert lo <= d["reach_independent_mean"][0] <= hi
    assert abs(min(r[0] for r in d["reach_independent_runs"]) - lo) < 1e-3

