"""The drag's landmark registration (edits/drag_frame.py): the handles put on the proxy's own content."""

import numpy as np
import pytest
import torch
from PIL import Image

from priorpaint.edits import drag_frame as DF
from priorpaint.edits import drag_optimise as O
from priorpaint.errors import InputError

#: five landmarks (model px, 64 px model): eyes, nose, mouth corners
FACE = np.array([[22.0, 26.0], [40.0, 25.0], [31.0, 35.0], [24.0, 44.0], [39.0, 43.5]])


def _affine(scale_x, scale_y, shift):
    return np.array([[scale_x, 0.0, shift[0]], [0.0, scale_y, shift[1]]])


def test_the_landmark_map_recovers_a_shifted_longer_face():
    a = _affine(1.05, 1.3, (2.0, -5.0))
    proxy = FACE @ a[:, :2].T + a[:, 2]
    chin = np.array([[31.5, 47.0]])
    m = DF.landmark_map(FACE, proxy, chin, 64)
    assert m is not None
    np.testing.assert_allclose(DF.to_frame(m, chin), DF.to_frame(a, chin), atol=1e-6)
    np.testing.assert_allclose(DF.from_frame(m, DF.to_frame(m, chin)), chin, atol=1e-9)


def test_the_landmark_map_follows_the_landmarks_near_the_handle():
    """The proxy's mouth 4 px lower than a whole-face fit says (its eyes where the photo's are): a
    chin handle goes with the mouth, an eye handle stays with the eyes."""
    proxy = FACE.copy()
    proxy[2:, 1] += np.array([2.0, 4.0, 4.0])
    chin = DF.to_frame(DF.landmark_map(FACE, proxy, [[31.5, 47.0]], 64, max_residual=10), [[31.5, 47.0]])
    eye = DF.to_frame(DF.landmark_map(FACE, proxy, [[22.0, 26.0]], 64, max_residual=10), [[22.0, 26.0]])
    assert chin[0, 1] - 47.0 > 3.0
    assert abs(eye[0, 1] - 26.0) < 1.0


@pytest.mark.parametrize("dst, why", [
    (np.tile([[30.0, 30.0]], (5, 1)), "all landmarks on one point: the map collapses"),
    (FACE + np.array([[0, 0], [0, 0], [0, 0], [9, -9], [-9, 9]]), "the mouth crossed: no affine fits"),
    (FACE + np.array([30.0, 0.0]), "a shift of half the model"),
])
def test_a_poor_or_implausible_landmark_fit_is_the_identity(dst, why):
    assert DF.landmark_map(FACE, dst, [[31.5, 47.0]], 64) is None, why


def test_a_handle_mapped_onto_the_proxys_edge_is_the_identity():
    """The held-out astronaut's proxy has a face 1.65 times longer than hers: her chin maps to the
    render's bottom row, where no patch can be dragged."""
    a = _affine(1.05, 1.65, (-1.0, -10.5))
    assert DF.landmark_map(FACE, FACE @ a[:, :2].T + a[:, 2], [[31.7, 46.6]], 64) is None
    assert DF.landmark_map(FACE, FACE @ a[:, :2].T + a[:, 2], [[31.7, 40.0]], 64) is not None


def test_the_landmark_map_refuses_points_on_a_line():
    line = np.stack([np.linspace(20, 40, 5), np.full(5, 30.0)], 1)
    assert DF.landmark_map(line, line + 1.0, [[30.0, 40.0]], 64) is None


def _face_square(astronaut_path, box, side=64):
    img = np.asarray(Image.open(astronaut_path).convert("RGB"))
    x, y, s = box
    return np.asarray(Image.fromarray(img[y:y + s, x:x + s]).resize((side, side), Image.LANCZOS))


def test_the_detected_landmarks_map_a_point_onto_the_moved_face(astronaut_path):
    """A real face and the same face moved (3, 4) px and grown 10 %: the map from the detector's
    landmarks puts the chin where the moved face has it."""
    import cv2
    face = _face_square(astronaut_path, (150, 30, 170))
    a = np.array([[1.1, 0.0, 3.0 - 0.1 * 32], [0.0, 1.1, 4.0 - 0.1 * 32]])        # grown about the centre, moved
    moved = cv2.warpAffine(face, a, (64, 64), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    src, dst = DF.render_landmarks(face), DF.render_landmarks(moved)
    assert src is not None and dst is not None
    chin = np.array([[32.0, 48.0]])
    m = DF.landmark_map(src, dst, chin, 64)
    assert m is not None
    assert np.linalg.norm(DF.to_frame(m, chin) - DF.to_frame(a, chin)) < 1.0


def test_the_photos_landmarks_are_read_on_its_square_in_model_px(astronaut_path):
    """Read on the photo's sharp square, brought to model px: where the detector puts them on the
    same square shrunk to the model's 64 px (within its jitter there), and ``None`` without a face."""
    big = _face_square(astronaut_path, (150, 30, 170), side=170)
    got = DF.photo_landmarks(big, 64)
    small = DF.render_landmarks(_face_square(astronaut_path, (150, 30, 170)))
    assert got is not None and small is not None
    assert np.linalg.norm(got - small, axis=1).mean() < 1.5
    assert DF.photo_landmarks(np.full((170, 170, 3), 128, np.uint8), 64) is None


def test_a_drag_with_the_landmark_frame_and_no_face_runs_unregistered(tiny_session):
    """The tiny generator renders no face: the edit's ``register: "landmarks"`` falls back to the
    identity and the drag runs as it would without it."""
    spec = {"kind": "drag", "points": [[230, 150, 230, 138]], "steps": 2}
    plain = tiny_session.apply([dict(spec)]).applied[0]
    got = tiny_session.apply([dict(spec, register="landmarks")]).applied[0]
    assert got["proxy_frame"] is None
    assert got["tracked"] == plain["tracked"] and got["reach_model"] == plain["reach_model"]


def test_no_face_means_no_map(tiny_gen):
    """The tiny random generator renders no face: the landmark frame is the identity (``None``)."""
    z = tiny_gen.sample_latents(1, seed=3)
    with torch.no_grad():
        h = tiny_gen.forward_to(z, "b8")
        proxy = _render(tiny_gen, z, h)
        h2 = h + 0.5 * torch.randn_like(h)
    assert not np.array_equal(_render(tiny_gen, z, h2), proxy)
    assert DF.proxy_frame(tiny_gen, z, h2, "b8", None, proxy, "landmarks", np.array([[8.0, 10.0]])) is None


def test_a_drag_in_the_landmark_frame_answers_in_the_photos(tiny_gen, monkeypatch):
    """The handles go onto the proxy by the landmark map and every position the drag reports comes
    back in the photo's frame."""
    z = tiny_gen.sample_latents(1, seed=7)
    with torch.no_grad():
        h = tiny_gen.forward_to(z, "b8")
        h = h + 0.3 * torch.randn_like(h)        # the photo's state: its reconstruction is not the proxy
    small = FACE / 4.0                             # the 16 px model's landmarks
    shifted = small * np.array([1.0, 1.2]) + np.array([0.5, -1.0])
    reads = iter([small, shifted])
    monkeypatch.setattr(DF, "render_landmarks", lambda img, device="cpu": next(reads))
    p, t = np.array([[7.5, 9.0]]), np.array([[7.5, 6.0]])
    events = []
    _, _, tracked, info = O.optimise(tiny_gen, z, h, "b8", p, t, steps=2, lr=0.0, movable="capsule",
                                     register="landmarks", to_photo=lambda q: q,
                                     progress=lambda *x: events.append(x[2]))
    a = np.asarray(info["proxy_frame"])
    np.testing.assert_allclose(a, [[1.0, 0.0, 0.5], [0.0, 1.2, -1.0]], atol=1e-3)
    np.testing.assert_allclose(tracked, p, atol=1e-4)                    # nothing moved: the handle, photo frame
    np.testing.assert_allclose(events[0]["handles"], p, atol=0.05)
    np.testing.assert_allclose(events[0]["targets"], t, atol=0.05)


@pytest.mark.parametrize("bad", ["yes", 1, "Landmarks", None])
def test_a_bad_register_setting_is_a_one_line_error(tiny_session, bad):
    with pytest.raises(InputError, match="drag register must be") as e:
        tiny_session.apply([{"kind": "drag", "points": [[230, 150, 230, 138]], "register": bad}])
    assert "\n" not in str(e.value)


def _render(gen, z, h):
    from priorpaint.compositing.blend import to_uint8
    return to_uint8(gen.forward_from("b8", h, z=z))
