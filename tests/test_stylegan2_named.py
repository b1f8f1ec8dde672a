"""The published StyleGAN2 directions (encoder4editing: InterFaceGAN, GANSpace PCA of W):
the shipped files and their provenance, the listings, and every named edit reproduced
exactly against the reference formulas and the independent reference forward of
``test_stylegan2`` (rosinality's maths, per-sample grouped convolutions) on random-weight
config-f layouts at 1024 px (18 styles) and 256 px (14 styles).  No real weights."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from priorpaint.compositing.blend import to_uint8
from priorpaint.edits import directions as D
from priorpaint.edits.directions.published import convert_published
from priorpaint.edits.registry import EditState
from priorpaint.errors import InputError, ModelError, WeightsIntegrityError
from priorpaint.models.manifest import manifest_dirs
from priorpaint.models.stylegan2 import StyleGAN2Generator, infer_config

from test_stylegan2 import reference_forward, rosinality_state_dict

pytestmark = pytest.mark.usefixtures("one_thread")

MANIFEST = manifest_dirs()[0]
DIRS = MANIFEST / "directions"
FFHQ = ["age", "smile", "pose", "eye_openness", "smile_ganspace", "trimmed_beard", "white_hair", "lipstick",
        "age_ganspace", "pose_yaw", "gender", "glasses"]
CARS = ["viewpoint", "cube", "colour", "grass"]
#: the GANSpace authors' named edits as encoder4editing's scripts give them: (component, first, last, value)
GANSPACE = {"eye_openness": (54, 7, 8, 20), "smile_ganspace": (46, 4, 5, -20), "trimmed_beard": (58, 7, 9, 20),
            "white_hair": (57, 7, 10, -24), "lipstick": (34, 10, 11, 20), "age_ganspace": (20, 6, 7, 8),
            "pose_yaw": (1, 0, 18, 0.5), "gender": (0, 0, 18, -1.5), "glasses": (12, 0, 4, 10),
            "viewpoint": (0, 0, 5, 2), "cube": (16, 3, 6, 25), "colour": (22, 9, 11, -8), "grass": (41, 9, 11, -18)}
INTERFACEGAN = {"age": "age", "smile": "smile", "pose": "pose"}
#: sha256 of the published .pt files (encoder4editing @ 99ea5057), as read there
SOURCES = {
    "editings/interfacegan_directions/age.pt": "50074516b1629707d89b5e43d6b8abd1792212fa3b961a87a11323d6a5222ae0",
    "editings/interfacegan_directions/smile.pt": "817a7e732b59dee9eba862bec8bd7e8373568443bc9f9731a21cf9b0356f0653",
    "editings/interfacegan_directions/pose.pt": "736e0eacc8488fa0b020a2e7bd256b957284c364191dfea693705e5d06d43e7d",
    "editings/ganspace_pca/ffhq_pca.pt": "4d7f9df1c96180d9026b9cb8d04753579fbf385f321a9d0e263641601c5e5d36",
    "editings/ganspace_pca/cars_pca.pt": "a5c3bae61ecd85de077fbbf103f5f30cf4b7676fe23a8508166eaf2ce73c8392",
}
TOL = 1e-4


def small_channels(size):
    ch, r = {}, 4
    while r <= size:
        ch[r] = 8 if r <= 64 else 4
        r *= 2
    return ch


def make_model(tmp, size, named, seed=0):
    """A random-weight config-f layout (style_dim 512, ``2·log2(size) − 2`` styles, few channels)
    saved as safetensors with a manifest entry naming the directions set ``named``.
    Returns (generator, state dict, model id)."""
    from safetensors.torch import save_file

    from priorpaint.models.registry import load_generator
    sd = rosinality_state_dict(size=size, style_dim=512, n_mlp=2, channels=small_channels(size), seed=seed)
    mid = f"sg2-named-{named}-{size}"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp / f"{mid}.safetensors"))
    raw = {"id": mid, "kind": "generator", "architecture": "stylegan2", "resolution": size,
           "config": dict(infer_config(sd)), "split_layer": "b32", "named_directions": named,
           "sources": [{"type": "file", "path": str(tmp / f"{mid}.safetensors"), "format": "safetensors"}]}
    (tmp / f"{mid}.json").write_text(json.dumps(raw))
    gen = load_generator(mid, device="cpu")
    for p in gen.parameters():
        p.requires_grad_(False)
    return gen, sd, mid


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """A manifest folder with the random-weight test models, in front of the real one."""
    tmp = tmp_path_factory.mktemp("manifest")
    mp = pytest.MonkeyPatch()
    mp.setenv("PRIORPAINT_MANIFEST_DIR", os.pathsep.join([str(tmp), str(MANIFEST)]))
    mp.setenv("PRIORPAINT_CACHE", str(tmp / "cache"))
    D.clear_memory_cache()
    yield tmp
    D.clear_memory_cache()
    mp.undo()


@pytest.fixture(scope="module")
def ffhq1024(manifest):
    return make_model(manifest, 1024, "stylegan2-ffhq")


@pytest.fixture(scope="module")
def ffhq256(manifest):
    return make_model(manifest, 256, "stylegan2-ffhq", seed=1)


@pytest.fixture(scope="module")
def car256(manifest):
    return make_model(manifest, 256, "stylegan2-car", seed=2)


def published(name):
    from safetensors.torch import load_file
    return load_file(str(DIRS / name))


def varied_wplus(gen, seed):
    """A w+ whose styles differ (as a projection's do), so reading ``w[0]`` matters."""
    w = gen.sample_latents(1, seed=seed)
    g = torch.Generator().manual_seed(seed + 100)
    return w + 0.3 * torch.randn(w.shape, generator=g)


def by_hand(name, w, strength):
    """The published formulas, written out: InterFaceGAN ``w + α·d``; e4e's GANSpace edit
    (``coord = ((w[0] − mean)·comp[k]) / std[k]``; ``delta = (s − coord)·comp[k]·std[k]``
    on styles a..b−1) at the strength's fraction (α = 1: exactly e4e's edit)."""
    if name in INTERFACEGAN:
        d = published(f"e4e-interfacegan-{name}.safetensors")["direction"]
        return w + strength * (d if d.dim() == 3 else d[:, None, :])
    k, a, b, s = GANSPACE[name]
    pca = published("e4e-ganspace-cars.safetensors" if name in CARS else "e4e-ganspace-ffhq.safetensors")
    if strength < 0 and name == "viewpoint":
        s, strength = -2.0, -strength
    comp, std = pca["comp"][k].reshape(-1), pca["std"][k]
    coord = torch.sum((w[0, 0] - pca["mean"].reshape(-1)) * comp) / std
    delta = (s - coord) * comp * std
    out = w.clone()
    out[0, a:b] += strength * delta
    return out


def render(gen, name, w, strength, model_id=None):
    """priorpaint's render: the ``direction`` edit on a state at ``w`` (h = G_H(w)), then G_F."""
    split = gen.default_split
    with torch.no_grad():
        state = EditState(z=w, h=gen.forward_to(w, split))
        new = D.apply_direction(gen, state, split, D.get_direction(gen, name, model_id), strength)
        return gen.forward_from(split, new.h, interventions=new.interventions or None, z=new.z), new


def check_exact(gen, sd, names, strengths, seed=3):
    w = varied_wplus(gen, seed)
    with torch.no_grad():
        base = reference_forward(sd, w, n_mlp=2, style_dim=512)
        assert (gen(w) - base).abs().max() <= TOL
        for name in names:
            for s in strengths[name] if isinstance(strengths, dict) else strengths:
                img, state = render(gen, name, w, s)
                ref = reference_forward(sd, by_hand(name, w, s), n_mlp=2, style_dim=512)
                assert float(ref.abs().max()) < 20  # the random weights keep the images in a sane range
                diff = float((img - ref).abs().max())
                assert diff <= TOL, (name, s, diff)
                moved = float((ref - base).abs().max())
                assert moved > 1e-3, (name, s, moved)  # the edit changed the picture (the test can fail)
                assert not state.notes


# -- the shipped data ------------------------------------------------------------------------
def test_shipped_files_match_their_entries_and_the_published_sources():
    seen = set()
    for set_name, names in (("stylegan2-ffhq", FFHQ), ("stylegan2-car", CARS)):
        data = json.loads((DIRS / f"{set_name}.json").read_text())
        prov = data["provenance"]
        assert prov["repository"] == "https://github.com/omertov/encoder4editing"
        assert prov["commit"] == "99ea50578695d2e8a1cf7259d8ee89b23eea942b"
        assert prov["license"] == "MIT" and prov["copyright"] == "Copyright (c) 2021 omertov"
        lic = (DIRS / prov["license_file"]).read_text()
        assert lic.startswith("MIT License") and "Copyright (c) 2021 omertov" in lic
        for fname, meta in data["files"].items():
            assert hashlib.sha256((DIRS / fname).read_bytes()).hexdigest() == meta["sha256"]
            assert SOURCES[meta["source_path"]] == meta["source_sha256"]
            seen.add(meta["source_path"])
        assert [d["name"] for d in data["directions"]] == names
        for d in data["directions"]:
            if d["method"] == "ganspace_w":
                k, a, b, v = GANSPACE[d["name"]]
                assert (d["component"], d["layers"], d["value"]) == (k, [a, b], v)
    assert seen == set(SOURCES)
    assert tuple(published("e4e-interfacegan-pose.safetensors")["direction"].shape) == (1, 18, 512)
    for f in ("ffhq", "cars"):
        t = published(f"e4e-ganspace-{f}.safetensors")
        assert {k: tuple(v.shape) for k, v in t.items()} == {"mean": (1, 512), "comp": (80, 1, 512), "std": (80,)}
        assert torch.allclose(t["comp"].reshape(80, -1).norm(dim=1), torch.ones(80), atol=1e-5)


def test_convert_reads_plain_tensors_only(tmp_path):
    d = published("e4e-interfacegan-pose.safetensors")["direction"]
    torch.save(d, tmp_path / "pose.pt")
    out = convert_published(tmp_path / "pose.pt", tmp_path / "pose.safetensors")
    assert out["tensors"] == {"direction": [1, 18, 512]}
    assert out["source_sha256"] == hashlib.sha256((tmp_path / "pose.pt").read_bytes()).hexdigest()
    from safetensors.torch import load_file
    assert torch.equal(load_file(str(tmp_path / "pose.safetensors"))["direction"], d)
    # the same input gives the same bytes (the shipped files can be re-made and compared)
    again = convert_published(tmp_path / "pose.pt", tmp_path / "again.safetensors")
    assert again["sha256"] == out["sha256"]
    torch.save({"comp": d, "note": "text"}, tmp_path / "mixed.pt")
    with pytest.raises(ModelError, match=r"mixed\.pt: expected a tensor or a dict of tensors"):
        convert_published(tmp_path / "mixed.pt", tmp_path / "mixed.safetensors")
    torch.save({"d": d, "code": Path("x")}, tmp_path / "code.pt")  # an object: never unpickled
    with pytest.raises(ModelError, match=r"code\.pt: not a file of plain tensors"):
        convert_published(tmp_path / "code.pt", tmp_path / "code.safetensors")
    with pytest.raises(InputError, match=r"must end in \.safetensors"):
        convert_published(tmp_path / "pose.pt", tmp_path / "pose.bin")
    from priorpaint.cli import main
    assert main(["directions", "--convert", str(tmp_path / "pose.pt"), str(tmp_path / "cli.safetensors")]) == 0
    assert (tmp_path / "cli.safetensors").read_bytes() == (tmp_path / "pose.safetensors").read_bytes()


# -- listings (no generator, no download) ----------------------------------------------------------
def test_listings_of_the_hub_models_need_no_weights(monkeypatch, capsys):
    from priorpaint.cli import main
    from priorpaint.models import registry

    def no_load(*a, **k):
        raise AssertionError("listing directions must not load or download a model")
    monkeypatch.setattr(registry, "load_generator", no_load)
    for mid, names in (("stylegan2-ffhq-1024", FFHQ), ("stylegan2-ffhq-1024-tf", FFHQ),
                       ("stylegan2-car-512", CARS), ("stylegan2-car-512-tf", CARS)):
        rows = D.list_directions(mid)
        assert [r["name"] for r in rows] == names
        assert all(r["description"] and r["min"] < 0 < r["max"] and r["default"] == 0 for r in rows)
    rows = {r["name"]: r for r in D.list_directions("stylegan2-ffhq-1024")}
    assert (rows["age"]["min"], rows["age"]["max"], rows["age"]["method"]) == (-5, 5, "interfacegan")
    assert (rows["glasses"]["min"], rows["glasses"]["max"], rows["glasses"]["method"]) == (-1, 2, "ganspace_w")
    for mid in ("stylegan2-church-256", "stylegan2-cat-256-tf", "stylegan2-horse-256"):
        rows = D.list_directions(mid)
        assert [r["name"] for r in rows] == [f"sefa{k}" for k in range(5)] + [f"ganspace{k}" for k in range(5)]
        assert all("no published named edits exist" in r["description"] for r in rows)
    assert main(["directions", "--model", "stylegan2-ffhq-1024"]) == 0
    out = capsys.readouterr().out
    assert "encoder4editing" in out and "MIT" in out
    for name in FFHQ:
        assert f"\n{name} " in "\n" + out
    assert "[-5, +5]" in out and "[-1, +2]" in out
    assert main(["directions", "--model", "stylegan2-church-256"]) == 0
    assert "no published named edits exist for this model" in capsys.readouterr().out


def test_the_api_directions_endpoint_lists_them(manifest, ffhq256):
    from priorpaint.app.api import Backend
    rows = json.loads(Backend().directions(ffhq256[2]))
    assert [r["name"] for r in rows] == FFHQ
    assert {r["name"]: (r["min"], r["max"]) for r in rows}["pose"] == (-5, 5)
    rows = json.loads(Backend().directions("stylegan2-horse-256"))
    assert rows[0]["name"] == "sefa0" and "no published named edits" in rows[0]["description"]


# -- exactness ------------------------------------------------------------------------------
def test_every_ffhq_edit_is_exact_at_1024(ffhq1024):
    gen, sd, _ = ffhq1024
    assert gen.n_latent == 18 and gen.style_dim == 512 and gen.resolution == 1024
    # one strength each here (negatives and fractions are covered at 256 px, which is 16x cheaper)
    strengths = {n: ([3.0] if n in INTERFACEGAN else [1.0]) for n in FFHQ}
    strengths.update({"pose": [-2.0], "gender": [-1.0], "pose_yaw": [0.5]})
    check_exact(gen, sd, FFHQ, strengths)


def test_ffhq_and_car_edits_are_exact_at_256(ffhq256, car256):
    gen, sd, _ = ffhq256
    assert gen.n_latent == 14
    fits = [n for n in FFHQ if n not in ("pose", "pose_yaw", "gender")]  # these need all 18 styles
    check_exact(gen, sd, fits, {n: ([3.0] if n in INTERFACEGAN else [1.0, -0.5]) for n in fits})
    gen, sd, _ = car256
    check_exact(gen, sd, CARS, {n: [1.0, -1.0, 0.5] for n in CARS})


def test_age_3_is_g_of_w_plus_3d(ffhq1024):
    gen, sd, _ = ffhq1024
    w = gen.sample_latents(1, seed=9)  # a plain w broadcast to every style
    d = published("e4e-interfacegan-age.safetensors")["direction"]
    img, _ = render(gen, "age", w, 3.0)
    with torch.no_grad():
        ref = reference_forward(sd, (w[:, 0] + 3 * d)[:, None].repeat(1, 18, 1), n_mlp=2, style_dim=512)
    assert float((img - ref).abs().max()) <= TOL


def test_ganspace_edit_sets_the_coordinate_and_keeps_other_styles(ffhq1024):
    gen, _, _ = ffhq1024
    w = varied_wplus(gen, 4)
    direction = D.get_direction(gen, "white_hair")
    z_e = w + direction.latent_delta(w, 1.0)
    pca = published("e4e-ganspace-ffhq.safetensors")
    comp, std, mean = pca["comp"][57].reshape(-1), float(pca["std"][57]), pca["mean"].reshape(-1)
    for style in (7, 8, 9):   # the edited styles now sit at the published coordinate along the component
        coord_e = float(((z_e[0, style] - mean) @ comp - (w[0, style] - w[0, 0]) @ comp) / std)
        assert coord_e == pytest.approx(-24, abs=1e-3)
    assert torch.equal(z_e[0, :7], w[0, :7]) and torch.equal(z_e[0, 10:], w[0, 10:])
    assert torch.equal(direction.latent_delta(w, 0.0), torch.zeros_like(w))


# -- the pipeline: session, live preview, G′, batch recipe ------------------------------------
def test_w_plus_edits_through_the_session_preview_and_gprime(ffhq256):
    from priorpaint.adaptation import AdaptConfig
    from priorpaint.projection.project import ProjectionConfig
    from priorpaint.session import EditSession
    gen, _, _ = ffhq256
    with torch.no_grad():
        img = gen(gen.sample_latents(1, seed=21))[0]
    photo = np.full((320, 320, 3), 128, np.uint8)
    photo[32:288, 32:288] = to_uint8(img)
    s = EditSession.open(photo, box=(32, 32, 256, 256), gen=gen, margin=0.0)
    p = s.project(ProjectionConfig(steps=2, candidates=2, starts=1, perceptual=False))
    split = p.split
    # lipstick writes styles 10 only: after the split, so h stays and G_F reads the new style
    st = s.apply(["direction:lipstick=1"])
    assert torch.equal(st.h, p.h) and not torch.equal(st.z, p.z)
    with torch.no_grad():
        expect = gen.forward_from(split, p.h, z=st.z)
    assert torch.equal(s.generate(st), expect)
    assert float((s.generate(st) - s.generate(None)).abs().max()) > 1e-3
    # eye_openness writes style 7: read by the split block's ToRGB and the next block's conv
    st = s.apply(["direction:eye_openness=1"])
    with torch.no_grad():
        h_e = p.h + gen.forward_to(st.z, split) - gen.forward_to(p.z, split)
        assert torch.allclose(s.generate(st), gen.forward_from(split, h_e, z=st.z), atol=1e-5)
    assert not torch.equal(st.h, p.h)
    # combined, with an out-of-range strength (clamped, with a note); preview and G′ both run
    st = s.apply(["direction:age=9", "direction:glasses=0.5"])
    assert any("clamped to 5" in n for n in st.notes)
    layer = s.preview_layer(st, size=64)
    assert layer.ndim == 3 and layer.shape[2] == 3
    r = s.render(st, adapt=True, adapt_options=AdaptConfig(steps=2, early_stop=False, perceptual=False))
    assert r.metrics["changed_outside_mask"] == 0


def test_batch_recipe_accepts_named_edits(ffhq256):
    from priorpaint.batch.photo import Recipe, check_recipe, render_selection
    gen, _, mid = ffhq256
    ok = Recipe(edits=("direction:smile=2", "direction:trimmed_beard=1"), model=mid, steps=1, adapt=False)
    assert [sp["name"] for sp in check_recipe(ok, gen)] == ["smile", "trimmed_beard"]
    photo = np.full((96, 96, 3), 100, np.uint8)
    result, report = render_selection(photo, ok, box=(16, 16, 64, 64), gen=gen)
    assert report["model"] == mid and report["changed_outside_mask"] == 0
    with pytest.raises(InputError, match=r"unknown direction 'grass' .*known: age, smile, pose, eye_openness"):
        check_recipe(Recipe(edits=("direction:grass=1",), model=mid), gen)
    # a published edit that does not fit this model is refused before the slow projection
    with pytest.raises(InputError, match=r"'gender' edits styles 0\.\.17, beyond .* 14 styles"):
        check_recipe(Recipe(edits=("direction:age=1", "direction:gender=1"), model=mid), gen)


# -- bad input ----------------------------------------------------------------------------------
def test_a_named_edit_the_model_lacks_lists_its_directions(car256, ffhq256):
    gen, _, _ = car256
    with pytest.raises(InputError, match=r"unknown direction 'glasses' for model sg2-named-stylegan2-car-256; "
                                         r"known: viewpoint, cube, colour, grass"):
        D.check_direction(gen, {"name": "glasses"})
    with pytest.raises(InputError, match=r"known: age, smile, pose, eye_openness, smile_ganspace"):
        D.get_direction(ffhq256[0], "cube")


def test_a_layer_range_beyond_the_model_is_refused(ffhq256):
    gen, _, _ = ffhq256
    with pytest.raises(InputError, match=r"direction 'pose_yaw' edits styles 0\.\.17, beyond model "
                                         r"sg2-named-stylegan2-ffhq-256's 14 styles"):
        D.get_direction(gen, "pose_yaw")
    with pytest.raises(InputError, match=r"direction 'pose' is a w\+ direction for 18 styles; model "
                                         r"sg2-named-stylegan2-ffhq-256 has 14 styles"):
        D.get_direction(gen, "pose")
    # a generator whose input is a single w cannot take a range of styles (but can take a w boundary)
    sd = rosinality_state_dict(size=64, style_dim=512, n_mlp=2, channels=small_channels(64))
    wgen = StyleGAN2Generator.from_config(dict(infer_config(sd), latent_space="w"))
    wgen.load_state_dict(sd)
    wgen.model_id = gen.model_id
    with pytest.raises(InputError, match=r"single w latent, not w\+"):
        D.get_direction(wgen, "glasses")
    d = D.get_direction(wgen, "age")
    assert tuple(d.vector.shape) == (1, 512)


def test_a_direction_file_with_a_wrong_sha256_is_refused(tmp_path, monkeypatch, ffhq256):
    gen, _, _ = ffhq256
    folder = tmp_path / "m"
    (folder / "directions").mkdir(parents=True)
    for f in DIRS.iterdir():
        if f.name.startswith(("e4e-", "stylegan2-ffhq")):
            shutil.copy(f, folder / "directions" / f.name)
    bad = bytearray((folder / "directions" / "e4e-interfacegan-smile.safetensors").read_bytes())
    bad[-1] ^= 1
    (folder / "directions" / "e4e-interfacegan-smile.safetensors").write_bytes(bytes(bad))
    test_manifest = os.environ["PRIORPAINT_MANIFEST_DIR"].split(os.pathsep)[0]
    shutil.copy(Path(test_manifest) / f"{gen.model_id}.json", folder / f"{gen.model_id}.json")
    monkeypatch.setenv("PRIORPAINT_MANIFEST_DIR", str(folder))
    D.clear_memory_cache()
    try:
        with pytest.raises(WeightsIntegrityError, match=r"direction data file e4e-interfacegan-smile\.safetensors: "
                                                        r"sha256 .* does not match its entry"):
            D.get_direction(gen, "smile")
        assert D.get_direction(gen, "age").name == "age"   # the intact files still load
    finally:
        D.clear_memory_cache()


def test_strength_outside_the_range_is_clamped_with_a_note(ffhq256):
    gen, _, _ = ffhq256
    w = varied_wplus(gen, 5)
    img, state = render(gen, "glasses", w, 7.0)
    assert state.notes == ["strength 7 of direction 'glasses' is outside its range [-1, 2]; clamped to 2"]
    assert torch.equal(img, render(gen, "glasses", w, 2.0)[0])
    with pytest.raises(InputError, match=r"must be a finite number"):
        render(gen, "age", w, float("nan"))


def test_bench_times_the_preview_of_a_named_edit():
    from priorpaint.bench.stylegan2 import bench_stylegan2
    sec = bench_stylegan2({}, size=64, style_dim=512, n_mlp=1, steps=1, devices=["cpu"],
                          channels=small_channels(64))
    assert sec["preview_wplus_edit"] == "white_hair" and sec["preview_wplus_ms"] > 0
    assert sec["preview_w_edit"] == "age" and sec["preview_w_ms"] > 0
    prog = sec["progressive"]      # the progressive preview: an approximate frame first, its error measured
    assert prog["first_frame_ms"] > 0 and prog["exact_frame_ms"] > 0 and prog["moved"] > 0
    for how in ("extrapolated", "interpolated", "taylor"):
        assert prog[how]["frames"] > 0 and prog[how]["psnr_min_db"] > 0 and prog[how]["max_abs_diff"] >= 0
    small = bench_stylegan2({}, size=16, style_dim=8, n_mlp=1, steps=1, devices=["cpu"],
                            channels={4: 8, 8: 8, 16: 8})
    assert small["preview_wplus_ms"] is None and "8-d styles" in small["preview_skipped"]
    assert "8-d styles" in small["progressive"]["skipped"]
