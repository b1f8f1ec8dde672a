"""The warp composite's ``mouth`` motion (compositing/warp_mouth.py): an expression's mouth-corner
motion, relative to the head, placed on the photo's own mouth with a local falloff; and the smile
slider rendered through it on a real photo."""

from __future__ import annotations

import numpy as np
import pytest

from priorpaint.compositing.warp import min_jacobian, warp_composite
from priorpaint.compositing.warp_mouth import MOUTH_CAP, corner_motion, mouth_field

#: a frontal face's five landmarks (eyes, nose, mouth corners) in a 64 px square
FACE = np.array([[24.0, 26.0], [40.0, 26.0], [32.0, 34.0], [26.0, 44.0], [38.0, 44.0]])


def _similar(pts, angle=0.2, scale=1.1, shift=(3.0, -2.0)):
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    return pts @ np.array([[c, s], [-s, c]]) + np.array(shift)


def test_the_heads_own_motion_is_no_mouth_motion():
    assert np.abs(corner_motion(FACE, _similar(FACE))).max() < 1e-9       # a head that turns in plane and grows
    wider = FACE.copy()
    wider[3, 0] -= 1.6                                                     # each corner 0.1 eye distance out
    wider[4, 0] += 1.6
    wider[3:, 1] -= 0.8                                                    # and 0.05 up
    m = corner_motion(FACE, _similar(wider))                               # also when the head moves with it
    assert np.allclose(m, [[-0.1, -0.05], [0.1, -0.05]], atol=1e-9)


def test_the_field_moves_the_corners_and_nothing_a_mouth_width_away():
    motion = np.array([[-0.1, -0.05], [0.1, -0.05]])                      # a smile: corners out and up
    f = mouth_field(FACE * 4, motion, 64, 4.0, gain=1.0)                   # the photo's square is 256 px
    d = np.array([1.6, -0.8])                                              # the right corner's motion, model px
    at = np.round(FACE[4] + d).astype(int)
    assert np.allclose(f[at[1], at[0]], -d, atol=0.25)                     # the edited corner shows the photo's
    assert abs(float(f[44, 32, 0])) < 0.05                                 # the mouth's centre does not slide
    assert np.hypot(*f[26, 24]) < 0.05 and np.hypot(*f[26, 40]) < 0.05     # the eyes stay
    assert np.hypot(f[..., 0], f[..., 1])[:12].max() < 1e-3                # the forehead and what is above
    assert min_jacobian(f) > 0.3                                           # it does not fold


def test_the_cap_is_the_mouths_not_the_heads():
    f = mouth_field(FACE, np.array([[-2.0, 0.0], [2.0, 0.0]]), 64, 1.0, gain=1.0)   # 2 eye distances: absurd
    assert np.hypot(f[..., 0], f[..., 1]).max() <= MOUTH_CAP * 12.0 + 1e-4         # the mouth is 12 px wide
    assert np.array_equal(mouth_field(FACE, np.zeros((2, 2)), 64, 1.0), np.zeros((64, 64, 2), np.float32))


def test_the_photos_mouth_corners_move_out_and_the_outside_is_kept():
    img = np.full((256, 256, 3), 180, np.uint8)
    for x, y in (FACE[3:] * 4).astype(int):                               # two dark dots: the mouth corners
        img[y - 3:y + 4, x - 3:x + 4] = 40
    mask = np.zeros((256, 256), np.uint8)
    mask[120:220, 60:200] = 255
    flow = mouth_field(FACE * 4, np.array([[-0.1, 0.0], [0.1, 0.0]]), 64, 4.0, gain=1.0)
    b = np.full((64, 64, 3), 128, np.uint8)
    w = warp_composite(img, b, b.copy(), flow, np.zeros((64, 64), np.float32), mask, 4)
    dark = lambda im, lo, hi: float(np.nonzero((im[176, lo:hi, 0] < 110))[0].mean() + lo)
    assert dark(w.region, 80, 128) < dark(img, 80, 128) - 4               # the left corner moved left
    assert dark(w.region, 128, 190) > dark(img, 128, 190) + 4             # the right one right
    assert np.array_equal(w.region[mask == 0], img[mask == 0])


def test_the_smile_renders_through_the_mouth_warp_on_a_real_photo(session, one_thread):
    from priorpaint.compositing.crop import cut_square
    from priorpaint.measures.effect import attribute
    from priorpaint.warp_render import declared_motion
    st = session.apply(["direction:smile=2"])
    assert declared_motion(session, st.applied) == "mouth"
    assert declared_motion(session, session.apply(["direction:head_turn=2"]).applied) == "head"
    assert declared_motion(session, session.apply(["direction:head_tilt=2"]).applied) == "head"   # round 6
    r = session.render(st, adapt=False)                                    # the default composite: warp
    info = r.metrics["composite_info"]
    assert r.metrics["composite"] == "warp" and info["motion"] == "mouth"
    assert r.metrics["changed_outside_mask"] == 0
    box = session.crop.square
    outside = np.ones(session.photo.rgb.shape[:2], bool)
    outside[max(box[1], 0):box[1] + box[2], max(box[0], 0):box[0] + box[2]] = False
    assert np.array_equal(r.photo.rgb[outside], session.photo.rgb[outside])    # beyond the square, bit for bit
    before = attribute(cut_square(session.photo.rgb, box, pad="edge"), "mouth_width")
    after = attribute(cut_square(r.photo.rgb, box, pad="edge"), "mouth_width")
    assert after > before + 0.02                                           # the photo's own mouth widened
    assert r.metrics["verdict"]["carried"], r.metrics["verdict"]            # no longer preview only
    wide = session.render(session.apply(["direction:smile=3"]), adapt=False)  # the range's end
    assert attribute(cut_square(wide.photo.rgb, box, pad="edge"), "mouth_width") > before + 0.02
    assert wide.metrics["changed_outside_mask"] == 0
    below = session.apply(["direction:smile=-2"])                           # no minus side: clamped, said
    assert any("outside its range [0, 3]; clamped to 0" in n for n in below.notes), below.notes


def test_an_unknown_motion_in_the_manifest_is_refused(session, monkeypatch):
    from priorpaint import warp_render
    from priorpaint.edits.directions import named
    from priorpaint.errors import ModelError
    real = named.load_named("dcgan-digiface-64")
    bad = dict(real, directions=[dict(d, motion="eyebrows") if d["name"] == "smile" else d for d in real["directions"]])
    monkeypatch.setattr(named, "load_named", lambda model_id: bad)
    with pytest.raises(ModelError, match="motion must be one of mouth, head, got 'eyebrows'"):
        warp_render.declared_motion(session, [{"kind": "direction", "name": "smile", "strength": 2.0}])
