"""Several handles at once (edits/drag_optimise.py, edits/drag_region.py, edits/drag_space.py): the
handles grouped by nearness, a latent per group optimised as one batch, each group's loss moving only
its own latent, the groups combined into the photo's one state and one smooth field."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from priorpaint.compositing.warp import min_jacobian
from priorpaint.edits import drag as D
from conftest import two_handle_loss
from priorpaint.edits import drag_optimise as O
from priorpaint.edits import drag_region as R
from priorpaint.edits import drag_space as S
from priorpaint.errors import InputError
from priorpaint.jobs import CancelToken, Cancelled

pytestmark = pytest.mark.usefixtures("tmp_cache")


def test_nearby_handles_share_a_group_and_distant_ones_do_not():
    h = np.array([[10.0, 10.0], [13.0, 10.0], [40.0, 40.0], [40.0, 47.0], [60.0, 10.0]])
    t = h + np.array([[0.0, -3.0], [0.0, -3.0], [0.0, -4.0], [0.0, 4.0], [2.0, 0.0]])
    # 1–2: 3 px apart (the patches overlap); 3–4: 7 px apart, moving 4 + 4 px; 5 alone
    np.testing.assert_array_equal(R.group_handles(h, t, r1=3.0), [0, 0, 1, 1, 2])
    np.testing.assert_array_equal(R.group_handles(h, t, latents="each"), [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(R.group_handles(h, t, latents="one"), [0, 0, 0, 0, 0])
    # grouping is transitive: a chain of near handles is one group
    chain = np.array([[10.0, 10.0], [15.0, 10.0], [20.0, 10.0]])
    np.testing.assert_array_equal(R.group_handles(chain, chain + [0.0, -2.0], r1=3.0), [0, 0, 0])
    with pytest.raises(InputError, match="drag latents must be one of"):
        R.group_handles(h, t, latents="all")


def test_the_group_weights_are_a_partition_of_unity_led_by_the_nearest_group():
    h = np.array([[16.0, 16.0], [48.0, 48.0]])
    t = h + [[0.0, -3.0], [0.0, 3.0]]
    w = R.group_weights(h, t, np.array([0, 1]), 64, 8)
    assert w.shape == (2, 8, 8)
    np.testing.assert_allclose(w.sum(0), 1.0, atol=1e-5)
    assert w[0, 1, 1] > 0.95 and w[1, 6, 6] > 0.95        # each group's own cells are its own
    one = R.group_weights(h, t, np.array([0, 0]), 64, 8)
    np.testing.assert_allclose(one, 1.0)


def test_a_handles_loss_moves_only_its_own_groups_latent(tiny_gen):
    """Two groups in one batch: the gradient of one handle's motion supervision is zero on the other
    group's latent (the generator treats the rows independently), and not zero on its own."""
    z = tiny_gen.sample_latents(1, seed=2)
    with torch.no_grad():
        h = tiny_gen.forward_to(z, "b8")
    lat = S.DragLatent(tiny_gen, z, h, "b8", batch=2)
    with torch.no_grad():
        lat.dz.add_(0.1 * torch.randn(lat.dz.shape, generator=torch.Generator().manual_seed(1)))
    loss = two_handle_loss(tiny_gen, lat)
    loss.backward()
    assert lat.dz.grad[0].abs().sum() > 0
    assert torch.equal(lat.dz.grad[1], torch.zeros_like(lat.dz.grad[1]))


def test_a_group_optimises_as_it_would_alone(tiny_gen):
    """A far handle added in its own group does not change the first group's latent: the batched
    drag's row 0 is the one-handle drag's latent."""
    z = tiny_gen.sample_latents(1, seed=4)
    with torch.no_grad():
        h = tiny_gen.forward_to(z, "b8")
    p, t = np.array([[4.0, 5.0], [12.0, 11.0]]), np.array([[4.0, 2.0], [12.0, 14.0]])
    kw = dict(steps=3, lr=0.3, movable="capsule")
    _, _, _, alone = O.optimise(tiny_gen, z, h, "b8", p[:1], t[:1], **kw)
    _, _, _, both = O.optimise(tiny_gen, z, h, "b8", p, t, **kw)
    assert both["groups"] == [0, 1] and alone["groups"] == [0] and len(both["rows"]) == 2
    assert both["row_z"].shape[0] == 3                           # two groups' own rows and the shared one
    torch.testing.assert_close(both["row_z"][:1], alone["row_z"], atol=1e-5, rtol=1e-4)
    assert (both["row_z"][1] - z[0]).abs().max() > 0            # the second group moved its own


def test_the_photo_state_combines_the_groups_by_their_weights(tiny_gen):
    z = tiny_gen.sample_latents(1, seed=6)
    with torch.no_grad():
        h = tiny_gen.forward_to(z, "b8") + 0.2          # a photo's residual
    one = S.DragLatent(tiny_gen, z, h, "b8")
    two = S.DragLatent(tiny_gen, z, h, "b8", batch=2)
    with torch.no_grad():
        one.dz.add_(0.3)
        two.dz[0].add_(0.3)
        two.dz[1].sub_(0.5)
        own = one.latent(photo=True)
        torch.testing.assert_close(one.combined(one.snapshot()), own)     # one latent: its own state
        first = torch.zeros((2, 1, 8, 8))
        first[0] = 1.0
        torch.testing.assert_close(two.combined(two.snapshot(), first)[1], own[1])   # all weight on group 0
        half = torch.full((2, 1, 8, 8), 0.5)
        z_e, h_e = two.combined(two.snapshot(), half)
        rows = tiny_gen.forward_to(two.moved_z(two.dz), "b8") - tiny_gen.forward_to(z, "b8")
        torch.testing.assert_close(h_e, h + 0.5 * rows.sum(0, keepdim=True))
        torch.testing.assert_close(z_e, z + two.dz.mean(0, keepdim=True))


def test_the_combined_field_runs_through_every_confirmed_handle_without_folding():
    """Three handles (three groups) pulled three ways: one thin-plate field through all confirmed
    positions, each pointing back to its handle, and it does not fold."""
    handles = [[20.0, 40.0], [32.0, 46.0], [44.0, 40.0]]
    confirmed = [[17.0, 38.5], [32.0, 43.0], [47.0, 38.5]]
    field = D.drag_field([{"kind": "drag", "handles_model": handles, "confirmed_model": confirmed,
                           "groups": [0, 1, 2]}], 64)
    for (hx, hy), (cx, cy) in zip(handles, confirmed):
        v = field[int(round(cy)), int(round(cx))]
        assert v[0] == pytest.approx(hx - cx, abs=0.8) and v[1] == pytest.approx(hy - cy, abs=0.8)
    assert min_jacobian(field) > 0.2


def test_a_multi_group_drag_is_bounded_cancellable_and_reports_every_handle(tiny_gen):
    z = tiny_gen.sample_latents(1, seed=3)
    with torch.no_grad():
        h = tiny_gen.forward_to(z, "b8")
    p, t = np.array([[3.0, 4.0], [12.0, 12.0], [3.0, 12.0]]), np.array([[3.0, 1.0], [14.0, 14.0], [1.0, 14.0]])
    events = []
    z_e, h_e, tracked, info = O.optimise(tiny_gen, z, h, "b8", p, t, steps=3, movable="capsule",
                                         progress=lambda *a: events.append(a[2]), to_photo=lambda q: q)
    assert info["groups"] == [0, 1, 2] and info["steps_run"] <= 3 and len(events) <= 4
    assert all(len(e["handles"]) == 3 and len(e["distance_px"]) == 3 for e in events)
    assert z_e.shape == z.shape and h_e.shape == h.shape and tracked.shape == (3, 2)
    assert torch.isfinite(h_e).all()
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        O.optimise(tiny_gen, z, h, "b8", p, t, steps=3, cancel=token)


@pytest.mark.parametrize("value", ["all", 3, None])
def test_a_bad_latents_setting_is_a_one_line_error(tiny_session, value):
    with pytest.raises(InputError, match="drag latents must be one of") as e:
        tiny_session.apply([{"kind": "drag", "points": [[230, 150, 230, 138]], "latents": value}])
    assert "\n" not in str(e.value)


def test_three_handles_on_the_embedded_model_drag_three_latents_and_keep_the_photo_outside(session):
    """The chin and both mouth corners on the projected astronaut (embedded model): three groups, the
    photo's one state finite, every pixel outside the edit mask the photo's."""
    spec = {"kind": "drag", "points": [[230, 160, 230, 148], [200, 140, 188, 134], [260, 140, 272, 134]], "steps": 8}
    state = session.apply([spec])
    d = state.applied[0]
    assert d["groups"] == [0, 1, 2] and len(d["confirmed_model"]) == 3 and len(d["rows"]) == 3
    assert torch.isfinite(state.h).all() and "group_z" not in d and "row_z" not in d
    r = session.render(state)
    assert r.metrics["composite_info"]["motion"] == "drag" and r.metrics["changed_outside_mask"] == 0
    one = session.apply([dict(spec, latents="one")]).applied[0]
    assert one["groups"] == [0, 0, 0]


def test_a_stalled_latent_has_its_keep_term_lowered_and_the_drag_then_adds_no_generated_pixels(tiny_gen):
    """lr 0: nothing can move, so the latent stalls; its λ halves every ``patience`` steps down to the
    floor, and the drag says it escalated (the render's new content is then off). Without escalation,
    or without a keep term, λ stays."""
    z = tiny_gen.sample_latents(1, seed=5)
    with torch.no_grad():
        h = tiny_gen.forward_to(z, "b8")
    p, t = np.array([[6.0, 8.0]]), np.array([[6.0, 4.0]])
    e = O.ESCALATE
    kw = dict(steps=4 * e["patience"] + 2, lr=0.0, movable="capsule", lambda_mask=1.0, escalate=True)
    _, _, _, info = O.optimise(tiny_gen, z, h, "b8", p, t, **kw)
    assert info["escalated"] and info["lambda_rows"] == [pytest.approx(e["floor"])]
    _, _, _, kept = O.optimise(tiny_gen, z, h, "b8", p, t, **dict(kw, escalate=False))
    assert not kept["escalated"] and kept["lambda_rows"] == [1.0]
    _, _, _, free = O.optimise(tiny_gen, z, h, "b8", p, t, **dict(kw, movable=None))
    assert not free["escalated"]


def test_new_content_along_a_drag_field_can_be_switched_off():
    from priorpaint.compositing.warp import new_content_along
    g = torch.Generator().manual_seed(0)
    fb, fe = [torch.randn(1, 8, 16, 16, generator=g)], [torch.randn(1, 8, 16, 16, generator=g)]
    zero = np.zeros((16, 16, 2), np.float32)
    assert new_content_along(fb, fe, zero, 16).max() > 0.5          # unrelated features: new content
    assert not new_content_along(fb, fe, zero, 16, off=True).any()


def test_a_bad_escalate_setting_is_a_one_line_error(tiny_session):
    with pytest.raises(InputError, match="drag escalate must be true or false") as e:
        tiny_session.apply([{"kind": "drag", "points": [[230, 150, 230, 138]], "escalate": "yes"}])
    assert "\n" not in str(e.value)


def test_the_drag_runs_in_the_proxys_frame_and_answers_in_the_photos(tiny_gen, monkeypatch):
    """The handles are mapped onto the generator's proxy (its face need not sit where the photo's does)
    and every position the drag reports comes back in the photo's frame."""
    a = np.array([[1.1, 0.0, 1.5], [0.05, 0.95, -1.0]])
    pts = np.array([[3.0, 4.0], [12.5, 9.0]])
    np.testing.assert_allclose(O.from_frame(a, O.to_frame(a, pts)), pts, atol=1e-9)
    np.testing.assert_allclose(O.to_frame(None, pts), pts)
    z = tiny_gen.sample_latents(1, seed=7)
    with torch.no_grad():
        h = tiny_gen.forward_to(z, "b8")
        proxy = to_uint8_render(tiny_gen, z, h)
    assert O.proxy_frame(tiny_gen, z, h, "b8", None, proxy) is None      # the photo is the proxy: no map
    monkeypatch.setattr(O, "proxy_frame", lambda *args: a)
    p, t = np.array([[6.0, 8.0]]), np.array([[6.0, 4.0]])
    events = []
    _, _, tracked, info = O.optimise(tiny_gen, z, h, "b8", p, t, steps=2, lr=0.0, movable="capsule", register=True,
                                     to_photo=lambda q: q, progress=lambda *x: events.append(x[2]))
    assert info["proxy_frame"] == a.tolist()
    np.testing.assert_allclose(tracked, p, atol=1e-5)                     # nothing moved: the handle, photo frame
    np.testing.assert_allclose(events[0]["handles"], p, atol=0.05)
    np.testing.assert_allclose(events[0]["targets"], t, atol=0.05)
    np.testing.assert_allclose(info["generator_motion"], 0.0, atol=1e-6)


def to_uint8_render(gen, z, h):
    from priorpaint.compositing.blend import to_uint8
    return to_uint8(gen.forward_from("b8", h, z=z))
