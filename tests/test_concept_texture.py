"""The texture composite of concept paint and label-map edits (``priorpaint.compositing.texture``): the
part's texture comes from the photo's own pixels of that part, the pixels outside the edit mask are
untouched, the work is bounded; the photo's own parts (``priorpaint.edits.photo_parts``); and the edit
on a real photo (the astronaut) through a session."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from priorpaint.compositing import texture as T
from priorpaint.edits import photo_parts as PP
from priorpaint.errors import InputError

R = 16


def _stripes(side: int = 128, seed: int = 0) -> np.ndarray:
    """Left half: vertical dark stripes with grain ("hair"); right half: smooth light skin."""
    rng = np.random.default_rng(seed)
    x = np.arange(side)
    hair = 70 + 40 * np.sin(2 * np.pi * x / 5.0)[None, :] + rng.normal(0, 6, (side, side))
    skin = np.full((side, side), 200.0) + rng.normal(0, 1.0, (side, side))
    g = np.where(x[None, :] < side // 2, hair, skin)
    rgb = np.stack([g, g * 0.8, g * 0.6], axis=2)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _maps():
    before = np.full((R, R), 2, np.int64)     # skin
    before[:, :R // 2] = 1                     # hair on the left half
    after = before.copy()
    after[4:12, 10:14] = 1                     # hair asked on the skin
    return before, after


def test_part_maps_round_trip_and_malformed_ones_are_refused():
    before, after = _maps()
    pm = T.part_map(before, after, list(PP.PARTS))
    b, a, names = T.decode_part_map(pm)
    assert np.array_equal(b, before) and np.array_equal(a, after) and names == list(PP.PARTS)
    assert T.decode_part_map({"resolution": 4, "classes": [], "before": [[0, 3, 1]], "after": []}) is None
    assert T.decode_part_map({"resolution": "x"}) is None


def test_a_striped_hair_texture_is_reproduced_in_the_new_region_and_nothing_else_moves():
    sq = _stripes()
    side = sq.shape[0]
    before, after = _maps()
    pm = T.part_map(before, after, list(PP.PARTS))
    mask = np.zeros((side, side), np.uint8)
    mask[24:104, 72:120] = 255
    flat = np.zeros((R * 4, R * 4, 3), np.uint8)              # no generated change: the fill alone
    out, inner, alpha, info = T.texture_composite(sq, flat, flat, mask, 4, pm, "source")
    assert info["texture_filled"] == ["hair"] and info["texture_missing"] == []
    assert np.array_equal(out[mask == 0], sq[mask == 0])      # outside the mask: bit for bit
    assert float(alpha[mask == 0].max(initial=0)) == 0.0
    core = out[36:92, 84:108].astype(np.float32)[..., 0]      # inside the new hair, away from its seam
    hair = sq[:, :side // 2].astype(np.float32)[..., 0]
    # the stripes' look: their contrast, and vertical structure (the rows vary, the columns do not)
    assert 0.6 < core.std() / hair.std() < 1.5, (core.std(), hair.std())
    gx = np.abs(np.diff(core, axis=1)).mean()
    gy = np.abs(np.diff(core, axis=0)).mean()
    assert gx > 2.0 * gy, (gx, gy)
    assert abs(core.mean() - hair.mean()) < 15


def test_the_fill_is_bounded_and_a_photo_without_the_part_fills_nothing(monkeypatch):
    sq = _stripes()
    before, after = _maps()
    pm = T.part_map(before, after, list(PP.PARTS))
    mask = np.full(sq.shape[:2], 255, np.uint8)
    monkeypatch.setattr(T, "MAX_BLOCKS", 3)
    _, _, info = T.texture_fill(sq, sq, pm, mask, 64)
    assert 0 < info["blocks"] <= 3
    none = before.copy()
    none[:] = 2                                                  # the photo shows no hair
    pm2 = T.part_map(none, np.where(after == 1, 1, 2), list(PP.PARTS))
    filled, w, info = T.texture_fill(sq, sq, pm2, mask, 64)
    assert info["missing"] == ["hair"] and not w.any()


def test_texture_options_are_checked():
    from priorpaint.edits.concepts import parse_paint
    from priorpaint.edits.segedit import parse_segment
    assert parse_paint("hair=add@p.png#texture=source")["texture"] == "source"
    assert parse_segment("l.png#texture=shaded")["texture"] == "shaded"
    with pytest.raises(InputError, match="texture must be one of"):
        parse_paint("hair=add@p.png#texture=plaid")
    with pytest.raises(InputError, match="texture must be one of"):
        parse_segment("l.png#texture=../x")
    assert T.declared({"texture": "source"}) == T.MODE and T.declared({}) is None


def test_the_photo_parts_find_the_astronauts_hair(astronaut_path):
    im = Image.open(astronaut_path).convert("RGB").crop((140, 20, 320, 200)).resize((256, 256), Image.LANCZOS)
    lab = PP.photo_parts(np.asarray(im), 64)
    assert lab.shape == (64, 64)
    assert (lab[4:14, 20:44] == PP.HAIR).mean() > 0.55         # the top of the head (its light parting reads skin)
    assert (lab[28:36, 26:38] == PP.HAIR).mean() < 0.1          # the nose and cheeks
    assert (lab[0:4, 0:6] == PP.BACKGROUND).mean() > 0.8        # the backdrop


@pytest.mark.slow
def test_painting_hair_with_the_texture_option_on_the_astronaut(session, tmp_path):
    """A real photo through a session: the texture composite fills where the generator put hair with the
    photo's own hair texture, keeps every pixel outside the mask, and the report judges the part."""
    x, y, w, h = session.crop.layer_box
    m = np.zeros((h, w), np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    m[((xx - w / 2) / (0.3 * w)) ** 2 + ((yy - 0.28 * h) / (0.2 * h)) ** 2 <= 1] = 255
    path = tmp_path / "paint.png"
    Image.fromarray(m).save(path)
    state = session.apply([f"paint:hair=add@{path}#texture=source"])
    spec = state.applied[-1]
    assert spec["texture"] == "source" and T.decode_part_map(spec["part_map"]) is not None
    before = session.photo.rgb.copy()
    r = session.render(state)
    assert r.metrics["composite"] == "texture"
    assert r.metrics["changed_outside_mask"] == 0
    assert np.array_equal(session.photo.rgb, before)            # the user's photo is not modified
    kind = r.metrics["structure"]["kind"]
    assert kind["kind"] == "paint" and "part_colour" in kind
    plain = session.render(session.apply([f"paint:hair=add@{path}"]))
    assert plain.metrics["composite"] == "detail"                # the default composite is unchanged
    assert "part_texture" in plain.metrics["structure"]["kind"]  # and judged by the same measure


def test_a_gray_photo_and_a_selection_smaller_than_the_model():
    sq = _stripes(48)                                            # 48 px: smaller than the model's 64
    gray = np.repeat(sq[..., :1], 3, axis=2)
    lab = PP.photo_parts(gray, 64)
    assert lab.shape == (64, 64) and set(np.unique(lab)) <= set(range(len(PP.PARTS)))
    before, after = _maps()
    pm = T.part_map(before, after, list(PP.PARTS))
    mask = np.zeros((48, 48), np.uint8)
    mask[8:40, 24:48] = 255
    flat = np.zeros((64, 64, 3), np.uint8)
    out, _, _, info = T.texture_composite(gray, flat, flat, mask, 1, pm, "source")
    assert np.array_equal(out[mask == 0], gray[mask == 0])
    assert np.array_equal(out[..., 0], out[..., 1]) or np.abs(out.astype(int)[..., 0] - out[..., 1]).max() <= 1
