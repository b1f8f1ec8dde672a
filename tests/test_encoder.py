"""The inverting network and hybrid projection: shapes, deterministic and resumable training,
files and manifest entries, refused encoders (other weights, corrupt files), the embedded
model's shipped encoder on an out-of-domain photo, and the train-encoder command."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import skimage_data
from priorpaint import store
from priorpaint.cli import main
from priorpaint.errors import InputError
from priorpaint.models.dcgan import DCGANGenerator
from priorpaint.projection import encoder as E
from priorpaint.projection import encoder_training as T
from priorpaint.projection.project import ProjectionConfig, project

TINY = dict(steps=3, batch=4, perceptual=False, checkpoint_every=1)


@pytest.fixture
def enc_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PRIORPAINT_CACHE", str(tmp_path / "cache"))
    E.clear_cache()
    yield tmp_path / "cache"
    E.clear_cache()


def _saved(tiny_gen, steps=2):
    res = T.train_encoder(tiny_gen, T.EncoderTrainConfig(**dict(TINY, steps=steps)))
    out = E.user_encoders_dir() / "tiny-dcgan-encoder.safetensors"
    return res, E.save_encoder(res.encoder, out, tiny_gen, train={"seconds": res.seconds})


def test_encoder_shapes_follow_the_generator(tiny_gen):
    enc = E.Encoder.for_generator(tiny_gen)
    z, h = enc(torch.zeros(3, 3, 16, 16))
    assert z.shape == (3, 8)
    assert h.shape == (3,) + tuple(tiny_gen.forward_to(tiny_gen.sample_latents(1, seed=0)).shape[1:])
    assert enc.fits(tiny_gen) is None and "predicts layer" in enc.fits(tiny_gen, "b4")


def test_training_is_deterministic_and_resumes_bit_for_bit(tiny_gen, tmp_path):
    cfg = T.EncoderTrainConfig(**dict(TINY, steps=4))
    a = T.train_encoder(tiny_gen, cfg)
    b = T.train_encoder(tiny_gen, cfg)
    for k, v in a.encoder.state_dict().items():
        assert torch.equal(v, b.encoder.state_dict()[k]), k
    assert [r["loss"] for r in a.history] == [r["loss"] for r in b.history]

    ckpt = tmp_path / "e.ckpt"

    def stop_at_two(done, total, row):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        T.train_encoder(tiny_gen, cfg, checkpoint_path=ckpt, on_step=stop_at_two)
    assert ckpt.is_file()
    c = T.train_encoder(tiny_gen, cfg, checkpoint_path=ckpt)
    assert c.resumed_from == 2 and len(c.history) == 4
    for k, v in a.encoder.state_dict().items():
        assert torch.equal(v, c.encoder.state_dict()[k]), k
    with pytest.raises(InputError, match="other settings"):
        T.train_encoder(tiny_gen, T.EncoderTrainConfig(**dict(TINY, steps=4, seed=1)), checkpoint_path=ckpt)


def test_file_and_manifest_entry_round_trip(tiny_gen, enc_cache):
    res, (path, manifest, entry) = _saved(tiny_gen)
    raw = json.loads(manifest.read_text())
    assert raw["kind"] == "encoder" and raw["generator"]["id"] == "tiny-dcgan"
    assert raw["generator"]["weights_fingerprint"] == store.weights_fingerprint(tiny_gen)
    assert raw["sources"][0]["format"] == "safetensors" and len(raw["sources"][0]["sha256"]) == 64
    enc, meta = E.read_encoder_file(path)
    for k, v in res.encoder.state_dict().items():
        assert torch.equal(v, enc.state_dict()[k]), k
    found = E.encoder_for(tiny_gen)
    assert found.encoder is not None and found.entry_id == "tiny-dcgan-encoder"
    target = torch.rand(1, 3, 16, 16) * 2 - 1
    p = project(tiny_gen, target, config=ProjectionConfig(steps=30, perceptual=False))
    assert p.init == "encoder" and p.encoder == "tiny-dcgan-encoder" and p.psnr_encoder is not None
    assert p.notes == []
    s = project(tiny_gen, target, config=ProjectionConfig(steps=30, perceptual=False, init="search"))
    assert s.init == "search" and s.encoder is None


def test_hybrid_takes_its_own_step_counts(tiny_gen, enc_cache):
    """The encoder replaces the search and most z steps: steps // 60 z steps, 3 * steps // 8
    refinement steps (one loss each); the search keeps a quarter and three quarters."""
    _saved(tiny_gen)
    target = torch.rand(1, 3, 16, 16) * 2 - 1
    cfg = ProjectionConfig(steps=300, perceptual=False, init="encoder")
    assert (cfg.encoder_z_steps, cfg.encoder_refine_steps) == (5, 112)
    assert (cfg.z_steps, cfg.refine_steps) == (75, 225)
    p = project(tiny_gen, target, config=cfg)
    assert p.init == "encoder" and len(p.losses) == 5 + 112
    s = project(tiny_gen, target, config=ProjectionConfig(steps=300, candidates=4, starts=2, perceptual=False,
                                                          init="search"))
    assert s.init == "search" and len(s.losses) == 75 + 225


def test_hybrid_refinement_warms_its_rate_up():
    """The hybrid refinement's rate rises linearly from a fifth of lr_h to lr_h over the first
    third of its steps (not to undo E_h(x)'s start with full-size steps), then stays."""
    cfg = ProjectionConfig(steps=300, lr_h=0.05)
    assert cfg.encoder_refine_steps == 112
    assert cfg.encoder_lr(0) == pytest.approx(0.01)
    assert cfg.encoder_lr(56 / 3) == pytest.approx(0.03)
    assert [cfg.encoder_lr(i) for i in (38, 80, 111)] == [0.05, 0.05, 0.05]
    rates = [cfg.encoder_lr(i) for i in range(39)]
    assert all(a < b for a, b in zip(rates, rates[1:-1])) and rates[-1] == 0.05
    flat = ProjectionConfig(steps=300, lr_h=0.05, encoder_warmup=0)
    assert [flat.encoder_lr(i) for i in (0, 20)] == [0.05, 0.05]


def test_hybrid_warmup_changes_the_hybrid_only(tiny_gen, enc_cache):
    """The warm-up is the hybrid's: without it the hybrid's feature differs, the search's not."""
    _saved(tiny_gen)
    target = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1

    def h(init, warmup):
        return project(tiny_gen, target, config=ProjectionConfig(steps=60, candidates=4, starts=2, perceptual=False,
                                                                 init=init, encoder_warmup=warmup)).h
    assert not torch.equal(h("encoder", 1 / 3), h("encoder", 0))
    assert torch.equal(h("search", 1 / 3), h("search", 0))


def test_encoder_beta2_sets_the_hybrid_refinement_only(tiny_gen, enc_cache):
    """The hybrid refinement's Adam beta2 is its own setting (0.99 by default, the search
    keeps 0.999): changing it changes the hybrid's feature and leaves the search's as it is."""
    _saved(tiny_gen)
    target = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    assert ProjectionConfig().encoder_beta2 == 0.99

    def h(init, beta2):
        return project(tiny_gen, target, config=ProjectionConfig(steps=60, candidates=4, starts=2, perceptual=False,
                                                                 init=init, encoder_beta2=beta2)).h
    assert not torch.equal(h("encoder", 0.99), h("encoder", 0.5))
    assert torch.equal(h("search", 0.99), h("search", 0.5))


def test_no_encoder_means_search_with_a_note(tiny_gen, enc_cache):
    p = project(tiny_gen, torch.zeros(1, 3, 16, 16),
                config=ProjectionConfig(steps=4, candidates=4, starts=2, perceptual=False, init="encoder"))
    assert p.init == "search"
    assert any("no encoder for tiny-dcgan" in n and "train-encoder --model tiny-dcgan" in n for n in p.notes)


def test_bad_init_is_refused(tiny_gen):
    with pytest.raises(InputError, match="projection init must be one of"):
        project(tiny_gen, torch.zeros(1, 3, 16, 16), config=ProjectionConfig(steps=1, init="magic"))


def test_encoder_for_other_weights_is_refused_and_search_runs(tiny_gen, enc_cache):
    _saved(tiny_gen)
    torch.manual_seed(1)
    other = DCGANGenerator(nz=8, ngf=4, resolution=16, split="b8").eval()
    other.model_id = "tiny-dcgan"  # same id, other weights
    found = E.encoder_for(other)
    assert found.encoder is None and "trained for other tiny-dcgan weights" in found.note and "refused" in found.note
    p = project(other, torch.zeros(1, 3, 16, 16),
                config=ProjectionConfig(steps=4, candidates=4, starts=2, perceptual=False))
    assert p.init == "search" and any("refused" in n for n in p.notes)


def test_corrupt_encoder_file_is_reported_and_nothing_else_breaks(tiny_gen, enc_cache):
    _, (path, manifest, _) = _saved(tiny_gen)
    data = bytearray(path.read_bytes())
    data[-5:] = b"XXXXX"
    path.write_bytes(bytes(data))
    found = E.encoder_for(tiny_gen)
    assert found.encoder is None and "unusable" in found.note and "sha256 mismatch" in found.note
    # A file that is not safetensors at all, with a manifest sha256 that matches it.
    from priorpaint.models.weights import sha256_file
    path.write_bytes(b"not a safetensors file")
    raw = json.loads(manifest.read_text())
    raw["sources"][0]["sha256"] = sha256_file(path)
    manifest.write_text(json.dumps(raw))
    E.clear_cache()
    found = E.encoder_for(tiny_gen)
    assert found.encoder is None and "as safetensors" in found.note
    p = project(tiny_gen, torch.zeros(1, 3, 16, 16),
                config=ProjectionConfig(steps=4, candidates=4, starts=2, perceptual=False))
    assert p.init == "search" and any("as safetensors" in n for n in p.notes)


@pytest.mark.slow
def test_hybrid_no_worse_than_search_on_a_cat(default_gen, enc_cache):
    """The shipped encoder of the embedded (faces) model on a photo far outside its domain."""
    from priorpaint.session import EditSession
    s = EditSession.open(skimage_data("chelsea.png"), box=(140, 20, 180, 180), gen=default_gen)
    found = E.encoder_for(default_gen)
    assert found.encoder is not None, found.note
    cfg = dict(steps=60, perceptual=False, seed=0)
    hybrid = project(default_gen, s.target, config=ProjectionConfig(init="encoder", **cfg))
    search = project(default_gen, s.target, config=ProjectionConfig(init="search", **cfg))
    assert hybrid.init == "encoder" and search.init == "search"
    assert hybrid.psnr >= search.psnr, (hybrid.psnr, search.psnr)


def test_train_encoder_command(tmp_path, enc_cache, capsys):
    out = tmp_path / "e" / "enc.safetensors"
    assert main(["train-encoder", "--steps", "2", "--batch", "4", "--out", str(out), "--quiet",
                 "--no-perceptual"]) == 0
    entry = json.loads(out.with_suffix(".json").read_text())
    assert entry["kind"] == "encoder" and entry["generator"]["id"] == "dcgan-digiface-64"
    assert entry["train"]["config"]["steps"] == 2 and not out.with_name(out.name + ".ckpt").exists()
    assert "wrote" in capsys.readouterr().out
    assert main(["train-encoder", "--steps", "0", "--out", str(out)]) == 2
    assert "--steps must be 1 or more" in capsys.readouterr().err
    assert main(["train-encoder", "--steps", "1", "--out", str(tmp_path / "x.pt")]) == 2
    assert ".safetensors" in capsys.readouterr().err
