"""A face and five-landmark detector: MTCNN (Zhang et al., 2016), our own small implementation.

The weights are facenet-pytorch 2.6.0's (MIT), converted once to safetensors and shipped under
``weights_manifest/landmarks/`` (see :mod:`priorpaint.faces.convert_mtcnn`); each file's sha256
is checked before it is read. The cascade:

1. **P-Net** slides over an image pyramid (scale factor 0.709, smallest face ``min_face`` px;
   each level maps a 12 px window to one output cell, stride 2): face probability and a box
   regression per cell; boxes above ``thresholds[0]`` survive non-maximum suppression (IoU 0.5 per
   level, 0.7 over all levels), are regressed and squared.
2. **R-Net** rescores 24 px crops of those boxes (``thresholds[1]``, NMS 0.7) and regresses them.
3. **O-Net** rescores 48 px crops (``thresholds[2]``), regresses once more and gives the five
   landmarks, relative to the box; a final NMS uses intersection over the *smaller* box (0.7).

Input: an RGB (or grayscale) uint8 array, H×W(×3). Output: :class:`Face` records, best first,
in the image's pixel coordinates. Every tensor lives on the detector's device.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load as load_safetensors
from torch import nn

from ..device import as_device
from ..errors import InputError, ModelError

THRESHOLDS = (0.6, 0.7, 0.7)
SCALE_FACTOR = 0.709
MIN_FACE = 20
#: the landmarks' order in :attr:`Face.points`
LANDMARKS = ("eye_left", "eye_right", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True)
class Face:
    """One detected face: ``box`` (x1, y1, x2, y2), ``score`` (O-Net's probability) and
    ``points`` (5×2, x then y; eyes and mouth corners image-left first, as :data:`LANDMARKS`)."""
    box: Tuple[float, float, float, float]
    score: float
    points: np.ndarray

    @property
    def eye_distance(self) -> float:
        return float(np.hypot(*(self.points[1] - self.points[0])))

    @property
    def yaw(self) -> float:
        """Head-turn proxy: (nose x − the eyes' mean x) / eye distance, measured along the eye
        line (so that a tilt alone does not read as a turn). ~0 frontal; positive: the nose lies
        toward the image's right."""
        axis = (self.points[1] - self.points[0]) / max(self.eye_distance, 1e-6)
        off = self.points[2] - self.points[:2].mean(axis=0)
        return float(off @ axis) / max(self.eye_distance, 1e-6)

    @property
    def roll(self) -> float:
        """Head-tilt proxy: the eye line's angle in degrees (image y down, so positive means the
        image-right eye is lower)."""
        d = self.points[1] - self.points[0]
        return float(np.degrees(np.arctan2(d[1], d[0])))

    @property
    def pitch(self) -> float:
        """Nod proxy: the nose's distance below the eye line over the mouth's (0..1 in a
        frontal face, about 0.5; it grows when the head bows)."""
        eyes = self.points[:2].mean(axis=0)
        mouth = self.points[3:].mean(axis=0)
        down = mouth - eyes
        span = float(np.hypot(*down))
        return float((self.points[2] - eyes) @ down) / max(span * span, 1e-6)


class PNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x):
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 2, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), F.softmax(self.conv4_1(x), dim=1)


def _flatten_caffe(x):
    # the weights come from Caffe, whose dense layers read the feature map as (N, W, H, C)
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class RNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x):
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = self.prelu4(self.dense4(_flatten_caffe(self.prelu3(self.conv3(x)))))
        return self.dense5_2(x), F.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x):
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu3(self.conv3(x)), 2, 2, ceil_mode=True)
        x = self.prelu5(self.dense5(_flatten_caffe(self.prelu4(self.conv4(x)))))
        return self.dense6_2(x), self.dense6_3(x), F.softmax(self.dense6_1(x), dim=1)


def weights_dir() -> Path:
    """The folder holding ``mtcnn.json`` (found through the manifest folders)."""
    from ..models.manifest import manifest_dirs
    for d in manifest_dirs():
        if (Path(d) / "landmarks" / "mtcnn.json").is_file():
            return Path(d) / "landmarks"
    raise ModelError("the face-landmark weights (weights_manifest/landmarks/mtcnn.json) are not installed")


def _read_verified(folder: Path, entry: dict) -> dict:
    name = str(entry.get("file", ""))
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ModelError(f"landmark manifest: bad file name {name!r}")
    blob = (folder / name).read_bytes()
    if hashlib.sha256(blob).hexdigest() != entry.get("sha256"):
        raise ModelError(f"landmark weights {name}: sha256 does not match the manifest")
    return load_safetensors(blob)


class MTCNN:
    """The three networks on one device; :meth:`detect` runs the cascade."""

    def __init__(self, pnet: PNet, rnet: RNet, onet: ONet, device=None):
        self.device = as_device(device)
        self.pnet, self.rnet, self.onet = (n.to(self.device).eval() for n in (pnet, rnet, onet))

    @torch.no_grad()
    def detect(self, image: np.ndarray, min_face: int = MIN_FACE,
               thresholds: Sequence[float] = THRESHOLDS, factor: float = SCALE_FACTOR) -> List[Face]:
        img = _as_tensor(image, self.device)
        boxes = self._stage1(img, min_face, thresholds[0], factor)
        if len(boxes):
            boxes = self._stage2(img, boxes, thresholds[1])
        if not len(boxes):
            return []
        boxes, points = self._stage3(img, boxes, thresholds[2])
        faces = [Face(tuple(float(v) for v in b[:4]), float(b[4]), p.astype(np.float64))
                 for b, p in zip(boxes.cpu().numpy(), points.cpu().numpy())]
        return sorted(faces, key=lambda f: -f.score)

    def _stage1(self, img, min_face, thresh, factor):
        h, w = img.shape[2:]
        scale = 12.0 / min_face
        side = min(h, w) * scale
        found = []
        while side >= 12:
            level = F.interpolate(img, size=(int(h * scale + 1), int(w * scale + 1)), mode="area")
            reg, prob = self.pnet(_normalise(level))
            b = _grid_boxes(reg[0], prob[0, 1], scale, thresh)
            if len(b):
                found.append(b[_nms(b[:, :4], b[:, 4], 0.5)])
            scale *= factor
            side *= factor
        if not found:
            return torch.zeros(0, 9, device=img.device)
        b = torch.cat(found)
        b = b[_nms(b[:, :4], b[:, 4], 0.7)]
        size = (b[:, 2:4] - b[:, 0:2]).repeat(1, 2)
        out = torch.cat([b[:, :4] + b[:, 5:9] * size, b[:, 4:5]], dim=1)
        return _square(out)

    def _stage2(self, img, boxes, thresh):
        reg, prob = self.rnet(_normalise(_crops(img, boxes, 24)))
        keep = prob[:, 1] > thresh
        boxes = torch.cat([boxes[keep, :4], prob[keep, 1:2]], dim=1)
        reg = reg[keep]
        pick = _nms(boxes[:, :4], boxes[:, 4], 0.7)
        return _square(_regress(boxes[pick], reg[pick]))

    def _stage3(self, img, boxes, thresh):
        reg, marks, prob = self.onet(_normalise(_crops(img, boxes, 48)))
        keep = prob[:, 1] > thresh
        boxes = torch.cat([boxes[keep, :4], prob[keep, 1:2]], dim=1)
        reg, marks = reg[keep], marks[keep]
        size = boxes[:, 2:4] - boxes[:, 0:2] + 1
        xs = size[:, :1] * marks[:, :5] + boxes[:, :1] - 1
        ys = size[:, 1:2] * marks[:, 5:] + boxes[:, 1:2] - 1
        points = torch.stack([xs, ys], dim=2)
        boxes = _regress(boxes, reg)
        pick = _nms(boxes[:, :4], boxes[:, 4], 0.7, over_min=True)
        return boxes[pick], points[pick]


def _as_tensor(image, device) -> torch.Tensor:
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.dtype != np.uint8:
        raise InputError(f"face detection needs an RGB uint8 image, got {arr.dtype} {arr.shape}")
    return torch.as_tensor(np.ascontiguousarray(arr[..., :3]), device=device).permute(2, 0, 1)[None].float()


def _normalise(x):
    return (x - 127.5) * 0.0078125


def _grid_boxes(reg, prob, scale, thresh):
    """P-Net's output cells above ``thresh`` as boxes (x1, y1, x2, y2, score, 4 regressions)."""
    yx = (prob >= thresh).nonzero()
    if not len(yx):
        return torch.zeros(0, 9, device=prob.device)
    xy = yx.flip(1).to(prob.dtype)
    q1 = ((2 * xy + 1) / scale).floor()
    q2 = ((2 * xy + 12) / scale).floor()
    return torch.cat([q1, q2, prob[yx[:, 0], yx[:, 1], None], reg[:, yx[:, 0], yx[:, 1]].T], dim=1)


def _nms(boxes, scores, thresh, over_min=False):
    """Greedy non-maximum suppression; indices kept, best first. ``over_min``: overlap is the
    intersection over the smaller box (O-Net's last pass), else over the union."""
    order = scores.argsort(descending=True)
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    keep = []
    while len(order):
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        lo = torch.maximum(boxes[rest, :2], boxes[i, :2])
        hi = torch.minimum(boxes[rest, 2:4], boxes[i, 2:4])
        inter = (hi - lo + 1).clamp(min=0).prod(dim=1)
        denom = torch.minimum(area[rest], area[i]) if over_min else area[rest] + area[i] - inter
        order = rest[inter / denom <= thresh]
    return torch.as_tensor(keep, dtype=torch.long, device=boxes.device)


def _regress(boxes, reg):
    size = (boxes[:, 2:4] - boxes[:, 0:2] + 1).repeat(1, 2)
    out = boxes.clone()
    out[:, :4] = boxes[:, :4] + reg * size
    return out


def _square(boxes):
    size = boxes[:, 2:4] - boxes[:, 0:2]
    side = size.max(dim=1).values
    out = boxes.clone()
    out[:, :2] = boxes[:, :2] + size * 0.5 - side[:, None] * 0.5
    out[:, 2:4] = out[:, :2] + side[:, None]
    return out


def _crops(img, boxes, side):
    """Each box's part inside the image, resized to ``side``² (area interpolation)."""
    h, w = img.shape[2:]
    out = []
    for b in boxes[:, :4].trunc().int().tolist():
        x0, y0 = max(b[0], 1) - 1, max(b[1], 1) - 1
        x1, y1 = min(b[2], w), min(b[3], h)
        if x1 <= x0 or y1 <= y0:
            x0, y0, x1, y1 = 0, 0, 1, 1
        out.append(F.interpolate(img[:, :, y0:y1, x0:x1], size=(side, side), mode="area"))
    return torch.cat(out)


@functools.lru_cache(maxsize=4)
def _cached(device_name: str) -> MTCNN:
    folder = weights_dir()
    try:
        info = json.loads((folder / "mtcnn.json").read_text())
        nets = info["networks"]
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"the landmark manifest {folder / 'mtcnn.json'} is unreadable: {e}") from None
    built = []
    for name, cls in (("pnet", PNet), ("rnet", RNet), ("onet", ONet)):
        net = cls()
        net.load_state_dict(_read_verified(folder, nets[name]))
        built.append(net)
    return MTCNN(*built, device=device_name)


def load_detector(device=None) -> MTCNN:
    """The detector on ``device`` (loaded and verified once per device)."""
    return _cached(str(as_device(device)))


def detect_faces(image: np.ndarray, device=None, min_face: int = MIN_FACE) -> List[Face]:
    return load_detector(device).detect(image, min_face=min_face)


def largest_face(image: np.ndarray, device=None, min_face: int = MIN_FACE) -> Optional[Face]:
    """The face with the largest box (the subject of a crop), or None."""
    faces = detect_faces(image, device, min_face)
    if not faces:
        return None
    return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
