"""``stylegan2``: per-step time of projection and of G′ on a config-f-sized StyleGAN2.

Random weights (no download): a 256x256 generator with channel multiplier 2, style_dim
512 and 8 mapping layers (the size of the official 256 px config-f models; the section
reports its parameter count).  A few steps of each (CPU is slow), on the CPU and on CUDA
when present:

* projection: :func:`priorpaint.projection.project` in ``w+`` (one start, no perceptual
  loss); ``project_step_seconds`` is its wall time over its steps (setup included), and
  ``project_refine_step_seconds`` the median time of one split-layer refinement step;
* G′: :func:`priorpaint.adaptation.gprime.fit_gprime` (the paper's multiplicative δ on
  the layers after the split, no early stop); ``gprime_step_seconds`` is the median time
  of one step, ``gprime_1000_steps_seconds`` that times 1000 (the paper's recipe);
* the live preview of a published named edit (``weights_manifest/directions/stylegan2-ffhq.json``,
  on this generator's 14 styles): one frame applies the ``direction`` edit at a new strength
  to a state ``(w+, h = G_H(w+))`` and renders ``G_F`` at full resolution, as a slider
  does; ``preview_wplus_ms`` (GANSpace ``white_hair``: styles 7..9, across the split) and
  ``preview_w_ms`` (InterFaceGAN ``age``: every style) are medians over several frames;
* the progressive preview (:mod:`priorpaint.progressive`) of ``white_hair``, as a slider
  dragged from 0 to 1.5 in steps of 0.25: ``progressive.first_frame_ms`` is the median time
  of the approximate frame (predicted from the exact frames already made, as uint8 pixels;
  ``first_frame_cpu_ms`` its CPU time),
  ``progressive.exact_frame_ms`` that of the exact frame which follows; the approximate
  frames' error against the exact ones (PSNR on [-1, 1] and max |diff|, both clamped as
  shown) for each way a frame is predicted: ``extrapolated`` (the drag's next step, from the
  frames behind it), ``interpolated`` (half way between two frames made), ``taylor`` (one
  frame at 0 and its tangent ``J·d`` by a forward difference, at 0.25 and 0.5); ``moved``: how
  far the exact frames moved from the frame at 0 (max |diff|), for scale.

``*_cpu_seconds``: the process's CPU time (all threads) per step, which other programs
competing for the cores do not inflate the way they inflate wall time.

The figures go to ``report["stylegan2"]`` (top level: the fastest device; ``per_device``:
all of them).
"""

from __future__ import annotations

import statistics
import time
from typing import Dict, List, Optional


def _intervals(stamps: List[float]) -> List[float]:
    return [b - a for a, b in zip(stamps, stamps[1:])]


def _split(stamps: List[tuple], which: int) -> List[float]:
    return [s[which] for s in stamps]


def _median(xs: List[float]) -> Optional[float]:
    return round(statistics.median(xs), 4) if xs else None


def _bench_device(device: str, size: int, channel_multiplier: int, style_dim: int, n_mlp: int,
                  steps: int, channels: Optional[dict] = None) -> Dict[str, object]:
    import torch

    from ..projection.project import ProjectionConfig, project
    from ..models.stylegan2 import StyleGAN2Generator

    torch.manual_seed(0)
    gen = StyleGAN2Generator(size=size, channel_multiplier=channel_multiplier, style_dim=style_dim,
                             n_mlp=n_mlp, channels=channels).to(device).eval()
    for p in gen.parameters():
        p.requires_grad_(False)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    with torch.no_grad():
        target = gen(gen.sample_latents(1, seed=1)).clamp(-1, 1)
        gen(gen.sample_latents(1, seed=2))  # warm-up (kernels, allocator)
    sync()

    stamps: Dict[str, List[tuple]] = {}

    def progress(stage, fraction, info):
        sync()
        stamps.setdefault(info.get("phase", stage), []).append((time.perf_counter(), time.process_time()))

    cfg = ProjectionConfig(steps=steps, candidates=1, starts=1, perceptual=False, seed=0)
    t0 = time.perf_counter()
    proj = project(gen, target, config=cfg, progress=progress)
    sync()
    project_seconds = time.perf_counter() - t0
    out: Dict[str, object] = {
        "device": device,
        "parameters_millions": round(sum(p.numel() for p in gen.parameters()) / 1e6, 2),
        "project_steps": steps,
        "project_seconds": round(project_seconds, 3),
        "project_step_seconds": round(project_seconds / max(steps, 1), 4),
        "project_refine_step_seconds": _median(_intervals(_split(stamps.get("refine", []), 0))),
        "project_refine_step_cpu_seconds": _median(_intervals(_split(stamps.get("refine", []), 1))),
        "split": proj.split,
    }
    from ..adaptation.gprime import AdaptConfig, fit_gprime
    stamps.clear()
    weight = torch.ones(1, 1, size, size, device=device)
    acfg = AdaptConfig(steps=steps, early_stop=False, perceptual=False)
    t0 = time.perf_counter()
    gp = fit_gprime(gen, proj.split, proj.h, proj.z, target, weight, config=acfg, progress=progress)
    sync()
    total = time.perf_counter() - t0
    adapt = stamps.get("adapt", [])[:gp.steps + 1]
    step = _median(_intervals(_split(adapt, 0))) or round(total / max(gp.steps, 1), 4)
    out.update({
        "gprime_steps": gp.steps,
        "gprime_layers": gp.layers,
        "gprime_seconds": round(total, 3),
        "gprime_step_seconds": step,
        "gprime_step_cpu_seconds": _median(_intervals(_split(adapt, 1))),
        "gprime_1000_steps_seconds": round(step * 1000, 1),
    })
    out.update(_bench_preview(gen, sync))
    out["progressive"] = _bench_progressive(gen, sync)
    return out


def _bench_preview(gen, sync, frames: int = 5) -> Dict[str, object]:
    """Median ms of a live-preview frame of a W+ and a W named edit (see the module doc)."""
    import torch

    from ..edits.directions import apply_direction, get_direction
    from ..edits.registry import EditState
    from ..errors import InputError

    split = gen.default_split
    w = gen.sample_latents(1, seed=3)
    out: Dict[str, object] = {}
    with torch.no_grad():
        state = EditState(z=w, h=gen.forward_to(w, split))
        for key, name in (("preview_wplus_ms", "white_hair"), ("preview_w_ms", "age")):
            try:
                direction = get_direction(gen, name, "stylegan2-ffhq")   # the shipped set, by its name
            except InputError as e:   # a generator of other shapes than the published data's
                out[key], out["preview_skipped"] = None, str(e)
                continue
            times = []
            for i in range(frames + 1):                               # the first frame warms up
                sync()
                t0 = time.perf_counter()
                st = apply_direction(gen, state, split, direction, 0.2 + 0.1 * i)
                gen.forward_from(split, st.h, interventions=st.interventions or None, z=st.z)
                sync()
                times.append((time.perf_counter() - t0) * 1000.0)
            out[key] = round(statistics.median(times[1:]), 1)
            out[key.replace("_ms", "_edit")] = name
    return out


def _errors(pairs) -> Dict[str, object]:
    """PSNR (min, median) and max |diff| of (approximate, exact) frames, clamped as shown."""
    from ..metrics import psnr

    if not pairs:
        return {}
    p = [psnr(a.clamp(-1, 1), b.clamp(-1, 1)) for a, b in pairs]
    d = [float((a.clamp(-1, 1) - b.clamp(-1, 1)).abs().max()) for a, b in pairs]
    return {"frames": len(pairs), "psnr_min_db": round(min(p), 2), "psnr_median_db": round(statistics.median(p), 2),
            "max_abs_diff": round(max(d), 4)}


def _bench_progressive(gen, sync, name: str = "white_hair", step: float = 0.25, last: float = 1.5,
                       eps: float = 0.01) -> Dict[str, object]:
    """The progressive preview's latency and error on a dragged slider (see the module doc)."""
    import torch

    from ..edits.directions import apply_direction, get_direction
    from ..edits.registry import EditState
    from ..errors import InputError
    from ..progressive import PreviewLines

    split = gen.default_split
    try:
        direction = get_direction(gen, name, "stylegan2-ffhq")
    except InputError as e:
        return {"skipped": str(e)}
    w = gen.sample_latents(1, seed=3)
    with torch.no_grad():
        state = EditState(z=w, h=gen.forward_to(w, split))

        def exact(a):
            sync()
            t0 = time.perf_counter()
            st = apply_direction(gen, state, split, direction, a)
            img = gen.forward_from(split, st.h, interventions=st.interventions or None, z=st.z)
            sync()
            return img, time.perf_counter() - t0

        def spec(a):
            return [{"kind": "direction", "name": name, "strength": a}]

        lines = PreviewLines(budget_s=0.0)       # always predict: the figures are the point here
        strengths = [round(k * step, 6) for k in range(int(round(last / step)) + 1)]
        frames, first_ms, first_cpu_ms, exact_ms, extrap = {}, [], [], [], []
        for a in strengths:
            t0, c0 = time.perf_counter(), time.process_time()
            guess = lines.approximate(spec(a))
            if guess is not None:
                guess.pixels()
                first_ms.append((time.perf_counter() - t0) * 1000.0)
                first_cpu_ms.append((time.process_time() - c0) * 1000.0)
            img, sec = exact(a)
            exact_ms.append(sec * 1000.0)
            if guess is not None and guess.method == "extrapolated":
                extrap.append((guess.image, img))
            frames[a] = img
            lines.add_exact(spec(a), img, sec)
        interp = []
        for a, b in list(zip(strengths, strengths[1:]))[1:4]:
            mid = (a + b) / 2
            guess = lines.approximate(spec(mid))
            interp.append((guess.image, exact(mid)[0]))
        taylor_lines = PreviewLines(budget_s=0.0)
        taylor_lines.add_exact(spec(0.0), frames[0.0], 1.0)
        taylor_lines.add_tangent(spec(0.0), (exact(eps)[0] - frames[0.0]) / eps)
        taylor = [(taylor_lines.approximate(spec(a)).image, frames[a]) for a in strengths[1:3]]
    moved = max(float((frames[a].clamp(-1, 1) - frames[0.0].clamp(-1, 1)).abs().max()) for a in strengths)
    return {"edit": name, "strengths": strengths,
            "first_frame_ms": _median(first_ms) and round(_median(first_ms), 2),
            "first_frame_cpu_ms": _median(first_cpu_ms) and round(_median(first_cpu_ms), 2),
            "exact_frame_ms": round(statistics.median(exact_ms), 1),
            "extrapolated": _errors(extrap), "interpolated": _errors(interp), "taylor": _errors(taylor),
            "moved": round(moved, 4), "tangent_eps": eps}


def bench_stylegan2(report: dict, size: int = 256, channel_multiplier: int = 2, style_dim: int = 512,
                    n_mlp: int = 8, steps: int = 5, devices: Optional[List[str]] = None,
                    channels: Optional[dict] = None) -> dict:
    """Add ``report["stylegan2"]``: per-step seconds of projection and G′ (see the module doc)."""
    import torch

    if not 1 <= steps <= 5:
        raise ValueError("the StyleGAN2 benchmark runs 1 to 5 steps of each stage")
    if devices is None:
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    per = {d: _bench_device(d, size, channel_multiplier, style_dim, n_mlp, steps, channels) for d in devices}
    primary = devices[-1]
    section = dict(per[primary])
    section.update({"config": {"size": size, "channel_multiplier": channel_multiplier, "style_dim": style_dim,
                               "n_mlp": n_mlp, "channels": channels, "weights": "random"},
                    "threads": torch.get_num_threads(), "per_device": per,
                    "target": "G′ 1000 steps under 10 s on a current GPU (paper: about 30 s on a 2019 GPU); "
                              "a W+ edit previews in <= 50 ms on the CPU (per_device.cpu: progressive.first_frame_ms, "
                              "the approximate frame; preview_wplus_ms is the exact frame)"})
    report["stylegan2"] = section
    return section


#: the generator's shape and the step count, each settable as a bench option ``stylegan2_<name>``
#: (and ``stylegan2_width``: every block that many channels); the registry's smallest setting
#: uses a small generator, the default is config-f at 256 px
KNOBS = ("size", "channel_multiplier", "style_dim", "n_mlp", "steps")


def run(report: dict, args=None) -> None:
    """The ``priorpaint bench`` section (``--only stylegan2``)."""
    knobs = {k: int(getattr(args, f"stylegan2_{k}")) for k in KNOBS
             if getattr(args, f"stylegan2_{k}", None) is not None}
    width = getattr(args, "stylegan2_width", None)  # every block this many channels
    if width:
        from ..models.stylegan2 import default_channels
        knobs["channels"] = {r: int(width) for r in default_channels(knobs.get("size", 256),
                                                                     knobs.get("channel_multiplier", 2))}
    bench_stylegan2(report, **knobs)
