"""``--composite warp`` on the command line (edit and batch), and a structural direction's default
render: the report says which composite ran; a bad choice is refused by the parser."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from PIL import Image


@pytest.mark.parametrize("composite", [None, "warp"])
def test_edit_renders_a_pose_edit_with_the_warp(tmp_path, astronaut_path, composite, shared_cache):
    from priorpaint.cli import main
    out, rep = tmp_path / "out.png", tmp_path / "out.json"
    args = ["edit", str(astronaut_path), "--box", "140,20,180,180", "--steps", "4", "--no-adapt",
            "--edit", "direction:head_tilt=2", "-o", str(out), "--report", str(rep)]
    assert main(args + (["--composite", composite] if composite else [])) == 0
    report = json.loads(rep.read_text())
    assert report["composite"] == "warp" and report["changed_outside_mask"] == 0
    assert "message" in report["verdict"]
    src = np.asarray(Image.open(astronaut_path).convert("RGB"))
    assert not np.array_equal(np.asarray(Image.open(out).convert("RGB")), src)


def test_batch_offers_the_same_composites():
    from priorpaint.cli import batch
    from priorpaint.compositing.warp import RENDER_MODES
    p = argparse.ArgumentParser()
    batch.add_parser(p.add_subparsers())
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)).choices["batch"]
    opt = next(a for a in sub._actions if "--composite" in a.option_strings)
    assert tuple(opt.choices) == RENDER_MODES and "warp" in opt.choices


def test_a_bad_composite_is_refused(tmp_path, astronaut_path, capsys):
    from priorpaint.cli import main
    with pytest.raises(SystemExit) as e:
        main(["edit", str(astronaut_path), "--box", "140,20,180,180", "--composite", "warped",
              "-o", str(tmp_path / "x.png")])
    assert e.value.code == 2 and "invalid choice: 'warped'" in capsys.readouterr().err
