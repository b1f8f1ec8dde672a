"""The face and landmark detector (faces/mtcnn.py): our MTCNN on facenet-pytorch's weights."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from priorpaint.errors import InputError, ModelError
from priorpaint.faces import mtcnn
from priorpaint.faces.mtcnn import detect_faces, largest_face, load_detector

#: facenet-pytorch 2.6.0's own MTCNN.detect on skimage's astronaut (the reference implementation,
#: run once outside this project): eyes, nose, mouth corners
ASTRONAUT_POINTS = np.array([[205.01, 101.73], [246.76, 103.71], [224.67, 128.96],
                             [201.72, 139.25], [245.27, 141.86]])
ASTRONAUT_BOX = (181.05, 62.16, 267.75, 172.05)


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data
    return data.astronaut()


def test_astronaut_one_face_where_it_is(astronaut):
    faces = detect_faces(astronaut, device="cpu")
    assert len(faces) == 1
    f = faces[0]
    assert f.score > 0.99
    np.testing.assert_allclose(f.points, ASTRONAUT_POINTS, atol=0.5)
    np.testing.assert_allclose(f.box, ASTRONAUT_BOX, atol=0.5)
    # the geometry a reader expects: eyes above the nose above the mouth, left before right
    eyes, nose, mouth = f.points[:2], f.points[2], f.points[3:]
    assert eyes[0, 0] < nose[0] < eyes[1, 0] and mouth[0, 0] < mouth[1, 0]
    assert eyes[:, 1].max() < nose[1] < mouth[:, 1].min()
    assert abs(f.yaw) < 0.1 and abs(f.roll) < 5


@pytest.mark.parametrize("angle", [-20, 15])
def test_landmarks_rotate_with_the_photo(astronaut, angle):
    centre = tuple(ASTRONAUT_POINTS[2])
    m = cv2.getRotationMatrix2D(centre, angle, 1.0)
    turned = cv2.warpAffine(astronaut, m, (512, 512), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    f = largest_face(turned, device="cpu")
    assert f is not None
    expected = ASTRONAUT_POINTS @ m[:, :2].T + m[:, 2]
    assert np.abs(f.points - expected).max() < 6.0
    base = largest_face(astronaut, device="cpu")
    # OpenCV's positive angle turns the picture counter-clockwise: the eye line's angle falls by it
    assert f.roll - base.roll == pytest.approx(-angle, abs=4)


def test_generated_faces_are_found(default_gen):
    z = default_gen.sample_latents(24, seed=0)
    with torch.no_grad():
        x = default_gen(z.to(default_gen.device)).cpu()
    imgs = ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    found = 0
    for im in imgs:
        f = largest_face(cv2.resize(im, (256, 256), interpolation=cv2.INTER_CUBIC), device="cpu")
        if f is None:
            continue
        found += 1
        assert f.points[:2, 1].max() < f.points[3:, 1].min()  # eyes above the mouth
    assert found >= 20


def test_no_face_and_grayscale(astronaut):
    assert detect_faces(np.full((200, 300, 3), 128, np.uint8), device="cpu") == []
    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    f = largest_face(gray, device="cpu")
    assert f is not None and np.abs(f.points - ASTRONAUT_POINTS).max() < 4


def test_bad_image_is_refused():
    with pytest.raises(InputError, match="RGB uint8"):
        detect_faces(np.zeros((64, 64, 3), np.float32), device="cpu")
    with pytest.raises(InputError):
        detect_faces(np.zeros((64, 64, 2), np.uint8), device="cpu")


def test_detector_honours_its_device():
    det = load_detector("cpu")
    assert det.device == torch.device("cpu")
    assert all(p.device.type == "cpu" for net in (det.pnet, det.rnet, det.onet) for p in net.parameters())


def test_shipped_files_carry_provenance_and_their_hashes():
    import hashlib
    folder = mtcnn.weights_dir()
    info = json.loads((folder / "mtcnn.json").read_text())
    assert info["package"] == "facenet-pytorch" and info["version"] == "2.6.0" and info["license"] == "MIT"
    assert "MIT License" in (folder / info["licence_file"]).read_text()
    for net, e in info["networks"].items():
        assert e["source_path"] == f"facenet_pytorch/data/{net}.pt" and len(e["source_sha256"]) == 64
        assert hashlib.sha256((folder / e["file"]).read_bytes()).hexdigest() == e["sha256"]


def test_tampered_weights_are_refused(tmp_path, monkeypatch):
    folder = tmp_path / "landmarks"
    shutil.copytree(mtcnn.weights_dir(), folder)
    blob = bytearray((folder / "mtcnn-onet.safetensors").read_bytes())
    blob[-1] ^= 1
    (folder / "mtcnn-onet.safetensors").write_bytes(bytes(blob))
    monkeypatch.setenv("PRIORPAINT_MANIFEST_DIR", str(tmp_path))
    mtcnn._cached.cache_clear()
    try:
        with pytest.raises(ModelError, match="sha256"):
            load_detector("cpu")
        info = json.loads((folder / "mtcnn.json").read_text())
        info["networks"]["pnet"]["file"] = "../escape.safetensors"
        (folder / "mtcnn.json").write_text(json.dumps(info))
        with pytest.raises(ModelError, match="bad file name"):
            load_detector("cpu")
    finally:
        mtcnn._cached.cache_clear()
