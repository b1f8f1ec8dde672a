"""``directions``: the live preview and the unsupervised directions (``report["directions"]``).

``preview_ms`` — median time of one live-preview frame on a projected
  astronaut session (apply ``direction:NAME=s`` for a new strength, then
  ``session.generate``: ``G_F(z_h_e)`` at model resolution), over many frames, with the
  direction already cached; ``sefa_seconds`` and ``ganspace_seconds`` — the *uncached*
  computations (SeFa closed form; GANSpace PCA of the split feature over 20 000 samples),
  and how long reading them back from the cache takes.
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
    }
