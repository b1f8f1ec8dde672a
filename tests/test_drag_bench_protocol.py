"""DragGAN's landmark protocol in the drag bench (``bench/drag.py``): it drags as the edit does with no
mask, and it reads a 64 px render's landmarks steadily enough to measure a few-pixel move."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from priorpaint.bench import drag as B
from priorpaint.compositing.blend import to_uint8
from priorpaint.edits import drag as D
from priorpaint.faces.landmarks import square_landmarks

pytestmark = pytest.mark.usefixtures("tmp_cache")


def _renders(gen, seeds):
    """Both samples of each of the protocol's pairs (``sample_latents(2, seed)``)."""
    out = []
    for seed in seeds:
        with torch.no_grad():
            x = gen(gen.sample_latents(2, seed=seed))
        out.extend(to_uint8(x[i:i + 1]) for i in range(2))
    return out


def test_the_protocol_drags_as_the_edit_does_with_no_mask(default_gen, tiny_session, monkeypatch):
    """Before, the protocol dragged with no keep term at all (``movable=None``), a drag no user gets:
    the edit with no mask keeps each group's capsules. Both must pass the optimisation the same region."""
    seen = {}
    real = D.optimise

    def spy(gen, z, h, split, handles, targets, movable=None, *a, **kw):
        seen.setdefault("edit" if gen.resolution == 16 else "bench", []).append(movable)
        kw["steps"] = 1
        return real(gen, z, h, split, handles, targets, movable, *a, **kw)

    monkeypatch.setattr(D, "optimise", spy)
    tiny_session.apply([{"kind": "drag", "points": [[230, 150, 230, 138]], "steps": 1}])
    out = B._faces(SimpleNamespace(model=None, face_pairs=1, drag_steps=1, drag_latents=None))
    assert seen["edit"] == ["capsule"]
    assert seen["bench"] and all(m == seen["edit"][0] for m in seen["bench"])
    assert out["movable"] == "capsule"
    for key in ("1 point", "5 points"):
        r = out[key]
        assert r["samples"] == 1 and r["mean_before"] > 0
        row = r["rows"][0]
        # beside the detector's reading: the method's own, the independent flow's and the detector's floor
        assert all(row[k] is not None for k in ("confirmed", "flow", "jitter", "before_one_read"))
    assert out["1 point"]["rows"][0]["others_moved"] is not None     # the four landmarks not dragged
    assert out["5 points"]["rows"][0]["others_moved"] is None


def test_the_averaged_read_follows_a_one_pixel_move_of_a_render_better_than_one_read(default_gen):
    """A 64 px render moved right by one model pixel: one detector read (the render grown to 256 px)
    put the landmarks about 1.5 px from where they moved; the protocol's mean of reads (several
    sizes and half-pixel shifts) about half that. Its points are the render's px (not the detector's
    256 px, not fractions), x then y, in the detector's order (eyes, nose, mouth corners)."""
    one, averaged, moves = [], [], []
    for img in _renders(default_gen, range(1000, 1004)):
        moved = B._shifted(img, 1.0, 0.0)
        a1, m1 = square_landmarks(img), square_landmarks(moved)
        a, m = B.protocol_landmarks(img), B.protocol_landmarks(moved)
        if a1 is None or m1 is None or a is None or m is None:
            continue
        one.append(np.linalg.norm(m1 - [1.0, 0.0] - a1, axis=1).mean())
        averaged.append(np.linalg.norm(m - [1.0, 0.0] - a, axis=1).mean())
        moves.append((m - a).mean(0))
        assert a.shape == (5, 2) and (a >= 0).all() and (a < img.shape[0]).all()
        assert a[0, 0] < a[1, 0] and a[3, 0] < a[4, 0]              # image-left eye and mouth corner first
        assert a[:2, 1].max() < a[2, 1] < a[3:, 1].min()            # eyes above the nose above the mouth
    assert len(averaged) >= 6
    assert np.mean(averaged) < 0.8 * np.mean(one)
    assert np.mean(averaged) < 1.2
    np.testing.assert_allclose(np.mean(moves, axis=0), [1.0, 0.0], atol=0.4)   # model px, x then y


def test_a_render_without_a_face_has_no_landmarks():
    assert B.protocol_landmarks(np.full((64, 64, 3), 128, np.uint8)) is None
