"""LayeredGenerator, the DCGAN, the manifest and verified weight loading."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from conftest import default_manifest_entry
from priorpaint.errors import InputError, ModelError, WeightsIntegrityError
from priorpaint.models import manifest as mf
from priorpaint.models.dcgan import DCGANGenerator
from priorpaint.models.registry import generator_from_entry, load_generator
from priorpaint.models.weights import load_weights, sha256_file, weights_status

# the shipped safetensors of the embedded model (converted from gan-face-generate 1.1.1; tests/test_wheel.py)
EMBEDDED_SHA = "4afa468d16807bf3c86e94f74766549ac88f1b5b49ddbada574ae4a113515b62"


def test_split_composes_to_the_full_generator(tiny_gen):
    z = tiny_gen.sample_latents(3, seed=1)
    full = tiny_gen(z)
    for name in tiny_gen.layer_names[:-1]:
        h = tiny_gen.forward_to(z, name)
        assert torch.equal(tiny_gen.forward_from(name, h), full), name


def test_features_shapes_and_interventions(tiny_gen):
    z = tiny_gen.sample_latents(2, seed=0)
    feats = tiny_gen.features(z)
    assert list(feats) == ["b4", "b8", "rgb"]
    assert feats["b4"].shape == (2, 8, 4, 4) and feats["rgb"].shape == (2, 3, 16, 16)
    zeroed = tiny_gen.features(z, ["b8"], interventions={"b8": lambda x: x * 0})["b8"]
    assert torch.count_nonzero(zeroed) == 0
    # An intervention on a G_F layer changes the image; the identity leaves it bit-identical.
    assert torch.equal(tiny_gen(z, interventions={"b8": lambda x: x}), tiny_gen(z))
    assert not torch.equal(tiny_gen(z, interventions={"b8": lambda x: x * 2}), tiny_gen(z))
    with pytest.raises(KeyError, match="no layer"):
        tiny_gen.forward_to(z, "b99")


def test_sampling_is_deterministic_per_seed(tiny_gen):
    assert torch.equal(tiny_gen.sample_latents(4, seed=7), tiny_gen.sample_latents(4, seed=7))
    assert not torch.equal(tiny_gen.sample_latents(4, seed=7), tiny_gen.sample_latents(4, seed=8))


def test_dcgan_state_dict_is_the_tutorial_layout(tiny_gen):
    keys = list(tiny_gen.state_dict())
    assert keys[0] == "main.0.weight" and all(k.startswith("main.") for k in keys)
    other = DCGANGenerator(nz=8, ngf=4, resolution=16)
    other.load_state_dict({"module." + k: v for k, v in tiny_gen.state_dict().items()})
    z = tiny_gen.sample_latents(1, seed=0)
    assert torch.equal(other(z), tiny_gen(z))
    with pytest.raises(ValueError, match="missing"):
        other.load_state_dict({"main.0.weight": tiny_gen.state_dict()["main.0.weight"]})
    with pytest.raises(ValueError, match="shape"):
        DCGANGenerator(nz=8, ngf=8, resolution=16).load_state_dict(tiny_gen.state_dict())


def test_embedded_model_loads_verified(default_gen):
    entry = mf.get_entry("dcgan-digiface-64")
    present, src, path = weights_status(entry)
    assert present and src.type == "file" and sha256_file(path) == EMBEDDED_SHA
    assert path.parent.parent == mf.packaged_dir()  # the package's own data, not a checkout folder
    assert default_gen.resolution == 64 and default_gen.default_split == "b8"
    z = default_gen.sample_latents(2, seed=0)
    img = default_gen(z)
    assert img.shape == (2, 3, 64, 64) and img.min() >= -1 and img.max() <= 1
    assert sum(p.numel() for p in default_gen.parameters()) == 3_576_704
    assert load_generator() is default_gen  # cached


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(InputError, match=r"unknown model 'nope'.*dcgan-digiface-64"):
        load_generator("nope")


def _copy_manifest(tmp_path, **changes):
    raw = default_manifest_entry(**changes)
    d = tmp_path / "manifest"
    d.mkdir(exist_ok=True)
    (d / f"{raw['id']}.json").write_text(json.dumps(raw))
    return d


def test_bad_sha256_is_refused(tmp_path, monkeypatch):
    src = dict(default_manifest_entry()["sources"][0], sha256="0" * 64)
    d = _copy_manifest(tmp_path, id="tampered", sources=[src])
    monkeypatch.setenv("PRIORPAINT_MANIFEST_DIR", str(d))
    with pytest.raises(WeightsIntegrityError, match="sha256 mismatch for tampered"):
        load_generator("tampered")


def test_tampered_file_is_refused(tmp_path, monkeypatch):
    entry = mf.get_entry("dcgan-digiface-64")
    _, src, path = weights_status(entry)
    copy = tmp_path / "weights.safetensors"
    shutil.copy(path, copy)
    with open(copy, "r+b") as f:  # flip one byte inside the data
        f.seek(5000)
        b = f.read(1)
        f.seek(5000)
        f.write(bytes([b[0] ^ 0xFF]))
    file_src = {"type": "file", "path": str(copy), "sha256": EMBEDDED_SHA, "format": "safetensors"}
    d = _copy_manifest(tmp_path, id="tampered-file", sources=[file_src])
    monkeypatch.setenv("PRIORPAINT_MANIFEST_DIR", str(d))
    with pytest.raises(WeightsIntegrityError, match="refusing to load"):
        load_generator("tampered-file")


def test_safetensors_file_source(tmp_path, monkeypatch, tiny_gen):
    from safetensors.torch import save_file
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_gen.state_dict().items()}, str(path))
    entry = {"id": "tiny-local", "architecture": "dcgan", "config": {"nz": 8, "ngf": 4, "nc": 3},
             "resolution": 16, "split_layer": "b8",
             "sources": [{"type": "file", "path": "tiny.safetensors", "format": "safetensors",
                          "sha256": sha256_file(path)}]}
    (tmp_path / "tiny-local.json").write_text(json.dumps(entry))
    monkeypatch.setenv("PRIORPAINT_MANIFEST_DIR", str(tmp_path))
    gen = generator_from_entry(mf.get_entry("tiny-local"), device="cpu")
    z = tiny_gen.sample_latents(2, seed=3)
    assert torch.equal(gen(z), tiny_gen(z))


def test_pickled_code_is_never_run(tmp_path, monkeypatch):
    import pickle

    class Evil:
        def __reduce__(self):
            return (exec, ("open(%r, 'w').write('pwned')" % str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"main.0.weight": Evil()}, f)
    entry = mf.parse_entry({"id": "evil", "architecture": "dcgan", "resolution": 64,
                            "sources": [{"type": "file", "path": str(path), "format": "torch"}]})
    with pytest.raises(ModelError, match=r"refusing to load .*needs code execution"):
        load_weights(entry)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("raw,match", [
    ({"architecture": "dcgan", "resolution": 64, "sources": []}, "missing 'id'"),
    ({"id": "x", "architecture": "dcgan", "resolution": 64, "sources": []}, "non-empty list"),
    ({"id": "x", "architecture": "dcgan", "resolution": 64, "sources": [{"type": "ftp"}]}, "type in"),
    ({"id": "x", "architecture": "dcgan", "resolution": 64,
      "sources": [{"type": "hub", "repo_id": "a/b", "filename": "f", "revision": "main"}]}, "pinned 40-hex"),
    ({"id": "x", "architecture": "dcgan", "resolution": 64,
      "sources": [{"type": "file", "path": "f", "sha256": "abc"}]}, "64 hex"),
])
def test_manifest_validation(raw, match):
    with pytest.raises(ModelError, match=match):
        mf.parse_entry(raw)


def test_missing_weights_name_the_sources(tmp_path):
    entry = mf.parse_entry({"id": "gone", "architecture": "dcgan", "resolution": 64,
                            "sources": [{"type": "package", "package": "no-such-dist", "path": "w.pt"}]})
    with pytest.raises(ModelError, match="not available.*no-such-dist"):
        load_weights(entry)


def test_models_command_lists_presence(capsys):
    from priorpaint.cli import main
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    row = next(r for r in rows if r["id"] == "dcgan-digiface-64")
    assert row["present"] is True and row["source"] == "file models/dcgan-digiface-64.safetensors"


def test_models_command_with_no_manifest_is_one_clear_error(tmp_path, monkeypatch, capsys):
    from priorpaint.cli import main
    monkeypatch.setenv("PRIORPAINT_MANIFEST_DIR", str(tmp_path))  # an empty folder replaces the packaged ones
    assert main(["models"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("priorpaint: error: no model manifests found in") and str(tmp_path) in err
    assert "\n" not in err


def test_user_manifest_folders_add_entries_before_the_packaged_ones(tmp_path, monkeypatch):
    """``$PRIORPAINT_MANIFESTS`` and ``<cache>/manifests`` add models; the packaged ones stay."""
    raw = json.loads((mf.packaged_dir() / "dcgan-digiface-64.json").read_text())
    shipped = mf.packaged_dir() / raw["sources"][0]["path"]
    user = tmp_path / "mine"
    user.mkdir()
    (user / "my-faces.json").write_text(json.dumps(dict(raw, id="my-faces", sources=[dict(raw["sources"][0], path=str(shipped))])))
    cache = tmp_path / "cache"
    (cache / "manifests").mkdir(parents=True)
    (cache / "manifests" / "cached-faces.json").write_text(json.dumps(dict(raw, id="cached-faces", sources=[dict(raw["sources"][0], path=str(shipped))])))
    monkeypatch.delenv("PRIORPAINT_MANIFEST_DIR", raising=False)
    monkeypatch.setenv("PRIORPAINT_MANIFESTS", str(user))
    monkeypatch.setenv("PRIORPAINT_CACHE", str(cache))
    assert mf.manifest_dirs() == [user, cache / "manifests", mf.packaged_dir()]
    ids = set(mf.load_manifest())
    assert {"my-faces", "cached-faces", "dcgan-digiface-64", "dcgan-digiface-64-encoder"} <= ids
    assert weights_status(mf.get_entry("my-faces"))[0] is True
    # a folder named there that does not exist is no error, and adds nothing
    monkeypatch.setenv("PRIORPAINT_MANIFESTS", str(tmp_path / "absent"))
    assert mf.manifest_dirs() == [cache / "manifests", mf.packaged_dir()]


def test_listing_gives_the_download_size_of_hub_models_only():
    """The GIMP Settings dialog and the page say how much a download fetches: the listing carries
    the first Hub source's declared size, and None for a model with nothing to download."""
    from priorpaint.models.listing import list_models
    from priorpaint.models.manifest import load_manifest

    rows = {r["id"]: r for r in list_models()}
    manifest = load_manifest()
    assert rows["dcgan-digiface-64"]["download_bytes"] is None
    hub = manifest["stylegan2-ffhq-1024"].sources
    assert rows["stylegan2-ffhq-1024"]["download_bytes"] == next(s.size for s in hub if s.type == "hub") > 100_000_000
