"""Portrait sliders on the embedded model: ``glasses`` and ``mouth_open`` are named directions,
declared once in the directions manifest with ranges and descriptions, and marked *preview only on
this model* — a render's verdict says so, with the reason, instead of "carried"."""

from __future__ import annotations

from priorpaint.edits.directions import list_directions
from priorpaint.measures.kinds import merge_preview_only, preview_only
from priorpaint.measures.verdict import verdict


def test_the_sliders_are_named_with_ranges_and_say_preview_only():
    byname = {d["name"]: d for d in list_directions(None)}
    for name in ("glasses", "mouth_open"):
        d = byname[name]
        assert (d["min"], d["max"], d["default"]) == (-1.0, 3.0, 0.0) and d["method"] == "sefa"
        assert "preview only on this model" in d["description"]


def test_a_preview_only_direction_is_not_carried_and_says_why():
    reason = preview_only(None, [{"kind": "direction", "name": "glasses", "strength": 2.0}])
    assert reason and "real photos" in reason
    clean = verdict(None, {"smear": 0.0, "unexplained": 0.02, "ghost": None})
    assert clean["carried"] is True                          # the artefacts alone would pass it
    out = merge_preview_only(clean, reason)
    assert out["carried"] is False and out["failed"] == ["preview_only"]
    assert out["message"].startswith("this edit cannot be carried here: preview only on this model (on projected")
    bad = merge_preview_only(verdict(None, {"smear": 0.2, "unexplained": 0.02, "ghost": None}), reason)
    assert bad["failed"] == ["smear", "preview_only"] and "artefacts 20 % (smear), preview only" in bad["message"]


def test_other_directions_and_no_edit_are_not_preview_only():
    assert preview_only(None, [{"kind": "direction", "name": "head_turn", "strength": 2.0}]) is None
    assert preview_only(None, [{"kind": "direction", "name": "glasses", "strength": 0.0}]) is None
    assert preview_only(None, [{"kind": "direction", "name": "glasses", "strength": 2.0},
                               {"kind": "direction", "name": "exposure", "strength": 1.0}]) is None
    assert merge_preview_only({"carried": True, "message": "carried"}, None) == {"carried": True, "message": "carried"}
