"""``concepts``: concepts, segmentation, segmentation edits and vectors (five report keys).

* ``segmentation``: the segmentation head's pixel accuracy and mean IoU against the
  discovered parts on 64 held-out sampled latents (target mIoU ≥ 0.6), and how long
  training it from 16 labelled samples takes (uncached).
* ``concepts``: 50 sampled latents; image ``i`` gets concept ``i mod C``, ``add`` for the
  first C images of every 2C and ``remove`` for the next C; the painted region is the
  half-size square (of 9 grid positions) where the concept covers closest to half.
  ``success_rate``: the concept's area inside the region (segmentation head) moved in
  the asked direction (target ≥ 0.8); ``outside_changed_fraction``: pixels outside the
  region whose 8-bit generated value changed at all, before compositing (target < 1 %).
* ``segment_edit``: the astronaut selection is projected, its label map (from
  :meth:`EditSession.segment`) edited — the central face class grown by 3 px (model
  resolution) into its neighbours — and applied through the session; plus 8 sampled
  latents with the same edit.  ``achieved_fraction`` (target ≥ 0.7) and ``seconds``
  (target ≤ 5 s) are the mean and the maximum.
* ``vectors``: the astronaut edit saved as a vector and applied to a second projected
  image; ``preview_ms`` is the median of apply(``vector:NAME=s``) + ``G_F`` over 40 strengths
  (target ≤ 20 ms).
* ``paint_real``: concept paint (``hair=add``, ``hair=remove``, a disc over the hair and forehead)
  and a label-map edit (hair at the sides) on five real photos: the visible change where painted
  (:func:`priorpaint.measures.kinds.painted_change`), the artefacts and the verdict.

Grids for people are written under ``artifacts/concepts/``.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from .fixtures import projected_astronaut


def _grid(rows, path: Path, scale: int = 2) -> None:
    from PIL import Image
    tiles = [np.concatenate(r, axis=1) for r in rows]
    width = max(t.shape[1] for t in tiles)
    tiles = [np.pad(t, ((0, 2), (0, width - t.shape[1]), (0, 0)), constant_values=255) for t in tiles]
    sheet = np.concatenate(tiles, axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).resize((sheet.shape[1] * scale, sheet.shape[0] * scale), Image.NEAREST).save(path)


def _outline(img: np.ndarray, mask: np.ndarray, colour=(255, 255, 0)) -> np.ndarray:
    m = mask.astype(bool)
    edge = m & ~(np.roll(m, 1, 0) & np.roll(m, -1, 0) & np.roll(m, 1, 1) & np.roll(m, -1, 1))
    out = img.copy()
    out[edge] = colour
    return out


def grow_request(cls, k: int, radius: int = 3):
    """Class map with class ``k`` grown by ``radius`` px into its neighbours (torch, (R, R))."""
    import torch.nn.functional as F
    m = (cls == k).float()[None, None]
    grown = F.max_pool2d(m, 2 * radius + 1, stride=1, padding=radius)[0, 0] > 0
    out = cls.clone()
    out[grown] = k
    return out


def run(report: dict, args) -> None:
    import torch
    from PIL import Image

    from ..compositing.blend import to_uint8
    from ..edits import concepts as C
    from ..edits.parts import get_parts
    from ..compositing.regions import split_weights
    from ..edits.segedit import SegEditConfig, dilate, optimise_labels, state_classes
    from ..models.footprint import footprint_radius
    from ..edits.seghead import HeadConfig, colour_labels, evaluate_head, get_head, train_head
    from ..edits.vectors import delete_vector
    from ..models.registry import load_generator
    from ..projection.project import ProjectionConfig
    from ..session import EditSession

    art = Path(getattr(args, "artifacts", None) or "artifacts") / "concepts"
    gen = load_generator(args.model)
    R = gen.resolution
    split = gen.default_split

    # -- segmentation head ----------------------------------------------------------------
    parts = get_parts(gen)
    cfg = HeadConfig()
    if getattr(args, "head_steps", None):  # --smallest: a few training steps (a smoke run)
        cfg = replace(cfg, steps=int(args.head_steps))
    z_train = gen.sample_latents(cfg.train_images, seed=cfg.seed)
    labels, _ = parts.labels(gen, z_train)
    t0 = time.perf_counter()
    train_head(gen, z_train, labels, parts.names, [parts.legend[n] for n in parts.names], cfg)
    train_s = time.perf_counter() - t0
    head = get_head(gen, use_user=False)
    q = evaluate_head(gen, head, samples=int(getattr(args, "head_samples", 64)))
    report["segmentation"] = {
        "model": gen.model_id,
        "classes": q["classes"], "train_images": cfg.train_images, "held_out": q["samples"],
        "pixel_accuracy": round(q["pixel_accuracy"], 4), "miou": round(q["miou"], 4),
        "iou": dict(zip(q["classes"], q["iou"])),
        "train_seconds": round(train_s, 2),
        "targets": "miou >= 0.6 against the discovered parts on held-out samples",
    }
    zs = gen.sample_latents(8, seed=777)
    truth, ims = parts.labels(gen, zs, out_size=R)
    pred = head.predict_z(gen, zs)
    _grid([[to_uint8(ims[i]) for i in range(8)],
           [colour_labels(truth[i].cpu().numpy(), head.colours) for i in range(8)],
           [colour_labels(pred[i].cpu().numpy(), head.colours) for i in range(8)]],
          art / "segmentation.png")

    # -- concept painting -----------------------------------------------------------------
    d = C.get_dissection(gen)
    radius = footprint_radius(gen, split)
    half = R // 2
    positions = [(y, x) for y in (0, R // 4, half) for x in (0, R // 4, half)]
    n_img, successes, outside, deltas, rows = int(getattr(args, "concept_images", 50)), 0, [], [], []
    for i in range(n_img):
        z = gen.sample_latents(1, seed=1000 + i)
        with torch.no_grad():
            h = gen.forward_to(z, split)
        cls = head.predict(gen, h, z, split)[0]
        c = i % len(head.names)
        mode = "add" if (i // len(head.names)) % 2 == 0 else "remove"
        y, x = min(positions, key=lambda p: abs(float((cls[p[0]:p[0] + half, p[1]:p[1] + half] == c).float().mean()) - 0.5))
        m = torch.zeros(R, R)
        m[y:y + half, x:x + half] = 1
        w, _ = split_weights(m, h.shape[-1], radius)
        units = d.top_units(head.names[c], C.DEFAULT_K)
        he = C.paint_h(h, units, d.high[units], mode, w)
        cls2 = head.predict(gen, he, z, split)[0]
        before = float((cls[y:y + half, x:x + half] == c).float().mean())
        after = float((cls2[y:y + half, x:x + half] == c).float().mean())
        ok = after > before if mode == "add" else after < before
        successes += ok
        deltas.append(after - before)
        with torch.no_grad():
            a = to_uint8(gen.forward_from(split, h, z=z))
            b = to_uint8(gen.forward_from(split, he, z=z))
        out_mask = m.numpy() == 0
        outside.append(float((a != b).any(axis=2)[out_mask].mean()))
        if i < 12:
            mm = m.numpy()
            rows.append([_outline(a, mm), _outline(b, mm),
                         colour_labels(cls.cpu().numpy(), head.colours), colour_labels(cls2.cpu().numpy(), head.colours)])
    _grid([sum(rows[j:j + 2], []) for j in range(0, len(rows), 2)], art / "paint.png")
    report["concepts"] = {
        "images": n_img, "k_units": C.DEFAULT_K, "split": split, "footprint_px": radius,
        "success_rate": round(successes / n_img, 3),
        "mean_abs_area_change": round(float(np.mean(np.abs(deltas))), 4),
        "outside_changed_fraction": round(float(np.mean(outside)), 5),
        "outside_changed_fraction_max": round(float(np.max(outside)), 5),
        "grid": str(art / "paint.png"),
        "targets": "success_rate >= 0.8 (area of the concept inside the painted region moves the asked way); "
                   "outside_changed_fraction < 0.01 (any 8-bit change, before compositing)",
    }

    # -- segmentation edit: the astronaut, through the session and a label-map PNG ------------
    s = projected_astronaut(args, 300)
    labels_rgb, legend = s.segment()
    cur = state_classes(s.context(), s.initial_state(), head)
    k_face = head.names.index("eyes-nose-mouth") if "eyes-nose-mouth" in head.names else int(cur.flatten().mode().values)
    want = grow_request(cur, k_face)
    side = s.crop.square[2]
    want_big = np.asarray(Image.fromarray(colour_labels(want.cpu().numpy(), head.colours)).resize((side, side), Image.NEAREST))
    lx, ly, lw, lh = s.crop.layer_box
    x0, y0, _ = s.crop.square
    edited = want_big[ly - y0:ly - y0 + lh, lx - x0:lx - x0 + lw]
    path = art / "astronaut_labels_edited.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(labels_rgb).save(art / "astronaut_labels.png")
    Image.fromarray(np.ascontiguousarray(edited)).save(path)
    name = "bench-grow-face"
    t0 = time.perf_counter()
    state = s.apply([{"kind": "segment", "labels": str(path), "save_vector": name}])
    seg_s = time.perf_counter() - t0
    res = state.applied[-1]["result"]
    achieved, seconds = [res["achieved_fraction"]], [seg_s]
    rendered = s.render(state)
    srows = [[s.render().generated, rendered.generated,
              colour_labels(cur.cpu().numpy(), head.colours), colour_labels(want.cpu().numpy(), head.colours),
              colour_labels(state_classes(s.context(), state, head).cpu().numpy(), head.colours)]]
    # the same request on sampled latents (no photo: the edit optimisation alone)
    for i in range(int(getattr(args, "sampled_edits", 8))):
        z = gen.sample_latents(1, seed=2000 + i)
        with torch.no_grad():
            h = gen.forward_to(z, split)
        cls = head.predict(gen, h, z, split)[0]
        tgt = grow_request(cls, k_face)
        changed = tgt != cls
        if not changed.any():
            continue
        t0 = time.perf_counter()
        he, r = optimise_labels(gen, head, z, h, split, tgt, dilate(changed, SegEditConfig().dilate), changed)
        seconds.append(time.perf_counter() - t0)
        achieved.append(r["achieved_fraction"])
        if i < 3:
            with torch.no_grad():
                srows.append([to_uint8(gen.forward_from(split, h, z=z)), to_uint8(gen.forward_from(split, he, z=z)),
                              colour_labels(cls.cpu().numpy(), head.colours), colour_labels(tgt.cpu().numpy(), head.colours),
                              colour_labels(head.predict(gen, he, z, split)[0].cpu().numpy(), head.colours)])
    _grid(srows, art / "segment_edit.png")
    report["segment_edit"] = {
        "request": f"grow {head.names[k_face]} by 3 px (model resolution)",
        "edits": len(achieved),
        "achieved_fraction": round(float(np.mean(achieved)), 4),
        "achieved_fraction_min": round(float(np.min(achieved)), 4),
        "seconds": round(float(np.max(seconds)), 3),
        "seconds_mean": round(float(np.mean(seconds)), 3),
        "astronaut": {k: res.get(k) for k in ("achieved_fraction", "changed_pixels", "steps", "seconds",
                                               "outside_changed_fraction", "perceptual")},
        "changed_outside_mask": rendered.metrics["changed_outside_mask"],
        "grid": str(art / "segment_edit.png"),
        "targets": "achieved_fraction >= 0.7 of the requested label change; seconds <= 5",
    }

    # -- vectors: apply the saved edit to another projected image ----------------------------
    try:
        zo = gen.sample_latents(1, seed=31337)
        with torch.no_grad():
            other = to_uint8(gen(zo))
        big = np.asarray(Image.fromarray(other).resize((256, 256), Image.LANCZOS))
        s2 = EditSession.open(big, box=(16, 16, 224, 224), model=args.model)
        s2.project(ProjectionConfig(steps=min(100, int(getattr(args, "steps", 100))), seed=0))
        st0 = s2.initial_state()
        strengths = np.linspace(-1.5, 1.5, 40)
        for v in strengths[:4]:  # warm-up (loads the vector once)
            s2.generate(s2.apply([f"vector:{name}={v:.3f}"], state=st0))
        frames = []
        for v in strengths:
            t0 = time.perf_counter()
            s2.generate(s2.apply([f"vector:{name}={v:.3f}"], state=st0))
            frames.append((time.perf_counter() - t0) * 1000)
        vrow = [s2.render().generated] + [s2.generate(s2.apply([f"vector:{name}={v}"], state=st0)) for v in (0.5, 1.0, 1.5)]
        vrow = [vrow[0]] + [to_uint8(t) for t in vrow[1:]]
        _grid([vrow], art / "vector.png")
        report["vectors"] = {
            "preview_ms": round(statistics.median(frames), 2),
            "preview_ms_p90": round(float(np.percentile(frames, 90)), 2),
            "frames": len(frames),
            "grid": str(art / "vector.png"),
            "targets": "preview_ms <= 20 (apply vector:NAME=s + G_F at model resolution)",
        }
    finally:
        delete_vector(gen.model_id, name)
    report["paint_real"] = _paint_real_photos(args)


#: the concept paints measured on real photos (a disc over the hair / forehead, as the photo section paints)
REAL_PAINTS = ("hair=add", "hair=remove")
#: the label-map edit measured on real photos: hair painted at the sides of the face (the photo's own
#: hair grown by 6 model px, in the outer thirds of the square only)
SIDE_HAIR = "segment:hair-at-the-sides"


def _side_hair(s) -> dict:
    """The label-map edit of :data:`SIDE_HAIR` for a projected session, as a layer-box PNG: the label map
    (the segmentation head's, as ``priorpaint segment`` gives it) with "hair" painted where a user wants
    more hair: beside the photo's own hair (:func:`priorpaint.edits.photo_parts.photo_parts`; the head's
    "hair" on a real photo can be the clothes), grown by 6 model px in the outer thirds of the square."""
    from PIL import Image

    from ..edits.photo_parts import HAIR, photo_parts
    from ..edits.segedit import state_classes
    from ..edits.seghead import colour_labels, get_head
    from .photo import ARTIFACTS as PHOTO_ART
    import torch
    head = get_head(s.gen)
    cur = state_classes(s.context(), s.initial_state(), head)
    k = head.names.index("hair")
    own = torch.from_numpy(photo_parts(s.crop.region, s.gen.resolution) == HAIR).to(cur.device)
    grown = grow_request(torch.where(own, torch.full_like(cur, k), torch.full_like(cur, -1)), k, 6) == k
    r = cur.shape[-1]
    want = cur.clone()
    sides = torch.zeros_like(own)
    sides[:, :r // 3], sides[:, r - r // 3:] = True, True
    want[grown & ~own & sides] = k
    side = s.crop.square[2]
    big = np.asarray(Image.fromarray(colour_labels(want.cpu().numpy(), head.colours)).resize((side, side), Image.NEAREST))
    lx, ly, lw, lh = s.crop.layer_box
    x0, y0, _ = s.crop.square
    path = PHOTO_ART / "_side_hair_labels.png"
    Image.fromarray(np.ascontiguousarray(big[ly - y0:ly - y0 + lh, lx - x0:lx - x0 + lw])).save(path)
    return {"kind": "segment", "labels": str(path)}


#: the texture composite's band source the bench compares with the default (``#texture=...``)
TEXTURE = "source"
#: the fields a row of ``paint_real`` reports, from the render's ``structure`` (``kind``'s first)
KIND_KEYS = ("changed_share", "change_p95", "part", "part_colour", "part_texture", "part_orientation", "part_found")
ART_KEYS = ("smear", "unexplained", "ghost")


def _row(st: dict, v: dict) -> dict:
    kind = st.get("kind") or {}
    return {**{k: kind.get(k) for k in KIND_KEYS}, **{k: st.get(k) for k in ART_KEYS},
            "part_read": bool(kind.get("part")) and "part" not in (kind.get("failed") or []),
            "carried": v.get("carried"), "message": v.get("message")}


def with_texture(state, texture: str):
    """``state`` with its last edit asking for the texture composite (``texture``: its band source): the
    same edit, the same latent, rendered through :mod:`priorpaint.compositing.texture`."""
    new = state.evolve()
    new.applied[-1] = dict(new.applied[-1], texture=texture)
    return new


def _paint_real_photos(args) -> dict:
    """Concept paint on real photos (the photo section's bench photos and the held-out boxes; ``--photos N``:
    the first N): per photo and paint, for the default ``detail`` composite and the ``texture`` composite of
    the same edit (:data:`TEXTURE`), the kind measures (:func:`priorpaint.measures.kinds.painted_change`, and
    :func:`~priorpaint.measures.kinds.part_appeared`: the region reads as the photo's own part), the
    artefacts and the verdict; the worst case; a grid (photo, then today | texture per paint)."""
    from PIL import Image

    from .photo import ARTIFACTS as PHOTO_ART, _open, _paint_mask, _square, bench_photos
    from .structural import held_out_photos
    from ..projection.project import ProjectionConfig

    PHOTO_ART.mkdir(parents=True, exist_ok=True)
    photos = [p for p in bench_photos() + held_out_photos() if not p["name"].startswith("cameraman")]
    photos = photos[:int(getattr(args, "photos", 0) or len(photos))]
    rows: dict = {}
    tiles = []
    for p in photos:
        s = _open(p, getattr(args, "model", None))
        s.project(ProjectionConfig(steps=min(int(getattr(args, "steps", 100) or 100), 100), seed=0))
        line = [_square(s, s.photo.rgb)]
        for paint in REAL_PAINTS + (SIDE_HAIR,):
            spec = _side_hair(s) if paint == SIDE_HAIR else f"paint:{paint}@{_paint_mask(s)}"
            state = s.apply([spec])
            r0, r = s.render(state), s.render(with_texture(state, TEXTURE))
            rows[f"{p['name']} {paint}"] = {"detail": _row(r0.metrics["structure"], r0.metrics["verdict"]),
                                            "texture": _row(r.metrics["structure"], r.metrics["verdict"])}
            line += [_square(s, r0.photo.rgb), _square(s, r.photo.rgb)]
        tiles.append(np.concatenate([np.asarray(Image.fromarray(t).resize((192, 192), Image.LANCZOS)) for t in line], 1))
    art = Path("artifacts") / "concepts"
    art.mkdir(parents=True, exist_ok=True)
    grid = art / "paint_real.png"
    Image.fromarray(np.concatenate(tiles, 0)).save(grid)
    worst = {}
    for paint in REAL_PAINTS + (SIDE_HAIR,):
        mine = [r for k, r in rows.items() if k.endswith(paint)]
        worst[paint] = {}
        for label in ("detail", "texture"):
            rs = [r[label] for r in mine]
            shares = [r["changed_share"] for r in rs if r["changed_share"] is not None]
            worst[paint][label] = {"changed_share": min(shares) if shares else None,
                                   **{k: max((r[k] for r in rs if r[k] is not None), default=None) for k in ART_KEYS},
                                   "part_read": f"{sum(1 for r in rs if r['part_read'])} of {len(rs)}",
                                   "carried": f"{sum(1 for r in rs if r['carried'])} of {len(rs)}"}
    return {"photos": rows, "worst": worst, "grid": str(grid),
            "edits": f"{', '.join(REAL_PAINTS)}: a disc over the hair and forehead; {SIDE_HAIR}: the photo's own hair "
                     "grown by 6 model px in the outer thirds of the square, painted on the label map",
            "columns": f"photo, then per edit: the detail composite (default) | the texture composite ({TEXTURE})",
            "targets": "changed_share >= 0.25 where painted; the region reads as the photo's own part "
                       "(part_colour >= 0.5, part_texture and part_orientation within 0.6-1.67); "
                       "smear <= 0.03, unexplained <= 0.10, ghost <= 0.30"}
