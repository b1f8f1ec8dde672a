"""Drag points… in the real GIMP 3 (the trixie root of tests/gimp_root.py) against the real backend.

A path with two 2-anchor strokes is drawn through the PDB on the astronaut, the face selected, and
``priorpaint-drag-points`` runs non-interactively: one new masked layer above the photo, the
photo's layer untouched, the picture outside the selection bit-identical, the content changed
around the handles. A path with a 3-anchor stroke, and no active path, are one-line errors that
add nothing. With no path selected, sample points in pairs (handle, target, … in creation order) are
the drag; an odd count is a one-line error; a selected path wins over sample points. Needs root (chroot); under CI=true it must run (the fixture of test_gimp_plugin).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gimp_backend import Backend
from gimp_bridge import ops
from priorpaint.edits.drag_optimise import DEFAULTS as DRAG_DEFAULTS
from test_gimp_plugin import GIMP_COMMON, SELECTION, _load_raw, _run_gimp, gimp  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# handle → target, image pixels (the astronaut's lower lip up, her left cheek right: 5-7 % of the 180 px face)
PAIRS = [(230.5, 150.5, 230.5, 140.5), (200.5, 110.5, 212.5, 110.5)]
# the same drags as sample points (pixels), made in the order handle, target, handle, target
SAMPLES = [(230, 150), (230, 140), (200, 110), (212, 110)]

GIMP_DRAG = r'''
def path_of(img, name, strokes):
    p = Gimp.Path.new(img, name)
    img.insert_path(p, None, 0)
    for anchors in strokes:
        cps = []
        for x, y in anchors:
            cps += [x, y, x, y, x, y]
        p.stroke_new_from_points(Gimp.PathStrokeType.BEZIER, cps, False)
    img.set_selected_paths([p])
    return p

img = load(os.path.join(OUT, "astronaut.png"))
layer = img.get_layers()[0]
img.select_rectangle(Gimp.ChannelOps.REPLACE, *__SEL__)
path_of(img, "drags", [[(hx, hy), (tx, ty)] for hx, hy, tx, ty in __PAIRS__])
RES["procs"]["drag"] = PDB.lookup_procedure("priorpaint-drag-points") is not None
case("drag", img, layer, "priorpaint-drag-points", steps=40, adapt=False)
new = [l for l in img.get_layers() if l.get_id() != layer.get_id()]
RES["roles"] = [role(l) for l in new]
p = new[0].get_parasite("priorpaint-result") if new else None
RES["meta"] = json.loads(bytes(p.get_data()).decode("utf-8")) if p is not None else None
for l in new:
    img.remove_layer(l)
path_of(img, "three", [[(200, 100), (210, 100), (220, 100)]])
case("three", img, layer, "priorpaint-drag-points", steps=40, adapt=False)
for p in img.get_paths():
    img.remove_path(p)
case("nopath", img, layer, "priorpaint-drag-points", steps=40, adapt=False)

def spec_and_clean(key):
    new = [l for l in img.get_layers() if l.get_id() != layer.get_id()]
    p = new[0].get_parasite("priorpaint-result") if new else None
    RES[key] = json.loads(bytes(p.get_data()).decode("utf-8"))["edits"] if p is not None else None
    for l in new:
        img.remove_layer(l)

# sample points, no path: handle, target, handle, target in the order they were made
for x, y in __SAMPLES__[:3]:
    img.add_sample_point(x, y)
case("odd", img, layer, "priorpaint-drag-points", steps=40, adapt=False)
img.add_sample_point(*__SAMPLES__[3])
case("samples", img, layer, "priorpaint-drag-points", steps=0, adapt=False)   # 0: the backend's default
spec_and_clean("samples_spec")
# a selected path wins over the sample points
path_of(img, "one", [[(hx, hy), (tx, ty)] for hx, hy, tx, ty in __PAIRS__[:1]])
case("both", img, layer, "priorpaint-drag-points", steps=40, adapt=False)
spec_and_clean("both_spec")
finish()
'''


def test_drag_points_in_real_gimp(gimp):
    if gimp["settings"].exists():
        gimp["settings"].unlink()
    script = (GIMP_COMMON + GIMP_DRAG).replace("__OUT__", repr(gimp["work_in_root"])) \
        .replace("__SEL__", repr(SELECTION)).replace("__PAIRS__", repr(PAIRS)).replace("__SAMPLES__", repr(SAMPLES))
    backend = Backend(gimp["artifacts"] / "serve-drag.log")
    try:
        res = _run_gimp(gimp, script, url=backend.url)
    finally:
        backend.stop()
    assert res["procs"]["drag"]
    drag = res["cases"]["drag"]
    assert drag["status"] == "success", drag
    assert drag["layers_after"] == drag["layers_before"] + 1
    assert drag["drawable_unchanged"], "the user's layer was modified"
    x0, y0, cw, ch = ops.crop_rect(SELECTION, (512, 512))
    new = drag["new"]
    assert new["name"] == "drag 2 points — priorpaint" and new["has_mask"] and new["above_source"], new
    assert res["roles"] == ["result"]
    # the spec that made the layer: the two pairs in the crop's pixels (anchor − crop origin − 0.5)
    [spec] = res["meta"]["edits"]
    assert spec["kind"] == "drag" and spec["steps"] == 40
    assert spec["points"] == [[hx - x0 - 0.5, hy - y0 - 0.5, tx - x0 - 0.5, ty - y0 - 0.5] for hx, hy, tx, ty in PAIRS]

    work = gimp["work"]
    before = _load_raw(work / "drag_before.raw", 512, 512, 4)[..., :3]
    after = _load_raw(work / "drag_after.raw", 512, 512, 4)[..., :3]
    np.testing.assert_array_equal(before, np.asarray(Image.open(work / "astronaut.png").convert("RGB")))
    sx, sy, sw, sh = SELECTION
    outside = np.ones((512, 512), bool)
    outside[sy:sy + sh, sx:sx + sw] = False
    np.testing.assert_array_equal(after[outside], before[outside])
    # the content changed around a handle, or the message area says how far each handle got (how far
    # they get is the bench's measure, not this test's)
    moved = [np.abs(after[int(y) - 8:int(y) + 8, int(x) - 8:int(x) + 8].astype(int)
                    - before[int(y) - 8:int(y) + 8, int(x) - 8:int(x) + 8]).mean() for x, y, _, _ in PAIRS]
    log = (gimp["artifacts"] / "gimp.log").read_text()
    assert max(moved) > 1.0 or "priorpaint: drag handle 1 could not move far" in log, (moved, log[-2000:])

    # sample points: a pixel each, so the crop's point is the pixel less the crop's origin
    assert res["cases"]["samples"]["status"] == "success", res["cases"]["samples"]
    [spec] = res["samples_spec"]
    assert spec.get("steps", DRAG_DEFAULTS["steps"]) == DRAG_DEFAULTS["steps"], spec    # steps 0: the backend's
    assert spec["points"] == [[hx - x0, hy - y0, tx - x0, ty - y0]
                              for (hx, hy), (tx, ty) in zip(SAMPLES[::2], SAMPLES[1::2])]
    assert res["cases"]["both"]["status"] == "success", res["cases"]["both"]
    [spec] = res["both_spec"]                           # the path's one pair, not the sample points' two
    hx, hy, tx, ty = PAIRS[0]
    assert spec["points"] == [[hx - x0 - 0.5, hy - y0 - 0.5, tx - x0 - 0.5, ty - y0 - 0.5]]

    for key, start in (("three", "priorpaint: stroke 1 of the path 'three' has 3 anchors; each stroke needs "
                                 "exactly two"),
                       ("nopath", "priorpaint: no path is active"),
                       ("odd", "priorpaint: the image has 3 sample points, an odd number")):
        bad = res["cases"][key]
        assert bad["status"] == "execution-error", bad
        assert bad["message"].startswith(start) and "\n" not in bad["message"], bad["message"]
        assert bad["layers_after"] == bad["layers_before"] and bad["drawable_unchanged"]
        np.testing.assert_array_equal(_load_raw(work / f"{key}_after.raw", 512, 512, 4),
                                      _load_raw(work / f"{key}_before.raw", 512, 512, 4))
