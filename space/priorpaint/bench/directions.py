"""``directions``: the live preview, the unsupervised directions and the portrait sliders on real
photos (``report["directions"]``).

``preview_ms`` — median time of one live-preview frame on a projected
  astronaut session (apply ``direction:NAME=s`` for a new strength, then
  ``session.generate``: ``G_F(z_h_e)`` at model resolution), over many frames, with the
  direction already cached; ``sefa_seconds`` and ``ganspace_seconds`` — the *uncached*
  computations (SeFa closed form; GANSpace PCA of the split feature over 20 000 samples),
  and how long reading them back from the cache takes;
``sliders`` — the portrait sliders (:data:`SLIDER_EDITS`) on the bench photos and held-out boxes:
  effect ratio of each one's declared measure, smear, unexplained structure, verdict
  (:func:`sliders_on_photos`). :func:`derive_portrait` fits their boundaries (docs/method/edits.md).
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from .fixtures import projected_astronaut


def run(report: dict, args) -> None:
    import torch
    from ..edits import directions as D

    s = projected_astronaut(args, 100)
    gen = s.gen
    listed = D.list_directions(s.model_id)
    # A latent (SeFa) direction: its frame costs G_H twice plus G_F, the most expensive kind.
    name = next((d["name"] for d in listed if d["method"] == "sefa"), "sefa0")
    # SeFa, uncached.
    t0 = time.perf_counter()
    D.compute_sefa(gen)
    sefa_s = time.perf_counter() - t0
    # GANSpace, uncached, 20 000 samples.
    samples = int(getattr(args, "ganspace_samples", D.GANSPACE_SAMPLES) or D.GANSPACE_SAMPLES)
    t0 = time.perf_counter()
    D.compute_ganspace(gen, samples=samples)
    gs_s = time.perf_counter() - t0
    D.clear_memory_cache()
    D.sefa(gen)                                   # make sure the file exists, then time a cold read
    D.clear_memory_cache()
    t0 = time.perf_counter()
    D.sefa(gen)
    sefa_cached = time.perf_counter() - t0
    # Live preview: one frame = apply the direction at a new strength + G_F at model resolution.
    D.get_direction(gen, name, s.model_id)        # computed/cached outside the timing
    state0 = s.initial_state()
    strengths = np.linspace(-2.0, 2.0, 41)
    for v in strengths[:5]:                       # warm-up
        s.generate(s.apply([f"direction:{name}={v:.2f}"], state=state0))
    frames = []
    for v in strengths:
        t0 = time.perf_counter()
        img = s.generate(s.apply([f"direction:{name}={v:.2f}"], state=state0))
        frames.append((time.perf_counter() - t0) * 1000.0)
    assert img.shape[-1] == gen.resolution
    report["directions"] = {
        "model": s.model_id,
        "device": str(gen.device),
        "threads": torch.get_num_threads(),
        "preview_direction": name,
        "preview_ms": round(statistics.median(frames), 2),
        "preview_ms_p90": round(sorted(frames)[int(0.9 * (len(frames) - 1))], 2),
        "sefa_seconds": round(sefa_s, 3),
        "sefa_cached_seconds": round(sefa_cached, 4),
        "ganspace_samples": samples,
        "ganspace_seconds": round(gs_s, 2),
        "named": len(listed),
        "targets": "preview_ms <= 20 (2-core CPU), sefa_seconds <= 1, ganspace_seconds <= 30 (20 000 samples)",
        "sliders": sliders_on_photos(args),
    }


#: what a portrait slider's boundary is made independent of: head pose (landmarks), lighting (pixels)
#: and the skin tone direction's coordinate
NUISANCES = ("yaw", "pitch", "roll", "brightness", "left_right", "skin_tone")


def measure_samples(gen, samples: int, seed: int, batch: int = 100):
    """``(z, {name: (n,) scores})``: the generator's samples measured with every portrait attribute
    (:mod:`priorpaint.measures.attributes`) and every nuisance; NaN where no face was found."""
    import torch
    from ..edits import directions as D
    from ..measures.attributes import PORTRAIT_ATTRIBUTES, portrait_attributes
    from ..measures.effect import pixel_attribute
    z = gen.sample_latents(samples, seed=seed)
    rows = []
    for chunk in z.split(batch):
        with torch.no_grad():
            imgs = ((gen(chunk.to(gen.device)).clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        for img in imgs:
            p = portrait_attributes(img, pose=True)
            row = {k: np.nan for k in (*PORTRAIT_ATTRIBUTES, *NUISANCES)}
            if p is not None:
                row.update(p)
            row["brightness"] = pixel_attribute(img, "brightness")
            row["left_right"] = pixel_attribute(img, "left_right")
            rows.append(row)
    skin = D.get_direction(gen, "skin_tone").vector.reshape(-1).cpu()
    scores = {k: torch.tensor([r[k] for r in rows], dtype=torch.float64) for k in rows[0]}
    scores["skin_tone"] = (z.reshape(samples, -1).double() @ skin.double())
    return z, scores


def derive_portrait(gen, attributes, samples: int = 1000, seed: int = 123, quantile: float = 0.3) -> dict:
    """Supervised portrait boundaries (InterFaceGAN on the measured attributes of ``samples`` of the
    generator's faces, each made independent of :data:`NUISANCES`): ``{attribute: manifest fields}``
    (``vector``, rounded, and ``derived``: the recipe, accuracy and the cosines with the nuisances'
    boundaries before they were projected out). Look at each one's grid before naming it."""
    from ..edits.directions.boundaries import orthogonal_boundary
    z, scores = measure_samples(gen, samples, seed)
    out = {}
    for a in attributes:
        fit = orthogonal_boundary(z, scores[a], {k: scores[k] for k in NUISANCES}, quantile=quantile)
        out[a] = {"vector": [round(float(x), 5) for x in fit["normal"].reshape(-1)],
                  "derived": {"attribute": a, "samples": samples, "seed": seed, "quantile": quantile,
                              "independent_of": list(NUISANCES), "measured": fit["samples"],
                              "accuracy": round(fit["accuracy"], 3), "cosines": fit["cosines"]}}
    return out


#: the portrait sliders measured on real photos, at the strengths a user would try
SLIDER_EDITS = ("smile=2", "smile=3", "surprise=2")
SLIDER_KEYS = ("measure", "effect", "effect_reference", "effect_ratio", "smear", "unexplained", "ghost")


def sliders_on_photos(args, edits=SLIDER_EDITS, steps: int = 100) -> dict:
    """Each slider of ``edits`` rendered (default composite, no G′: ``warp`` with the ``mouth`` motion for
    a direction that declares it, smile; ``detail`` otherwise) on the bench photos and the held-out
    boxes: its measure's effect ratio against the generator's own samples, smear, unexplained
    structure, ghost, the composite and motion used, and the verdict; grids ``photo | result |
    generator's render`` per edit under ``artifacts/sliders/``. ``worst`` per edit over photos."""
    from pathlib import Path
    from ..projection.project import ProjectionConfig
    from .photo import _grid, _open, _square, bench_photos
    from .structural import held_out_photos
    out_dir = Path("artifacts") / "sliders"
    out_dir.mkdir(parents=True, exist_ok=True)
    photos = bench_photos() + held_out_photos()
    photos = photos[:int(getattr(args, "photos", 0) or len(photos))]
    rows: dict = {}
    for photo in photos:
        s = _open(photo, getattr(args, "model", None))
        p = s.project(ProjectionConfig(steps=min(steps, int(getattr(args, "steps", steps) or steps)), seed=0))
        row = {"side": int(s.crop.square[2]), "psnr_projection": round(p.psnr, 2), "edits": {}}
        tiles = [_square(s, s.photo.rgb)]
        for spec in edits:
            r = s.render(s.apply([f"direction:{spec}"]), adapt=False)
            st, v = r.metrics["structure"], r.metrics["verdict"]
            info = r.metrics.get("composite_info") or {}
            row["edits"][spec] = {**{k: st.get(k) for k in SLIDER_KEYS}, "carried": v.get("carried"),
                                  "composite": r.metrics.get("composite"), "motion": info.get("motion"),
                                  "message": v.get("message")}
            tiles += [_square(s, r.photo.rgb), r.generated]
        row["grid"] = _grid(tiles, out_dir / f"{photo['name']}.png", size=192)
        rows[photo["name"]] = row
    worst = {}
    for spec in edits:
        vals = [r["edits"][spec] for r in rows.values()]
        num = lambda k: [x[k] for x in vals if x.get(k) is not None]
        worst[spec] = {"effect_ratio_min": min(num("effect_ratio"), default=None),
                       "effect_ratio_median": float(np.median(num("effect_ratio"))) if num("effect_ratio") else None,
                       "smear_max": max(num("smear"), default=None), "unexplained_max": max(num("unexplained"), default=None),
                       "carried": f"{sum(1 for x in vals if x.get('carried'))}/{len(vals)}"}
    return {"edits": list(edits), "columns": "photo, then per edit: result | generator's render",
            "photos": rows, "worst": worst,
            "targets": "effect_ratio >= 0.5, smear <= 0.03, unexplained <= 0.10 (worst over photos)"}
