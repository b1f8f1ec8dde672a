"""Projection: the math on a tiny generator, the embedded model on a real photo, the CLI."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from priorpaint.cli import main
from priorpaint.errors import Cancelled, InputError
from priorpaint.jobs import CancelToken
from priorpaint.metrics import pixel_loss, psnr
from priorpaint.projection.project import ProjectionConfig, project
from priorpaint.session import EditSession


def test_projection_recovers_a_generated_image(tiny_gen):
    target = tiny_gen(tiny_gen.sample_latents(1, seed=123)).detach()
    p = project(tiny_gen, target, config=ProjectionConfig(steps=120, candidates=32, starts=4))
    assert p.psnr > p.psnr_z - 1e-6 and p.psnr > 30
    assert p.z.shape == (1, 8) and p.h.shape == (1, 4, 8, 8)
    assert p.losses[-1] < p.losses[0]


def test_projection_is_deterministic(tiny_gen):
    target = torch.rand(1, 3, 16, 16) * 2 - 1
    cfg = ProjectionConfig(steps=20, candidates=16, starts=2, seed=5)
    a, b = project(tiny_gen, target, config=cfg), project(tiny_gen, target, config=cfg)
    assert torch.equal(a.h, b.h) and a.psnr == b.psnr


def test_masked_loss_ignores_unselected_pixels():
    out = torch.zeros(1, 3, 4, 4)
    target = torch.zeros(1, 3, 4, 4)
    target[..., :2] = 1.0
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., 2:] = 1.0
    assert float(pixel_loss(out, target, mask)) == 0.0
    assert float(pixel_loss(out, target, None)) > 0
    assert psnr(out, target, mask) > 100


def test_cancel_stops_within_a_step(tiny_gen):
    token = CancelToken()
    seen = []

    def progress(stage, fraction, info):
        seen.append(fraction)
        if len(seen) == 3:
            token.cancel()

    with pytest.raises(Cancelled, match="cancelled"):
        project(tiny_gen, torch.zeros(1, 3, 16, 16), config=ProjectionConfig(steps=100, candidates=8, starts=2),
                progress=progress, cancel=token)
    assert len(seen) == 3


def test_nan_target_is_refused(tiny_gen):
    t = torch.zeros(1, 3, 16, 16)
    t[0, 0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        project(tiny_gen, t)


def test_embedded_model_on_the_astronaut(astronaut_path):
    s = EditSession.open(astronaut_path, box=(140, 20, 180, 180))
    p = s.project(ProjectionConfig(steps=120))
    assert p.psnr > 24 and p.psnr > p.psnr_z + 5, (p.psnr_z, p.psnr)
    r = s.render(composite="replace")      # the reconstruction, at the selection's size
    assert r.metrics["changed_outside_mask"] == 0
    assert not np.array_equal(r.photo.rgb, s.photo.rgb)
    # the default composite keeps the photo's detail: a round trip without edits is the photo
    assert np.array_equal(s.render().photo.rgb, s.photo.rgb)


def _write(tmp_path, im, name):
    p = tmp_path / name
    im.save(p)
    return str(p)


def test_cli_project_writes_output_and_report(tmp_path, astronaut_path):
    out, rep = tmp_path / "out.png", tmp_path / "r.json"
    assert main(["project", str(astronaut_path), "--box", "140,20,180,180", "-o", str(out),
                 "--report", str(rep), "--steps", "40", "--seed", "1"]) == 0
    report = json.loads(rep.read_text())
    for key in ("model", "psnr_projection", "psnr_z", "seconds", "changed_outside_mask"):
        assert key in report
    assert report["changed_outside_mask"] == 0 and report["model"] == "dcgan-digiface-64"
    assert report["seconds"]["total"] > 0 and "z_search" in report["seconds"]
    assert Image.open(out).size == (512, 512)


def test_cli_edit_without_edits_is_the_round_trip_with_mask(tmp_path, astronaut_path):
    mask = np.zeros((512, 512), np.uint8)
    mask[40:180, 160:300] = 255
    m = _write(tmp_path, Image.fromarray(mask), "mask.png")
    src = Image.open(astronaut_path).convert("RGBA")
    img = _write(tmp_path, src, "rgba.png")
    out = tmp_path / "o.png"
    assert main(["edit", img, "--mask", m, "-o", str(out), "--steps", "20", "--report", str(tmp_path / "r.json")]) == 0
    res = Image.open(out)
    assert res.mode == "RGBA"
    a, b = np.asarray(res), np.asarray(src)
    assert np.array_equal(a[mask == 0], b[mask == 0])
    assert json.loads((tmp_path / "r.json").read_text())["changed_outside_mask"] == 0


@pytest.mark.parametrize("args,message", [
    (["--box", "140,20,180,180", "--model", "nope"], "unknown model 'nope'"),
    (["--box", "600,600,40,40"], "outside"),
    (["--box", "10,10,4,4"], "too small"),
    (["--box", "1,2,3"], "X,Y,W,H"),
])
def test_cli_bad_selection_exits_2(tmp_path, astronaut_path, capsys, args, message):
    out = tmp_path / "out.png"
    assert main(["project", str(astronaut_path), "-o", str(out), "--steps", "1"] + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists()


def test_cli_bad_files_exit_2(tmp_path, astronaut_path, capsys):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG not really")
    cases = [
        ([str(tmp_path / "missing.png"), "--box", "0,0,20,20"], "does not exist"),
        ([str(junk), "--box", "0,0,20,20"], "not an image"),
        ([str(astronaut_path), "--mask", _write(tmp_path, Image.new("L", (512, 512), 0), "empty.png")], "mask is empty"),
        ([str(astronaut_path), "--mask", _write(tmp_path, Image.new("L", (30, 30), 255), "small.png")], "same size"),
    ]
    for args, message in cases:
        out = tmp_path / "o.png"
        assert main(["project", "-o", str(out), "--steps", "1"] + args) == 2, args
        assert message in capsys.readouterr().err
        assert not out.exists()


def test_cli_grayscale_and_palette_are_accepted(tmp_path, astronaut_path):
    for mode in ("L", "P"):
        img = _write(tmp_path, Image.open(astronaut_path).convert(mode), f"{mode}.png")
        out = tmp_path / f"{mode}-out.png"
        assert main(["project", img, "--box", "140,20,180,180", "-o", str(out), "--steps", "5"]) == 0
        assert Image.open(out).size == (512, 512)


def test_sessions_are_independent_across_threads(astronaut_path):
    results = {}

    def run(box, key):
        s = EditSession.open(astronaut_path, box=box)
        s.project(ProjectionConfig(steps=10, seed=0))
        results[key] = s.render().metrics["changed_outside_mask"]

    threads = [threading.Thread(target=run, args=((140, 20, 180, 180), i)) for i in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert results == {0: 0, 1: 0}


def test_cli_bad_sha256_refuses_and_writes_nothing(tmp_path, monkeypatch, astronaut_path, capsys):
    from conftest import default_manifest_entry
    raw = default_manifest_entry(id="tampered")
    raw["sources"][0]["sha256"] = "1" * 64
    (tmp_path / "tampered.json").write_text(json.dumps(raw))
    monkeypatch.setenv("PRIORPAINT_MANIFEST_DIR", str(tmp_path))
    out, rep = tmp_path / "o.png", tmp_path / "r.json"
    assert main(["project", str(astronaut_path), "--box", "140,20,180,180", "--model", "tampered",
                 "-o", str(out), "--report", str(rep), "--steps", "1"]) == 2
    assert "sha256 mismatch" in capsys.readouterr().err
    assert not out.exists() and not rep.exists()


def test_cli_16bit_grayscale_with_alpha(tmp_path, astronaut_path):
    gray16 = (np.asarray(Image.open(astronaut_path).convert("L"), dtype=np.uint16) * 257)
    img = _write(tmp_path, Image.fromarray(gray16), "g16.png")
    out = tmp_path / "g16-out.png"
    assert main(["project", img, "--box", "140,20,180,180", "-o", str(out), "--steps", "5"]) == 0
    res = np.asarray(Image.open(out).convert("RGB"))
    outside = np.ones((512, 512), bool)
    outside[20:200, 140:320] = False
    assert np.array_equal(res[outside][:, 0], (gray16 // 257).astype(np.uint8)[outside])


def test_cli_huge_image_is_refused(tmp_path, capsys):
    import struct
    import zlib

    def chunk(kind, data):  # a PNG header claiming 10050x10000 px: refused before decoding
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 10_050, 10_000, 8, 0, 0, 0, 0))
                    + chunk(b"IEND", b""))
    assert main(["project", str(big), "--box", "0,0,100,100", "-o", str(tmp_path / "o.png")]) == 2
    assert "megapixel" in capsys.readouterr().err


def test_multistart_budget_comes_from_the_generator(tiny_gen, monkeypatch):
    asked = []
    real = tiny_gen.sample_latents

    def spy(n, *args, **kwargs):
        asked.append(n)
        return real(n, *args, **kwargs)

    monkeypatch.setattr(tiny_gen, "sample_latents", spy)
    target = torch.zeros(1, 3, 16, 16)
    project(tiny_gen, target, config=ProjectionConfig(steps=2))
    monkeypatch.setattr(tiny_gen, "projection_defaults", {"candidates": 5, "starts": 2})
    p = project(tiny_gen, target, config=ProjectionConfig(steps=2))
    project(tiny_gen, target, config=ProjectionConfig(steps=2, candidates=7))
    assert asked == [256, 5, 7] and p.z.shape == (1, 8)


def test_an_edit_mask_never_reaches_outside_the_selection(astronaut_path):
    s = EditSession.open(astronaut_path, box=(200, 60, 60, 60))
    s.project(ProjectionConfig(steps=5))
    state = s.initial_state()
    state.edit_mask = np.full_like(s.crop.region_mask, 255)  # an edit asking for the whole square
    state.h = state.h + 0.5
    r = s.render(state)
    outside = np.ones((512, 512), bool)
    outside[60:120, 200:260] = False
    assert np.array_equal(r.photo.rgb[outside], s.photo.rgb[outside])
    assert r.metrics["changed_outside_mask"] == 0
    assert np.array_equal(s.edit_mask(state), s.crop.region_mask)
