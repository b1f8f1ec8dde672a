"""G′ (the image-specific generator) and rendering through it.

Math on tiny random generators; one integration module on the embedded model with a short
projection and short fits.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from priorpaint.adaptation import AdaptConfig, adapt_config, fit_gprime
from priorpaint.metrics import pearson
from priorpaint.adaptation.gprime import (DeltaNet, FreeDeltas, perturbed_layers, run_multiplicative,
                                          run_tuned)
from priorpaint.errors import Cancelled, InputError
from priorpaint.jobs import CancelToken
from priorpaint.models.dcgan import DCGANGenerator


@pytest.fixture
def gen32():
    """A tiny random DCGAN with two layers to perturb after a b4 split (b8, b16)."""
    torch.manual_seed(0)
    gen = DCGANGenerator(nz=8, ngf=4, resolution=32, split="b4")
    gen.model_id = "tiny-dcgan-32"
    for m in gen.modules():  # wider than the default init, so the images are not ~0
        if isinstance(m, torch.nn.ConvTranspose2d):
            m.weight.data.normal_(0.0, 0.3)
    for p in gen.parameters():
        p.requires_grad_(False)
    # Non-trivial normalisation statistics, so the weight copy's eval mode matters.
    for m in gen.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return gen.eval()


def _latent(gen, seed=1):
    z = gen.sample_latents(1, seed=seed)
    with torch.no_grad():
        return z, gen.forward_to(z)


def _shapes(gen, h, layers):
    with torch.no_grad():
        _, f = gen.run(h, start=gen.default_split, capture=layers)
    return {n: tuple(f[n].shape[1:]) for n in layers}


def _half_mask(res):
    w = torch.ones(1, 1, res, res)
    w[..., :, res // 2:] = 0.0  # the right half is "edited"
    return w


def test_default_layers_are_g_f_before_the_image_layer(gen32, tiny_gen):
    assert perturbed_layers(gen32, "b4") == ["b8", "b16"]
    assert perturbed_layers(gen32, "b8") == ["b16"]
    with pytest.raises(InputError, match="only the layers after the split"):
        perturbed_layers(gen32, "b8", ["b4"])
    with pytest.raises(InputError, match="last layer"):
        perturbed_layers(tiny_gen, "rgb")


@pytest.mark.parametrize("kind", ["free", "network", "weights"])
def test_gprime_at_zero_equals_g_exactly(gen32, kind):
    z, h = _latent(gen32)
    layers = perturbed_layers(gen32, "b4")
    with torch.no_grad():
        ref = gen32.forward_from("b4", h, z=z)
        if kind == "weights":
            import copy
            tuned = torch.nn.ModuleDict({n: copy.deepcopy(gen32.layers[n]) for n in gen32.layers_after("b4")})
            out = run_tuned(gen32, "b4", h, z, tuned)
        else:
            shapes = _shapes(gen32, h, layers)
            module = FreeDeltas(shapes, gen32.device) if kind == "free" else DeltaNet(shapes, gen32.device)
            d = module()
            assert set(d) == set(layers) and all(v.shape[1:] == shapes[n] for n, v in d.items())
            assert all(float(v.abs().max()) == 0.0 for v in d.values())
            out = run_multiplicative(gen32, "b4", h, z, {n: v.detach() for n, v in d.items()})
    assert torch.equal(out, ref)


@pytest.mark.parametrize("options", [dict(parametrisation="free"), dict(parametrisation="network"),
                                     dict(method="weights")])
def test_fit_lowers_the_masked_loss(gen32, options):
    z, h = _latent(gen32)
    with torch.no_grad():  # another face of the same generator, a little brighter
        target = (gen32(gen32.sample_latents(1, seed=7)) * 1.3 + 0.1).clamp(-1, 1)
    w = _half_mask(32)
    cfg = AdaptConfig(steps=60, early_stop=False, **options)
    gp = fit_gprime(gen32, "b4", h, z, target, w, cfg)
    assert gp.steps == 60 and len(gp.losses) == 60
    assert gp.losses[-1] < 0.95 * gp.losses[0]
    with torch.no_grad():
        before = ((gen32.forward_from("b4", h, z=z) - target).abs() * w).sum() / (3 * w.sum())
        after = ((gp(h, z) - target).abs() * w).sum() / (3 * w.sum())
    assert float(after) < float(before)


@pytest.mark.parametrize("options", [dict(), dict(cache_first=False), dict(method="weights")])
def test_edit_interventions_act_once_on_gprime(gen32, options):
    """An edit's intervention on a perturbed layer: the fit starts from exactly G with it."""
    from priorpaint.metrics import psnr
    z, h = _latent(gen32)
    edit = {"b8": lambda x: x * 0.5 + 0.3, "b16": lambda x: x.flip(-1)}
    target = torch.zeros(1, 3, 32, 32)
    w = torch.ones(1, 1, 32, 32)
    gp = fit_gprime(gen32, "b4", h, z, target, w, AdaptConfig(steps=1, **options), interventions=edit)
    with torch.no_grad():
        ref = gen32.forward_from("b4", h, interventions=edit, z=z)
        plain = gen32.forward_from("b4", h, z=z)
    assert gp.psnrs[0] == pytest.approx(psnr(ref, target, w), abs=1e-4)
    assert abs(psnr(ref, target) - psnr(plain, target)) > 0.1  # the edit matters


def test_weight_tuning_leaves_the_shared_generator_alone(gen32):
    z, h = _latent(gen32)
    before = {k: v.clone() for k, v in gen32.state_dict().items()}
    target = torch.zeros(1, 3, 32, 32)
    gp = fit_gprime(gen32, "b4", h, z, target, torch.ones(1, 1, 32, 32),
                    AdaptConfig(method="weights", steps=15, early_stop=False))
    after = gen32.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(not p.requires_grad for p in gen32.parameters())
    # ... while the tuned copy did change.
    assert any(not torch.equal(p, gen32.layers[n].state_dict()[k])
               for n in gp.module for k, p in gp.module[n].state_dict().items())


def test_early_stopping_on_a_plateau(gen32):
    z, h = _latent(gen32)
    with torch.no_grad():
        target = gen32.forward_from("b4", h, z=z)  # already matched: the loss cannot improve
    gp = fit_gprime(gen32, "b4", h, z, target, torch.ones(1, 1, 32, 32),
                    AdaptConfig(steps=300, min_steps=30, patience=10))
    assert gp.stopped_early and gp.steps < 300


def test_cancel_stops_within_a_step(gen32):
    z, h = _latent(gen32)
    token = CancelToken()
    calls = []

    def progress(stage, fraction, info):
        calls.append(fraction)
        if len(calls) == 3:
            token.cancel("by the test")

    with pytest.raises(Cancelled, match="by the test"):
        fit_gprime(gen32, "b4", h, z, torch.zeros(1, 3, 32, 32), torch.ones(1, 1, 32, 32),
                   AdaptConfig(steps=200), progress=progress, cancel=token)
    assert len(calls) == 3  # the step after the cancel never ran its progress report


def test_bad_inputs_of_the_fit(gen32):
    z, h = _latent(gen32)
    ok = torch.ones(1, 1, 32, 32)
    with pytest.raises(InputError, match="covers the whole crop"):
        fit_gprime(gen32, "b4", h, z, torch.zeros(1, 3, 32, 32), torch.zeros(1, 1, 32, 32))
    bad = h.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN or infinite"):
        fit_gprime(gen32, "b4", bad, z, torch.zeros(1, 3, 32, 32), ok)
    with pytest.raises(InputError, match="NaN or infinite"):
        fit_gprime(gen32, "b4", h, z * float("inf"), torch.zeros(1, 3, 32, 32), ok)
    with pytest.raises(InputError, match="method"):
        adapt_config("magic")
    with pytest.raises(InputError, match="unknown adaptation options"):
        adapt_config({"stepz": 3})


def test_pearson():
    a = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert pearson(a, 2 * a + 1) == pytest.approx(1.0)
    assert pearson(a, -a) == pytest.approx(-1.0)
    m = torch.zeros(1, 1, 8, 8)
    m[..., :4, :] = 1
    b = a.clone()
    b[..., 4:, :] = torch.randn(1, 3, 4, 8)  # changes only outside the mask
    assert pearson(a, b, m) == pytest.approx(1.0)
    assert pearson(a, b) < 0.99


# -- integration: the embedded model on the astronaut ------------------------------------------
@pytest.fixture(scope="module")
def session(astronaut_path):
    from priorpaint.projection.project import ProjectionConfig
    from priorpaint.session import EditSession
    s = EditSession.open(astronaut_path, box=(140, 20, 180, 180))
    s.project(ProjectionConfig(steps=40, seed=0, candidates=32, starts=2))
    return s


@pytest.fixture(scope="module")
def whole_crop_session(astronaut_path):
    """A selection that covers its whole crop (the full square photo, no margin): the one
    way an edit mask can cover the crop, since edit masks are clipped to the selection."""
    from priorpaint.projection.project import ProjectionConfig
    from priorpaint.session import EditSession
    s = EditSession.open(astronaut_path, box=(0, 0, 512, 512), margin=0.0)
    assert s.crop.region_mask.all()
    s.project(ProjectionConfig(steps=10, seed=0, candidates=16, starts=2))
    return s


def _edited(session, strength=2.0, region=True):
    """A seeded latent edit confined to the central part of the selection."""
    p = session.projection
    g = torch.Generator().manual_seed(5)
    d = torch.randn(p.z.shape, generator=g).to(p.z.device)
    z_e = p.z + strength * d / d.norm()
    with torch.no_grad():
        h_e = p.h + session.gen.forward_to(z_e, p.split) - session.gen.forward_to(p.z, p.split)
    mask = None
    if region:
        side = session.crop.square[2]
        mask = np.zeros((side, side), np.uint8)
        mask[side // 4:3 * side // 4, side // 4:3 * side // 4] = 255
    return session.initial_state().evolve(z=z_e, h=h_e, edit_mask=mask)


FAST = dict(steps=60)


def test_render_through_gprime_keeps_the_outside_and_the_edit(session):
    session.cache.clear()
    state = _edited(session)
    r = session.render(state, adapt=True, adapt_options=FAST)
    m = r.metrics
    assert m["changed_outside_mask"] == 0
    assert m["adaptation"]["action"] == "fitted" and m["adaptation"]["steps"] <= 60
    assert m["psnr_adapted"] > m["psnr_unadapted"] + 3.0
    assert m["edit_fidelity"] > 0.8
    assert session.seconds["adapt"] > 0
    # The same state again: the cached G′ is reused as it is, and renders the same pixels.
    again = session.render(state, adapt=True, adapt_options=FAST)
    assert again.metrics["adaptation"]["action"] == "reused"
    assert np.array_equal(again.generated, r.generated)
    # A stronger edit in the same region: warm start from the cached δ's.
    stronger = _edited(session, strength=2.5)
    warm = session.render(stronger, adapt=True, adapt_options=FAST)
    assert warm.metrics["adaptation"]["action"] == "warm-started"
    # A larger edit region: refit from δ = 0.
    big = stronger.evolve(edit_mask=np.full_like(stronger.edit_mask, 0))
    side = big.edit_mask.shape[0]
    big.edit_mask[side // 8:7 * side // 8, side // 8:7 * side // 8] = 255
    refit = session.render(big, adapt=True, adapt_options=FAST)
    assert refit.metrics["adaptation"]["action"] == "fitted"
    assert refit.metrics["changed_outside_mask"] == 0


def test_render_reports_progress_and_honours_cancel(session):
    session.cache.clear()
    seen = []
    session.render(_edited(session), adapt=True, adapt_options=dict(steps=5),
                   progress=lambda stage, f, info: seen.append((stage, f)))
    assert [st for st, _ in seen] == ["adapt"] * 6 and seen[-1][1] == 1.0
    token = CancelToken()
    token.cancel("by the user")
    session.cache.clear()
    with pytest.raises(Cancelled, match="by the user"):
        session.render(_edited(session, strength=1.0), adapt=True, adapt_options=FAST, cancel=token)
    assert not session.cache  # nothing half-fitted is kept


def test_reconstruction_fit_renders_every_edit_without_refitting(session):
    session.cache.clear()
    opts = dict(FAST, fit="reconstruction")
    whole_selection = _edited(session, region=False)  # edit mask = the selection
    r = session.render(whole_selection, adapt=True, adapt_options=opts)
    a = r.metrics["adaptation"]
    assert a["action"] == "fitted" and a["fit"] == "reconstruction"
    assert r.metrics["changed_outside_mask"] == 0 and r.metrics["edit_fidelity"] > 0.8
    other = session.render(_edited(session, strength=1.0), adapt=True, adapt_options=opts)
    assert other.metrics["adaptation"]["action"] == "reused"
    with pytest.raises(InputError, match="fit must be"):
        session.render(whole_selection, adapt=True, adapt_options={"fit": "everything"})


def test_reconstruction_fit_adapts_even_when_the_edit_covers_the_crop(whole_crop_session):
    # an edit mask over the whole crop still adapts: nothing is fitted per edit
    s = whole_crop_session
    s.cache.clear()
    opts = dict(FAST, fit="reconstruction")
    state = _edited(s)
    state.edit_mask = np.full_like(state.edit_mask, 255)
    full = s.render(state, adapt=True, adapt_options=opts)
    assert full.metrics["adaptation"]["action"] == "fitted" and full.metrics["psnr_adapted"] is None
    assert s.render(state, adapt=True, adapt_options=opts).metrics["adaptation"]["action"] == "reused"
    assert not any("covers the whole crop" in n for n in full.metrics["notes"])
    assert not np.array_equal(full.generated, s.render(state).generated)


def test_reconstruction_through_gprime_beats_g(session):
    session.cache.clear()
    r = session.render(None, adapt=True, adapt_options=FAST)
    assert r.metrics["edit_fidelity"] is None
    assert r.metrics["psnr_adapted"] > session.projection.psnr + 3.0
    assert r.metrics["changed_outside_mask"] == 0


def test_weights_variant_renders_and_leaves_the_cached_generator_alone(session):
    before = {k: v.clone() for k, v in session.gen.state_dict().items()}
    r = session.render(_edited(session), adapt=True, adapt_options={"method": "weights", "steps": 20})
    assert r.metrics["adaptation"]["method"] == "weights" and r.metrics["changed_outside_mask"] == 0
    assert r.metrics["psnr_adapted"] > r.metrics["psnr_unadapted"]
    after = session.gen.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_empty_edit_mask_is_a_no_op_bit_for_bit(session):
    state = _edited(session)
    state.edit_mask = np.zeros_like(state.edit_mask)
    r = session.render(state, adapt=True, adapt_options=FAST)
    assert np.array_equal(r.photo.rgb, session.photo.rgb)
    assert r.metrics["adaptation"]["action"].startswith("skipped") and r.metrics["psnr_adapted"] is None


def test_edit_mask_over_the_whole_crop_renders_with_g_and_says_so(whole_crop_session):
    session = whole_crop_session
    state = _edited(session)
    state.edit_mask = np.full_like(state.edit_mask, 255)
    r = session.render(state, adapt=True, adapt_options=FAST)
    assert any("covers the whole crop" in n and "G alone" in n for n in r.metrics["notes"])
    assert not state.notes  # the caller's state is left as it was
    plain = session.render(state, adapt=False)
    assert np.array_equal(r.generated, plain.generated)


def test_nan_or_inf_latents_are_refused(session):
    for bad in (float("nan"), float("inf")):
        state = _edited(session)
        h = state.h.clone()
        h[0, 0, 0, 0] = bad
        with pytest.raises(InputError, match="NaN or infinite"):
            session.render(state.evolve(h=h), adapt=True, adapt_options=FAST)
        z = state.z.clone()
        z[0, 0] = bad
        with pytest.raises(InputError, match="NaN or infinite"):
            session.render(state.evolve(z=z), adapt=True, adapt_options=FAST)


def test_cli_project_and_edit_adapt_flags(tmp_path, astronaut_path):
    from priorpaint.cli import main
    rep = tmp_path / "r.json"
    assert main(["project", str(astronaut_path), "--box", "140,20,180,180", "-o", str(tmp_path / "p.png"),
                 "--steps", "20", "--adapt", "--adapt-fit", "reconstruction", "--report", str(rep)]) == 0
    r = json.loads(rep.read_text())
    assert r["psnr_adapted"] > r["psnr_projection"] and r["seconds"]["adapt"] > 0
    assert r["adaptation"]["fit"] == "reconstruction"
    assert r["changed_outside_mask"] == 0 and r["edit_fidelity"] is None
    assert main(["edit", str(astronaut_path), "--box", "140,20,180,180", "-o", str(tmp_path / "e.png"),
                 "--steps", "20", "--no-adapt", "--report", str(rep)]) == 0
    r = json.loads(rep.read_text())
    assert r["psnr_adapted"] is None and "adapt" not in r["seconds"]
    # edit adapts by default; the method is selectable
    assert main(["edit", str(astronaut_path), "--box", "140,20,180,180", "-o", str(tmp_path / "w.png"),
                 "--steps", "20", "--adapt-method", "weights", "--report", str(rep)]) == 0
    r = json.loads(rep.read_text())
    assert r["adaptation"]["method"] == "weights" and r["psnr_adapted"] > r["psnr_projection"]
    assert r["changed_outside_mask"] == 0
