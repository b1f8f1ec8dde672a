"""``priorpaint convert``: rosinality StyleGAN2 .pt -> safetensors + config JSON, and bad input."""

from __future__ import annotations

import json
import math
import pickle

import pytest
import torch
from safetensors.torch import load_file

from priorpaint import cli
from priorpaint.errors import InputError, ModelError
from priorpaint.models.convert import convert
from priorpaint.models.manifest import load_manifest, parse_entry
from priorpaint.models.registry import generator_from_entry
from priorpaint.models.stylegan2 import StyleGAN2Generator, infer_config
from priorpaint.models.weights import sha256_file

from test_stylegan2 import STYLE_DIM, rosinality_state_dict

MARKER = []


def _side_effect(path):
    """What a malicious pickle would call; it must never run."""
    MARKER.append(path)
    open(path, "w").write("ran")
    return 0


class Payload:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (_side_effect, (self.path,))


class CustomConfig:
    """A plain custom class, as a training script might pickle beside the weights."""

    size = 64


@pytest.fixture(scope="module")
def sd():
    return rosinality_state_dict(seed=1)


def test_round_trip(tmp_path, sd):
    src, dst = tmp_path / "sg2.pt", tmp_path / "out" / "sg2.safetensors"
    latent_avg = torch.linspace(-1, 1, STYLE_DIM)
    torch.save({"g_ema": sd, "latent_avg": latent_avg}, src)
    record = convert(src, dst)
    tensors = load_file(str(dst))
    assert set(tensors) == set(sd) | {"latent_avg"}
    for k, v in sd.items():
        assert torch.equal(tensors[k], v), k
    assert torch.equal(tensors["latent_avg"], latent_avg)
    meta = json.loads(dst.with_suffix(".json").read_text())
    assert meta == record
    assert meta["architecture"] == "stylegan2" and meta["resolution"] == 64 and meta["latent_avg"] is True
    assert meta["config"] == infer_config(sd)
    assert meta["sources"][0]["sha256"] == sha256_file(dst) and meta["sources"][0]["path"] == dst.name
    assert meta["converted_from"]["sha256"] == sha256_file(src)
    # the JSON is a manifest entry: its folder works as a manifest folder (sha256 verified)
    assert meta["id"] == "sg2"
    entry = load_manifest([dst.parent])["sg2"]
    gen = generator_from_entry(entry, device="cpu")
    ref = StyleGAN2Generator.from_config(infer_config(sd))
    ref.load_state_dict(sd)
    w = ref.sample_latents(2, seed=3)
    with torch.no_grad():
        assert torch.equal(gen(w), ref(w))
    assert torch.equal(gen.mean_latent(space="w"), latent_avg[None])


def test_bare_state_dict_and_float_latent_avg(tmp_path, sd):
    src = tmp_path / "bare.pt"
    torch.save(dict(sd), src)
    assert convert(src, tmp_path / "bare.safetensors")["latent_avg"] is False
    src = tmp_path / "float.pt"
    torch.save({"g_ema": sd, "latent_avg": 0.5}, src)  # a scalar is not a mean w: left out
    assert convert(src, tmp_path / "float.safetensors")["latent_avg"] is False


def test_cli(tmp_path, sd, capsys):
    src, dst = tmp_path / "a.pt", tmp_path / "a.safetensors"
    torch.save({"g_ema": sd}, src)
    assert cli.main(["convert", str(src), str(dst)]) == 0
    assert "StyleGAN2 64x64" in capsys.readouterr().out and dst.is_file()
    assert cli.main(["convert", str(src), str(dst)]) == 2  # exists
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--force" in err
    assert cli.main(["convert", str(src), str(dst), "--force"]) == 0


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickle_needing_code_execution_is_refused(tmp_path, sd):
    marker = tmp_path / "pwned"
    for name, extra, what in [("evil.pt", Payload(str(marker)), "_side_effect"),
                              ("custom.pt", CustomConfig(), "CustomConfig")]:
        src = tmp_path / name
        torch.save({"g_ema": sd, "args": extra}, src)
        with pytest.raises(ModelError, match=rf"refusing to load .*needs code execution \(it references \S*{what}\)"):
            convert(src, tmp_path / (name + ".safetensors"))
    # a plain pickle (not a torch file) goes to the NVIDIA network-pickle reader: refused the same way
    src = tmp_path / "plain.pkl"
    src.write_bytes(pickle.dumps({"g_ema": Payload(str(marker))}))
    with pytest.raises(ModelError, match=r"refusing to load .*the pickle references test_convert\._side_effect\b.*"
                                         "nothing in it was run"):
        convert(src, tmp_path / "plain.safetensors")
    assert not marker.exists() and MARKER == []
    assert not (tmp_path / "evil.pt.safetensors").exists()


def test_through_the_registry_too(tmp_path, sd):
    src = tmp_path / "evil.pt"
    torch.save({"g_ema": sd, "args": Payload(str(tmp_path / "pwned"))}, src)
    entry = parse_entry({"id": "evil", "architecture": "stylegan2", "resolution": 64, "config": infer_config(sd),
                         "sources": [{"type": "file", "path": str(src), "state_dict_key": "g_ema"}]})
    with pytest.raises(ModelError, match=r"refusing to load .*needs code execution \(it references \S*_side_effect\)"):
        generator_from_entry(entry, device="cpu")
    assert not (tmp_path / "pwned").exists()


def test_not_a_stylegan2_checkpoint(tmp_path, sd):
    src = tmp_path / "dcgan.pt"
    torch.save({"netG_state_dict": {"main.0.weight": torch.zeros(4, 4)}}, src)
    with pytest.raises(ModelError, match=r"dcgan\.pt: not a rosinality StyleGAN2 .*missing keys style\.1\.weight, "
                                         r"style\.1\.bias, input\.input"):
        convert(src, tmp_path / "x.safetensors")
    partial = {k: v for k, v in sd.items() if not k.startswith("to_rgb1.")}
    torch.save({"g_ema": partial}, src)
    with pytest.raises(ModelError, match=r"missing keys to_rgb1\.conv\.weight"):
        convert(src, tmp_path / "x.safetensors")
    torch.save([torch.zeros(1)], src)
    with pytest.raises(ModelError, match="is a list, not a dict"):
        convert(src, tmp_path / "x.safetensors")
    bad = dict(sd)
    bad["convs.2.conv.weight"] = torch.zeros(1, 16, 8, 3, 3)  # inconsistent with its neighbours
    torch.save({"g_ema": bad}, src)
    with pytest.raises(ModelError, match=r"convs\.\d\.conv\.(weight|modulation\.weight) has shape"):
        convert(src, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_unreadable_and_misnamed(tmp_path, sd):
    src = tmp_path / "trunc.pt"
    torch.save({"g_ema": sd}, src)
    src.write_bytes(src.read_bytes()[:1000])
    with pytest.raises(ModelError, match="cannot read .* as a torch checkpoint"):
        convert(src, tmp_path / "t.safetensors")
    with pytest.raises(InputError, match="no such checkpoint"):
        convert(tmp_path / "missing.pt", tmp_path / "t.safetensors")
    with pytest.raises(InputError, match=r"must end in \.safetensors"):
        convert(src, tmp_path / "t.pt")


@pytest.mark.slow
def test_converted_model_works_from_the_command_line(tmp_path, sd, monkeypatch, capsys):
    """convert -> the output folder is a manifest folder -> `models` lists it -> `project` runs."""
    import numpy as np
    from PIL import Image
    from priorpaint.models.registry import clear_cache
    src = tmp_path / "ckpt.pt"
    torch.save({"g_ema": sd, "latent_avg": torch.zeros(STYLE_DIM)}, src)
    models = tmp_path / "models"
    assert cli.main(["convert", str(src), str(models / "sg2-cli.safetensors")]) == 0
    monkeypatch.setenv("PRIORPAINT_MANIFEST_DIR", str(models))
    monkeypatch.setenv("PRIORPAINT_CACHE", str(tmp_path / "cache"))
    clear_cache()
    capsys.readouterr()
    assert cli.main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "sg2-cli" in listing and "stylegan2" in listing and "64px" in listing
    photo = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((80, 90, 3)) * 255).astype(np.uint8)).save(photo)
    report = tmp_path / "r.json"
    rc = cli.main(["project", str(photo), "--box", "10,10,50,50", "--model", "sg2-cli", "--steps", "4",
                   "-o", str(tmp_path / "out.png"), "--report", str(report)])
    clear_cache()
    assert rc == 0
    r = json.loads(report.read_text())
    assert r["model"] == "sg2-cli" and r["changed_outside_mask"] == 0 and math.isfinite(r["psnr_projection"])


def test_training_checkpoint_with_args_and_no_noise_buffers(tmp_path, sd):
    """rosinality train.py files carry an argparse.Namespace (allowed, ignored); very old ones
    have no noises.noise_N (fixed maps from seed 0, with a note)."""
    import argparse
    from priorpaint.models.stylegan2 import FALLBACK_NOISE_SEED
    bare = {k: v for k, v in sd.items() if not k.startswith("noises.")}
    src = tmp_path / "train.pt"
    torch.save({"g_ema": bare, "g": bare, "d": {"convs.0.0.weight": torch.zeros(2)},
                "args": argparse.Namespace(size=64, lr=0.002, path="lmdb"), "latent_avg": torch.zeros(STYLE_DIM)}, src)
    record = convert(src, tmp_path / "train.safetensors")
    assert record["notes"] and "seed 0" in record["notes"][0]
    gen = generator_from_entry(load_manifest([tmp_path])["train"], device="cpu")
    g = torch.Generator().manual_seed(FALLBACK_NOISE_SEED)
    for i in range(gen.num_noise):
        ref = getattr(gen.noises, f"noise_{i}")
        assert torch.equal(ref, torch.randn(tuple(ref.shape), generator=g))
    assert gen.load_notes and "noises.noise_N" in gen.load_notes[0]
    # the same through a manifest file source with state_dict_key (the args entry is ignored)
    entry = parse_entry({"id": "t", "architecture": "stylegan2", "resolution": 64, "config": infer_config(sd),
                         "sources": [{"type": "file", "path": str(src), "state_dict_key": "g_ema"}]})
    w = gen.sample_latents(1, seed=2)
    with torch.no_grad():
        assert torch.equal(generator_from_entry(entry, device="cpu")(w), gen(w))
    # a partial set of noise buffers is still an error, naming what is missing
    part = dict(sd)
    del part["noises.noise_3"]
    torch.save({"g_ema": part}, tmp_path / "part.pt")
    with pytest.raises(ModelError, match=r"missing \['noises.noise_3'\]"):
        convert(tmp_path / "part.pt", tmp_path / "part.safetensors")
