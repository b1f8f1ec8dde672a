"""Latent directions: SeFa, GANSpace, supervised boundaries, the cache, named directions, edits, CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from priorpaint.cli import main
from priorpaint.edits import directions as D
from priorpaint.edits.registry import parse_spec
from priorpaint.errors import InputError, ModelError

from conftest import FAST_PROJECTION

BOX = (140, 20, 180, 180)
FAST = FAST_PROJECTION
pytestmark = pytest.mark.usefixtures("tmp_cache")  # every test: an empty direction cache


# -- SeFa -------------------------------------------------------------------------------
def test_sefa_matches_the_first_layer_weights(tiny_gen):
    res = D.sefa(tiny_gen)
    v, ev = res["vectors"].double(), res["eigenvalues"]
    assert v.shape == (8, 8)
    assert torch.allclose(v @ v.t(), torch.eye(8, dtype=torch.float64), atol=1e-5)
    assert (ev[:-1] >= ev[1:] - 1e-6).all()
    # Independent formula: ConvTranspose2d weight (nz, C, 4, 4) scaled by eval BatchNorm.
    conv, bn = tiny_gen.main[0], tiny_gen.main[1]
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).double()
    a = (conv.weight.double() * scale[None, :, None, None]).reshape(8, -1).t()
    evals, evecs = torch.linalg.eigh(a.t() @ a)
    top = evecs[:, -1]
    assert abs(float(top @ v[0])) > 0.999
    assert math.isclose(float(evals[-1]), float(ev[0]), rel_tol=1e-4)


def test_sefa_uses_a_generators_own_weight(tiny_gen):
    w = torch.zeros(5, 8)
    w[0, 3] = 10.0
    w[1, 6] = 1.0
    tiny_gen.sefa_weight = lambda: w          # what StyleGAN2 supplies: its style weights
    v = D.compute_sefa(tiny_gen)["vectors"]
    assert torch.allclose(v[0].abs(), torch.eye(8)[3])
    assert torch.allclose(v[1].abs(), torch.eye(8)[6])
    tiny_gen.sefa_weight = lambda: torch.zeros(5, 7)
    with pytest.raises(ModelError, match="sefa_weight"):
        D.compute_sefa(tiny_gen)


def test_sefa_refuses_a_first_layer_that_is_not_affine(tiny_gen):
    tiny_gen.layers["b4"][1][0] = nn.Sequential(nn.Tanh(), tiny_gen.main[0])
    with pytest.raises(ModelError, match="sefa_weight"):
        D.compute_sefa(tiny_gen)


# -- the cache ---------------------------------------------------------------------------
def test_directions_are_cached_as_files_and_recomputed_on_a_version_change(tiny_gen, tmp_cache, monkeypatch):
    first = D.sefa(tiny_gen)["vectors"]
    files = list((tmp_cache / "directions").glob("tiny-dcgan-sefa-v1-*.safetensors"))
    assert len(files) == 1
    D.clear_memory_cache()
    calls = []
    from priorpaint.edits.directions import closedform as sefa_module
    real = sefa_module.compute_sefa
    monkeypatch.setattr(sefa_module, "compute_sefa", lambda g: calls.append(1) or real(g))
    assert torch.equal(D.sefa(tiny_gen)["vectors"], first) and calls == []   # read back from the file
    monkeypatch.setitem(D.METHOD_VERSIONS, "sefa", 2)
    D.sefa(tiny_gen)
    assert calls == [1]
    assert len(list((tmp_cache / "directions").glob("tiny-dcgan-sefa-v2-*.safetensors"))) == 1


def test_a_corrupt_cache_file_is_recomputed(tiny_gen, tmp_cache):
    good = D.sefa(tiny_gen)["vectors"].clone()
    path = D.cache_path(tiny_gen, "sefa", {})
    path.write_bytes(b"not a safetensors file")
    D.clear_memory_cache()
    assert torch.equal(D.sefa(tiny_gen)["vectors"], good)


def test_other_weights_get_other_cache_files(tiny_gen):
    a = D.cache_path(tiny_gen, "sefa", {})
    with torch.no_grad():
        tiny_gen.main[0].weight.mul_(2.0)
    assert D.cache_path(tiny_gen, "sefa", {}) != a


# -- GANSpace ----------------------------------------------------------------------------
def test_ganspace_matches_exact_pca_and_is_deterministic(tiny_gen):
    res = D.compute_ganspace(tiny_gen, samples=600, components=4, seed=3, batch=128)
    again = D.compute_ganspace(tiny_gen, samples=600, components=4, seed=3, batch=128)
    assert torch.equal(res["vectors"], again["vectors"])
    z = tiny_gen.sample_latents(600, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        x = tiny_gen.forward_to(z, "b8").reshape(600, -1).double()
    xc = x - x.mean(0)
    _, s, vt = torch.linalg.svd(xc, full_matrices=False)
    for k in range(3):
        assert abs(float(res["vectors"][k].double() @ vt[k])) > 0.99
        assert math.isclose(float(res["sigma"][k]), float(s[k] / math.sqrt(599)), rel_tol=1e-2)
    total = float((xc ** 2).sum() / 599)
    assert math.isclose(float(res["explained"][0]), float(s[0] ** 2 / 599) / total, rel_tol=1e-2)
    assert res["z_vectors"].shape == (4, 8)
    assert torch.allclose(res["z_vectors"].norm(dim=1), torch.ones(4), atol=1e-5)


def test_ganspace_h_direction_moves_the_split_feature_by_sigma(tiny_gen):
    d = D.raw_direction(tiny_gen, "ganspace", 0, samples=200)
    z = tiny_gen.sample_latents(1, seed=1)
    h = tiny_gen.forward_to(z)
    z_e, h_e, iv = D.shift(tiny_gen, z, h, "b8", d, 1.5)
    assert torch.equal(z_e, z) and not iv
    assert torch.allclose(h_e - h, 1.5 * d.scale * d.vector, atol=1e-6)


# -- supervised --------------------------------------------------------------------------
def test_fit_boundary_recovers_a_known_normal():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 10, generator=g)
    true = torch.zeros(10)
    true[2], true[7] = 0.6, -0.8
    y = ((x @ true + 0.3) > 0).float()
    fit = D.fit_boundary(x, y)
    assert float(fit["normal"] @ true) > 0.95 and float(fit["accuracy"]) > 0.95


def test_fit_boundary_refuses_one_class_and_bad_labels():
    x = torch.randn(6, 4)
    with pytest.raises(InputError, match="one positive and one negative"):
        D.fit_boundary(x, torch.ones(6))
    with pytest.raises(InputError, match="0 .negative. or 1"):
        D.fit_boundary(x, torch.tensor([0, 1, 2, 0, 1, 0.0]))
    with pytest.raises(InputError, match="latents but"):
        D.fit_boundary(x, torch.tensor([0, 1.0]))


def test_labelled_direction_from_a_few_user_examples():
    pos = torch.tensor([[2.0, 0.1, 0.0], [1.5, -0.2, 0.3], [2.5, 0.0, -0.1]])
    neg = torch.tensor([[-2.0, 0.2, 0.0], [-1.0, 0.1, 0.2]])
    n = D.labelled_direction(pos, neg)
    assert n.shape == (3,) and float(n[0]) > 0.9


def test_conditional_direction_is_orthogonal_to_the_conditions():
    n = torch.tensor([1.0, 1.0, 0.0])
    c = D.condition_direction(n, [torch.tensor([1.0, 0.0, 0.0])])
    assert torch.allclose(c, torch.tensor([0.0, 1.0, 0.0]))
    with pytest.raises(InputError, match="span"):
        D.condition_direction(torch.tensor([1.0, 0.0]), [torch.tensor([2.0, 0.0])])


def test_attribute_direction_increases_its_attribute(tiny_gen):
    n = D.attribute_direction(tiny_gen, "brightness", samples=300, quantile=0.3)
    z = tiny_gen.sample_latents(64, seed=9)
    with torch.no_grad():
        lo = D.ATTRIBUTES["brightness"][0](tiny_gen(z - 1.5 * n))
        hi = D.ATTRIBUTES["brightness"][0](tiny_gen(z + 1.5 * n))
    assert float((hi - lo).mean()) > 0
    cond = D.attribute_direction(tiny_gen, "warmth", samples=300, condition=("brightness",))
    assert abs(float(cond.reshape(-1) @ n.reshape(-1))) < 1e-5
    with pytest.raises(InputError, match="unknown attribute"):
        D.attribute_direction(tiny_gen, "smile", samples=50)


# -- applying directions -----------------------------------------------------------------
def test_latent_direction_keeps_the_residual_and_adds_up(tiny_gen):
    d = D.raw_direction(tiny_gen, "sefa", 0)
    z = tiny_gen.sample_latents(1, seed=2)
    base = tiny_gen.forward_to(z)
    h = base + 0.1 * torch.randn(base.shape, generator=torch.Generator().manual_seed(1))
    z0, h0, _ = D.shift(tiny_gen, z, h, "b8", d, 0.0)
    assert torch.equal(h0, h)
    z1, h1, _ = D.shift(tiny_gen, z, h, "b8", d, 1.0)
    z2, h2, _ = D.shift(tiny_gen, z1, h1, "b8", d, 0.5)
    z3, h3, _ = D.shift(tiny_gen, z, h, "b8", d, 1.5)
    assert torch.allclose(z2, z3, atol=1e-6) and torch.allclose(h2, h3, atol=1e-5)
    # the residual h − G_H(z) is kept
    assert torch.allclose(h3 - tiny_gen.forward_to(z3), h - tiny_gen.forward_to(z), atol=1e-5)


def test_feature_direction_after_the_split_becomes_an_intervention(tiny_gen):
    res = D.ganspace(tiny_gen, layer="b8", samples=100, components=3)
    d = D.Direction(name="x", description="", method="ganspace", space="h", layer="b8",
                    vector=res["vectors"][0].reshape((1,) + tuple(res["mean"].shape)), scale=float(res["sigma"][0]))
    z = tiny_gen.sample_latents(1, seed=2)
    h4 = tiny_gen.forward_to(z, "b4")
    z_e, h_e, iv = D.shift(tiny_gen, z, h4, "b4", d, 2.0)     # split b4, direction at the later b8
    assert torch.equal(h_e, h4) and set(iv) == {"b8"}
    b8 = tiny_gen.run(h4, start="b4", stop="b8")[0]
    assert torch.allclose(iv["b8"](b8), b8 + 2.0 * d.scale * d.vector)


def test_feature_direction_before_the_split_is_mapped_with_its_residual(tiny_gen):
    res = D.ganspace(tiny_gen, layer="b4", samples=100, components=3)
    d = D.Direction(name="x", description="", method="ganspace", space="h", layer="b4",
                    vector=res["vectors"][0].reshape((1,) + tuple(res["mean"].shape)), scale=float(res["sigma"][0]))
    z = tiny_gen.sample_latents(1, seed=2)
    h = tiny_gen.forward_to(z, "b8") + 0.05
    z_e, h_e, iv = D.shift(tiny_gen, z, h, "b8", d, 2.0)
    a = tiny_gen.forward_to(z, "b4")
    expect = tiny_gen.run(a + 2.0 * d.scale * d.vector, start="b4", stop="b8")[0] + 0.05
    assert not iv and torch.allclose(h_e, expect, atol=1e-5)


def test_direction_edit_on_a_session_and_clamping(tiny_session):
    s = tiny_session
    st = s.apply(["direction:sefa0=9", "direction:ganspace1=-1"])
    assert any("outside its range [-3, 3]; clamped to 3" in n for n in st.notes)
    assert st.applied[0]["applied_strength"] == 3.0 and st.applied[0]["strength"] == 9.0
    assert all("seconds" in a for a in st.applied)
    assert not torch.equal(s.generate(st), s.generate())
    r = s.render(st)
    assert r.metrics["changed_outside_mask"] == 0
    # strength 0 changes nothing
    assert torch.allclose(s.generate(s.apply(["direction:sefa2=0"])), s.generate(), atol=1e-6)


def test_unknown_direction_lists_the_known_names(default_gen, tiny_session):
    with pytest.raises(InputError) as e:
        D.get_direction(default_gen, "frown")
    msg = str(e.value)
    assert "unknown direction 'frown'" in msg and "head_turn" in msg and "exposure" in msg and "\n" not in msg
    with pytest.raises(InputError, match="unknown direction 'frown' for model tiny-dcgan; known: none named"):
        tiny_session.apply(["direction:frown=1"])
    with pytest.raises(InputError, match="component 40 does not exist"):
        tiny_session.apply(["direction:sefa40=1"])


@pytest.mark.parametrize("spec, message", [
    ("direction:frown", "direction:NAME=STRENGTH"),
    ("direction:=1", "direction:NAME=STRENGTH"),
    ("direction:frown=big", "strength 'big' is not a number"),
])
def test_bad_direction_specs(spec, message):
    with pytest.raises(InputError, match=message):
        parse_spec(spec)


def test_non_finite_strength_is_refused(tiny_session):
    with pytest.raises(InputError, match="finite"):
        tiny_session.apply([{"kind": "direction", "name": "sefa0", "strength": float("nan")}])
    with pytest.raises(InputError, match="not a number"):
        tiny_session.apply([{"kind": "direction", "name": "sefa0", "strength": "x"}])


def test_preview_reuses_the_base_features(tiny_gen, monkeypatch):
    d = D.raw_direction(tiny_gen, "sefa", 1)
    z = tiny_gen.sample_latents(1, seed=4)
    h = tiny_gen.forward_to(z)
    D.shift(tiny_gen, z, h, "b8", d, 1.0)
    calls = []
    real = tiny_gen.forward_to
    monkeypatch.setattr(tiny_gen, "forward_to", lambda *a, **k: calls.append(1) or real(*a, **k))
    D.shift(tiny_gen, z, h, "b8", d, 2.0)
    assert len(calls) == 1            # only G_H(z_e): G_H(z) is remembered
    with torch.no_grad():
        tiny_gen.main[0].weight.mul_(1.0)   # an in-place change of the weights invalidates it
    D.shift(tiny_gen, z, h, "b8", d, 2.0)
    assert len(calls) == 3


# -- named directions --------------------------------------------------------------------
def test_named_manifest_is_well_formed():
    data = D.load_named("dcgan-digiface-64")
    assert data["model"] == "dcgan-digiface-64"
    names = set()
    for d in data["directions"]:
        assert d["method"] in ("sefa", "ganspace", "supervised", "boundary")
        assert d["min"] <= 0 < d["max"] and d["min"] <= d.get("default", 0) <= d["max"]
        assert len(d["description"]) > 20
        if d["method"] == "supervised":
            assert d["attribute"] in D.ATTRIBUTES
        elif d["method"] == "boundary":
            assert len(d["vector"]) == 100 and d["derived"]["attribute"] and d["measure"]
        else:
            assert isinstance(d["component"], int) and d["sign"] in (1, -1)
        names.add(d["name"])
    assert {"head_turn", "skin_tone", "exposure"} <= names
    rows = D.list_directions("dcgan-digiface-64")
    assert [r["name"] for r in rows] == [d["name"] for d in data["directions"]]
    assert set(rows[0]) == {"name", "description", "min", "max", "default", "method", "structural"}
    assert {r["name"] for r in rows if r["structural"]} == {"head_turn", "head_tilt", "profile", "smile"}


def test_a_model_without_named_directions_lists_raw_components():
    rows = D.list_directions("no-such-model-here")
    assert rows[0]["name"] == "sefa0" and any(r["name"] == "ganspace0" for r in rows)


def test_named_sefa_direction_on_the_embedded_model(default_gen):
    d = D.get_direction(default_gen, "warm_light")
    raw = D.sefa(default_gen)["vectors"][6]
    assert d.space == "z" and torch.allclose(d.vector.reshape(-1), -raw)     # sign −1 in the manifest
    assert (d.min, d.max) == (-3.0, 3.0)


# -- CLI ---------------------------------------------------------------------------------
def test_cli_lists_directions(capsys):
    assert main(["directions"]) == 0
    out = capsys.readouterr().out
    assert "head_turn" in out and "[-3, +3]" in out
    assert main(["directions", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert any(r["name"] == "skin_tone" for r in rows)
    assert main(["directions", "--model", "nope"]) == 2


def test_cli_edit_with_directions_reports_each_edit(tmp_path, astronaut_path):
    out, rep = tmp_path / "o.png", tmp_path / "r.json"
    rc = main(["edit", str(astronaut_path), "--box", "140,20,180,180", "--steps", "4",
               "--edit", "direction:head_turn=1.5", "--edit", "direction:skin_tone=-5",
               "-o", str(out), "--report", str(rep)])
    assert rc == 0
    report = json.loads(rep.read_text())
    assert [e["name"] for e in report["edits"]] == ["head_turn", "skin_tone"]
    assert all(e["seconds"] >= 0 for e in report["edits"])
    assert report["changed_outside_mask"] == 0
    assert any("clamped to -3" in n for n in report["notes"])


def test_cli_unknown_direction_exits_2(tmp_path, astronaut_path, capsys, monkeypatch):
    def no_projection(*args, **kwargs):
        raise AssertionError("an unknown direction must be refused before projecting")
    monkeypatch.setattr("priorpaint.session.project", no_projection)
    rc = main(["edit", str(astronaut_path), "--box", "140,20,180,180", "--steps", "2",
               "--edit", "direction:frown=1", "-o", str(tmp_path / "o.png")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "unknown direction 'frown'" in err and "head_turn" in err
    assert not (tmp_path / "o.png").exists()


def test_derive_writes_grids_and_measurements(tiny_gen, tmp_path):
    from PIL import Image
    D.derive(tiny_gen, tmp_path / "out", count=2, samples=120)
    for m in ("sefa", "ganspace", "ganspace_z", "supervised"):
        im = Image.open(tmp_path / "out" / f"tiny-dcgan-{m}.png")
        rows = 2 if m != "supervised" else 3
        assert im.size == (3 * 7 * 16 + 2 * 4, rows * 20 - 4)       # 3 faces × 7 strengths; rows = components
    data = json.loads((tmp_path / "out" / "tiny-dcgan-measurements.json").read_text())
    assert data["strengths"] == [-3, -2, -1, 0, 1, 2, 3]
    assert len(data["components"]["sefa"]) == 2 and "left_right" in data["components"]["sefa"][0]
    # the supervised brightness direction measurably raises brightness
    assert data["components"]["supervised"][0]["brightness"] > 0


def test_direction_from_a_users_example_images(tiny_gen):
    """Bright examples vs dark examples: the fitted direction brightens generated images."""
    from priorpaint.compositing.blend import to_uint8
    z = tiny_gen.sample_latents(200, seed=5)
    with torch.no_grad():
        imgs = tiny_gen(z)
    b = D.ATTRIBUTES["brightness"][0](imgs)
    order = torch.argsort(b)
    pos = [to_uint8(imgs[i]) for i in order[-3:]]
    neg = [to_uint8(imgs[i]) for i in order[:3]]
    n = D.examples_direction(tiny_gen, pos, neg, steps=20)
    zs = tiny_gen.sample_latents(64, seed=6)
    with torch.no_grad():
        gain = D.ATTRIBUTES["brightness"][0](tiny_gen(zs + 2 * n)) - D.ATTRIBUTES["brightness"][0](tiny_gen(zs - 2 * n))
    assert float(gain.mean()) > 0
    with pytest.raises(InputError, match="one positive and one negative"):
        D.examples_direction(tiny_gen, pos, [])
