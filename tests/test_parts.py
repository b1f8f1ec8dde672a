"""Part discovery: spherical k-means, de-phasing, the cached centroids and the shipped parts file."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from priorpaint.edits import parts as P


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PRIORPAINT_CACHE", str(tmp_path / "cache"))
    P._parts_cache.clear()
    yield tmp_path / "cache"
    P._parts_cache.clear()


def test_kmeans_recovers_separated_clusters_and_is_deterministic():
    g = torch.Generator().manual_seed(0)
    centres = F.normalize(torch.randn(4, 16, generator=g), dim=1)
    truth = torch.arange(4).repeat_interleave(50)
    x = centres[truth] + 0.05 * torch.randn(200, 16, generator=g)
    c1, l1 = P.kmeans(x, 4, seed=3)
    c2, l2 = P.kmeans(x, 4, seed=3)
    assert torch.equal(l1, l2) and torch.equal(c1, c2)
    # every true cluster maps to exactly one found cluster
    pairs = {(int(t), int(l)) for t, l in zip(truth, l1)}
    assert len(pairs) == 4 and len({l for _, l in pairs}) == 4
    assert torch.allclose(c1.norm(dim=1), torch.ones(4), atol=1e-5)


def test_kmeans_refuses_fewer_points_than_clusters():
    with pytest.raises(ValueError, match="at least k=5"):
        P.kmeans(torch.randn(3, 4), 5)


def test_dephase_cancels_the_transposed_convolution_checkerboard():
    yy, xx = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    checker = ((yy + xx) % 2).float()[None, None].repeat(1, 3, 1, 1)
    flat = P.dephase(checker)
    assert torch.allclose(flat[..., :-1, :-1], torch.full_like(flat[..., :-1, :-1], 0.5))
    x = P.normalised_features({"a": checker + 1.0, "b": torch.rand(1, 2, 4, 4)}, ["a", "b"], 8)
    assert x.shape == (1, 5, 8, 8)
    assert torch.allclose(x.norm(dim=1), torch.ones(1, 8, 8), atol=1e-5)


def test_parts_without_a_file_are_recomputed_and_cached(tiny_gen, cache):
    parts = P.get_parts(tiny_gen)
    assert parts.recipe.layers == ["b4", "b8"]           # the two layers before the image
    assert parts.names == [f"part{j}" for j in range(parts.recipe.k)]
    files = list((cache / "concepts" / "tiny-dcgan").glob("parts-*.safetensors"))
    assert len(files) == 1
    P._parts_cache.clear()
    again = P.get_parts(tiny_gen)                         # read back from the cache file
    assert torch.equal(again.centroids, parts.centroids)
    z = tiny_gen.sample_latents(3, seed=5)
    cls, ims = parts.labels(tiny_gen, z, out_size=16)
    assert cls.shape == (3, 16, 16) and ims.shape == (3, 3, 16, 16)
    assert int(cls.min()) >= 0 and int(cls.max()) < len(parts.names)


def test_derive_writes_names_legend_and_maps_and_keeps_names(tiny_gen, cache, tmp_path):
    out = tmp_path / "parts.json"
    recipe = P.PartsRecipe(layers=["b4", "b8"], k=3, samples=12, size=16, iters=10, pixels_per_sample=64)
    data = P.derive(tiny_gen, recipe, names={0: "sky", 2: "sky"}, out_json=out, artifacts=tmp_path / "maps")
    assert [c["name"] for c in data["clusters"]] == ["sky", "part1", "sky"]
    assert list(data["legend"]) == ["sky", "part1"]
    assert (tmp_path / "maps" / "overlay.png").exists() and (tmp_path / "maps" / "cluster2.png").exists()
    assert json.loads(out.read_text())["recipe"]["k"] == 3
    # a re-derivation with the same recipe reproduces the clusters and keeps the names
    again = P.derive(tiny_gen, None, out_json=out)
    assert [c["name"] for c in again["clusters"]] == ["sky", "part1", "sky"]
    assert [c["area"] for c in again["clusters"]] == [c["area"] for c in data["clusters"]]
    parts = P.get_parts(tiny_gen, out)
    assert parts.names == ["sky", "part1"] and parts.cluster_to_class().tolist() == [0, 1, 0]


def test_inconsistent_parts_file_is_refused(tiny_gen, cache, tmp_path):
    out = tmp_path / "parts.json"
    recipe = P.PartsRecipe(layers=["b4", "b8"], k=2, samples=8, size=16, iters=5, pixels_per_sample=32)
    data = P.derive(tiny_gen, recipe, out_json=out)
    data["legend"] = {"part0": [1, 2, 3]}
    out.write_text(json.dumps(data))
    from priorpaint.errors import ModelError
    with pytest.raises(ModelError, match="inconsistent"):
        P.get_parts(tiny_gen, out)


@pytest.mark.slow
def test_shipped_parts_of_the_embedded_model_are_reproduced(default_gen, cache):
    """The recipe in weights_manifest/parts re-derives the clusters the names were given to."""
    raw = P.read_parts_file("dcgan-digiface-64")
    assert raw is not None, "weights_manifest/parts/dcgan-digiface-64.json is missing"
    recipe = P._recipe_from(raw)
    cents, maps, ims = P.fit_clusters(default_gen, recipe)
    fp = P.cluster_fingerprint(maps, ims, recipe.k)
    for shipped, now in zip(raw["clusters"], fp):
        assert abs(shipped["area"] - now["area"]) < 0.01
        assert max(abs(a - b) for a, b in zip(shipped["mean_rgb"], now["mean_rgb"])) < 3
    names = set(raw["legend"])
    assert {"background", "hair", "eyes-nose-mouth"} <= names
    assert all(c["name"] in names for c in raw["clusters"])
