"""priorpaint batch: folders, boxes files, faces, resume, local worker processes and Ray.

Projections use 5 steps (or 1): these tests check the batch machinery, not the quality.
Ray runs for real (a private local instance on loopback), also under CI=true.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from priorpaint.cli import main

from conftest import skimage_data

EDIT = ["--edit", "direction:warm_light=1.5"]
FAST = ["--steps", "5", "--no-adapt", "--no-progress", "--threads", "1"]


def _astronaut(size=256) -> Image.Image:
    return Image.open(skimage_data("astronaut.png")).convert("RGB").resize((size, size), Image.LANCZOS)


def _rgba_astronaut(size=256) -> Image.Image:
    im = _astronaut(size).convert("RGBA")
    alpha = np.tile(np.linspace(40, 255, size).astype(np.uint8), (size, 1))
    im.putalpha(Image.fromarray(alpha, "L"))
    return im


def _summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def _by_name(summary: dict) -> dict:
    return {row["name"]: row for row in summary["photos"]}


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.array(im)


@pytest.fixture
def shoot(tmp_path):
    """A folder: two photos (one RGBA, in a subfolder), a corrupt PNG, a text file; a boxes file beside it."""
    src = tmp_path / "shoot"
    (src / "sub").mkdir(parents=True)
    _astronaut().save(src / "a.png")
    _rgba_astronaut().save(src / "sub" / "b.png")
    full = (src / "a.png").read_bytes()
    (src / "broken.png").write_bytes(full[: len(full) // 3])   # truncated: a corrupt photo
    (src / "notes.txt").write_text("not a photo")
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"a.png": "70,10,90,90", "sub/b.png": [60, 14, 100, 100], "broken.png": "0,0,60,60"}))
    return src, boxes


def test_folder_with_a_corrupt_photo_resumes_and_ray_gives_the_same_pixels(shoot, tmp_path, capsys):
    src, boxes = shoot
    out = src / "out"   # inside the input folder: left out of the search
    args = ["batch", str(src), "-o", str(out), "--boxes", str(boxes)] + EDIT + FAST
    assert main(args + ["--workers", "2"]) == 1          # two worker processes
    err = capsys.readouterr().err
    failed = [l for l in err.splitlines() if l.startswith("failed ")]
    assert len(failed) == 1 and "broken.png" in failed[0] and "corrupt" in failed[0], err
    assert any(l.startswith("skipped ") and "notes.txt" in l for l in err.splitlines()), err
    s = _summary(out)
    rows = _by_name(s)
    assert set(rows) == {"a", "sub/b", "broken"}
    assert rows["a"]["status"] == rows["sub/b"]["status"] == "ok"
    assert rows["broken"]["status"] == "failed" and "\n" not in rows["broken"]["error"]
    assert s["totals"]["ok"] == 2 and s["totals"]["failed"] == 1 and s["exit_code"] == 1
    assert s["excluded"] == str(out.resolve())
    assert [x["path"] for x in s["skipped"]] == [str(src / "notes.txt")]
    assert rows["a"]["metrics"]["changed_outside_mask"] == 0
    assert not (out / "broken.png").exists()

    a_in, a_out = np.array(Image.open(src / "a.png")), _pixels(out / "a.png")
    outside = np.ones(a_in.shape[:2], bool)
    outside[10:100, 70:160] = False
    assert np.array_equal(a_in[outside], a_out[outside]) and not np.array_equal(a_in, a_out)
    b_in, b_out = np.array(Image.open(src / "sub" / "b.png")), _pixels(out / "sub" / "b.png")
    assert b_out.shape == b_in.shape and np.array_equal(b_in[..., 3], b_out[..., 3])  # alpha preserved
    first = {n: (out / f"{n}.png").stat().st_mtime_ns for n in ("a", "sub/b")}

    # the rerun with the same recipe skips what is done and retries only the bad photo
    assert main(args) == 1
    rows = _by_name(_summary(out))
    assert rows["a"]["status"] == rows["sub/b"]["status"] == "done"
    assert rows["a"]["metrics"]["changed_outside_mask"] == 0
    assert rows["broken"]["status"] == "failed"
    assert {n: (out / f"{n}.png").stat().st_mtime_ns for n in ("a", "sub/b")} == first

    # Ray actors run the same per-photo function: the same pixels for the same seed
    ray_out = tmp_path / "ray_out"
    assert main(["batch", str(src), "-o", str(ray_out), "--boxes", str(boxes), "--ray", "local",
                 "--workers", "2"] + EDIT + FAST) == 1
    s = _summary(ray_out)
    assert s["runner"] == "ray (local)"
    assert _by_name(s)["a"]["status"] == "ok" and _by_name(s)["broken"]["status"] == "failed"
    for n in ("a", "sub/b"):
        assert np.array_equal(_pixels(ray_out / f"{n}.png"), _pixels(out / f"{n}.png")), n

    # a changed recipe redoes the photos (a stronger edit: with the embedded model's encoder the
    # seed only perturbs a start that E(x) itself may win, so a new seed need not move a pixel)
    capsys.readouterr()
    stronger = ["direction:warm_light=3" if a == EDIT[1] else a for a in args[:-2]]
    assert main(stronger + ["--workers", "1"] + FAST[-2:]) == 1
    rows = _by_name(_summary(out))
    assert rows["a"]["status"] == rows["sub/b"]["status"] == "ok"
    assert not np.array_equal(_pixels(out / "a.png"), a_out)


def test_layers_reports_and_whole_photo_selection(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    _rgba_astronaut(96).save(src / "small.png")
    out = tmp_path / "out"
    assert main(["batch", str(src / "small.png"), "-o", str(out), "--layers", "--reports", "--steps", "1",
                 "--no-adapt", "--no-progress"]) == 0   # no edit: the round trip of the whole photo
    report = json.loads((out / "small.report.json").read_text())
    assert report["box"] == [0, 0, 96, 96] and report["psnr_projection"] is not None
    assert report["changed_outside_mask"] == 0
    with Image.open(out / "small.layer.png") as layer:
        assert layer.mode == "RGBA" and layer.size == (96, 96)
    assert _summary(out)["photos"][0]["metrics"]["psnr_projection"] == report["psnr_projection"]


def test_empty_folder_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["batch", str(tmp_path / "empty"), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no photos to edit" in err[0], err


def test_a_folder_of_non_images_lists_what_it_skipped(tmp_path, capsys):
    d = tmp_path / "docs"
    d.mkdir()
    (d / "notes.txt").write_text("x")
    (d / "table.csv").write_text("a,b")
    assert main(["batch", str(d), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no photos to edit" in err[0], err
    assert f"skipped 2 other files: {d / 'table.csv'}, {d / 'notes.txt'}" in err[0] or \
        f"skipped 2 other files: {d / 'notes.txt'}, {d / 'table.csv'}" in err[0], err


def test_output_folder_equal_to_the_input_folder_is_refused(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    _astronaut(64).save(src / "a.png")
    assert main(["batch", str(src), "-o", str(src)]) == 2
    err = capsys.readouterr().err.strip()
    assert "is the input folder" in err and len(err.splitlines()) == 1


def test_boxes_file_naming_missing_photos_or_malformed_boxes(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for n in ("a", "b", "c"):
        _astronaut(128).save(src / f"{n}.png")
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"a.png": "35,5,45,45", "b.png": "1,2,3", "ghost.png": "0,0,10,10"}))
    out = tmp_path / "out"
    assert main(["batch", str(src), "-o", str(out), "--boxes", str(boxes), "--steps", "1", "--no-adapt",
                 "--no-progress"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert [l for l in err if "ghost.png" in l] == ["problem: boxes file boxes.json: 'ghost.png' names no input photo"]
    b = [l for l in err if l.startswith("failed ") and "b.png" in l]
    assert len(b) == 1 and "X,Y,W,H" in b[0] and "nothing run" in b[0], err
    c = [l for l in err if l.startswith("failed ") and "c.png" in l]
    assert len(c) == 1 and "no entry for c.png" in c[0], err
    rows = _by_name(_summary(out))
    assert rows["a"]["status"] == "ok" and rows["b"]["status"] == rows["c"]["status"] == "failed"
    assert not (out / "b.png").exists() and not (out / "c.png").exists()
    assert _summary(out)["boxes_problems"] == ["boxes file boxes.json: 'ghost.png' names no input photo"]


def test_boxes_files_json_list_and_csv_forms(tmp_path):
    from priorpaint.batch.plan import read_boxes
    (tmp_path / "m.png").write_bytes(b"")
    j = tmp_path / "b.json"
    j.write_text(json.dumps([{"image": "a.png", "box": [1, 2, 30, 40]}, {"image": "b.png", "mask": "m.png"},
                             {"image": "c.png", "box": "1,2"}, "oops"]))
    got = read_boxes(j)
    assert got[0] == ("a.png", {"box": (1, 2, 30, 40)})
    assert got[1] == ("b.png", {"mask": str(tmp_path / "m.png")})
    assert got[2][0] == "c.png" and "X,Y,W,H" in str(got[2][1])
    assert "must be an object" in str(got[3][1])
    c = tmp_path / "b.csv"
    c.write_text("image,x,y,w,h\na.png,1,2,30,40\nb.png,1,2,0,5\n")
    got = read_boxes(c)
    assert got[0] == ("a.png", {"box": (1, 2, 30, 40)}) and "no area" in str(got[1][1])
    (tmp_path / "c2.csv").write_text("image,box\na.png,\"5,6,7,8\"\n")
    assert read_boxes(tmp_path / "c2.csv") == [("a.png", {"box": (5, 6, 7, 8)})]
    (tmp_path / "bad.csv").write_text("name,box\na.png,1\n")
    from priorpaint.errors import InputError
    with pytest.raises(InputError, match="needs a header with an image column"):
        read_boxes(tmp_path / "bad.csv")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        read_boxes(tmp_path / "bad.json")


def test_plan_list_files_subfolders_collisions(tmp_path):
    from priorpaint.batch.photo import Outputs, Recipe
    from priorpaint.batch.plan import make_plan
    d = tmp_path / "in"
    (d / "x").mkdir(parents=True)
    _astronaut(32).save(d / "p.png")
    _astronaut(32).save(d / "p.jpg")          # would also write p.png
    _astronaut(32).save(d / "x" / "q.png")
    lst = tmp_path / "list.txt"
    lst.write_text("# photos\nin/x/q.png\n\nin/gone.png\n")
    plan = make_plan([str(d), str(lst)], Outputs(str(tmp_path / "out")), Recipe(steps=1))
    names = [(j.name, j.error) for j in plan.jobs]
    assert names[0] == ("p", None)   # p.jpg sorts before p.png
    assert names[1][0] == "p" and "would also be the output of" in names[1][1]
    assert names[2] == ("x/q", None)
    assert names[3][0] == "q" and names[3][1] is None   # the listed copy: its own name
    assert names[4][0] == "gone" and "does not exist" in names[4][1]
    assert len({j.key for j in plan.jobs if not j.error}) == 2  # same bytes and box -> same key for x/q and q
    other = make_plan([str(d)], Outputs(str(tmp_path / "out")), Recipe(steps=2))
    assert other.jobs[0].key != plan.jobs[0].key   # a changed recipe: a new key


def test_faces_no_face_fails_that_photo_and_all_faces_edits_each(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.open(skimage_data("chelsea.png")).save(src / "cat.png")          # a cat: no frontal human face
    import matplotlib.cbook
    hopper = Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    pair = Image.new("RGB", (1024, 600))
    pair.paste(Image.open(skimage_data("astronaut.png")).convert("RGB"), (0, 44))
    pair.paste(hopper, (512, 0))
    pair.save(src / "pair.png")
    out = tmp_path / "out"
    assert main(["batch", str(src), "-o", str(out), "--detect-faces", "--all-faces", "--layers", "--steps", "1",
                 "--no-adapt", "--no-progress"] + EDIT) == 1
    err = capsys.readouterr().err
    assert "failed " in err and "cat.png: no face found" in err
    rows = _by_name(_summary(out))
    assert rows["cat"]["status"] == "failed" and rows["pair"]["status"] == "ok"
    assert rows["pair"]["selections"] == 2 and len(rows["pair"]["metrics"]) == 2
    assert (out / "pair.layer.png").is_file() and (out / "pair.layer-2.png").is_file()
    changed = np.any(_pixels(out / "pair.png") != np.array(pair), axis=2)
    assert changed[:, :512].any() and changed[:, 512:].any()   # both faces edited into one photo


def test_largest_face_is_the_default(tmp_path):
    from priorpaint.batch.faces import detect_faces
    from priorpaint.batch.photo import PhotoJob, selections_for
    from priorpaint.images import load_photo
    photo = load_photo(skimage_data("astronaut.png"))
    faces = detect_faces(photo.rgb)
    assert len(faces) == 1
    x, y, w, h = faces[0]
    assert x < 230 < x + w and y < 110 < y + h            # the astronaut's face (centre ~230,110)
    assert selections_for(PhotoJob(source="", name="a", faces="largest"), photo) == [{"box": faces[0]}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_address_that_does_not_answer(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    _astronaut(64).save(src / "a.png")
    port = _free_port()
    out = tmp_path / "out"
    assert main(["batch", str(src), "-o", str(out), "--ray", f"127.0.0.1:{port}", "--ray-timeout", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"no Ray cluster answers at 127.0.0.1:{port}" in err[0], err
    assert not out.exists()
    assert main(["batch", str(src), "-o", str(out), "--ray", "nonsense"]) == 2
    assert "give auto, local or the head's address HOST:PORT" in capsys.readouterr().err


def test_ray_address_that_answers_but_is_no_ray_head(tmp_path, capsys):
    import threading
    src = tmp_path / "in"
    src.mkdir()
    _astronaut(64).save(src / "a.png")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    conns = []
    threading.Thread(target=lambda: [conns.append(server.accept()) for _ in range(64)], daemon=True).start()
    try:
        assert main(["batch", str(src), "-o", str(tmp_path / "out"), "--ray", f"127.0.0.1:{port}",
                     "--ray-timeout", "5"]) == 2
    finally:
        server.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"Ray cluster at 127.0.0.1:{port}" in err[0], err


def test_batch_and_edit_share_the_per_photo_function(tmp_path):
    import torch
    src = tmp_path / "in"
    src.mkdir()
    _astronaut(128).save(src / "a.png")
    (tmp_path / "boxes.csv").write_text("image,box\na.png,\"35,5,45,45\"\n")
    args = ["--steps", "5", "--no-adapt"] + EDIT
    assert main(["edit", str(src / "a.png"), "--box", "35,5,45,45", "-o", str(tmp_path / "edit.png")] + args) == 0
    assert main(["batch", str(src), "-o", str(tmp_path / "out"), "--boxes", str(tmp_path / "boxes.csv"),
                 "--workers", "1", "--threads", str(torch.get_num_threads()), "--no-progress"] + args) == 0
    assert np.array_equal(_pixels(tmp_path / "edit.png"), _pixels(tmp_path / "out" / "a.png"))
