"""The progressive live preview (:mod:`priorpaint.progressive`): an approximate frame predicted
from the exact frames a session already made, flagged approximate, then the exact frame.

The prediction's error is bounded on a tiny random config-f-shaped StyleGAN2 (style_dim 512,
the published ``white_hair`` edit, styles 7..9 across the split), the exact frame always
follows and equals the ordinary preview, and the policy (a model whose exact frames fit the
budget gets them alone) is checked by giving the budget, never by timing anything."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from priorpaint.compositing.blend import to_uint8
from priorpaint.edits import directions as D
from priorpaint.edits.registry import EditState
from priorpaint.progressive import MAX_FRAMES_PER_LINE, PreviewLines, line_keys

from test_stylegan2_named import MANIFEST, make_model

pytestmark = pytest.mark.usefixtures("one_thread")


def spec(name, a):
    return [{"kind": "direction", "name": name, "strength": a}]


@pytest.fixture(scope="module")
def ffhq64(tmp_path_factory):
    """A random-weight 64 px StyleGAN2 with 512-d styles (10 of them) naming the FFHQ set."""
    import os
    tmp = tmp_path_factory.mktemp("manifest")
    mp = pytest.MonkeyPatch()
    mp.setenv("PRIORPAINT_MANIFEST_DIR", os.pathsep.join([str(tmp), str(MANIFEST)]))
    mp.setenv("PRIORPAINT_CACHE", str(tmp / "cache"))
    D.clear_memory_cache()
    gen, _, _ = make_model(tmp, 64, "stylegan2-ffhq", seed=4)
    yield gen
    D.clear_memory_cache()
    mp.undo()


def renderer(gen, name, seed=3):
    """The exact frame of the ``direction`` edit ``name`` at a strength, from a state at a
    random ``w+`` (h = G_H(w+)), as the session renders it."""
    split = gen.default_split
    w = gen.sample_latents(1, seed=seed)
    with torch.no_grad():
        state = EditState(z=w, h=gen.forward_to(w, split))
    direction = D.get_direction(gen, name)

    def render(a):
        with torch.no_grad():
            st = D.apply_direction(gen, state, split, direction, a)
            return gen.forward_from(split, st.h, interventions=st.interventions or None, z=st.z)
    return render


def err(a, b):
    return float((a.clamp(-1, 1) - b.clamp(-1, 1)).abs().max())


def mean_err(a, b):
    return float((a.clamp(-1, 1) - b.clamp(-1, 1)).abs().mean())


# -- the prediction's error --------------------------------------------------------------------
def test_the_approximate_frame_error_is_bounded_on_a_tiny_random_generator(ffhq64):
    render = renderer(ffhq64, "white_hair")
    lines = PreviewLines(budget_s=0.0)
    exact = {a: render(a) for a in (0.0, 0.25, 0.5, 0.75, 1.0, 1.125, 1.25)}
    moved = err(exact[1.0], exact[0.0])
    assert moved > 0.05            # the edit moves the picture: the bounds below can fail
    for a in (0.0, 0.5, 1.0):
        lines.add_exact(spec("white_hair", a), exact[a], seconds=1.0)
    # between frames: a cubic through them, far closer than either neighbour (on most pixels by
    # an order of magnitude; the leaky ReLUs' kinks keep a few pixels further off)
    for a in (0.25, 0.75):
        guess = lines.approximate(spec("white_hair", a))
        assert guess.approximate and guess.method == "interpolated" and guess.sources == (a - 0.25, a + 0.25)
        e, near = err(guess.image, exact[a]), err(exact[a - 0.25], exact[a])
        assert e <= 0.15 * moved and e <= 0.5 * near, (a, e, near, moved)
        assert mean_err(guess.image, exact[a]) <= 0.2 * mean_err(exact[a - 0.25], exact[a])
    # the next step of a drag: a first-order step along the secant of the last two frames
    guess = lines.approximate(spec("white_hair", 1.25))
    assert guess.method == "extrapolated" and guess.sources == (0.5, 1.0)
    assert err(guess.image, exact[1.25]) <= 0.75 * err(exact[1.0], exact[1.25])
    assert mean_err(guess.image, exact[1.25]) <= 0.35 * mean_err(exact[1.0], exact[1.25])
    # a frame and its tangent J·d (a forward difference of the render): first-order from one frame
    taylor = PreviewLines(budget_s=0.0)
    taylor.add_exact(spec("white_hair", 1.0), exact[1.0], seconds=1.0)
    eps = 1e-2
    taylor.add_tangent(spec("white_hair", 1.0), (render(1.0 + eps) - exact[1.0]) / eps)
    guess = taylor.approximate(spec("white_hair", 1.125))
    assert guess.method == "extrapolated" and guess.sources == (1.0,)
    e = err(guess.image, exact[1.125])
    assert e <= 0.5 * err(exact[1.0], exact[1.125]) and e <= 0.1 * moved, (e, moved)


def test_the_prediction_is_exact_on_curves_it_can_represent():
    """Hermite with exact tangents reproduces a cubic; secant steps reproduce a line."""
    g = torch.Generator().manual_seed(0)
    c = [torch.randn(1, 3, 8, 8, generator=g) for _ in range(4)]

    def cubic(a):
        return c[0] + a * c[1] + a ** 2 * c[2] + a ** 3 * c[3]

    def slope(a):
        return c[1] + 2 * a * c[2] + 3 * a ** 2 * c[3]

    lines = PreviewLines(budget_s=0.0)
    for a in (-1.0, 0.5):
        lines.add_exact(spec("k", a), cubic(a), seconds=1.0)
        lines.add_tangent(spec("k", a), slope(a))
    assert torch.allclose(lines.approximate(spec("k", 0.1)).image, cubic(0.1), atol=1e-5)
    line = PreviewLines(budget_s=0.0)
    for a in (0.0, 1.0):
        line.add_exact(spec("k", a), c[0] + a * c[1], seconds=1.0)
    for a in (-2.0, 0.3, 3.5):
        assert torch.allclose(line.approximate(spec("k", a)).image, c[0] + a * c[1], atol=1e-5)


def test_what_is_predicted_and_what_is_not():
    img = torch.zeros(1, 3, 4, 4)
    lines = PreviewLines(budget_s=0.0)
    assert lines.approximate(spec("k", 1.0)) is None               # no frame yet
    lines.add_exact(spec("k", 1.0), img, seconds=1.0)
    one = lines.approximate(spec("k", 2.0))
    assert one.method == "nearest" and one.info() == {"approximate": True, "method": "nearest",
                                                      "strength": 2.0, "from": [1.0]}
    assert lines.approximate(spec("k", 1.0)).method == "cached"      # the same list: still approximate
    assert lines.approximate(spec("other", 1.0)) is None            # another line
    # a list with a kind that reads a file is not a smooth function of a strength: never predicted
    assert line_keys(spec("k", 1.0) + [{"kind": "paint", "mask": "file:0", "concept": "tree"}]) == []
    assert line_keys([{"kind": "direction", "name": "k", "strength": float("nan")}]) == []
    # two directions: each strength is a line of its own; the other one's value keys it
    both = [{"kind": "direction", "name": "a", "strength": 1.0}, {"kind": "direction", "name": "b", "strength": 2.0}]
    keys = line_keys(both)
    assert [v for _, v in keys] == [1.0, 2.0] and len({k for k, _ in keys}) == 2
    # a fast model (its exact frames fit the budget) is previewed exactly, and nothing is kept
    fast = PreviewLines(budget_s=0.05)
    fast.add_exact(spec("k", 1.0), img, seconds=0.01)
    assert fast.approximate(spec("k", 1.5)) is None and not fast.lines
    slow = PreviewLines(budget_s=0.05)
    slow.add_exact(spec("k", 1.0), img, seconds=0.5)
    assert slow.approximate(spec("k", 1.5)).approximate
    # one slow frame (a direction computed on its first use) does not make a fast model slow
    fast.add_exact(spec("k", 1.0), img, seconds=3.0)
    assert fast.approximate(spec("k", 1.5)) is None and not fast.lines


def test_predicted_pixels_are_to_uint8s_and_the_sum_is_numpy_free_of_torch_threads():
    from priorpaint.progressive import _combine, pixels
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 3, 16, 16, generator=g) * 1.5
    x[0, 0, 0, :4] = torch.tensor([-1.0, 1.0, 0.5 / 127.5 - 1, 1.5 / 127.5 - 1])   # ties round to even
    assert np.array_equal(pixels(x), to_uint8(x))
    y = torch.randn(1, 3, 16, 16, generator=g)
    assert torch.allclose(_combine([(0.5, x), (2.0, y), (0.25, x)]), 0.75 * x + 2.0 * y, atol=1e-6)
    # the torch path (a GPU's frames; here float64 takes it) gives the same sum, on the frames' device
    x64, y64 = x.double(), y.double()
    out = _combine([(0.5, x64), (2.0, y64), (0.25, x64)])
    assert out.dtype == torch.float64 and out.device == x64.device
    assert torch.allclose(out, 0.75 * x64 + 2.0 * y64) and torch.equal(x64, x.double())   # inputs untouched


def test_the_cache_is_bounded():
    lines = PreviewLines(budget_s=0.0, max_bytes=10 * 3 * 16 * 16 * 4)
    for i in range(MAX_FRAMES_PER_LINE + 5):
        lines.add_exact(spec("k", float(i)), torch.full((1, 3, 16, 16), float(i)), seconds=1.0)
    assert sum(len(l.anchors) for l in lines.lines.values()) <= 10 and lines.nbytes() <= lines.max_bytes
    for n in range(10):
        lines.add_exact(spec(f"d{n}", 0.0), torch.zeros(1, 3, 2, 2), seconds=1.0)
    assert len(lines.lines) <= 6


def test_a_clamped_strength_is_predicted_at_the_bound_it_was_made_at(ffhq64):
    """``glasses`` is published for −1..2: a frame asked at 9 was made at 2, and 5 is that frame."""
    from priorpaint.projection.project import ProjectionConfig
    from priorpaint.session import EditSession
    gen = ffhq64
    with torch.no_grad():
        img = gen(gen.sample_latents(1, seed=21))[0]
    photo = np.full((96, 96, 3), 128, np.uint8)
    photo[16:80, 16:80] = to_uint8(img)
    s = EditSession.open(photo, box=(16, 16, 64, 64), gen=gen, margin=0.0)
    s.project(ProjectionConfig(steps=1, candidates=1, starts=1, perceptual=False))
    s.cache["preview-lines"] = PreviewLines(budget_s=0.0)
    frames = list(s.preview_frames(spec("glasses", 9.0)))
    assert [f["approximate"] for _, f in frames] == [False]        # nothing to predict from yet
    (guess, flag), (exact, done) = s.preview_frames(spec("glasses", 5.0))
    assert flag["method"] == "cached" and flag["from"] == [2.0] and flag["strength"] == 2.0
    assert done == {"approximate": False, "method": "exact"} and np.array_equal(guess, exact)


# -- through the session and the API -----------------------------------------------------------
def test_session_preview_gives_the_approximate_frame_then_the_exact_one(ffhq64):
    from priorpaint.projection.project import ProjectionConfig
    from priorpaint.session import EditSession
    gen = ffhq64
    with torch.no_grad():
        img = gen(gen.sample_latents(1, seed=22))[0]
    photo = np.full((120, 120, 3), 90, np.uint8)
    photo[28:92, 28:92] = to_uint8(img)
    s = EditSession.open(photo, box=(36, 36, 48, 48), gen=gen)      # the square reaches past the box
    s.project(ProjectionConfig(steps=1, candidates=1, starts=1, perceptual=False))
    s.cache["preview-lines"] = PreviewLines(budget_s=0.0)          # predict, whatever this machine's speed
    assert [f["approximate"] for _, f in s.preview_frames(spec("white_hair", 0.0), "detail")] == [False]
    assert [f["method"] for _, f in s.preview_frames(spec("white_hair", 1.0), "detail")] == ["nearest", "exact"]
    (guess, flag), (exact, done) = s.preview_frames(spec("white_hair", 0.5), "detail")
    assert flag == {"approximate": True, "method": "interpolated", "strength": 0.5, "from": [0.0, 1.0]}
    assert done["approximate"] is False
    # the exact frame is the ordinary preview, bit for bit
    assert np.array_equal(exact, s.preview_layer(s.apply(spec("white_hair", 0.5)), "detail"))
    assert guess.shape == exact.shape and not np.array_equal(guess, s.preview_layer(None, "detail"))
    # the approximate frame is composited as any preview: outside the selection, the photo's pixels
    sq = s.preview_region(None, "detail", frame=s.cache["preview-lines"].approximate(spec("white_hair", 0.5)).image)
    outside = s.crop.region_mask == 0
    assert outside.any() and np.array_equal(sq[outside], s.photo_square()[outside])
    # model resolution, as the list form of the endpoint gives it
    (g2, f2), (e2, _) = s.preview_frames(spec("white_hair", 0.75))
    assert f2["approximate"] and g2.shape == e2.shape == (64, 64, 3)


def test_the_api_preview_endpoint_flags_its_frames(tiny_session):
    """The embedded-size model through the endpoint: exact frames alone while they fit the
    budget; with frames to predict from (and a budget they miss), approximate first."""
    from priorpaint.app.api import Backend
    b = Backend()
    sid = b.store.put(tiny_session)
    edits = json.dumps({"edits": [{"kind": "direction", "name": "sefa0", "strength": 1.0}], "size": 64})
    try:
        tiny_session.cache["preview-lines"] = PreviewLines(budget_s=math.inf)
        out = list(b.preview_frames(sid, edits))
        assert [json.loads(f)["approximate"] for _, f in out] == [False]
        tiny_session.cache["preview-lines"] = PreviewLines(budget_s=0.0)
        list(b.preview_frames(sid, edits))
        later = json.dumps([{"kind": "direction", "name": "sefa0", "strength": 2.0}])
        list(b.preview_frames(sid, later))
        mid = json.dumps([{"kind": "direction", "name": "sefa0", "strength": 1.5}])
        out = list(b.preview_frames(sid, mid))
        flags = [json.loads(f) for _, f in out]
        assert [f["approximate"] for f in flags] == [True, False] and flags[0]["method"] == "interpolated"
        assert np.array_equal(np.asarray(out[-1][0]), np.asarray(b.preview(sid, mid)))
    finally:
        tiny_session.cache.pop("preview-lines", None)     # the shared fixture's other users get the default


def test_a_bad_budget_setting_is_one_line(monkeypatch):
    from priorpaint.errors import InputError
    from priorpaint.progressive import BUDGET_ENV, PREVIEW_BUDGET_S
    monkeypatch.setenv(BUDGET_ENV, "fast")
    with pytest.raises(InputError, match=r"PRIORPAINT_PREVIEW_BUDGET_MS must be a number of milliseconds >= 0, got 'fast'"):
        PreviewLines()
    monkeypatch.setenv(BUDGET_ENV, "-5")
    with pytest.raises(InputError, match="got '-5'"):
        PreviewLines()
    monkeypatch.setenv(BUDGET_ENV, "0")
    assert PreviewLines().budget_s == 0.0
    monkeypatch.delenv(BUDGET_ENV)
    assert PreviewLines().budget_s == PREVIEW_BUDGET_S


@pytest.mark.e2e
@pytest.mark.slow
def test_the_live_preview_endpoint_streams_the_approximate_frame_then_the_exact_one():
    """The real server and gradio_client: ``predict`` gets the final (exact) frame and its flag;
    ``submit`` streams the approximate frame first (the budget set to 0 ms, so the embedded
    model's frames are predicted too)."""
    from gradio_client import Client, handle_file

    from app_server import ROOT, Server, png_array
    from conftest import skimage_data

    server = Server("--steps", "5", env={"PRIORPAINT_PREVIEW_BUDGET_MS": "0"})
    try:
        client = Client(server.url, verbose=False, download_files=str(ROOT / "artifacts" / "app" / "downloads"))
        st = client.predict(handle_file(str(skimage_data("astronaut.png"))), None, "140,20,180,180", "", 5, 0,
                            False, api_name="/project")[0]
        sid = json.loads(st)["session"]

        def edits(a):
            return json.dumps({"edits": [{"kind": "direction", "name": "head_turn", "strength": a}], "size": 96})

        image, flag = client.predict(sid, edits(0.0), api_name="/preview")
        assert json.loads(flag) == {"approximate": False, "method": "exact"}
        assert png_array(image).ndim == 3
        client.predict(sid, edits(2.0), api_name="/preview")
        job = client.submit(sid, edits(1.0), api_name="/preview")
        final = job.result(timeout=120)
        flags = [json.loads(o[1]) for o in job.outputs()]
        assert flags[0]["approximate"] is True and flags[0]["method"] == "interpolated"
        assert flags[0]["from"] == [0.0, 2.0] and flags[-1]["approximate"] is False
        assert json.loads(final[1])["approximate"] is False
        assert png_array(job.outputs()[0][0]).shape == png_array(final[0]).shape
    finally:
        server.stop()
