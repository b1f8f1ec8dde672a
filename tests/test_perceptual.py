"""LPIPS-VGG from a manifest entry: a random VGG-16 with timm's key layout served by a local
Hub endpoint, fetched with ``priorpaint download``, then used by projection.

With random backbone weights only the plumbing is tested (the loss's value means nothing).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
import torch

from test_download import REVISION, Hub, _env

_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    """A random VGG-16 as timm's vgg16.tv_in1k lays it out (features.N + pre_logits + head;
    the classifier tensors are small stand-ins: they are never read)."""
    from safetensors.torch import save_file
    g = torch.Generator().manual_seed(0)
    sd, c_in, i = {}, 3, 0
    for v in _CFG:
        if v == "M":
            i += 1
            continue
        sd[f"features.{i}.weight"] = torch.randn(v, c_in, 3, 3, generator=g) * (2 / (9 * c_in)) ** 0.5
        sd[f"features.{i}.bias"] = torch.zeros(v)
        c_in, i = v, i + 2
    sd["pre_logits.fc1.weight"] = torch.randn(8, 8, generator=g)
    sd["head.fc.weight"] = torch.randn(10, 8, generator=g)
    path = tmp_path_factory.mktemp("vgg") / "model.safetensors"
    save_file(sd, str(path))
    return path


def _manifest(tmp_path, payload):
    d = tmp_path / "manifest"
    d.mkdir()
    (d / "lpips-vgg.json").write_text(json.dumps({
        "id": "lpips-vgg", "kind": "perceptual", "architecture": "lpips-vgg", "resolution": 224,
        "sources": [{"type": "hub", "repo_id": "timm/vgg16.tv_in1k", "filename": "model.safetensors",
                     "revision": REVISION, "sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload),
                     "format": "safetensors"}]}))
    return d


_SCRIPT = r"""
import json, logging, sys, torch
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="LOG %(message)s")
from safetensors.torch import load_file
from priorpaint.projection.perceptual import get_perceptual
from priorpaint.projection.project import ProjectionConfig, project
from priorpaint.models.dcgan import DCGANGenerator
net = get_perceptual("cpu")
if net is None:
    print(json.dumps({"net": None})); sys.exit(0)
ref = load_file(sys.argv[1])
same = all(torch.equal(net.lpips.net.state_dict()[f"slice{s}.{k.split('.', 1)[1]}"], v)
           for k, v in ref.items() if k.startswith("features.")
           for s, rng in ((1, range(4)), (2, range(4, 9)), (3, range(9, 16)), (4, range(16, 23)), (5, range(23, 30)))
           if int(k.split(".")[1]) in rng)
g = torch.Generator().manual_seed(1)
a = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
b = a.clone(); b[:, :, :, 16:] = -b[:, :, :, 16:]
left = torch.zeros(2, 1, 32, 32); left[..., :8] = 1
torch.manual_seed(0)
gen = DCGANGenerator(nz=8, ngf=4, resolution=16, split="b8").eval()
target = gen(gen.sample_latents(1, seed=4)).detach()
p = project(gen, target, config=ProjectionConfig(steps=3, candidates=4, starts=1))
print(json.dumps({"net": True, "same": same, "self": net(a, a).tolist(), "diff": net(a, b).tolist(),
                  "masked_unchanged": net(a, b, left).tolist(), "used": p.perceptual_used}))
"""


def test_lpips_vgg_from_the_hub_entry(tmp_path, vgg_file):
    payload = vgg_file.read_bytes()
    hub = Hub({("timm/vgg16.tv_in1k", "model.safetensors"): payload})
    try:
        env = _env(tmp_path, hub.url, _manifest(tmp_path, payload))
        before = subprocess.run([sys.executable, "-c", _SCRIPT, str(vgg_file)], env=env, capture_output=True,
                                text=True, timeout=300)
        assert before.returncode == 0, before.stderr
        assert json.loads(before.stdout.strip().splitlines()[-1]) == {"net": None}
        assert "perceptual loss skipped" in before.stdout and "`priorpaint download lpips-vgg`" in before.stdout
        dl = subprocess.run([sys.executable, "-m", "priorpaint.cli", "download", "lpips-vgg"], env=env,
                            capture_output=True, text=True, timeout=300)
        assert dl.returncode == 0 and "lpips-vgg: downloaded, sha256 verified" in dl.stdout, dl.stderr
        res = subprocess.run([sys.executable, "-c", _SCRIPT, str(vgg_file)], env=dict(env, HF_HUB_OFFLINE="1"),
                             capture_output=True, text=True, timeout=300)
    finally:
        hub.close()
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["net"] and out["same"] and out["used"] is True
    assert max(out["self"]) < 1e-6 and min(out["diff"]) > 1e-4
    # the mask covers columns 0..7, far from the changed half: a much smaller masked distance
    assert all(m < d for m, d in zip(out["masked_unchanged"], out["diff"]))


def test_no_entry_weights_means_pixel_losses(monkeypatch, tmp_path):
    from priorpaint.projection import perceptual
    monkeypatch.setenv("PRIORPAINT_MANIFEST_DIR", str(tmp_path))
    perceptual.clear_cache()
    try:
        assert perceptual.get_perceptual("cpu") is None
    finally:
        perceptual.clear_cache()


def test_bad_backbone_is_one_line(tmp_path):
    from priorpaint.errors import ModelError
    from priorpaint.projection.perceptual import LPIPSVGG
    with pytest.raises(ModelError, match=r"lack VGG-16 keys such as features\.0\."):
        LPIPSVGG({"features.2.weight": torch.zeros(64, 64, 3, 3)})
