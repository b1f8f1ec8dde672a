"""Five-point aligned crops: the least-squares similarity, a layout that keeps the selection, the
photo's MTCNN points, and the round trip through such a square bit for bit outside the mask."""

from __future__ import annotations

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

#: the embedded model's five-point layout as measured (docs/method/projection.md), 64 px canvas
LAYOUT_64 = [[22.08, 31.33], [42.26, 30.93], [32.09, 44.25], [23.62, 55.45], [41.03, 55.11]]
ASTRONAUT_EYES = ((201.5, 101.5), (246.0, 103.0))


def _random_similarity(rng) -> np.ndarray:
    a = rng.uniform(0.1, 3.0) * complex(math.cos(t := rng.uniform(-math.pi, math.pi)), math.sin(t))
    b = complex(*rng.uniform(-200, 200, 2))
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def test_the_five_point_fit_recovers_a_known_similarity():
    rng = np.random.default_rng(3)
    for _ in range(25):
        m = _random_similarity(rng)
        src = rng.uniform(0, 400, (5, 2))
        assert np.allclose(align.similarity_fit(src, align.apply(m, src)), m, atol=1e-8)
        # two points: the exact two-point similarity
        assert np.allclose(align.similarity_fit(src[:2], align.apply(m, src[:2])),
                           align.similarity([tuple(p) for p in src[:2]], [tuple(p) for p in align.apply(m, src[:2])]))
    # noisy points: the least-squares similarity (the 4-parameter linear problem solved directly)
    src = rng.uniform(0, 100, (5, 2))
    dst = align.apply(_random_similarity(rng), src) + rng.normal(0, 2.0, (5, 2))
    fit = align.similarity_fit(src, dst)
    A = np.zeros((10, 4))
    A[0::2] = np.c_[src[:, 0], -src[:, 1], np.ones(5), np.zeros(5)]
    A[1::2] = np.c_[src[:, 1], src[:, 0], np.zeros(5), np.ones(5)]
    (a, b, tx, ty), *_ = np.linalg.lstsq(A, dst.reshape(-1), rcond=None)
    assert np.allclose(fit, [[a, -b, tx], [b, a, ty]], atol=1e-9)
    # a mirrored layout is not a similarity: the fit does not reflect (its determinant stays positive)
    assert np.linalg.det(align.similarity_fit(src, src * [-1, 1])[:, :2]) >= 0
    with pytest.raises(InputError, match="same point"):
        align.similarity_fit([[3, 4]] * 5, LAYOUT_64)
    with pytest.raises(InputError, match="two or more"):
        align.similarity_fit([[3, 4]], [[1, 2]])


def test_a_layout_declares_five_points_and_a_frame():
    lay = align.check_layout({"eyes": LAYOUT_64[:2], "points": LAYOUT_64, "frame": "selection"}, 64)
    assert lay.points == tuple(tuple(p) for p in LAYOUT_64) and lay.frame == "selection"
    assert align.check_layout({"eyes": LAYOUT_64[:2]}, 64) == align.Layout(eyes=tuple(map(tuple, LAYOUT_64[:2])))
    for bad, message in ((dict(points=LAYOUT_64[:4]), "five"), (dict(points=[[70, 1]] + LAYOUT_64[1:]), "five"),
                         (dict(points=[LAYOUT_64[1], LAYOUT_64[0]] + LAYOUT_64[2:]), "image-left"),
                         (dict(points="nose"), "five"), (dict(frame="face"), "frame must be one of model, selection")):
        with pytest.raises(InputError, match=message):
            align.check_layout({"eyes": LAYOUT_64[:2], **bad}, 64)


def test_the_selection_frame_covers_the_box_with_the_layout_shrunk_about_the_centre():
    photo_pts = align.apply(np.array([[3.0, 0.4, 100], [-0.4, 3.0, 40]]), LAYOUT_64)  # a face 3x the layout's size
    eyes = (tuple(photo_pts[0]), tuple(photo_pts[1]))
    tight = align.alignment_for(eyes, LAYOUT_64[:2], 64, "detected", points=photo_pts, model_points=LAYOUT_64)
    assert tight.zoom == 1.0 and tight.report()["fit"] == "five points"
    box = (60, 20, 260, 260)   # a selection larger than the face's canvas
    keep = align.alignment_for(eyes, LAYOUT_64[:2], 64, "detected", points=photo_pts, model_points=LAYOUT_64, keep=box)
    assert 1.0 < keep.zoom < align.MAX_ZOOM and keep.side > tight.side
    to_square = align.invert(keep.to_photo)
    x, y, w, h = box
    corners = align.apply(to_square, [(x, y), (x + w, y), (x + w, y + h), (x, y + h)])
    assert corners.min() >= 0 and corners.max() <= keep.side
    # the photo's points land on the layout shrunk by the zoom about the canvas centre
    to_model = align.compose(np.array([[64.0 / keep.side, 0, 0], [0, 64.0 / keep.side, 0]]), to_square)
    want = 32 + (np.asarray(LAYOUT_64) - 32) / keep.zoom
    assert np.abs(align.apply(to_model, photo_pts) - want).max() < 64.0 / keep.side
    # the zoom is bounded: a huge selection keeps what MAX_ZOOM allows
    capped = align.alignment_for(eyes, LAYOUT_64[:2], 64, "detected", points=photo_pts, model_points=LAYOUT_64,
                                 keep=(-2000, -2000, 5000, 5000), max_zoom=1.5)
    assert capped.zoom == 1.5
    # the map back is the exact inverse
    pts = np.random.default_rng(0).uniform(-50, 400, (20, 2))
    assert np.allclose(align.apply(keep.to_photo, align.apply(to_square, pts)), pts, atol=1e-9)


def test_the_photos_five_points_come_from_mtcnn_near_the_selection():
    photo = load_photo(skimage_data("astronaut.png"))
    pts, face = align.detect_points(photo.rgb, (140, 20, 180, 180))
    assert pts.shape == (5, 2) and face is not None
    assert np.abs(pts[:2] - np.asarray(ASTRONAUT_EYES)).max() < 5.0
    assert pts[0, 1] < pts[2, 1] < pts[3, 1] and pts[3, 0] < pts[2, 0] < pts[4, 0]   # eyes, nose, mouth
    cup = load_photo(skimage_data("coffee.png"))
    assert align.detect_points(cup.rgb, (150, 60, 300, 260)) == (None, None)


@pytest.fixture
def five_point_gen(tiny_gen):
    layout = (np.asarray(LAYOUT_64) * tiny_gen.resolution / 64.0).tolist()
    tiny_gen.entry = SimpleNamespace(extra={"alignment": {"eyes": layout[:2], "points": layout, "frame": "selection"}})
    yield tiny_gen
    del tiny_gen.entry


def _random_edit(s, photo, sel, seed: int):
    """``(render, changed)``: a random change of the projected session's split feature rendered with the
    detail composite, checked to leave every pixel outside the selection ``sel`` as it was; ``changed``
    is where the result differs from the photo."""
    state = s.initial_state()
    torch.manual_seed(seed)
    state.h = state.h + 0.8 * torch.randn_like(state.h)
    r = s.render(state, composite="detail")
    outside = sel == 0
    assert r.metrics["changed_outside_mask"] == 0 and np.array_equal(r.photo.rgb[outside], photo.rgb[outside])
    return r, (r.photo.rgb != photo.rgb).any(axis=2)


def test_a_five_point_crop_keeps_the_whole_selection_and_round_trips_bit_exact(five_point_gen):
    from priorpaint.projection.project import ProjectionConfig
    from priorpaint.session import EditSession
    src = load_photo(skimage_data("astronaut.png"))
    h, w = src.rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), 12.0, 1.0)
    photo = load_photo(cv2.warpAffine(src.rgb, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE))
    box = (120, 40, 190, 200)
    s = EditSession.open(photo, box=box, gen=five_point_gen)
    al = s.crop.alignment
    assert al is not None and al.points is not None and al.zoom > 1.0, s.crop.notes
    upright = make_crop(src, five_point_gen.resolution, box=box, alignment=five_point_gen.entry.extra["alignment"])
    assert abs(al.angle - upright.alignment.angle - 12.0) < 1.5   # the square follows the photo's roll
    assert not any("covers" in n for n in s.crop.notes) and any("five points" in n for n in s.crop.notes)
    x, y, bw, bh = box
    sel = np.zeros((h, w), np.uint8)
    sel[y:y + bh, x:x + bw] = 255
    lb = s.crop.layer_box
    assert int((s.crop.photo_mask(s.crop.region_mask) > 0).sum()) == bw * bh   # every selected pixel is editable
    s.project(ProjectionConfig(steps=2, **FAST_PROJECTION))
    assert np.array_equal(s.render(None, composite="detail").photo.rgb, photo.rgb)   # no edit: bit for bit
    r, changed = _random_edit(s, photo, sel, seed=1)
    # the edit reaches the selection's corners (the crown and chin that a tight square cut off)
    assert changed[y:y + 20, x:x + bw].any() and changed[y + bh - 20:y + bh, x:x + bw].any()
    assert r.metrics["alignment"]["fit"] == "five points" and r.metrics["alignment"]["zoom"] > 1.0
    assert lb.x <= x and lb.y <= y and lb.x + lb.w >= x + bw and lb.y + lb.h >= y + bh


def test_without_five_points_the_eyes_align_and_without_a_face_the_box(five_point_gen, monkeypatch):
    astro = load_photo(skimage_data("astronaut.png"))
    layout = five_point_gen.entry.extra["alignment"]
    monkeypatch.setattr(align, "detect_points", lambda rgb, near, **kw: (None, None))   # MTCNN finds nothing
    crop = make_crop(astro, five_point_gen.resolution, box=(140, 20, 180, 180), alignment=layout)
    assert crop.alignment is not None and crop.alignment.points is None
    assert crop.alignment.report()["fit"] == "eyes" and crop.alignment.zoom >= 1.0
    # given eyes: the eyes' similarity, the selection still kept
    given = make_crop(astro, five_point_gen.resolution, box=(140, 20, 180, 180), alignment=layout,
                      eyes=(201.5, 101.5, 246.0, 103.0))
    assert given.alignment.source == "given" and given.alignment.points is None
    assert not any("covers" in n for n in given.notes)
    monkeypatch.undo()
    cup = load_photo(skimage_data("coffee.png"))
    crop = make_crop(cup, five_point_gen.resolution, box=(150, 60, 300, 260), alignment=layout)
    assert crop.alignment is None and any(n.startswith(align.NO_FACE_NOTE) for n in crop.notes)


def test_a_selection_far_larger_than_the_face_is_kept_up_to_the_zoom_limit_with_a_note(five_point_gen):
    astro = load_photo(skimage_data("astronaut.png"))
    crop = make_crop(astro, five_point_gen.resolution, box=(20, 0, 490, 512),
                     alignment=five_point_gen.entry.extra["alignment"])
    assert crop.alignment.zoom == align.MAX_ZOOM
    assert any(f"(at most {align.MAX_ZOOM:g}x)" in n for n in crop.notes)
    assert any("covers" in n and "of the selection" in n for n in crop.notes)


def test_a_painted_selection_is_kept_whole_and_nothing_outside_it_changes(five_point_gen):
    from priorpaint.projection.project import ProjectionConfig
    from priorpaint.session import EditSession
    photo = load_photo(skimage_data("astronaut.png"))
    H, W = photo.rgb.shape[:2]
    yy, xx = np.mgrid[:H, :W]
    d = ((xx - 225) / 95.0) ** 2 + ((yy - 120) / 115.0) ** 2   # a soft ellipse: head, hair and chin
    sel = np.clip((1.2 - d) * 255 / 0.4, 0, 255).astype(np.uint8)
    s = EditSession.open(photo, mask=sel, gen=five_point_gen)
    assert s.crop.alignment is not None and s.crop.alignment.zoom > 1.0, s.crop.notes
    assert int((s.crop.photo_mask(s.crop.region_mask) > 0).sum()) == int((sel > 0).sum())
    s.project(ProjectionConfig(steps=2, **FAST_PROJECTION))
    _, changed = _random_edit(s, photo, sel, seed=2)
    assert changed[:20].any() and changed[200:].any()   # the crown and the chin are edited too
