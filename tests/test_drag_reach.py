"""Drag reach: the generator's confirmed motion gates the photo's field, and the latent spaces a drag
optimises (the embedded DCGAN's proxy, StyleGAN2's first-layers w+, the pose subspace)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from priorpaint.compositing.drag_motion import confirmed_positions, flow_at
from priorpaint.edits import drag as D
from priorpaint.edits import drag_optimise as O
from priorpaint.edits import drag_space as S
from priorpaint.errors import InputError
from priorpaint.jobs import CancelToken, Cancelled

pytestmark = pytest.mark.usefixtures("tmp_cache")

CHIN = "drag:230,150>230,138"


def _face64() -> np.ndarray:
    from skimage import data
    return cv2.resize(np.ascontiguousarray(data.astronaut()[20:200, 140:320]), (64, 64), interpolation=cv2.INTER_AREA)


def test_the_render_flow_sees_a_local_sub_pixel_move_of_a_64_px_render():
    """A bump that moves the content near a point up by ~3 px (a Gaussian of σ 4 px): read on the
    4× enlarged renders the flow finds it within 0.4 px; at the renders' own size it saw a third."""
    im = _face64()
    gy, gx = np.mgrid[0:64, 0:64].astype(np.float32)
    w = np.exp(-((gx - 32) ** 2 + (gy - 40) ** 2) / (2 * 4.0 ** 2)).astype(np.float32)
    moved = cv2.remap(im, gx, gy + 3.0 * w, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    f = flow_at(im, moved, np.array([[32.0, 43.0]]))[0]
    true = 3.0 * np.exp(-(3.0 ** 2) / (2 * 4.0 ** 2))          # what moved into the point came from below
    assert abs(f[0]) < 0.4 and f[1] == pytest.approx(-true, abs=0.4)
    assert np.abs(flow_at(im, im, np.array([[32.0, 43.0], [10.0, 10.0]]))).max() < 0.05


def test_the_flow_on_a_window_around_the_points_reads_the_same_move():
    """A window (the points' box grown by 16 px): the same local move as on the whole render."""
    im = _face64()
    gy, gx = np.mgrid[0:64, 0:64].astype(np.float32)
    w = np.exp(-((gx - 32) ** 2 + (gy - 40) ** 2) / (2 * 4.0 ** 2)).astype(np.float32)
    moved = cv2.remap(im, gx, gy + 3.0 * w, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    pts = np.array([[32.0, 43.0], [30.0, 38.0]])
    np.testing.assert_allclose(flow_at(im, moved, pts, window=16), flow_at(im, moved, pts), atol=0.3)
    far = flow_at(im, moved, np.array([[2.0, 2.0], [60.0, 61.0]]), window=4)   # boxes at the borders
    assert far.shape == (2, 2) and np.abs(far).max() < 0.3


def test_a_tracked_shift_is_kept_only_as_far_as_the_generator_moved():
    p = np.array([[10.0, 20.0], [10.0, 20.0], [10.0, 20.0], [10.0, 20.0]])
    tracked = np.array([[10.0, 16.0]] * 4)                       # the tracker says: 4 px up
    motion = np.array([[0.0, 0.0], [0.0, -1.0], [0.0, -6.0], [0.0, 2.0]])
    got = confirmed_positions(p, tracked, motion)
    np.testing.assert_allclose(got, [[10, 20], [10, 19], [10, 16], [10, 20]])   # none, 1 px, capped, not back


def test_a_tracker_jump_with_a_still_generator_leaves_the_photo_and_says_how_far_the_handle_got(
        tiny_session, monkeypatch):
    """The tracker jumps onto the target at once while the generator cannot move (lr 0): the handle
    is confirmed where it was, the note says so, and the render leaves the photo unmoved."""
    s = tiny_session
    jumps = []

    def jump(feat, f0, p, r2, groups=None):
        jumps.append(1)
        return p + torch.tensor([[0.0, -float(r2)]], dtype=p.dtype)
    monkeypatch.setattr(O, "_track", jump)
    state = s.apply([{"kind": "drag", "points": [[230, 150, 230, 120]], "steps": 5, "lr": 0.0}])
    d = state.applied[0]
    assert jumps and d["reach_tracked"][0] > 0.0            # the tracker moved ...
    assert d["reach_model"] == [0.0]                        # ... the generator did not: no confirmed motion
    np.testing.assert_allclose(d["confirmed_model"], d["handles_model"], atol=1e-6)
    assert any("got 0% of the way" in n and "the generator did not follow" in n for n in state.notes)
    r = s.render(state)
    x0, y0, side = s.crop.square
    assert r.metrics["composite_info"]["motion"] == "drag"
    photo = s.photo.rgb[max(y0, 0):y0 + side, max(x0, 0):x0 + side].astype(int)
    out = r.photo.rgb[max(y0, 0):y0 + side, max(x0, 0):x0 + side].astype(int)
    assert np.abs(out - photo).mean() < 0.5                 # the photo did not move


def test_the_field_runs_through_the_confirmed_handles_not_the_tracked_ones():
    spec = {"kind": "drag", "handles_model": [[8.0, 10.0]], "tracked_model": [[8.0, 6.0]],
            "confirmed_model": [[8.0, 10.0]]}
    assert np.abs(D.drag_field([spec], 16)).max() < 1e-3
    moved = D.drag_field([dict(spec, confirmed_model=[[8.0, 8.0]])], 16)
    assert moved[8, 8, 1] == pytest.approx(2.0, abs=0.3)    # at the confirmed place it points back 2 px


def test_the_embedded_model_drags_its_proxy_not_the_pinned_residual():
    """The drag's features see ``G_H(z)`` (the residual share is :data:`RESIDUAL`); the photo's state
    keeps the whole residual: ``h_e − h = G_H(z_e) − G_H(z)``."""
    from priorpaint.models.registry import load_generator
    gen = load_generator(None)
    split = gen.default_split
    z = gen.sample_latents(1, seed=5)
    with torch.no_grad():
        hz = gen.forward_to(z, split)
    h = hz + 0.5 * torch.randn(hz.shape, generator=torch.Generator().manual_seed(0))   # a photo's residual
    lat = S.DragLatent(gen, z, h, split)
    assert lat.space == "z" and S.RESIDUAL == 0.0
    with torch.no_grad():
        lat.dz.add_(0.3)
        z_e, h_seen = lat.latent()
        _, h_photo = lat.latent(photo=True)
        torch.testing.assert_close(h_seen, gen.forward_to(z_e, split))
        torch.testing.assert_close(h_photo - h, gen.forward_to(z_e, split) - hz)


def test_stylegan2_drags_the_first_layers_of_w_plus_and_leaves_the_others(tiny_stylegan2):
    gen = tiny_stylegan2
    split = gen.default_split
    z = gen.sample_latents(1, seed=1)                     # w+ (1, 8, 16)
    with torch.no_grad():
        h = gen.forward_to(z, split)
    events = []
    z_e, h_e, _, info = D.optimise(gen, z, h, split, np.array([[16.0, 18.0]]), np.array([[16.0, 12.0]]),
                                   steps=4, lr=0.5, progress=lambda *a: events.append(a[2]))
    k = S.FIRST_LAYERS
    assert info["space"] == "w+" and z_e.shape == z.shape and gen.n_latent > k
    assert torch.equal(z_e[:, k:], z[:, k:])                     # the later styles are untouched
    assert (z_e[:, :k] - z[:, :k]).abs().amax(dim=-1).min() > 0  # each of the first k styles moved
    assert torch.isfinite(h_e).all()
    assert info["steps_run"] <= 4 and len(events) <= 5            # bounded
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        D.optimise(gen, z, h, split, np.array([[16.0, 18.0]]), np.array([[16.0, 12.0]]), steps=4, cancel=token)
    w = gen.sample_latents(1, seed=1, space="w")                # a w latent is optimised as w+ too
    with torch.no_grad():
        hw = gen.forward_to(w, split)
    z_w, _, _, _ = D.optimise(gen, w, hw, split, np.array([[16.0, 18.0]]), np.array([[16.0, 12.0]]), steps=2, lr=0.5)
    assert z_w.shape == (1, gen.n_latent, gen.style_dim) and torch.equal(z_w[0, k:], w[0].expand(gen.n_latent - k, -1))


def test_w_plus_needs_a_stylegan2_and_the_pose_space_stays_in_its_span(tiny_gen):
    z = tiny_gen.sample_latents(1, seed=0)
    with torch.no_grad():
        h = tiny_gen.forward_to(z, "b8")
    with pytest.raises(InputError, match="'w\\+' needs a StyleGAN2"):
        S.DragLatent(tiny_gen, z, h, "b8", "w+")
    with pytest.raises(InputError, match="drag space must be one of"):
        S.DragLatent(tiny_gen, z, h, "b8", "w")
    z_e, _, _, info = D.optimise(tiny_gen, z, h, "b8", np.array([[8.0, 10.0]]), np.array([[8.0, 6.0]]),
                                 steps=3, lr=0.5, space="pose")
    basis = S.pose_basis(tiny_gen).reshape(S.POSE_COMPONENTS, -1)
    dz = (z_e - z).reshape(-1)
    assert info["space"] == "pose" and dz.abs().max() > 0
    inside = basis.t() @ (basis @ dz)
    torch.testing.assert_close(inside, dz, atol=1e-5, rtol=1e-4)   # δz lies in the closed-form subspace


@pytest.mark.parametrize("field, value", [("lr", -0.1), ("lambda_target", float("nan")), ("lambda_mask", 11),
                                          ("lr", "fast")])
def test_bad_optimisation_settings_are_one_line_errors(tiny_session, field, value):
    with pytest.raises(InputError, match="drag: steps must be|drag: steps and r2 must be") as e:
        tiny_session.apply([{"kind": "drag", "points": [[230, 150, 230, 138]], field: value}])
    assert "\n" not in str(e.value)


def test_a_bad_space_is_a_one_line_error(tiny_session):
    with pytest.raises(InputError, match="drag space must be one of"):
        tiny_session.apply([{"kind": "drag", "points": [[230, 150, 230, 138]], "space": "../w"}])
