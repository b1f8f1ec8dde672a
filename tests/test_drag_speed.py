"""The bench reports a drag's seconds by the number of points, beside the 3 s goal (bench/drag.py); the
faster drag step (edits/drag_optimise.py) computes the same drag."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from priorpaint.bench.drag import seconds_summary
from priorpaint.edits import drag_optimise as O


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



# --- the faster step computes the same drag (docs/method/drag.md, "Speed", 2026-12-07 late night) ---



def _loss_one_handle_at_a_time(feat, p, t, groups, disk, active=None, patch0=None, lambda_target=0.0):
    """The motion supervision as it was computed before: one bilinear sample per handle and disk."""
    loss = feat.new_zeros(())
    for i in range(p.shape[0]):
        if active is not None and not active[i]:
            continue
        f = feat[int(groups[i]):int(groups[i]) + 1]
        d = (t[i] - p[i]) / (t[i] - p[i]).norm().clamp_min(1e-6)
        q = p[i][None] + disk
        loss = loss + (O._sample(f, q + d) - O._sample(f, q).detach()).abs().mean()
        if lambda_target:
            loss = loss + lambda_target * (O._sample(f, t[i][None] + disk) - patch0[i]).abs().mean()
    return loss


def _plain_upsample(feat, res):
    return F.interpolate(feat, size=(res, res), mode="bilinear", align_corners=False)


@pytest.mark.parametrize("shape", [(1, 64, 32, 32), (6, 64, 32, 32), (3, 5, 8, 8), (2, 7, 9, 11)])
def test_the_channels_last_upsampling_gives_the_same_numbers_bit_for_bit(shape):
    g = torch.Generator().manual_seed(sum(shape))
    feat = torch.randn(shape, generator=g).requires_grad_(True)
    res = 2 * shape[-2] if shape[-2] == shape[-1] else 16
    want = _plain_upsample(feat, res)
    got = O.upsample(feat, res)
    assert torch.equal(got, want)
    up = torch.randn(want.shape, generator=g)
    assert torch.equal(torch.autograd.grad(got, feat, up)[0], torch.autograd.grad(want, feat, up)[0])


@pytest.mark.parametrize("lambda_target", [0.0, 0.5])
def test_the_batched_motion_supervision_is_the_per_handle_loss(lambda_target):
    """All handles' disks in one sample over the batch: the loss and its gradient are the per-handle
    loop's up to float rounding, with several handles in a row, inactive ones, and the target term."""
    g = torch.Generator().manual_seed(3)
    feat = torch.randn((4, 16, 32, 32), generator=g).requires_grad_(True)
    p = torch.tensor([[10.2, 11.7], [20.0, 5.5], [3.0, 30.5], [15.5, 15.5], [25.0, 25.0], [0.4, 31.0]])
    t = p + torch.tensor([[0.0, -3.0], [2.5, 1.0], [-1.0, 0.0], [0.0, 0.0], [3.0, 3.0], [-2.0, 0.5]])
    groups = np.array([0, 1, 1, 2, 3, 3])
    active = [True, True, False, True, True, True]
    disk = O._disk(3.0, "cpu")
    patch0 = [torch.randn((disk.shape[0], 16), generator=g) for _ in range(6)]
    got = O.motion_loss(feat, p, t, groups, disk, active, patch0, lambda_target)
    want = _loss_one_handle_at_a_time(feat, p, t, groups, disk, active, patch0, lambda_target)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(torch.autograd.grad(got, feat)[0], torch.autograd.grad(want, feat)[0],
                               rtol=1e-5, atol=1e-8)
    assert float(O.motion_loss(feat, p, t, groups, disk, [False] * 6)) == 0.0


def _same_trajectory(gen, z, h, handles, targets, monkeypatch, steps=10):
    """The drag now and the drag as computed before (per-handle samples, channels-first upsampling, a
    """
    kw = dict(steps=steps, movable="capsule")
    now = O.optimise(gen, z, h, gen.default_split, handles, targets, **kw)
    with monkeypatch.context() as m:
        m.setattr(O, "motion_loss", _loss_one_handle_at_a_time)
        m.setattr(O, "upsample", _plain_upsample)
        before = O.optimise(gen, z, h, gen.default_split, handles, targets, **kw)
    assert now[3]["steps_run"] == before[3]["steps_run"] and now[3]["rows"] == before[3]["rows"]
    np.testing.assert_allclose(now[2], before[2], atol=0.01)                      # the confirmed positions
    np.testing.assert_allclose(now[3]["tracker_model"], before[3]["tracker_model"], atol=0.01)
    torch.testing.assert_close(now[3]["row_z"], before[3]["row_z"], atol=1e-4, rtol=1e-4)
    return now


def test_the_faster_step_follows_the_same_trajectory_on_a_tiny_generator(tiny_gen, monkeypatch):
    z = tiny_gen.sample_latents(1, seed=8)
    with torch.no_grad():
        h = tiny_gen.forward_to(z, tiny_gen.default_split)
    handles = np.array([[4.0, 5.0], [5.5, 6.0], [12.0, 11.0]])
    now = _same_trajectory(tiny_gen, z, h, handles, handles + [[0.0, -3.0], [1.0, -2.0], [0.0, 3.0]], monkeypatch)
    assert len(now[3]["rows"]) == 2                               # two groups (one of two handles) and the shared row


def test_the_faster_step_follows_the_same_trajectory_on_the_embedded_model(default_gen, monkeypatch):
    """Five points on a generated face (eyes, nose, mouth corners, as the landmark protocol drags them)."""
    z = default_gen.sample_latents(1, seed=1000)
    with torch.no_grad():
        h = default_gen.forward_to(z, default_gen.default_split)
    handles = np.array([[21.4, 33.5], [40.3, 33.4], [35.1, 44.6], [22.8, 54.8], [39.1, 54.2]])
    targets = handles + [[1.6, -3.5], [3.3, -3.1], [-3.3, -0.7], [1.7, -2.1], [3.0, -0.8]]
    now = _same_trajectory(default_gen, z, h, handles, targets, monkeypatch)
    assert len(now[3]["rows"]) == 5


@pytest.mark.parametrize("rows", [1, 4])
def test_the_keep_terms_one_pass_gradient_is_autograds_bit_for_bit(rows):
    g = torch.Generator().manual_seed(rows)
    feat = O.upsample(torch.randn((rows, 8, 16, 16), generator=g), 32).requires_grad_(True)
    target = torch.randn((1, 8, 32, 32), generator=g)
    keep = (torch.rand((rows, 1, 32, 32), generator=g) > 0.4).float() * torch.rand((rows, 1, 32, 32), generator=g)
    lam = torch.rand(rows, generator=g) + 0.5
    got = O.keep_term(feat, target, keep)
    want = ((feat - target).abs() * keep).mean(dim=(1, 2, 3))
    assert torch.equal(got, want)
    assert torch.equal(torch.autograd.grad((lam * got).sum(), feat)[0], torch.autograd.grad((lam * want).sum(), feat)[0])
