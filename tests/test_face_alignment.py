"""Aligned-face models: a manifest's eye positions, the similarity crop, the warp back, bit for bit."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from priorpaint.compositing import align
from priorpaint.compositing.crop import make_crop
from priorpaint.errors import InputError
from priorpaint.images import load_photo

from conftest import FAST_PROJECTION, skimage_data

#: the astronaut's pupils (photo pixels, continuous coordinates), read off a 4x magnification
ASTRONAUT_EYES = ((201.5, 101.5), (246.0, 103.0))
#: the FFHQ layout (facexlib's 512 px template, x2 for 1024 px), scaled to a 64 px canvas
FFHQ_EYES_64 = [[385.96 / 16, 479.89 / 16], [637.81 / 16, 480.39 / 16]]
ANGLE = 15.0


@pytest.fixture(scope="module")
def rotated():
    """The astronaut rotated 15 degrees about the photo's centre (cv2), and that rotation."""
    photo = load_photo(skimage_data("astronaut.png"))
    h, w = photo.rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), ANGLE, 1.0)
    rgb = cv2.warpAffine(photo.rgb, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return load_photo(rgb), align.cv_to_cont(m)


def _eyes_after(m):
    return align.apply(m, ASTRONAUT_EYES)


def test_similarity_maps_the_points_and_round_trips():
    rng = np.random.default_rng(0)
    for _ in range(20):
        src = rng.uniform(0, 500, (2, 2))
        dst = rng.uniform(0, 64, (2, 2))
        if np.linalg.norm(src[1] - src[0]) < 5 or np.linalg.norm(dst[1] - dst[0]) < 1:
            continue
        m = align.similarity([tuple(p) for p in src], [tuple(p) for p in dst])
        assert np.allclose(align.apply(m, src), dst, atol=1e-9)
        # a similarity: orthogonal linear part with equal singular values
        lin = m[:, :2]
        assert np.allclose(lin @ lin.T, np.eye(2) * np.linalg.det(lin), atol=1e-9)
        pts = rng.uniform(-100, 600, (10, 2))
        assert np.allclose(align.apply(align.invert(m), align.apply(m, pts)), pts, atol=1e-6)
    # the aligned square: the eyes land on the model's positions, at about the photo's scale
    a = align.alignment_for(((100.0, 80.0), (140.0, 95.0)), ((20.0, 30.0), (44.0, 30.0)), 64, "given")
    to_model = align.compose(np.array([[64.0 / a.side, 0, 0], [0, 64.0 / a.side, 0]]), align.invert(a.to_photo))
    assert np.allclose(align.apply(to_model, [(100, 80), (140, 95)]), [(20, 30), (44, 30)], atol=1e-6)
    assert abs(a.scale - 1.0) < 0.02 and abs(a.angle - (-math.degrees(math.atan2(15, 40)))) < 1e-6
    # continuous <-> OpenCV pixel-centre conventions are inverse to each other
    assert np.allclose(align.cv_to_cont(align.cv_matrix(a.to_photo)), a.to_photo)


def test_warp_to_square_and_back_round_trips(rotated):
    photo, _ = rotated
    a = align.alignment_for(((163.6, 120.4), (206.6, 111.0)), FFHQ_EYES_64, 64, "given")
    smooth = cv2.GaussianBlur(photo.rgb, (0, 0), 3)
    sq = align.warp_to_square(smooth, a, edge=True)
    box = align.bounding_box(a, photo.size)
    back = align.warp_to_photo(sq, a, box).astype(np.float32)
    x, y, w, h = box
    # inside the square, away from its border, the round trip is the photo within resampling error
    inside = align.warp_to_photo(np.ones((a.side, a.side), np.uint8) * 255, a, box) == 255
    inside = cv2.erode(inside.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    err = np.abs(back - smooth[y:y + h, x:x + w].astype(np.float32))[inside]
    assert inside.sum() > 0.4 * w * h and float(err.mean()) < 1.0 and float(err.max()) < 12


def test_detected_eyes_land_where_the_model_expects(rotated):
    photo, m = rotated
    true = _eyes_after(m)
    box = (110, 40, 180, 180)
    crop = make_crop(photo, 64, box=box, alignment={"eyes": FFHQ_EYES_64})
    a = crop.alignment
    assert a is not None and a.source == "detected", crop.notes
    to_model = align.compose(np.array([[64.0 / a.side, 0, 0], [0, 64.0 / a.side, 0]]), align.invert(a.to_photo))
    landed = align.apply(to_model, true)
    # within 2 model px (3 % of the canvas) of the declared positions; the tilt is undone within 4 degrees
    assert np.abs(landed - np.array(FFHQ_EYES_64)).max() < 2.0, landed
    eye_tilt = math.degrees(math.atan2(true[1][1] - true[0][1], true[1][0] - true[0][0]))
    assert abs(a.angle + eye_tilt) < 4.0
    assert any("aligned the face" in n and "detected" in n for n in crop.notes)
    # the model's view: the eyes of the rotated photo are level in the crop
    assert crop.region.shape == (a.side, a.side, 3) and crop.target().shape == (1, 3, 64, 64)


@pytest.mark.parametrize("angle", [35.0, -35.0])
def test_a_head_tilted_past_the_cascade_is_found_on_a_rotated_search(angle):
    """The frontal cascade misses faces tilted by 30 degrees or more; the search rotates the photo."""
    photo = load_photo(skimage_data("astronaut.png"))
    m = cv2.getRotationMatrix2D((255.5, 255.5), angle, 1.0)
    rgb = cv2.warpAffine(photo.rgb, m, (512, 512), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    true = _eyes_after(align.cv_to_cont(m))
    c = true.mean(axis=0)
    eyes, face, notes = align.detect_eyes(rgb, (int(c[0]) - 75, int(c[1]) - 50, 150, 150))
    assert eyes is not None and not notes
    assert np.abs(np.array(eyes) - np.array(sorted(map(tuple, true)))).max() < 3.0, (eyes, true)


def test_given_eyes_are_used_in_either_order(rotated):
    photo, m = rotated
    (x1, y1), (x2, y2) = _eyes_after(m)
    one = make_crop(photo, 64, box=(110, 40, 180, 180), alignment={"eyes": FFHQ_EYES_64}, eyes=(x2, y2, x1, y1))
    two = make_crop(photo, 64, box=(110, 40, 180, 180), alignment={"eyes": FFHQ_EYES_64}, eyes=(x1, y1, x2, y2))
    assert one.alignment.source == "given" and np.allclose(one.alignment.to_photo, two.alignment.to_photo)
    assert np.array_equal(one.region, two.region)


def test_eyes_far_apart_are_sampled_coarser_and_big_photos_are_searched_downscaled():
    photo = load_photo(skimage_data("astronaut.png"))
    wide = make_crop(photo, 64, box=(0, 0, 512, 512), alignment={"eyes": FFHQ_EYES_64}, eyes=(10, 250, 500, 260))
    assert wide.alignment.side == 768 and wide.region.shape == (768, 768, 3)  # 1.5x the photo, not ~2000 px
    big = load_photo(cv2.resize(photo.rgb, (1280, 1280), interpolation=cv2.INTER_CUBIC))
    crop = make_crop(big, 64, box=(350, 50, 450, 450), alignment={"eyes": FFHQ_EYES_64})
    assert crop.alignment is not None and crop.alignment.source == "detected", crop.notes
    assert np.abs(np.array(crop.alignment.eyes) - 2.5 * np.array(ASTRONAUT_EYES)).max() < 2.5 * 6


def test_a_photo_without_a_face_gets_the_unaligned_box_and_a_note():
    photo = load_photo(skimage_data("coffee.png"))
    box = (150, 60, 300, 260)
    crop = make_crop(photo, 64, box=box, alignment={"eyes": FFHQ_EYES_64})
    plain = make_crop(photo, 64, box=box)
    assert crop.alignment is None and crop.square == plain.square
    assert np.array_equal(crop.region, plain.region) and np.array_equal(crop.region_mask, plain.region_mask)
    assert any(n.startswith(align.NO_FACE_NOTE) for n in crop.notes), crop.notes


def test_the_coverage_note_counts_the_whole_selection():
    """A square much smaller than the box (the eyes far apart for the layout): the note's share is
    of the whole selection, not only of its part inside the square's bounding box."""
    photo = load_photo(skimage_data("astronaut.png"))
    box = (100, 0, 300, 300)
    crop = make_crop(photo, 64, box=box, alignment={"eyes": [[16.0, 28.0], [48.0, 28.0]]},
                     eyes=(*ASTRONAUT_EYES[0], *ASTRONAUT_EYES[1]))
    side = crop.alignment.side                  # about 44.5 / 32 * 64 = 89 px: under a tenth of the box
    expect = 100.0 * side * side / (box[2] * box[3])
    note = [n for n in crop.notes if "covers" in n]
    assert len(note) == 1, crop.notes
    share = float(note[0].split("covers ")[1].split(" %")[0])
    assert abs(share - expect) < 2.0, (note, expect)


def test_bad_alignment_and_eyes_are_refused():
    photo = load_photo(skimage_data("astronaut.png"))
    for bad in ({"eyes": [[10, 10]]}, {"eyes": [[40, 30], [20, 30]]}, {"eyes": [[10, 10], [90, 10]]}, "ffhq"):
        with pytest.raises(InputError, match="alignment"):
            make_crop(photo, 64, box=(140, 20, 180, 180), alignment=bad)
    with pytest.raises(InputError, match="declares an alignment"):
        make_crop(photo, 64, box=(140, 20, 180, 180), eyes=(200, 100, 240, 100))


def test_the_ffhq_entries_declare_the_ffhq_layout():
    from priorpaint.models.manifest import get_entry
    for mid in ("stylegan2-ffhq-1024", "stylegan2-ffhq-1024-tf"):
        (x1, y1), (x2, y2) = align.check_alignment(get_entry(mid).extra["alignment"], 1024)
        # the FFHQ script's geometry: eyes level, the eye distance about a quarter of the side, centred
        assert abs(y2 - y1) < 1 and abs((x2 - x1) / 1024 - 0.25) < 0.01 and abs((x1 + x2) / 2 - 512) < 1
    assert "alignment" not in get_entry("stylegan2-church-256").extra


@pytest.fixture
def aligned_gen(tiny_gen):
    tiny_gen.entry = SimpleNamespace(extra={"alignment": {"eyes": [[6.0, 7.5], [10.0, 7.5]]}})
    yield tiny_gen
    del tiny_gen.entry


@pytest.mark.parametrize("selection", ["box", "mask"])
def test_edit_and_composite_leave_everything_outside_the_mask_bit_identical(aligned_gen, rotated, selection):
    from priorpaint.projection.project import ProjectionConfig
    from priorpaint.session import EditSession
    photo, _ = rotated
    H, W = photo.rgb.shape[:2]
    if selection == "box":
        sel = np.zeros((H, W), np.uint8)
        sel[60:200, 120:270] = 255
        kw = {"box": (120, 60, 150, 140)}
    else:  # a soft ellipse around the face
        yy, xx = np.mgrid[:H, :W]
        d = ((xx - 185) / 70.0) ** 2 + ((yy - 125) / 85.0) ** 2
        sel = np.clip((1.2 - d) * 255 / 0.4, 0, 255).astype(np.uint8)
        kw = {"mask": sel}
    s = EditSession.open(photo, gen=aligned_gen, **kw)
    assert s.crop.alignment is not None, s.crop.notes
    s.project(ProjectionConfig(steps=2, **FAST_PROJECTION))
    state = s.initial_state()
    torch.manual_seed(1)
    state.h = state.h + 0.8 * torch.randn_like(state.h)  # an edit that changes the whole square
    outside = sel == 0
    for mode in ("replace", "detail"):
        r = s.render(state, composite=mode)
        out = r.photo.rgb
        assert r.metrics["changed_outside_mask"] == 0
        assert np.array_equal(out[outside], photo.rgb[outside])
        changed = (out != photo.rgb).any(axis=2)
        assert changed.sum() > 2000 and not changed[outside].any()
        assert r.metrics["alignment"]["source"] == "detected"
        x, y, w, h = r.layer_box
        assert r.layer.shape == (h, w, 4) and not r.layer[..., 3][outside[y:y + h, x:x + w]].any()
    # no edit, detail: the photo bit for bit
    r0 = s.render(None, composite="detail")
    assert np.array_equal(r0.photo.rgb, photo.rgb)


def test_align_false_crops_the_plain_box_with_a_note(aligned_gen, rotated):
    from priorpaint.session import EditSession
    photo, _ = rotated
    s = EditSession.open(photo, box=(120, 60, 150, 140), gen=aligned_gen, align=False)  # what the web API does
    assert s.crop.alignment is None and s.crop.square == make_crop(photo, 16, box=(120, 60, 150, 140)).square
    assert any("expects aligned faces" in n for n in s.crop.notes)
    with pytest.raises(InputError, match="contradict"):
        EditSession.open(photo, box=(120, 60, 150, 140), gen=aligned_gen, align=False, eyes=(160, 120, 200, 110))


def test_painted_masks_are_warped_into_the_aligned_square(aligned_gen, rotated):
    photo, _ = rotated
    crop = make_crop(photo, 16, box=(120, 60, 150, 140), alignment=aligned_gen.entry.extra["alignment"])
    H, W = photo.rgb.shape[:2]
    paint = np.zeros((H, W), np.uint8)
    paint[100:140, 150:200] = 255
    region, valid, notes = crop.place(paint, "paint mask", nearest=False)
    assert not notes and valid.all() and np.array_equal(region, crop.region_of(paint))
    box = crop.layer_box
    from_layer, _, _ = crop.place(paint[box.rows, box.cols], "paint mask", nearest=False)
    assert np.array_equal(from_layer, region)
    # and back: the painted rectangle's pixels, away from its edges, are inside again
    back = crop.to_layer(region)
    assert (back[100 - box.y + 3:140 - box.y - 3, 150 - box.x + 3:200 - box.x - 3] > 250).all()
    assert not back[:100 - box.y - 3].any()


def test_scribble_and_labels_through_an_aligned_crop(aligned_gen, rotated):
    """Layer-box-sized inputs (what the app and the plug-in hand out) land in the rotated square,
    label maps come back with legend colours only, and nothing outside the selection changes."""
    from priorpaint.projection.project import ProjectionConfig
    from priorpaint.session import EditSession
    photo, _ = rotated
    s = EditSession.open(photo, box=(120, 60, 150, 140), gen=aligned_gen)
    s.project(ProjectionConfig(steps=2, **FAST_PROJECTION))
    box = s.crop.layer_box
    strokes = np.zeros((box.h, box.w, 4), np.uint8)
    strokes[60:100, 60:120] = (250, 20, 20, 255)  # layer-box pixels inside the selection
    state = s.apply([{"kind": "scribble", "strokes": strokes, "steps": 10}])
    assert not any("no scribble stroke" in n for n in state.notes)
    r = s.render(state, composite="replace")
    outside = np.ones(photo.rgb.shape[:2], bool)
    outside[60:200, 120:270] = False
    assert r.metrics["changed_outside_mask"] == 0 and np.array_equal(r.photo.rgb[outside], photo.rgb[outside])
    assert (r.photo.rgb != photo.rgb).any()
    # a label picture in the square comes back to the layer box with only its own colours
    labels = np.zeros((s.crop.square[2],) * 2 + (3,), np.uint8)
    labels[:, : labels.shape[1] // 2] = (10, 200, 30)
    labels[:, labels.shape[1] // 2:] = (200, 10, 90)
    back = s.crop.to_layer(labels, nearest=True)
    assert back.shape == (box.h, box.w, 3)
    assert {tuple(c) for c in back.reshape(-1, 3)} <= {(0, 0, 0), (10, 200, 30), (200, 10, 90)}


def _aligned_manifest(tmp_path):
    from conftest import default_manifest_entry
    raw = default_manifest_entry(id="faces-aligned", alignment={"eyes": FFHQ_EYES_64})
    d = tmp_path / "manifest"
    d.mkdir()
    (d / "faces-aligned.json").write_text(json.dumps(raw))
    return d


def test_cli_project_aligns_and_reports(tmp_path, rotated, monkeypatch, capsys):
    from priorpaint.cli import main
    from priorpaint.images import Photo  # noqa: F401  (the photo is written as a PNG)
    from PIL import Image
    photo, _ = rotated
    src = tmp_path / "rotated.png"
    Image.fromarray(photo.rgb).save(src)
    monkeypatch.setenv("PRIORPAINT_MANIFEST_DIR", str(_aligned_manifest(tmp_path)))
    out, rep = tmp_path / "out.png", tmp_path / "r.json"
    assert main(["project", str(src), "--box", "120,60,150,140", "--model", "faces-aligned", "-o", str(out),
                 "--report", str(rep), "--steps", "2", "--init", "search"]) == 0
    report = json.loads(rep.read_text())
    assert report["alignment"]["source"] == "detected" and report["changed_outside_mask"] == 0
    result = np.asarray(Image.open(out).convert("RGB"))
    outside = np.ones(result.shape[:2], bool)
    outside[60:200, 120:270] = False
    assert np.array_equal(result[outside], photo.rgb[outside]) and (result != photo.rgb).any()
    capsys.readouterr()
    # --no-align: the plain box, with a note that the model expects aligned faces
    assert main(["project", str(src), "--box", "120,60,150,140", "--model", "faces-aligned", "-o", str(out),
                 "--report", str(rep), "--steps", "1", "--init", "search", "--no-align"]) == 0
    report = json.loads(rep.read_text())
    assert report["alignment"] is None and any("expects aligned faces" in n for n in report["notes"])


@pytest.mark.parametrize("eyes,message", [
    ("200,100,240", "four numbers"),
    ("a,b,c,d", "four numbers"),
    ("200,100,200,100", "same point"),
    ("5000,100,240,100", "outside the 512x512 image"),
])
def test_bad_eyes_are_one_line_errors(tmp_path, monkeypatch, capsys, eyes, message):
    from priorpaint.cli import main
    monkeypatch.setenv("PRIORPAINT_MANIFEST_DIR", str(_aligned_manifest(tmp_path)))
    for cmd in (["project"], ["segment"], ["batch"]):
        argv = cmd + [str(skimage_data("astronaut.png"))]
        argv += ["--boxes", str(tmp_path / "none.csv")] if cmd == ["batch"] else ["--box", "140,20,180,180"]
        argv += ["-o", str(tmp_path / ("outdir" if cmd == ["batch"] else "o.png")), "--model", "faces-aligned",
                 "--eyes", eyes, "--steps", "1"]
        if cmd == ["batch"] and message.startswith("outside"):
            continue  # per photo in a batch: that photo fails (exit 1), not a usage error
        code = main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and message in err[0], (cmd, err)


def test_eyes_for_a_model_without_alignment_is_refused(tmp_path, capsys):
    from priorpaint.cli import main
    code = main(["project", str(skimage_data("astronaut.png")), "--box", "140,20,180,180", "-o",
                 str(tmp_path / "o.png"), "--eyes", "200,100,240,100", "--steps", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "declares an alignment" in err[0]
    code = main(["project", str(skimage_data("astronaut.png")), "--box", "140,20,180,180", "-o",
                 str(tmp_path / "o.png"), "--eyes", "200,100,240,100", "--no-align"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "contradict" in err[0]


def test_batch_aligns_faces_and_notes_a_photo_without_one(tmp_path, tmp_cache, rotated, monkeypatch):
    from PIL import Image
    from priorpaint.cli import main
    photo, _ = rotated
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(photo.rgb).save(src / "face.png")
    Image.open(skimage_data("coffee.png")).convert("RGB").save(src / "cup.png")
    (tmp_path / "boxes.csv").write_text('image,box\nface.png,"120,60,150,140"\ncup.png,"150,60,300,260"\n')
    monkeypatch.setenv("PRIORPAINT_MANIFEST_DIR", str(_aligned_manifest(tmp_path)))
    out = tmp_path / "out"
    assert main(["batch", str(src), "-o", str(out), "--boxes", str(tmp_path / "boxes.csv"), "--model",
                 "faces-aligned", "--steps", "1", "--init", "search", "--no-adapt", "--reports", "--workers", "1",
                 "--no-progress", "--edit", "direction:sefa0=2"]) == 0
    face = json.loads((out / "face.report.json").read_text())
    cup = json.loads((out / "cup.report.json").read_text())
    assert face["alignment"]["source"] == "detected" and face["changed_outside_mask"] == 0
    assert cup["alignment"] is None and any(n.startswith(align.NO_FACE_NOTE) for n in cup["notes"])
    result = np.asarray(Image.open(out / "face.png").convert("RGB"))
    outside = np.ones(result.shape[:2], bool)
    outside[60:200, 120:270] = False
    assert np.array_equal(result[outside], photo.rgb[outside]) and (result != photo.rgb).any()


# -- the API and the GIMP bridge: an aligned face through every endpoint -------------------------

EDIT = [{"kind": "direction", "name": "sefa0", "strength": 2.5}]
FACE_BOX = "120,60,150,140"


def _final(stream):
    """The last output of an endpoint generator (status JSON parsed)."""
    out = list(stream)[-1]
    return (json.loads(out[0]),) + tuple(out[1:])


def _rotated_png(tmp_path, rotated):
    from PIL import Image
    path = tmp_path / "rotated.png"
    Image.fromarray(rotated[0].rgb).save(path)
    return str(path)


def test_api_projects_aligned_and_previews_and_edits_the_layer_box(tmp_path, rotated, monkeypatch):
    from priorpaint.app.api import Backend
    monkeypatch.setenv("PRIORPAINT_MANIFEST_DIR", str(_aligned_manifest(tmp_path)))
    path, photo = _rotated_png(tmp_path, rotated), rotated[0]
    b = Backend()
    st, crop, recon, _ = _final(b.project(path, None, FACE_BOX, "faces-aligned", 2, 0, False))
    assert st["alignment"]["source"] == "detected" and abs(st["alignment"]["angle_degrees"]) > 5
    lb = st["layer"]
    s = b.store.get(st["session"])
    assert (lb["x"], lb["y"], lb["w"], lb["h"]) == tuple(s.crop.layer_box)
    assert np.asarray(crop).shape == (64, 64, 3) and np.asarray(recon).shape == (64, 64, 3)
    # the photo-resolution preview is the layer box in the photo's orientation, as the render makes it
    full = np.asarray(b.preview(st["session"], json.dumps({"edits": EDIT, "composite": "detail", "size": 1024})))
    assert full.shape == (lb["h"], lb["w"], 3)
    rendered = s.render(s.apply(EDIT), composite="detail")
    box = s.crop.layer_box
    np.testing.assert_array_equal(full, rendered.photo.rgb[box.rows, box.cols])
    here = photo.rgb[box.rows, box.cols]
    outside = s.crop.selection == 0
    np.testing.assert_array_equal(full[outside], here[outside])
    assert (full != here).any()
    small = np.asarray(b.preview(st["session"], json.dumps({"edits": EDIT, "size": 96})))
    assert max(small.shape[:2]) == 96
    # the edit endpoint: the layer at that box; nothing outside the selection changes
    est, result, layer, _ = _final(b.edit(st["session"], json.dumps(EDIT), False))
    assert est["layer"] == lb and est["changed_outside_mask"] == 0 and est["alignment"]["source"] == "detected"
    out = np.asarray(result.convert("RGB"))
    sel = np.zeros(photo.rgb.shape[:2], bool)
    sel[60:200, 120:270] = True
    assert np.array_equal(out[~sel], photo.rgb[~sel]) and (out != photo.rgb).any()
    assert np.asarray(layer).shape == (lb["h"], lb["w"], 4)
    # project_options: align off (the plain box, with the note), or the eyes given
    st, *_ = _final(b.project_options(path, None, FACE_BOX, "faces-aligned", 1, 0, False, '{"align": false}'))
    assert st["alignment"] is None and any("expects aligned faces" in n for n in st["notes"])
    assert st["layer"]["w"] == st["square"][2]
    st, *_ = _final(b.project_options(path, None, FACE_BOX, "faces-aligned", 1, 0, False,
                                      '{"eyes": "163.6,120.4,206.6,111.0", "init": "search"}'))
    assert st["alignment"]["source"] == "given" and st["projection_init"] == "search"


@pytest.mark.parametrize("options,message", [
    ('{"zoom": 1}', "projection options are align, eyes, init; unknown: zoom"),
    ("[1]", "options must be a JSON object"),
    ("{nope", "options must be a JSON object"),
    ('{"eyes": "1,2"}', "eyes must be four numbers"),
    ('{"eyes": "5000,100,240,100"}', "outside the 512x512 image"),
    ('{"align": false, "eyes": "160,120,200,110"}', "contradict"),
    ('{"align": "maybe"}', "align must be true or false"),
    ('{"init": "guess"}', "init must be auto, encoder or search"),
])
def test_bad_projection_options_are_one_line_errors(tmp_path, rotated, monkeypatch, options, message):
    from priorpaint.app.api import Backend
    monkeypatch.setenv("PRIORPAINT_MANIFEST_DIR", str(_aligned_manifest(tmp_path)))
    path = _rotated_png(tmp_path, rotated)
    with pytest.raises(InputError) as e:
        list(Backend().project_options(path, None, FACE_BOX, "faces-aligned", 1, 0, False, options))
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.e2e
@pytest.mark.slow
def test_gimp_bridge_and_gradio_client_with_an_aligned_face(tmp_path, rotated):
    """The plug-in's path on a live server: Project selection's G(z) layer is warped back into the
    photo (not a rotated square pasted upright), the preview shows the layer box, and
    ``project_options`` reaches gradio_client."""
    from gradio_client import Client as GradioClient, handle_file

    from app_server import Server
    from gimp_bridge import ops
    from gimp_bridge.client import Client

    path, photo = _rotated_png(tmp_path, rotated), rotated[0]
    srv = Server("--steps", "2", env={"PRIORPAINT_MANIFEST_DIR": str(_aligned_manifest(tmp_path))})
    try:
        c = Client(srv.url)
        sel = (120, 60, 150, 140)
        H, W = photo.rgb.shape[:2]
        x, y, w, h = ops.crop_rect(sel, (W, H))
        mask = np.zeros((h, w), np.uint8)
        mask[sel[1] - y:sel[1] - y + sel[3], sel[0] - x:sel[0] - x + sel[2]] = 255
        crop = ops.Crop.from_pixels(x, y, w, h, np.ascontiguousarray(photo.rgb[y:y + h, x:x + w]).tobytes(), 3,
                                    mask.tobytes())
        proj, layers = ops.project_layers(c, crop, model="faces-aligned", adapt=False)
        assert proj.status["alignment"]["source"] == "detected"
        [gz] = layers
        lb = proj.status["layer"]
        assert gz.role == ops.ROLE_MODEL_RENDERING and gz.name == ops.layer_name("model's own rendering")
        assert gz.scale_to is None
        assert (gz.x, gz.y, gz.image.width, gz.image.height) == (x + lb["x"], y + lb["y"], lb["w"], lb["h"])
        alpha = np.frombuffer(gz.image.to_rgba().data, np.uint8).reshape(lb["h"], lb["w"], 4)[..., 3]
        inside = np.zeros((H, W), bool)
        inside[sel[1]:sel[1] + sel[3], sel[0]:sel[0] + sel[2]] = True
        sub = inside[gz.y:gz.y + lb["h"], gz.x:gz.x + lb["w"]]
        assert not alpha[~sub].any() and alpha[sub].mean() > 100
        view = ops.layer_view(proj)
        shown = ops.preview(c, proj, EDIT, composite="detail", size=1024)
        assert (shown.width, shown.height) == (view.width, view.height) == (lb["w"], lb["h"])
        # two points on the eyes (GIMP's sample points) go through project_options to the face model
        assert ops.model_aligns(c, "faces-aligned") and not ops.model_aligns(c, "")
        crop.eyes = ops.eyes_in_crop([(163, 120), (206, 110)], (x, y, w, h))
        given = ops.project(c, crop, model="faces-aligned", fetch_images=False)
        assert given.status["alignment"]["source"] == "given"
        g = GradioClient(srv.url, verbose=False, download_files=str(tmp_path / "dl"))
        st, *_ = g.predict(handle_file(path), None, FACE_BOX, "faces-aligned", 1, 0, False, '{"align": false}',
                           api_name="/project_options")
        assert json.loads(st)["alignment"] is None
    finally:
        srv.stop()
