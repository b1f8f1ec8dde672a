"""The drag's gate every k-th step (edits/drag_optimise.py, ``GATE_EVERY``): with k = 1 the gate reads
the generator's render at every step, as before; with k > 1 a position between gates goes no further
than the last gate's reading, and only a gated (confirmed) step is kept or stops the drag."""

from __future__ import annotations

import numpy as np
import torch

from priorpaint.compositing import drag_motion as M
from priorpaint.edits import drag_optimise as O


def test_the_gate_runs_every_kth_step_and_at_the_last():
    assert [s for s in range(1, 11) if O._gate_due(s, 10, 1)] == list(range(1, 11))
    assert [s for s in range(1, 11) if O._gate_due(s, 10, 3)] == [3, 6, 9, 10]
    assert [s for s in range(1, 9) if O._gate_due(s, 8, 2)] == [2, 4, 6, 8]


def _drag(monkeypatch, every: int, steps: int = 9):
    """A three-handle drag on the embedded model with the gate every ``every`` steps, recording each
    gate reading and each confirmation (its motion and its positions)."""
    from priorpaint.models.registry import load_generator
    gen = load_generator(None)
    z = gen.sample_latents(1, seed=3)
    split = gen.default_split
    with torch.no_grad():
        h = gen.forward_to(z, split)
    readings, confirms, events = [], [], []
    real_motion, real_confirm = O._motion, M.confirmed_positions

    def motion(*a, **kw):
        out = real_motion(*a, **kw)
        readings.append(out)
        return out

    def confirm(p0, tracked, m):
        out = real_confirm(p0, tracked, m)
        confirms.append((np.asarray(p0, np.float64).copy(), m, out))
        return out
    monkeypatch.setattr(O, "GATE_EVERY", every)
    monkeypatch.setattr(O, "_motion", motion)
    monkeypatch.setattr(M, "confirmed_positions", confirm)
    p = np.array([[32.0, 46.0], [22.0, 40.0], [42.0, 40.0]])
    t = p + [[0.0, -4.0], [-4.0, -2.0], [4.0, -2.0]]
    out = O.optimise(gen, z, h, split, p, t, movable="capsule", steps=steps,
                     progress=lambda *a: events.append(a[2]["step"]))
    return out, readings, confirms, events


def test_with_k_1_the_generators_render_is_read_at_every_step(monkeypatch):
    _, readings, confirms, events = _drag(monkeypatch, 1)
    # one reading per step after the start, and the drag's final reading of the kept latents
    assert len(readings) == max(events) + 1
    assert len(confirms) == max(events)
    for (_, m, _), reading in zip(confirms, readings):
        assert m is reading          # every step's positions are confirmed by that step's own reading


def test_between_gates_a_position_goes_no_further_than_the_last_reading(monkeypatch):
    k = 3
    (_, _, _, info), readings, confirms, events = _drag(monkeypatch, k)
    gate_steps = [s for s in range(1, 10) if O._gate_due(s, 9, k)]
    n_gates = sum(1 for s in gate_steps if s <= max(events))
    assert len(readings) == n_gates + 1     # the gate's steps, then the final reading
    assert len(confirms) == max(events)     # every step after the start is confirmed, gated or not
    for i, (p0, m, out) in enumerate(confirms, start=1):
        before = sum(1 for s in gate_steps if s < i)
        if not O._gate_due(i, 9, k):        # between gates: the last gate's reading (none yet: no motion)
            np.testing.assert_array_equal(m, readings[before - 1] if before else np.zeros_like(m))
        else:
            assert m is readings[before]
        moved = np.linalg.norm(out - p0, axis=1)
        assert (moved <= np.linalg.norm(m, axis=1) + 1e-9).all()


def test_with_a_gate_every_kth_step_the_kept_state_is_a_confirmed_one(monkeypatch):
    k = 3
    (z_e, h_e, kept, info), readings, _, events = _drag(monkeypatch, k)
    assert torch.isfinite(z_e).all() and torch.isfinite(h_e).all()
    assert info["kept_step"] == 0 or O._gate_due(info["kept_step"], 9, k)
    assert O._gate_due(max(events), 9, k)   # the drag stops only at a gated step
    assert kept.shape == (3, 2) and np.isfinite(kept).all()
