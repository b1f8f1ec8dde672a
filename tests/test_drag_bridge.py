"""The GIMP bridge's reading of drag paths (gimp_bridge.drag): strokes → pairs → the backend's spec.

Pure standard-library logic, tested without GIMP; tests/test_gimp_drag.py runs the procedure in
the real GIMP against the real backend.
"""

from __future__ import annotations

import pytest

from gimp_bridge import drag as bdrag
from gimp_bridge import ops, png
from gimp_bridge.client import BridgeError


def stroke(*anchors, bezier=True, closed=False):
    """A Bézier stroke through ``anchors`` as GIMP gives it: (in-handle, anchor, out-handle) per anchor."""
    cps = []
    for x, y in anchors:
        cps += [x, y, x, y, x, y]
    return bezier, cps, closed


def crop(x=100, y=50, w=80, h=60):
    return ops.Crop(x, y, png.Image(w, h, 3, bytes(w * h * 3)), b"\xff" * (w * h))


def test_two_anchor_strokes_become_pairs_in_layer_then_crop_pixels():
    pairs = bdrag.pairs_from_strokes("drags", [stroke((130.5, 80.5), (140.5, 75.5)),
                                               stroke((150, 90), (150, 100))], offsets=(10, 5))
    assert pairs == [[120.5, 75.5, 130.5, 70.5], [140.0, 85.0, 140.0, 95.0]]
    pts = bdrag.pairs_in_crop(pairs, crop())
    # anchor 120.5 in the layer is pixel 120's centre: crop pixel 20
    assert pts == [[20.0, 25.0, 30.0, 20.0], [39.5, 34.5, 39.5, 44.5]]
    spec = bdrag.drag_spec(pts, steps=30)
    assert spec == {"kind": "drag", "points": pts, "steps": 30}
    assert bdrag.drag_title(pts) == "drag 2 points" and bdrag.drag_title(pts[:1]) == "drag 1 point"


def test_anchors_read_the_middle_of_each_triplet():
    assert bdrag.anchors([0, 0, 1, 2, 9, 9, 3, 3, 4, 5, 7, 7]) == [(1.0, 2.0), (4.0, 5.0)]
    with pytest.raises(BridgeError, match="multiple of 6"):
        bdrag.anchors([1, 2, 3, 4])


@pytest.mark.parametrize("strokes, message", [
    ([stroke((1, 1), (2, 2), (3, 3))], "stroke 1 of the path 'p' has 3 anchors; each stroke needs exactly two"),
    ([stroke((1, 1), (2, 2)), stroke((5, 5))], "stroke 2 of the path 'p' has 1 anchors"),
    ([stroke((1, 1), (2, 2), (3, 3), (4, 4))], "has 4 anchors"),
    ([stroke((1, 1), (2, 2), bezier=False)], "stroke 1 of the path 'p' is not a Bézier stroke"),
    ([], "the path 'p' has no strokes"),
    ([stroke((1, 1), (2, 2))] * 17, "17 strokes; a drag takes at most 16"),
    ([stroke((1, 1), (float("nan"), 2))], "not a number"),
])
def test_bad_paths_are_one_line_errors(strokes, message):
    with pytest.raises(BridgeError) as err:
        bdrag.pairs_from_strokes("p", strokes)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_points_outside_the_square_or_on_their_target_are_refused():
    c = crop()
    with pytest.raises(BridgeError, match=r"the target of stroke 1 \(200, 60\) is outside the selection's square"):
        bdrag.pairs_in_crop([[120, 60, 200, 60]], c)
    with pytest.raises(BridgeError, match=r"the handle of stroke 2 \(99, 60\) is outside"):
        bdrag.pairs_in_crop([[120, 60, 130, 60], [99, 60, 120, 60]], c)
    with pytest.raises(BridgeError, match="stroke 1's handle and target are the same pixel"):
        bdrag.pairs_in_crop([[120.2, 60, 120.4, 60.1]], c)


def test_over_crop_blends_the_layer_by_its_alpha_where_it_lies():
    c = ops.Crop(10, 20, png.Image(4, 3, 3, bytes([100] * 36)), b"\xff" * 12)
    top = png.Image(2, 1, 4, bytes([200, 0, 0, 255, 0, 200, 0, 0]))
    out = bdrag.over_crop(c, ops.Layer(name="t", x=12, y=21, image=top))
    px = [tuple(out.data[i * 3:i * 3 + 3]) for i in range(12)]
    assert px[4 + 2] == (200, 0, 0)          # opaque: the layer
    assert px[4 + 3] == (100, 100, 100)      # transparent: the photo
    assert px.count((100, 100, 100)) == 11


def test_the_dialogs_picture_draws_each_pair():
    img = png.Image(20, 10, 3, bytes(600))
    out = bdrag.with_pairs(img, [[3.0, 5.0, 15.0, 5.0]])
    red = {(i % 20, i // 20) for i in range(200) if out.data[i * 3:i * 3 + 3] == bytes((255, 51, 102))}
    assert {(x, 5) for x in range(3, 16)} <= red               # the line handle → target
    assert {(x, y) for x in range(1, 6) for y in range(3, 8)} <= red   # the dot on the handle
    assert (16, 5) not in red and (10, 2) not in red and len(red) == 13 + 25 - 3
