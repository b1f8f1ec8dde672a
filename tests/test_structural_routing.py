"""A structural named direction (declared once in the directions manifest: head_turn, head_tilt,
profile) renders with the warp composite when the render asks for the default ``detail``, and its
live preview shows the same; appearance directions stay ``detail``; an appearance direction stacked
with a structural one adds its low band to the moved photo; a request cannot declare the composite."""

from __future__ import annotations

import numpy as np
import pytest

from priorpaint.edits.registry import structural_composite


def test_the_manifest_declares_which_directions_are_structural():
    from priorpaint.edits.directions.named import direction_composite, list_directions
    rows = {r["name"]: r["structural"] for r in list_directions("dcgan-digiface-64")}
    assert {n for n, s in rows.items() if s} == {"head_turn", "head_tilt", "profile", "smile"}
    assert direction_composite("dcgan-digiface-64", "head_tilt") == "warp"
    assert direction_composite("dcgan-digiface-64", "warm_light") is None
    assert direction_composite("dcgan-digiface-64", "sefa0") is None        # a raw component: appearance


def _direction(name, strength=2.0, composite="warp"):
    spec = {"kind": "direction", "name": name, "strength": strength, "applied_strength": strength}
    if composite:
        spec["composite"] = composite
    return spec


def test_routing_of_applied_edits():
    assert structural_composite([]) is None
    assert structural_composite([_direction("exposure", composite=None)]) is None
    assert structural_composite([_direction("head_tilt")]) == "warp"
    assert structural_composite([_direction("head_tilt", 0.0)]) is None          # nothing moves
    assert structural_composite([_direction("head_tilt"), _direction("exposure", composite=None)]) == "warp"
    # stacked with a painted edit (not a latent move) the detail composite stays: its change would be lost
    assert structural_composite([_direction("head_tilt"), {"kind": "scribble"}]) is None
    assert structural_composite([{"kind": "drag"}, {"kind": "scribble"}]) == "warp"   # a drag always warps
    # two edits declaring different composites of their own (a tilt's warp, a paint's texture): detail,
    # in either order (the paint would otherwise be carried as a moving edit by the warp)
    paint = {"kind": "paint", "concept": "hair", "mode": "add", "texture": "source"}
    assert structural_composite([paint]) == "texture"
    assert structural_composite([_direction("head_tilt"), paint]) is None
    assert structural_composite([paint, _direction("head_tilt")]) is None


def test_a_structural_direction_renders_with_the_warp_composite(session):
    st = session.apply(["direction:head_tilt=2"])
    r = session.render(st)
    assert r.metrics["composite"] == "warp" and r.metrics["composite_info"]["motion"] == "head"   # round 6
    explicit = session.render(st, composite="warp")
    assert np.array_equal(r.photo.rgb, explicit.photo.rgb)
    assert r.metrics["changed_outside_mask"] == 0
    assert session.render(st, composite="replace").metrics["composite"] == "replace"   # an explicit choice holds
    look = session.render(session.apply(["direction:exposure=2"]))
    assert look.metrics["composite"] == "detail" and look.metrics["detail_kept"] >= 0.9
    assert session.render(session.apply(["direction:head_tilt=0"])).metrics["composite"] == "detail"
    r0 = session.render()
    assert r0.metrics["composite"] == "detail" and np.array_equal(r0.photo.rgb, session.photo.rgb)


def test_a_warp_render_fits_no_gprime(session):
    r = session.render(session.apply(["direction:head_tilt=2"]), adapt=True)
    assert r.metrics["composite"] == "warp" and "psnr_adapted" not in r.metrics
    assert any("G′ is not used by the warp composite" in n for n in r.metrics["notes"])


def test_a_request_cannot_declare_the_composite(session):
    st = session.apply([{"kind": "direction", "name": "exposure", "strength": 1.0, "composite": "warp"}])
    assert "composite" not in st.applied[0]
    assert session.render(st).metrics["composite"] == "detail"


def test_an_appearance_direction_stacked_with_a_structural_one(session):
    tilt = session.render(session.apply(["direction:head_tilt=2"]))
    both = session.render(session.apply(["direction:head_tilt=2", "direction:exposure=3"]))
    assert both.metrics["composite"] == "warp"
    assert both.metrics["composite_info"]["appearance_edits"] == ["exposure"]
    assert both.metrics["changed_outside_mask"] == 0
    inside = session.edit_mask(None) > 0
    a = session.crop.region_of(tilt.photo.rgb, pad="edge").astype(float)[inside]
    b = session.crop.region_of(both.photo.rgb, pad="edge").astype(float)[inside]
    assert b.mean() > a.mean() + 2.0              # the exposure shows on the moved photo
    # and it is a low band: the moved photo's detail stays (not a cross-fade of two structures)
    import cv2
    hp = lambda x: x - cv2.GaussianBlur(x, (0, 0), 2.0)
    ta, tb = (hp(session.crop.region_of(x.photo.rgb, pad="edge").astype(np.float32))[inside] for x in (tilt, both))
    assert np.corrcoef(ta.ravel(), tb.ravel())[0, 1] > 0.9


@pytest.mark.parametrize("size", [None, 64])
def test_the_preview_shows_what_render_does(session, size):
    st = session.apply(["direction:head_tilt=2"])
    routed = session.preview_region(st, "detail", size)
    assert np.array_equal(routed, session.preview_region(st, "warp", size))
    assert routed.shape[0] == (size or session.crop.square[2])
    if size is None:   # at the render's size, the preview is the render
        r = session.render(st)
        box = session.crop.layer_box
        layer = session.preview_layer(st, "detail")
        assert np.abs(layer.astype(int) - r.photo.rgb[box.rows, box.cols].astype(int)).mean() < 0.5
    else:
        v = session.preview_verdict(st, "detail", size)
        assert v["verdict"]["message"] and "\n" not in v["verdict"]["message"]


def test_the_benchs_today_column_is_the_detail_composite_before_routing(session):
    """bench structural compares the routed render with what the defaults made before routing:
    its "today" state must not be routed (else both columns are the warp)."""
    from priorpaint.bench.structural import before_routing
    st = session.apply(["direction:head_tilt=2"])
    today = before_routing(st)
    assert structural_composite(st.applied) == "warp" and structural_composite(today.applied) is None
    assert [a.get("composite") for a in st.applied] == ["warp"]         # the state itself is left as it was
    assert session.render(today).metrics["composite"] == "detail"
