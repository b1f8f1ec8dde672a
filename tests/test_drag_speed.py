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

