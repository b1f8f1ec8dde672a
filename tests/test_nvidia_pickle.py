"""``priorpaint convert X.pkl``: NVIDIA network pickles read without running embedded code.

The pickles are written here with the standard pickle machinery and stand-in classes of the
same global names (tests/nvidia_pickles.py); every one carries module source that would write
a marker file if anything executed it.
"""

from __future__ import annotations

import builtins
import io
import json
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import nvidia_pickles as nv
from priorpaint import cli
from priorpaint.errors import ModelError
from priorpaint.models.convert import convert
from priorpaint.models.manifest import load_manifest, parse_entry
from priorpaint.models.nvidia_pickle import SafeUnpickler, is_network_pickle, load_network_pickle
from priorpaint.models.registry import generator_from_entry
from priorpaint.models.stylegan2 import StyleGAN2Generator, infer_config

from test_stylegan2 import STYLE_DIM, rosinality_state_dict

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ref():
    """The original network (rosinality layout), its latent_avg, and the training G's weights."""
    sd = rosinality_state_dict(seed=5)
    la = torch.linspace(-0.5, 0.5, STYLE_DIM)
    gen = StyleGAN2Generator.from_config(infer_config(sd))
    gen.load_state_dict(dict(sd, latent_avg=la))
    return gen.eval(), sd, la, rosinality_state_dict(seed=6)


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "pwned.txt"
    yield path
    assert not path.exists(), "code embedded in the pickle ran"


def _ada(tmp_path, ref, marker, protocol=4, **kw):
    _, sd, la, train = ref
    src = nv.evil_source(marker)
    snap = nv.ada_snapshot(nv.ada_generator(sd, la, src, **kw), nv.ada_generator(train, la + 1, src), src)
    path = tmp_path / f"ada-p{protocol}.pkl"
    nv.dump(snap, path, protocol=protocol)
    return path


def _same_images(gen, ref_gen, la):
    w = ref_gen.sample_latents(2, seed=11)
    with torch.no_grad():
        a, b = gen(w), ref_gen(w)
    assert (a - b).abs().max() <= 1e-5
    assert torch.equal(gen.mean_latent(space="w"), la[None])


@pytest.mark.parametrize("protocol", [3, 4])
def test_ada_pickle_converts_to_the_original_generator(tmp_path, ref, marker, protocol):
    path = _ada(tmp_path, ref, marker, protocol)
    assert is_network_pickle(path)
    blob = path.read_bytes()
    assert blob.count(b"embedded code ran") == 1  # module_src written once, memoised
    dst = tmp_path / "out" / "ada.safetensors"
    record = convert(path, dst)
    assert record["converted_from"]["pickle"] == "stylegan2-ada-pytorch"
    assert record["converted_from"]["network"] == "G_ema" and record["latent_avg"] is True
    tensors = load_file(str(dst))
    for k, v in ref[1].items():  # FIR kernels are filled in by the loader, everything else is copied
        if not k.endswith(".kernel"):
            assert torch.equal(tensors[k], v), k
    gen = generator_from_entry(load_manifest([dst.parent])["ada"], device="cpu")
    _same_images(gen, ref[0], ref[2])


def test_tf_pickle_converts_to_the_original_generator(tmp_path, ref, marker):
    gen_ref, sd, la, _ = ref
    path = tmp_path / "tf.pkl"
    nv.dump(nv.tf_pickle_tuple(sd, la, nv.evil_source(marker)), path)
    sd2, la2, info = load_network_pickle(path)
    assert info["network"] == "Gs" and torch.equal(la2, la)
    for k, v in sd.items():
        if not k.endswith(".kernel"):
            assert torch.allclose(sd2[k], v, atol=1e-6), k
    # the up-sampling conv weights are flipped (TF stores them unflipped for a correlation)
    own, _, syn = nv.tf_variables(sd, la)
    tf_w = dict(syn)["8x8/Conv0_up/weight"]
    assert torch.equal(sd2["convs.0.conv.weight"][0], torch.from_numpy(tf_w.transpose(3, 2, 0, 1)[:, :, ::-1, ::-1].copy()))
    dst = tmp_path / "tf.safetensors"
    assert convert(path, dst)["converted_from"]["pickle"] == "tensorflow-stylegan2"
    _same_images(generator_from_entry(load_manifest([tmp_path])["tf"], device="cpu"), gen_ref, la)


def test_manifest_source_of_format_nvidia_pickle(tmp_path, ref, marker):
    path = _ada(tmp_path, ref, marker)
    entry = parse_entry({"id": "ada-pkl", "architecture": "stylegan2", "resolution": 64,
                         "config": infer_config(ref[1]),
                         "sources": [{"type": "file", "path": str(path), "format": "nvidia-pickle"}]})
    _same_images(generator_from_entry(entry, device="cpu"), ref[0], ref[2])


def _write_raw(path, obj):
    nv.dump(obj, path)
    return path


@pytest.mark.parametrize("fn, name", [(builtins.exec, "builtins.exec"), (builtins.eval, "builtins.eval"),
                                      (__import__("os").system, None)])
def test_malicious_pickles_are_refused_naming_the_global(tmp_path, ref, marker, fn, name, capsys):
    _, sd, la, _ = ref
    src = nv.evil_source(marker)
    g = nv.ada_generator(sd, la, src)
    g.meta["state"]["_hook"] = nv.Reduce(fn, src if fn is not __import__("os").system else f"touch {marker}")
    path = _write_raw(tmp_path / "evil.pkl", nv.ada_snapshot(g, g, src))
    name = name or f"{fn.__module__}.{fn.__name__}"  # posix.system on Linux
    with pytest.raises(ModelError, match=rf"refusing to load .*evil\.pkl: the pickle references {name}\b"):
        load_network_pickle(path)
    assert cli.main(["convert", str(path), str(tmp_path / "evil.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and name in err and "nothing in it was run" in err
    assert not (tmp_path / "evil.safetensors").exists()


def test_malicious_tf_pickle(tmp_path, ref, marker):
    _, sd, la, _ = ref
    src = nv.evil_source(marker)
    G, D, Gs = nv.tf_pickle_tuple(sd, la, src)
    Gs._state["build_func_name"] = nv.Reduce(builtins.exec, src)
    with pytest.raises(ModelError, match="references builtins.exec"):
        load_network_pickle(_write_raw(tmp_path / "evil-tf.pkl", (G, D, Gs)))


def test_object_arrays_and_other_globals_are_refused(tmp_path, marker):
    path = _write_raw(tmp_path / "obj.pkl", {"G_ema": np.array([1, "x"], dtype=object)})
    with pytest.raises(ModelError, match="not a plain numeric type"):
        load_network_pickle(path)
    path = tmp_path / "raw.pkl"
    path.write_bytes(pickle.dumps({"G_ema": io.BytesIO(b"")}, protocol=4))
    with pytest.raises(ModelError, match=r"references _io\.BytesIO"):
        load_network_pickle(path)
    # numpy 1.x writers name the same functions numpy.core.multiarray.*
    up = SafeUnpickler(io.BytesIO(b""))
    assert up.find_class("numpy.core.multiarray", "scalar") is up.find_class("numpy._core.multiarray", "scalar")


@pytest.mark.parametrize("change, message", [
    ({"c_dim": 4}, "conditional"),
    ({"architecture": "resnet"}, "architecture 'resnet'"),
    ({"extra_params": {"skip.weight": torch.zeros(4, 4, 1, 1)}}, "cannot hold: synthesis.b8.skip.weight"),
])
def test_ada_networks_the_layout_cannot_hold_are_refused(tmp_path, ref, marker, change, message):
    path = _ada(tmp_path, ref, marker, **change)
    with pytest.raises(ModelError, match=message):
        convert(path, tmp_path / "x.safetensors")


def test_stylegan3_and_training_g_only(tmp_path, ref, marker):
    _, sd, la, _ = ref
    g = nv.ada_generator(sd, la)
    syn = g.meta["state"]["_modules"]["synthesis"]
    syn.meta["state"]["_modules"]["input"] = nv._module("", "SynthesisInput", {"weight": torch.zeros(4, 2)})
    with pytest.raises(ModelError, match="StyleGAN3"):
        load_network_pickle(_write_raw(tmp_path / "sg3.pkl", nv.ada_snapshot(g, g)))
    with pytest.raises(ModelError, match="no 'G_ema' entry"):
        load_network_pickle(_write_raw(tmp_path / "g.pkl", {"G": g}))


@pytest.mark.parametrize("extra, message", [
    ([("ToRGB_lod0/weight", np.zeros((1, 1, 4, 3), np.float32))], "progressive"),
    ([("8x8/Skip/weight", np.zeros((1, 1, 4, 4), np.float32))], "resnet"),
])
def test_tf_networks_the_layout_cannot_hold_are_refused(tmp_path, ref, marker, extra, message):
    _, sd, la, _ = ref
    path = _write_raw(tmp_path / "tf-bad.pkl", nv.tf_pickle_tuple(sd, la, nv.evil_source(marker), extra))
    with pytest.raises(ModelError, match=message):
        load_network_pickle(path)


def test_published_pickle_manifest_entries():
    from pathlib import Path
    entries = load_manifest([Path(__file__).resolve().parents[1] / "weights_manifest"])
    tf = {k: e for k, e in entries.items() if e.sources[0].format == "nvidia-pickle"}
    assert set(tf) == {"stylegan2-ffhq-1024-tf", "stylegan2-church-256-tf", "stylegan2-car-512-tf",
                       "stylegan2-cat-256-tf", "stylegan2-horse-256-tf"}
    for e in tf.values():
        (src,) = e.sources
        assert src.repo_id == "aaronb/StyleGAN2-pkl" and src.revision == "422f40439ddaa6d041cf698347f08e9bdf9f6036"
        assert src.filename.startswith("stylegan2/stylegan2-") and src.filename.endswith("-config-f.pkl")
        assert src.sha256 and src.size > 3e8 and src.state_dict_key is None
    assert tf["stylegan2-ffhq-1024-tf"].sources[0].sha256.startswith("adf127ea")
    assert json.loads(tf["stylegan2-car-512-tf"].manifest_path.read_text())["content_box"] == [0, 64, 512, 384]
