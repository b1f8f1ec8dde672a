"""Convert MTCNN's three networks from the facenet-pytorch wheel to safetensors, once.

The shipped files under ``weights_manifest/landmarks/`` were made with::

    pip download facenet-pytorch==2.6.0 --no-deps -d /tmp/fp
    python -m priorpaint.faces.convert_mtcnn /tmp/fp/facenet_pytorch-2.6.0-py3-none-any.whl \\
        weights_manifest/landmarks

It reads ``facenet_pytorch/data/{pnet,rnet,onet}.pt`` straight from the wheel (a zip) with
``torch.load(weights_only=True)``, writes ``mtcnn-{net}.safetensors`` and ``mtcnn.json`` (the
provenance: package, version, path in the wheel, the source file's sha256 and the converted
file's sha256, which :func:`priorpaint.faces.mtcnn.load_detector` verifies). Re-running it on
the same wheel writes byte-identical files.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import zipfile
from pathlib import Path

import torch
from safetensors.torch import save

PACKAGE, VERSION = "facenet-pytorch", "2.6.0"
NETS = ("pnet", "rnet", "onet")


def convert(wheel: Path, out_dir: Path) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    info = {"package": PACKAGE, "version": VERSION, "license": "MIT",
            "licence_file": "LICENSE-facenet-pytorch.md",
            "about": "MTCNN (Zhang et al. 2016) P-, R- and O-Net weights as shipped by facenet-pytorch "
                     "(converted from the original Caffe/TF release by its author); read by "
                     "priorpaint.faces.mtcnn. Made by `python -m priorpaint.faces.convert_mtcnn`.",
            "networks": {}}
    with zipfile.ZipFile(wheel) as zf:
        for net in NETS:
            src = f"facenet_pytorch/data/{net}.pt"
            raw = zf.read(src)
            sd = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
            blob = save({k: v.contiguous().float() for k, v in sorted(sd.items())})
            name = f"mtcnn-{net}.safetensors"
            (out_dir / name).write_bytes(blob)
            info["networks"][net] = {"file": name, "sha256": hashlib.sha256(blob).hexdigest(),
                                     "source_path": src, "source_sha256": hashlib.sha256(raw).hexdigest()}
        lic = [n for n in zf.namelist() if n.endswith(".dist-info/LICENSE.md")]
        if lic:
            (out_dir / info["licence_file"]).write_bytes(zf.read(lic[0]))
    (out_dir / "mtcnn.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


if __name__ == "__main__":  # pragma: no cover - a one-off maintenance command
    if len(sys.argv) != 3:
        sys.exit("usage: python -m priorpaint.faces.convert_mtcnn WHEEL OUT_DIR")
    print(json.dumps(convert(Path(sys.argv[1]), Path(sys.argv[2])), indent=2))
