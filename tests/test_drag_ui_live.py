"""The drag's live preview without a browser: the service streams each drag step's handles and
targets (time-throttled), the page draws them over the photo's box warped along the pairs tracked
so far, and a non-drag edit streams none."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import skimage_data

pytestmark = pytest.mark.usefixtures("tmp_cache")

STATE = {"layer": [122, 2, 216, 216]}


def _service_with(session):
    from priorpaint.app.service import Service
    svc = Service()
    return svc, svc.store.put(session, "client-a")


def _run(svc, sid, specs):
    from priorpaint.app import contract as C
    edits, files = C.file_refs(specs)
    req = C.EditRequest.parse(sid, edits, False, files, "warp", limits=svc.limits)
    steps = list(svc.edit(req, "client-a"))
    return [s for s in steps if isinstance(s, C.Progress)], steps[-1]


def test_the_service_streams_each_drag_steps_handles_and_targets(tiny_session, monkeypatch):
    from priorpaint.app import contract as C
    from priorpaint.app import service
    from priorpaint.app.service import LIVE_KEYS
    # no throttle: every report is streamed, so the tiny model's quick drag shows its steps
    monkeypatch.setattr(service, "LIVE_INTERVAL", 0.0)
    svc, sid = _service_with(tiny_session)
    prog, result = _run(svc, sid, [{"kind": "drag", "points": [[230, 150, 230, 138], [200, 100, 204, 96]],
                                    "steps": 40}])
    live = [p for p in prog if "handles" in p.extra]
    assert live, [p.stage for p in prog]
    for p in live:
        assert p.stage == "drag" and set(p.extra) >= set(LIVE_KEYS)
        assert len(p.extra["handles"]) == 2
        np.testing.assert_allclose(p.extra["targets"], [[230, 138], [204, 96]], atol=0.11)
        wire = json.loads(C.to_wire(p))                  # what the API's clients (and GIMP) read
        assert wire["done"] is False and wire["handles"] == p.extra["handles"]
    assert [p.extra["step"] for p in live] == sorted(p.extra["step"] for p in live)
    # the stages after the drag (the render) carry no stale handles
    assert all("handles" not in p.extra for p in prog if p.stage != "drag")
    applied = C.status(result)["edits"][0]
    assert applied["kind"] == "drag" and len(applied["tracked"]) == 2


def test_an_edit_without_a_drag_streams_no_handles(tiny_session, monkeypatch):
    from priorpaint.app import service
    monkeypatch.setattr(service, "LIVE_INTERVAL", 0.0)
    svc, sid = _service_with(tiny_session)
    prog, _ = _run(svc, sid, [{"kind": "direction", "name": "sefa0", "strength": 1.0}])
    assert prog and all("handles" not in p.extra for p in prog)


def test_the_live_picture_moves_the_photo_along_the_tracked_pairs():
    from priorpaint.app.ui.tabs import drag as T
    state = dict(STATE, photo=str(skimage_data("astronaut.png")))
    box = np.asarray(T._box_image(state))
    starts = [[230.0, 150.0]]
    # not moved yet: the box as it is
    np.testing.assert_array_equal(T.warped_box(box, state["layer"], starts, starts), box)
    moved = T.warped_box(box, state["layer"], starts, [[230.0, 142.0]])
    diff = np.abs(moved.astype(int) - box.astype(int)).sum(2)
    hx, hy = 230 - 122, 150 - 2
    assert diff[hy - 12:hy + 4, hx - 4:hx + 5].mean() > 5          # the content near the handle moved
    assert diff[:20, :20].max() == 0 and diff[-20:, -20:].max() == 0  # far from the drag: the photo's pixels
    # the content at the handle's start is now 8 px higher
    np.testing.assert_allclose(moved[hy - 8, hx], box[hy, hx], atol=12)
    live = {"handles": [[230.0, 142.0]], "targets": [[230.0, 138.0]], "step": 7}
    a = np.asarray(T.live_frame(state, starts, live))
    b = np.asarray(T.live_frame(state, starts, dict(live, handles=starts)))
    assert a.shape == (420, 420, 3) and (a != b).any()
    # a finished result's picture is the result's box, with the final points
    photo = Image.open(state["photo"]).convert("RGB")
    c = np.asarray(T.live_frame(state, starts, live, photo=photo))
    assert c.shape == a.shape
    assert T.live_words(live) == "**dragging**, step 7: handle 1 at (230.0, 142.0), 4.0 px to go"
    assert T.live_words(live, final=True).startswith("**drag done** after 7 steps")


def test_a_live_report_finds_its_drag_in_the_edit_list():
    from priorpaint.app.ui.tabs import drag as T
    specs = [{"kind": "direction", "name": "pca_0"},
             {"kind": "drag", "points": [[10, 10, 20, 20]]},
             {"kind": "drag", "points": [[230, 150, 230, 138], [200, 100, 204, 96]]}]
    assert T.starts_of(specs, [[230.0, 138.0], [204.0, 96.1]]) == [[230, 150], [200, 100]]
    assert T.starts_of(specs, [[20.0, 20.0]]) == [[10, 10]]
    assert T.starts_of(specs, [[21.0, 20.0]]) is None and T.starts_of([], [[1, 1]]) is None
