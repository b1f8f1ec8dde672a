"""StyleGAN2 as a LayeredGenerator: rosinality key compatibility, maths, latents, projection.

Everything runs on tiny random-weight generators (64x64, 8..32 channels): the state dict is
built here by name pattern (the rosinality ``g_ema`` layout), not taken from the model.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from priorpaint.errors import InputError, ModelError
from priorpaint.models.manifest import load_manifest, parse_entry
from priorpaint.models.registry import build, generator_from_entry
from priorpaint.models.stylegan2 import StyleGAN2Generator, default_channels, infer_config
from priorpaint.models.stylegan2_layers import split_output
from priorpaint.projection.project import ProjectionConfig, noise_regularization, project

ROOT = Path(__file__).resolve().parents[1]
TINY = {4: 32, 8: 32, 16: 16, 32: 16, 64: 8}
STYLE_DIM, N_MLP = 32, 2


pytestmark = pytest.mark.usefixtures("one_thread")


def fir(gain):
    t = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k = torch.outer(t, t)
    return k / k.sum() * gain


def rosinality_state_dict(size=64, style_dim=STYLE_DIM, n_mlp=N_MLP, channels=None, seed=0,
                          make=None, lr_mlp=0.01):
    """A ``g_ema`` state dict laid out like rosinality's StyleGAN2 port, from key patterns.

    ``make(*shape)`` creates each random tensor (default: seeded normal); weights are scaled
    so that a 64x64 image stays roughly within [-1, 1]; noise strengths are non-zero.
    """
    g = torch.Generator().manual_seed(seed)
    make = make or (lambda *s: torch.randn(*s, generator=g))
    log2 = int(math.log2(size))
    ch = dict(channels or TINY)
    sd = {}
    for i in range(1, n_mlp + 1):
        sd[f"style.{i}.weight"] = make(style_dim, style_dim) / lr_mlp
        sd[f"style.{i}.bias"] = make(style_dim) * 0.1

    def styled(prefix, cin, cout, up):
        sd[f"{prefix}.conv.weight"] = make(1, cout, cin, 3, 3)
        sd[f"{prefix}.conv.modulation.weight"] = make(cin, style_dim)
        sd[f"{prefix}.conv.modulation.bias"] = make(cin) * 0.1 + 1.0
        if up:
            sd[f"{prefix}.conv.blur.kernel"] = fir(4.0)
        sd[f"{prefix}.noise.weight"] = make(1).abs() * 0.2 + 0.05
        sd[f"{prefix}.activate.bias"] = make(cout) * 0.1

    def to_rgb(prefix, cin, up):
        sd[f"{prefix}.conv.weight"] = make(1, 3, cin, 1, 1) * 0.1
        sd[f"{prefix}.conv.modulation.weight"] = make(cin, style_dim)
        sd[f"{prefix}.conv.modulation.bias"] = make(cin) * 0.1 + 1.0
        sd[f"{prefix}.bias"] = make(1, 3, 1, 1) * 0.01
        if up:
            sd[f"{prefix}.upsample.kernel"] = fir(4.0)

    sd["input.input"] = make(1, ch[4], 4, 4)
    styled("conv1", ch[4], ch[4], False)
    to_rgb("to_rgb1", ch[4], False)
    prev = ch[4]
    for j in range(log2 - 2):
        c = ch[2 ** (j + 3)]
        styled(f"convs.{2 * j}", prev, c, True)
        styled(f"convs.{2 * j + 1}", c, c, False)
        to_rgb(f"to_rgbs.{j}", c, True)
        prev = c
    for i in range(2 * log2 - 3):
        r = 2 ** ((i + 5) // 2)
        sd[f"noises.noise_{i}"] = make(1, 1, r, r)
    return sd


def tiny_generator(seed=0, **kw):
    sd = rosinality_state_dict(seed=seed)
    gen = StyleGAN2Generator.from_config(infer_config(sd), **kw)
    gen.load_state_dict(sd)
    for p in gen.parameters():
        p.requires_grad_(False)
    return gen.eval(), sd


@pytest.fixture(scope="module")
def tiny():
    return tiny_generator()[0]


# -- an independent reference: per-sample weights, grouped convolutions ------------------
def _ref_modconv(x, w, sd, prefix, style_dim, demod=True, up=False):
    n, cin = x.shape[:2]
    weight = sd[f"{prefix}.weight"]                      # (1, out, in, k, k)
    k = weight.shape[-1]
    s = F.linear(w, sd[f"{prefix}.modulation.weight"] / math.sqrt(style_dim), sd[f"{prefix}.modulation.bias"])
    wt = weight / math.sqrt(cin * k * k) * s[:, None, :, None, None]   # (n, out, in, k, k)
    if demod:
        wt = wt * torch.rsqrt(wt.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
    cout = wt.shape[1]
    xg = x.reshape(1, n * cin, *x.shape[2:])
    if up:
        wg = wt.transpose(1, 2).reshape(n * cin, cout, k, k)
        out = F.conv_transpose2d(xg, wg, stride=2, groups=n)
        out = out.reshape(n, cout, *out.shape[2:])
        kern = fir(4.0)[None, None].repeat(cout, 1, 1, 1)
        return F.conv2d(F.pad(out, (1, 1, 1, 1)), kern, groups=cout)
    out = F.conv2d(xg, wt.reshape(n * cout, cin, k, k), padding=k // 2, groups=n)
    return out.reshape(n, cout, *out.shape[2:])


def _ref_up(skip):
    # zero insertion + [1,3,3,1] filter (gain 4) == a stride-2 transposed conv with padding 1
    c = skip.shape[1]
    return F.conv_transpose2d(skip, fir(4.0)[None, None].repeat(c, 1, 1, 1), stride=2, padding=1, groups=c)


def reference_forward(sd, wplus, n_mlp=N_MLP, style_dim=STYLE_DIM):
    def styled(x, prefix, i, up=False):
        out = _ref_modconv(x, wplus[:, i], sd, f"{prefix}.conv", style_dim, up=up)
        out = out + sd[f"{prefix}.noise.weight"] * sd[f"noises.noise_{i}"]
        return F.leaky_relu(out + sd[f"{prefix}.activate.bias"][None, :, None, None], 0.2) * math.sqrt(2)

    def rgb(x, prefix, i):
        return _ref_modconv(x, wplus[:, i], sd, f"{prefix}.conv", style_dim, demod=False) + sd[f"{prefix}.bias"]

    n = wplus.shape[0]
    x = styled(sd["input.input"].repeat(n, 1, 1, 1), "conv1", 0)
    skip = rgb(x, "to_rgb1", 1)
    j = 0
    while f"convs.{2 * j}.conv.weight" in sd:
        i = 1 + 2 * j
        x = styled(x, f"convs.{2 * j}", i, up=True)
        x = styled(x, f"convs.{2 * j + 1}", i + 1)
        skip = rgb(x, f"to_rgbs.{j}", i + 2) + _ref_up(skip)
        j += 1
    return skip


def reference_mapping(sd, z, n_mlp=N_MLP, lr_mlp=0.01):
    x = z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)
    for i in range(1, n_mlp + 1):
        wgt, b = sd[f"style.{i}.weight"], sd[f"style.{i}.bias"]
        x = F.leaky_relu(x @ (wgt * lr_mlp / math.sqrt(wgt.shape[1])).t() + b * lr_mlp, 0.2) * math.sqrt(2)
    return x


# -- key-for-key compatibility -------------------------------------------------------------
def test_state_dict_keys_match_rosinality_layout_exactly():
    gen, sd = tiny_generator()
    own = gen.state_dict()
    assert list(own) == list(own)  # ordered dict
    assert set(own) == set(sd)
    for k, v in sd.items():
        assert tuple(own[k].shape) == tuple(v.shape), k
        assert torch.equal(own[k], v), k
    # a round trip through the generator's own state dict is exact too
    gen2 = StyleGAN2Generator.from_config(infer_config(sd))
    gen2.load_state_dict(gen.state_dict())
    w = gen.sample_latents(2, seed=1)
    assert torch.equal(gen(w), gen2(w))


def test_infer_config_from_names_and_shapes():
    sd = rosinality_state_dict()
    cfg = infer_config(sd)
    assert cfg == {"size": 64, "style_dim": 32, "n_mlp": 2, "channels": {str(r): c for r, c in TINY.items()}}
    # a config-f layout is recognised as channel_multiplier 2 (meta tensors: shapes only)
    meta = rosinality_state_dict(size=256, style_dim=512, n_mlp=8, channels=default_channels(256, 2),
                                 make=lambda *s: torch.empty(*s, device="meta"))
    assert infer_config(meta) == {"size": 256, "style_dim": 512, "n_mlp": 8, "channel_multiplier": 2}
    assert default_channels(1024, 2) == {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256,
                                        256: 128, 512: 64, 1024: 32}


def test_config_f_parameter_count():
    # the 256 px config-f generator has about 30 M parameters (mapping 2.1 M + synthesis)
    with torch.device("meta"):
        gen = StyleGAN2Generator(size=256, channel_multiplier=2)
    n = sum(p.numel() for p in gen.parameters())
    assert 29.5e6 < n < 30.5e6
    assert gen.n_latent == 14 and gen.latent_shape == (14, 512)
    assert gen.layer_names == ["b4", "b8", "b16", "b32", "b64", "b128", "b256", "rgb"]
    assert gen.default_split == "b32"


# -- maths -----------------------------------------------------------------------------------
def test_matches_per_sample_grouped_reference():
    gen, sd = tiny_generator()
    z = torch.randn(3, STYLE_DIM, generator=torch.Generator().manual_seed(3))
    w = gen.mapping(z)
    assert torch.allclose(w, reference_mapping(sd, z), atol=1e-5, rtol=1e-5)
    wplus = w.unsqueeze(1).repeat(1, gen.n_latent, 1)
    wplus = wplus + 0.3 * torch.randn(wplus.shape, generator=torch.Generator().manual_seed(4))
    out = gen(wplus)
    ref = reference_forward(sd, wplus)
    assert out.shape == (3, 3, 64, 64)
    assert torch.allclose(out, ref, atol=1e-4, rtol=1e-4), float((out - ref).abs().max())
    one = gen(wplus[1:2])  # a single sample takes the folded-weights path
    assert torch.allclose(one, ref[1:2], atol=1e-4, rtol=1e-4), float((one - ref[1:2]).abs().max())
    assert 0.02 < float(out.std()) < 3.0  # the fixture's scaling keeps images in range


def test_shapes_and_determinism(tiny):
    w1 = tiny.sample_latents(2, seed=7)
    w2 = tiny.sample_latents(2, seed=7)
    assert w1.shape == (2, 10, 32) and torch.equal(w1, w2)
    assert torch.equal(w1[:, 0], w1[:, -1])  # sampled w broadcast to w+
    assert tiny.sample_latents(2, seed=7, space="w").shape == (2, 32)
    assert tiny.sample_latents(2, seed=7, space="z").shape == (2, 32)
    a, b = tiny(w1), tiny(w1)
    assert a.shape == (2, 3, 64, 64) and torch.equal(a, b)  # fixed noise: deterministic
    assert not torch.equal(a, tiny(tiny.sample_latents(2, seed=8)))
    shapes = {d["name"]: d["shape"] for d in tiny.describe()}
    assert shapes == {"b4": [35, 4, 4], "b8": [35, 8, 8], "b16": [19, 16, 16], "b32": [19, 32, 32],
                      "b64": [11, 64, 64], "rgb": [3, 64, 64]}
    # w and its w+ broadcast give the same image
    w = tiny.sample_latents(2, seed=7, space="w")
    assert torch.allclose(tiny(w), a, atol=1e-6)


@pytest.mark.parametrize("name", ["b4", "b8", "b16", "b32", "b64", "rgb"])
def test_forward_to_then_from_reproduces_the_image(tiny, name):
    w = tiny.sample_latents(2, seed=11)
    w = w + 0.2 * torch.randn(w.shape, generator=torch.Generator().manual_seed(12))  # distinct styles
    full = tiny(w)
    h = tiny.forward_to(w, name)
    assert h.shape[1] == (3 if name == "rgb" else tiny.feature_channels(name) + 3)
    out = tiny.forward_from(name, h, z=w)
    assert torch.allclose(out, full, atol=1e-5), name
    feats = tiny.features(w, [name])
    assert torch.equal(feats[name], h)
    if name != "rgb":
        # the skip image travels in h: zeroing it changes the result
        f, skip = split_output(h)
        assert not torch.allclose(tiny.forward_from(name, torch.cat([f, skip * 0], 1), z=w), full)


def test_forward_from_broadcasts_one_latent_over_a_batch_of_features(tiny):
    w = tiny.sample_latents(1, seed=2)
    h = tiny.forward_to(w, "b16").repeat(3, 1, 1, 1)
    out = tiny.forward_from("b16", h, z=w)
    assert out.shape == (3, 3, 64, 64)
    assert torch.allclose(out[2], tiny(w)[0], atol=1e-5)
    # and one feature under several latents: one image per latent
    ws = tiny.sample_latents(2, seed=3)
    h1 = tiny.forward_to(ws[:1], "b16")
    both = tiny.forward_from("b16", h1, z=ws)
    assert both.shape == (2, 3, 64, 64)
    assert torch.allclose(both[1], tiny.forward_from("b16", h1, z=ws[1:])[0], atol=1e-5)


def test_per_layer_styles_only_affect_later_layers(tiny):
    w = tiny.sample_latents(1, seed=5)
    w2 = w.clone()
    w2[:, 5] += 1.0  # style 5: b16's ToRGB and b32's up-sampling conv (as in the official layout)
    f1, f2 = tiny.features(w), tiny.features(w2)
    for name in ("b4", "b8"):
        assert torch.equal(f1[name], f2[name]), name
    feat1, skip1 = split_output(f1["b16"])
    feat2, skip2 = split_output(f2["b16"])
    assert torch.equal(feat1, feat2) and not torch.allclose(skip1, skip2)
    assert not torch.allclose(split_output(f1["b32"])[0], split_output(f2["b32"])[0])


def test_noise_inputs_fixed_by_default_and_replaceable(tiny):
    assert list(tiny.noise_inputs("b8")) == ["noise_0", "noise_1", "noise_2"]
    assert len(tiny.noise_inputs()) == tiny.num_noise == 9
    w = tiny.sample_latents(1, seed=1)
    base = tiny(w)
    new = {"noise_4": torch.zeros(1, 1, 16, 16)}
    out = tiny.run(w, context=tiny.make_context(w, noise=new))[0]
    assert not torch.allclose(out, base)
    with pytest.raises(KeyError):
        tiny.make_context(w, noise={"noise_99": torch.zeros(1)})
    with pytest.raises(InputError, match="noise_4 must be"):
        tiny.make_context(w, noise={"noise_4": torch.zeros(1, 1, 32, 32)})


def test_mean_latent(tiny):
    m = tiny.mean_latent()
    assert m.shape == (1, 10, 32) and torch.equal(m[:, 0], m[:, 9])
    assert torch.equal(tiny.mean_latent(), m)  # cached, deterministic
    assert torch.allclose(tiny.mean_latent(space="w"), tiny.sample_latents(4096, seed=0, space="w").mean(0,
                          keepdim=True), atol=0.5)
    gen, sd = tiny_generator()
    sd["latent_avg"] = torch.full((STYLE_DIM,), 0.25)
    gen.load_state_dict(sd)
    assert torch.equal(gen.mean_latent(space="w"), torch.full((1, STYLE_DIM), 0.25))
    assert "latent_avg" not in gen.state_dict()


def test_interventions_and_device(tiny):
    w = tiny.sample_latents(1, seed=3)
    out = tiny.forward_from("b16", tiny.forward_to(w, "b16"), z=w,
                            interventions={"b32": lambda x: x * 1.1})
    assert not torch.allclose(out, tiny(w))
    assert tiny.device.type == "cpu" and tiny.sample_latents(1, seed=0).device.type == "cpu"
    if torch.cuda.is_available():  # pragma: no cover - no GPU on CI
        g = tiny_generator()[0].to("cuda")
        assert torch.allclose(g(w.cuda()).cpu(), tiny(w), atol=1e-3)


# -- projection ---------------------------------------------------------------------------
@pytest.mark.parametrize("opts", [{}, {"latent_space": "w"}, {"init": "mean", "optimize_noise": True}])
def test_projection_lowers_the_loss(tiny, opts):
    target = tiny(tiny.sample_latents(1, seed=42)).detach()
    cfg = ProjectionConfig(steps=12, candidates=8, starts=2, perceptual=False, lr_z=0.05, seed=0, **opts)
    p = project(tiny, target, config=cfg)
    assert p.losses[-1] < p.losses[0]
    assert p.psnr >= p.psnr_z - 1e-6
    assert p.z.shape == ((1, 32) if opts.get("latent_space") == "w" else (1, 10, 32))
    out = tiny.forward_from(p.split, p.h, z=p.z)
    assert out.shape == target.shape
    if opts.get("optimize_noise"):
        assert list(p.noise) == list(tiny.noise_inputs(p.split))
        for v in p.noise.values():  # re-normalised after every step
            assert abs(float(v.mean())) < 1e-4 and abs(float(v.std(unbiased=False)) - 1) < 1e-3
    else:
        assert p.noise == {}


def test_projection_is_deterministic_for_a_seed(tiny):
    target = tiny(tiny.sample_latents(1, seed=9)).detach()
    cfg = ProjectionConfig(steps=4, candidates=4, starts=2, perceptual=False, init="mean", optimize_noise=True)
    a, b = project(tiny, target, config=cfg), project(tiny, target, config=cfg)
    assert torch.equal(a.z, b.z) and torch.equal(a.h, b.h)


def test_noise_regularisation_prefers_white_noise():
    g = torch.Generator().manual_seed(0)
    white = torch.randn(2, 1, 32, 32, generator=g)
    smooth = F.interpolate(torch.randn(2, 1, 8, 8, generator=g), size=32, mode="bilinear")
    smooth = (smooth - smooth.mean()) / smooth.std()
    rw, rs = noise_regularization([white]), noise_regularization([smooth])
    assert rw.shape == (2,) and bool((rs > 10 * rw).all())


def test_projection_options_are_checked(tiny):
    target = torch.zeros(1, 3, 64, 64)
    with pytest.raises(InputError):
        project(tiny, target, config=ProjectionConfig(steps=1, candidates=1, starts=1, perceptual=False, init="zero"))
    with pytest.raises(InputError):
        tiny.sample_latents(1, space="s")


# -- manifest and registry ------------------------------------------------------------------
HUB = {"stylegan2-ffhq-1024": ("stylegan2-ffhq-config-f.pt", 1024),
       "stylegan2-church-256": ("stylegan2-church-config-f.pt", 256),
       "stylegan2-car-512": ("stylegan2-car-config-f.pt", 512),
       "stylegan2-cat-256": ("stylegan2-cat-config-f.pt", 256),
       "stylegan2-horse-256": ("stylegan2-horse-config-f.pt", 256)}
#: the published LFS pins of aaronb/StyleGAN2 at commit 5fde0cdb ("Upload 5 files")
HUB_REVISION = "5fde0cdb3664b04e8126dc6b0cab010e7813c18b"
HUB_PINS = {
    "stylegan2-ffhq-1024": ("646c7e7c5e3fc4cf8e83dcfe5dce505cc74b61d8982c09563932aa15c4baf18c", 132717355),
    "stylegan2-church-256": ("596f59f0ab72d3d5e821846dbf53fff0406c0103ff4fa46ae0a2508d80b3a2d0", 120878283),
    "stylegan2-car-512": ("c69f161fd576801027cbaa8b09142b5dd9f508034b2d0f4a2a0cdcbc1d587c9c", 123949595),
    "stylegan2-cat-256": ("ff1036877c8964ba7c9e84316e67ea26bea64bbfcf6bd6c645f45589d248727f", 120878283),
    "stylegan2-horse-256": ("894bc6a08a6bbe4c22bf91195dd4fdd4ee7f6859e06ce3517e7b3bfa9a8b2565", 120878283),
}


def test_hub_manifest_entries():
    entries = load_manifest([ROOT / "weights_manifest"])
    for model_id, (filename, res) in HUB.items():
        e = entries[model_id]
        assert e.architecture == "stylegan2" and e.resolution == res and e.config["size"] == res
        (src,) = e.sources
        assert (src.type, src.repo_id, src.filename, src.format, src.state_dict_key) == \
            ("hub", "aaronb/StyleGAN2", filename, "torch", "g_ema")
        assert (src.revision, src.sha256, src.size) == (HUB_REVISION,) + HUB_PINS[model_id]
        assert f"priorpaint download {model_id}" in e.description
        with torch.device("meta"):
            gen = build(e)
        assert gen.resolution == res and gen.layer_names[-1] == "rgb"
        assert gen.default_split == e.split_layer == "b32"
        assert gen.config["channel_multiplier"] == 2 and gen.n_latent == 2 * int(math.log2(res)) - 2


def _file_entry(tmp_path, sd, res=64, config=None, fmt="torch", key="g_ema"):
    path = tmp_path / "g.pt"
    torch.save({"g_ema": sd, "latent_avg": torch.zeros(STYLE_DIM)}, path)
    raw = {"id": "sg2-test", "architecture": "stylegan2", "resolution": res,
           "config": config if config is not None else dict(infer_config(sd)),
           "sources": [{"type": "file", "path": str(path), "format": fmt, "state_dict_key": key}]}
    return parse_entry(raw, tmp_path / "sg2-test.json")


def test_registry_loads_a_rosinality_checkpoint_with_weights_only(tmp_path):
    gen_ref, sd = tiny_generator()
    gen = generator_from_entry(_file_entry(tmp_path, sd), device="cpu")
    assert isinstance(gen, StyleGAN2Generator) and gen.model_id == "sg2-test"
    w = gen_ref.sample_latents(1, seed=0)
    assert torch.equal(gen(w), gen_ref(w))
    # the checkpoint's own latent_avg (beside g_ema) is the mean w, not mapped samples
    assert torch.equal(gen.mean_latent(space="w"), torch.zeros(1, STYLE_DIM))
    assert not torch.equal(gen.mean_latent(space="w"), gen_ref.mean_latent(space="w"))


def test_size_is_checked_before_the_hash(tmp_path, monkeypatch):
    from priorpaint.errors import WeightsIntegrityError
    from priorpaint.models import weights
    _, sd = tiny_generator()
    entry = _file_entry(tmp_path, sd)
    path = entry.sources[0].path
    real = Path(path).stat().st_size
    entry.sources[0].sha256 = weights.sha256_file(Path(path))
    entry.sources[0].size = real + 1
    hashed = []
    monkeypatch.setattr(weights, "sha256_file", lambda p: hashed.append(p) or "0" * 64)
    with pytest.raises(WeightsIntegrityError, match=f"size mismatch for sg2-test.*expected {real + 1} bytes, got {real}"):
        generator_from_entry(entry, device="cpu")
    assert hashed == []  # refused before reading the file
    monkeypatch.undo()
    entry.sources[0].size = real
    assert generator_from_entry(entry, device="cpu").model_id == "sg2-test"
    with pytest.raises(ModelError, match="size must be a whole number of bytes"):
        parse_entry({"id": "x", "architecture": "stylegan2", "resolution": 64,
                     "sources": [{"type": "file", "path": "a.pt", "size": "12"}]})


def test_registry_mismatched_resolution_or_config(tmp_path):
    _, sd = tiny_generator()
    cfg = dict(infer_config(sd), size=128)
    cfg["channels"] = dict(cfg["channels"], **{"128": 8})
    with pytest.raises(ModelError, match=r"size 64.*size 128"):
        generator_from_entry(_file_entry(tmp_path, sd, res=128, config=cfg), device="cpu")
    cfg = dict(infer_config(sd), n_mlp=8)
    with pytest.raises(ModelError, match="n_mlp 2.*n_mlp 8"):
        generator_from_entry(_file_entry(tmp_path, sd, config=cfg), device="cpu")
    with pytest.raises(ModelError, match="differs from resolution"):
        generator_from_entry(_file_entry(tmp_path, sd, res=128), device="cpu")


def test_not_a_stylegan2_state_dict():
    gen = tiny_generator()[0]
    bad = {"main.0.weight": torch.zeros(100, 512, 4, 4)}  # a DCGAN
    with pytest.raises(ValueError, match=r"not a rosinality StyleGAN2 .*missing keys style\.1\.weight.*input\.input"):
        gen.load_state_dict(bad)
    _, sd = tiny_generator()
    del sd["convs.3.conv.modulation.weight"]
    with pytest.raises(ValueError, match=r"missing \['convs\.3\.conv\.modulation\.weight'\]"):
        gen.load_state_dict(sd)
    _, sd = tiny_generator()
    sd["convs.1.conv.weight"] = torch.zeros(1, 32, 16, 3, 3)
    with pytest.raises(ValueError, match=r"convs\.1\.conv\.weight has shape"):
        gen.load_state_dict(sd)


def test_bad_latents_and_missing_context(tiny):
    h = tiny.forward_to(tiny.sample_latents(1, seed=0), "b16")
    with pytest.raises(InputError, match="pass z="):
        tiny.forward_from("b16", h)
    with pytest.raises(InputError, match="w \\(N, 32\\) or w\\+"):
        tiny(torch.zeros(1, 7))


# -- benchmark ------------------------------------------------------------------------------
def test_bench_reports_per_step_seconds():
    from priorpaint.bench import get_section
    from priorpaint.bench.stylegan2 import bench_stylegan2, run
    assert get_section("stylegan2").load() is run
    report = {}
    sec = bench_stylegan2(report, size=16, style_dim=8, n_mlp=1, steps=2, devices=["cpu"],
                          channels={4: 8, 8: 8, 16: 8})
    assert report["stylegan2"] is sec and sec["device"] == "cpu"
    assert sec["project_steps"] == 2 and sec["project_step_seconds"] > 0
    assert sec["gprime_steps"] == 2 and sec["gprime_step_seconds"] > 0
    assert sec["gprime_layers"] == ["b8", "b16"] and sec["split"] == "b4"
    assert sec["per_device"]["cpu"]["project_seconds"] >= sec["project_step_seconds"]
    with pytest.raises(ValueError):
        bench_stylegan2({}, steps=6)
