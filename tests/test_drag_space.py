"""The drag's spatial latent (edits/drag_space.py, ``space="z+coarse"``): ``δz`` and an additive
offset to a coarse layer's output before the split, its layer declared per architecture. It is bounded
and cancellable like the other spaces, its gradient stays in its own row of the batch, a zero offset
is the ``"z"`` drag bit for bit, and a bad layer is a one-line error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import two_handle_loss
from priorpaint.edits import drag_optimise as O
from priorpaint.edits import drag_space as S
from priorpaint.errors import InputError
from priorpaint.jobs import CancelToken, Cancelled

pytestmark = pytest.mark.usefixtures("tmp_cache")


def _start(gen, seed=2, residual=0.0):
    z = gen.sample_latents(1, seed=seed)
    with torch.no_grad():
        h = gen.forward_to(z, "b8") + residual
    return z, h


def test_the_coarse_layer_is_declared_per_architecture_and_comes_before_the_split(tiny_gen, monkeypatch):
    assert S.COARSE_LAYER["dcgan"] == "b4"
    assert S.coarse_layer(tiny_gen, "b8") == "b4"
    assert "z+coarse" in S.SPACES
    monkeypatch.setattr(tiny_gen, "drag_coarse_layer", "b4", raising=False)   # a generator's own declaration
    assert S.coarse_layer(tiny_gen, "b8") == "b4"
    z, h = _start(tiny_gen)
    lat = S.DragLatent(tiny_gen, z, h, "b8", "z+coarse", batch=3)
    assert lat.coarse == "b4" and lat.dc.shape == (3,) + tuple(tiny_gen.forward_to(z, "b4").shape[1:])
    assert lat.dz.shape == (3,) + tuple(z.shape[1:]) and lat.dh is None and len(lat.params) == 2


@pytest.mark.parametrize("layer", ["b99", "b8", "rgb", 4, "../b4"])
def test_a_bad_coarse_layer_is_a_one_line_error(tiny_gen, layer):
    z, h = _start(tiny_gen)
    with pytest.raises(InputError, match="drag coarse_layer must be one of 'b4'") as e:
        S.DragLatent(tiny_gen, z, h, "b8", "z+coarse", coarse=layer)
    assert "\n" not in str(e.value)


def test_a_coarse_layer_without_the_coarse_space_or_before_the_first_layer_is_refused(tiny_gen):
    z, h = _start(tiny_gen)
    with pytest.raises(InputError, match="applies to space 'z\\+coarse' only"):
        S.DragLatent(tiny_gen, z, h, "b8", "z", coarse="b4")
    with torch.no_grad():
        h4 = tiny_gen.forward_to(z, "b4")
    with pytest.raises(InputError, match="needs a layer before the split 'b4'") as e:
        S.DragLatent(tiny_gen, z, h4, "b4", "z+coarse")
    assert "\n" not in str(e.value)


def test_the_edit_refuses_a_bad_coarse_layer_with_one_line(tiny_session):
    spec = {"kind": "drag", "points": [[230, 150, 230, 138]], "space": "z+coarse", "coarse_layer": "b16"}
    with pytest.raises(InputError, match="drag coarse_layer must be one of") as e:
        tiny_session.apply([spec])
    assert "\n" not in str(e.value)


def test_a_zero_offset_is_the_z_state_bit_for_bit(tiny_gen):
    z, h = _start(tiny_gen, seed=3, residual=0.2)
    lz = S.DragLatent(tiny_gen, z, h, "b8", "z", batch=2)
    lc = S.DragLatent(tiny_gen, z, h, "b8", "z+coarse", batch=2)
    with torch.no_grad():
        step = 0.3 * torch.randn(lz.dz.shape, generator=torch.Generator().manual_seed(1))
        lz.dz.add_(step)
        lc.dz.add_(step)
        for photo in (False, True):
            for a, b in zip(lz.latent(photo=photo), lc.latent(photo=photo)):
                assert torch.equal(a, b)
        w = torch.full((2, 1, 8, 8), 0.5)
        for a, b in zip(lz.combined(lz.snapshot(), w), lc.combined(lc.snapshot(), w)):
            assert torch.equal(a, b)
        lc.dc.add_(0.5)                                   # and a non-zero offset changes the state
        assert not torch.equal(lz.latent()[1], lc.latent()[1])


def test_with_the_offset_held_at_zero_the_drag_is_the_z_drag_bit_for_bit(tiny_gen, monkeypatch):
    z, h = _start(tiny_gen, seed=4, residual=0.1)
    p, t = np.array([[4.0, 5.0], [12.0, 11.0]]), np.array([[4.0, 2.0], [12.0, 14.0]])
    kw = dict(steps=4, lr=0.3, movable="capsule")
    monkeypatch.setitem(S.COARSE, "lr_scale", 0.0)
    monkeypatch.setitem(S.COARSE, "z_scale", 1.0)
    zz, hz, tz, iz = O.optimise(tiny_gen, z, h, "b8", p, t, space="z", **kw)
    zc, hc, tc, ic = O.optimise(tiny_gen, z, h, "b8", p, t, space="z+coarse", **kw)
    assert ic["space"] == "z+coarse" and ic["coarse_layer"] == "b4" and iz["coarse_layer"] is None
    assert torch.equal(zz, zc) and torch.equal(hz, hc) and np.array_equal(tz, tc)
    assert torch.equal(iz["row_z"], ic["row_z"]) and iz["steps_run"] == ic["steps_run"]
    monkeypatch.setitem(S.COARSE, "lr_scale", 0.1)      # a moving offset gives another drag
    _, hm, _, _ = O.optimise(tiny_gen, z, h, "b8", p, t, space="z+coarse", **kw)
    assert not torch.equal(hz, hm)


def test_a_rows_loss_moves_only_its_own_offset_and_latent(tiny_gen, monkeypatch):
    """Two rows: the gradient of row 0's motion supervision (and of the offsets' penalties, with row 1
    at zero) is zero on row 1's offset and latent, and not zero on row 0's."""
    monkeypatch.setitem(S.COARSE, "tv", 1.0)
    monkeypatch.setitem(S.COARSE, "l2", 1.0)
    z, h = _start(tiny_gen, seed=2)
    lat = S.DragLatent(tiny_gen, z, h, "b8", "z+coarse", batch=2)
    with torch.no_grad():
        g = torch.Generator().manual_seed(1)
        lat.dz[0].add_(0.1 * torch.randn(lat.dz.shape[1:], generator=g))
        lat.dc[0].add_(0.1 * torch.randn(lat.dc.shape[1:], generator=g))
    loss = two_handle_loss(tiny_gen, lat) + lat.penalty()
    loss.backward()
    assert lat.dc.grad[0].abs().sum() > 0 and lat.dz.grad[0].abs().sum() > 0
    assert torch.equal(lat.dc.grad[1], torch.zeros_like(lat.dc.grad[1]))
    assert torch.equal(lat.dz.grad[1], torch.zeros_like(lat.dz.grad[1]))


def test_the_coarse_drag_is_bounded_cancellable_and_reports_every_handle(tiny_gen):
    z, h = _start(tiny_gen, seed=3, residual=0.1)
    p, t = np.array([[3.0, 4.0], [12.0, 12.0], [3.0, 12.0]]), np.array([[3.0, 1.0], [14.0, 14.0], [1.0, 14.0]])
    events = []
    z_e, h_e, tracked, info = O.optimise(tiny_gen, z, h, "b8", p, t, steps=3, movable="capsule", space="z+coarse",
                                         progress=lambda *a: events.append(a[2]), to_photo=lambda q: q)
    assert info["steps_run"] <= 3 and len(events) <= 4 and info["coarse_layer"] == "b4"
    assert all(len(e["handles"]) == 3 and len(e["distance_px"]) == 3 for e in events)
    assert z_e.shape == z.shape and h_e.shape == h.shape and tracked.shape == (3, 2)
    assert torch.isfinite(h_e).all() and not torch.equal(h_e, h)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        O.optimise(tiny_gen, z, h, "b8", p, t, steps=3, space="z+coarse", cancel=token)


def test_the_coarse_drag_runs_as_an_edit_and_keeps_the_photo_outside_its_mask(tiny_session):
    state = tiny_session.apply([{"kind": "drag", "points": [[230, 150, 230, 138]], "space": "z+coarse", "steps": 4}])
    d = state.applied[0]
    assert d["space"] == "z+coarse" and d["coarse_layer"] == "b4" and torch.isfinite(state.h).all()
    r = tiny_session.render(state)
    assert r.metrics["changed_outside_mask"] == 0


def test_the_landmark_protocol_drags_in_the_space_it_is_given(default_gen, monkeypatch):
    """``bench/drag.py``'s ``_faces``: the architecture's space by default, ``drag_space`` when given;
    the report says which."""
    from types import SimpleNamespace

    from priorpaint.bench import drag as B
    from priorpaint.edits import drag as D
    seen = []
    real = D.optimise

    def spy(*a, **kw):
        seen.append(kw.get("space"))
        kw["steps"] = 1
        return real(*a, **kw)

    monkeypatch.setattr(D, "optimise", spy)
    out = B._faces(SimpleNamespace(model=None, face_pairs=1, drag_steps=1, drag_latents=None, drag_space="z+coarse"))
    assert out["space"] == "z+coarse" and seen and set(seen) == {"z+coarse"}
    assert out["1 point"]["samples"] == 1 and out["1 point"]["mean_after"] is not None
    assert B._space(SimpleNamespace()) is None and S.default_space(default_gen) == "z"


def test_an_undeclared_architecture_offsets_its_first_layer_and_drags(tiny_stylegan2):
    """A tiny StyleGAN2 (no coarse layer declared): the offset sits on its first layer's output, and
    the drag is finite and bounded."""
    gen = tiny_stylegan2
    split = gen.default_split
    assert gen.architecture not in S.COARSE_LAYER
    assert S.coarse_layer(gen, split) == gen.layer_names[0] != split
    z = gen.sample_latents(1, seed=1)
    with torch.no_grad():
        h = gen.forward_to(z, split)
    z_e, h_e, _, info = O.optimise(gen, z, h, split, np.array([[16.0, 18.0]]), np.array([[16.0, 12.0]]),
                                   steps=3, lr=0.5, space="z+coarse")
    assert info["coarse_layer"] == gen.layer_names[0] and info["steps_run"] <= 3
    assert z_e.shape == z.shape and torch.isfinite(h_e).all() and not torch.equal(h_e, h)
