"""Drag points…'s dialog in the full GIMP 3 GUI (the harness of test_gimp_gui: gimp-3.0 under Xvfb,
xdotool, the protocol-faithful stand-in backend): a path drawn, the menu entry opens the dialog with
the pairs, Preview runs the drag once, its picture following the handles the backend reports, then
shows it; Stop ends a second preview; OK adds the result layer. Screenshots go to
artifacts/gimp/. Needs root (chroot) like the other GIMP tests."""

from __future__ import annotations

import json

import pytest

from test_gimp_gui import WORKFLOW, gui  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_drag_points_dialog_previews_then_adds_the_layer(gui):
    gui.close_messages()
    before = gui.do("p = Gimp.Path.new(img, 'drags'); img.insert_path(p, None, 0); "
                    "p.stroke_new_from_points(Gimp.PathStrokeType.BEZIER, [230.5, 150.5] * 3 + [230.5, 140.5] * 3, "
                    "False); img.set_selected_paths([p]); RES.update(state())")
    n = len(gui.events())
    gui.open_menu_entry(WORKFLOW.index("priorpaint-drag-points"))
    points = gui.wait_event(lambda e: e["event"] == "drag-points", 60, after=n)["points"]
    assert len(points) == 1 and points[0][1] - points[0][3] == pytest.approx(10.0), points
    win = gui.wait_window("priorpaint: Drag points")
    gui.shot("drag-dialog.png")
    gui.key("alt+p", window=win)                        # Preview: the drag runs once, in the background
    gui.wait_event(lambda e: e["event"] == "drag-live", 90, after=n)
    gui.shot("drag-dialog-live.png")
    shown = gui.wait_event(lambda e: e["event"] == "drag-preview", 90, after=n)
    assert shown["shown"], shown
    gui.shot("drag-dialog-preview.png")
    # the picture followed the handle: the positions drawn changed as the stand-in's drag moved it
    drawn = [tuple(e["handles"][0]) for e in gui.events()[n:] if e["event"] == "drag-live"]
    assert len(set(drawn)) > 1 and all(x == pytest.approx(points[0][0]) for x, _ in drawn), drawn
    assert [y for _, y in drawn] == sorted((y for _, y in drawn), reverse=True)   # up, toward the target
    # Stop ends a second preview (the backend's job is cancelled)
    m = len(gui.events())
    gui.key("alt+p", window=win)
    gui.wait_event(lambda e: e["event"] == "drag-live", 90, after=m)
    gui.key("alt+t", window=win)
    stopped = gui.wait_event(lambda e: e["event"] == "drag-preview", 90, after=m)
    assert stopped["text"] == "Preview cancelled." and not stopped["shown"], stopped
    assert gui.fake.cancelled
    assert gui.fake.calls and [api for api, _ in gui.fake.calls].count("project") >= 1
    edits = [json.loads(d[1]) for api, d in gui.fake.calls if api == "edit"]
    assert edits and edits[-1][0]["kind"] == "drag" and edits[-1][0]["points"] == points
    n_project = [api for api, _ in gui.fake.calls].count("project")
    gui.key("alt+o", window=win)                        # OK: the preview's projection is kept
    done = gui.wait_event(lambda e: e["event"] == "done", 90, after=n)
    assert done["status"] == "success", done
    assert [api for api, _ in gui.fake.calls].count("project") == n_project
    after = gui.do("RES.update(state())")
    assert after["layers"][0] == "drag 1 point — priorpaint" and len(after["layers"]) == len(before["layers"]) + 1
    assert after["digest"] != before["digest"]
    gui.assert_no_messages("after the drag")
