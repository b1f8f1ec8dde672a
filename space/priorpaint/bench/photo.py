"""``photo``: compositing at the photo's resolution, on several photos (``report["photo"]``).

Photos (public domain, read from installed packages, never committed): the astronaut
(scikit-image), Grace Hopper (matplotlib's sample data), the cameraman (scikit-image,
grayscale, a ~150 px selection) and the astronaut upscaled 4× (Lanczos: a ~860 px square,
a camera-resolution selection).  For each photo: projection and the G′ round trip at model
resolution, then every edit kind rendered through G′ in ``replace`` and ``detail`` mode with the
photo-resolution figures of :mod:`priorpaint.compositing.photo_metrics`, the compositing and
render time of each mode (medians of 3), and grids ``photo | replace | detail`` (plus the flow field and the
confidence map for an edit that moves) under ``artifacts/photo/``.  Per photo also the
projection and G′ seconds and the ``detail`` compositing alone (median of 3) at the photo's
square and at that square resized to 1000 px (the 1000 px target).  ``worst`` holds the worst
case over photos, with the render ratio detail / replace and the whole-edit ratio (projection
+ G′ fit + render, as ``priorpaint edit --adapt`` runs it).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List

import cv2
import numpy as np
from PIL import Image

from .fixtures import ASTRONAUT_BOX, astronaut_path, matplotlib_sample_path, photo_path

ARTIFACTS = Path("artifacts") / "photo"
APPEARANCE = ("warm_light=2", "exposure=-1.5", "skin_tone=2")
STRUCTURAL = ("head_turn=2",)


def bench_photos() -> List[dict]:
    astro = astronaut_path()
    return [
        {"name": "astronaut", "path": astro, "box": ASTRONAUT_BOX},
        {"name": "grace_hopper", "path": matplotlib_sample_path("grace_hopper.jpg"), "box": (165, 110, 220, 230)},
        {"name": "cameraman", "path": photo_path("camera.png"), "box": (190, 50, 130, 130)},
        {"name": "astronaut_x4", "path": astro, "box": (560, 80, 720, 720), "upscale": 4},
    ]


def _open(photo: dict, model):
    from ..images import load_photo
    from ..session import EditSession
    img = Image.open(photo["path"])
    img.load()
    if photo.get("upscale"):
        k = photo["upscale"]
        img = img.convert("RGB").resize((img.width * k, img.height * k), Image.LANCZOS)
    return EditSession.open(load_photo(img), box=photo["box"], model=model)


def _paint_mask(s) -> Path:
    """A disc over the upper half of the layer box (hair / forehead), as a layer-box PNG."""
    x, y, w, h = (int(v) for v in _layer_box(s))
    yy, xx = np.mgrid[0:h, 0:w]
    m = (((xx - w / 2) / (0.3 * w)) ** 2 + ((yy - 0.28 * h) / (0.2 * h)) ** 2 <= 1).astype(np.uint8) * 255
    path = ARTIFACTS / "_paint_mask.png"
    Image.fromarray(m, "L").save(path)
    return path


def _strokes(s) -> Path:
    x, y, w, h = (int(v) for v in _layer_box(s))
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[int(0.55 * h):int(0.62 * h), int(0.3 * w):int(0.7 * w)] = (200, 40, 40, 255)   # red lips / chin band
    rgba[int(0.1 * h):int(0.18 * h), int(0.2 * w):int(0.8 * w)] = (240, 220, 120, 255)  # blond hair band
    path = ARTIFACTS / "_strokes.png"
    Image.fromarray(rgba, "RGBA").save(path)
    return path


def _layer_box(s):
    x0, y0, side = s.crop.square
    W, H = s.crop.image_size
    xs0, ys0 = max(x0, 0), max(y0, 0)
    return xs0, ys0, min(x0 + side, W) - xs0, min(y0 + side, H) - ys0


def _square(s, photo_rgb: np.ndarray) -> np.ndarray:
    from ..compositing.crop import cut_square
    return cut_square(photo_rgb, s.crop.square, pad="edge")


def _grid(tiles: List[np.ndarray], path: Path, size: int = 256) -> str:
    row = [np.asarray(Image.fromarray(t).resize((size, size), Image.LANCZOS)) for t in tiles]
    Image.fromarray(np.concatenate(row, axis=1)).save(path)
    return str(path)


KEYS = ("psnr_photo", "detail_kept", "effect_carried", "seam_grain", "ghost", "ghost_reference")


def run(report: dict, args) -> None:
    from ..compositing.blend import to_uint8
    from ..compositing.detail import detail_composite, flow_image
    from ..compositing.photo_metrics import photo_metrics
    from ..projection.project import ProjectionConfig

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    steps = min(int(getattr(args, "steps", 300) or 300), 300)
    adapt = {"fit": "reconstruction"}
    if getattr(args, "adapt_steps", None):  # --smallest: a few G′ steps (a smoke run)
        adapt.update(steps=int(args.adapt_steps), min_steps=0)
    repeat = max(1, int(getattr(args, "repeat", 3)))
    out: Dict[str, object] = {"adapt": adapt, "steps": steps, "photos": {},
                              "targets": "round trip >= 45 dB; appearance detail_kept >= 0.9 and effect_carried "
                                         ">= 0.9; structural detail_kept >= 0.7, effect_carried >= 0.8, ghost <= "
                                         "ghost_reference + 0.1; compositing <= 0.3 s at 1000 px; edit <= 1.5x replace"}
    for photo in bench_photos()[:getattr(args, "photos", None) or None]:
        s = _open(photo, getattr(args, "model", None))
        p = s.project(ProjectionConfig(steps=steps, seed=0))
        t0 = time.perf_counter()
        rec_replace = s.render(adapt=True, adapt_options=adapt, composite="replace")
        t_adapt = s.seconds.get("adapt", time.perf_counter() - t0)  # the G′ fit (reused by every render below)
        rec_detail = s.render(adapt=True, adapt_options=adapt, composite="detail")
        row: Dict[str, object] = {
            "square_px": s.crop.square[2], "mode": s.photo.mode,
            "psnr_projection": round(p.psnr, 2), "psnr_adapted": rec_replace.metrics.get("psnr_adapted"),
            "round_trip_replace": rec_replace.metrics["psnr_photo"], "round_trip_detail": rec_detail.metrics["psnr_photo"],
            "round_trip_detail_kept_replace": rec_replace.metrics["detail_kept"],
            "edits": {},
        }
        edits = [("direction:" + d, "appearance") for d in APPEARANCE] + \
                [("direction:" + d, "structural") for d in STRUCTURAL] + \
                [(f"paint:hair=remove@{_paint_mask(s)}", "paint"), (f"scribble:{_strokes(s)}", "scribble")]
        region = s.crop.region
        for spec, kind in edits:
            state = s.apply([spec])
            # each mode rendered three times, alternating, medians kept: one render is a fraction
            # of a second, so a single one reads the load of the machine more than the mode
            times: Dict[str, List[float]] = {"replace": [], "detail": []}
            comp: Dict[str, List[float]] = {"replace": [], "detail": []}
            renders = {}
            for _ in range(repeat):
                for mode in ("replace", "detail"):
                    t0 = time.perf_counter()
                    renders[mode] = s.render(state, adapt=True, adapt_options=adapt, composite=mode)
                    times[mode].append(time.perf_counter() - t0)
                    comp[mode].append(s.seconds["composite"])
            rr, rd = renders["replace"], renders["detail"]
            t_replace, t_detail = float(np.median(times["replace"])), float(np.median(times["detail"]))
            c_replace, c_detail = float(np.median(comp["replace"])), float(np.median(comp["detail"]))
            name = spec.split("@")[0].split(":", 1)[0] + ":" + spec.split("@")[0].split(":", 1)[1].split("/")[-1]
            entry = {"kind": kind,
                     "replace": {k: rr.metrics.get(k) for k in KEYS},
                     "detail": {k: rd.metrics.get(k) for k in KEYS},
                     "seconds_composite_replace": round(c_replace, 4),
                     "seconds_composite_detail": round(c_detail, 4),
                     "seconds_render_replace": round(t_replace, 3),
                     "seconds_render_detail": round(t_detail, 3),
                     "changed_outside_mask": rd.metrics["changed_outside_mask"],
                     "confidence_mean": rd.metrics["composite_info"].get("confidence_mean"),
                     "flow_max_model_px": rd.metrics["composite_info"].get("flow_max_model_px")}
            tiles = [region, _square(s, rr.photo.rgb), _square(s, rd.photo.rgb)]
            # the naive residual (photo + change, no motion) shows what the warp prevents
            if kind == "structural":
                gp = s.gprime(adapt)
                b = to_uint8(gp(s.projection.h, s.projection.z))
                naive = detail_composite(region, b, rd.generated, s.edit_mask(state), motion=False)
                d = detail_composite(region, b, rd.generated, s.edit_mask(state))
                nm = photo_metrics(naive.region, region, b, rd.generated, s.edit_mask(state), s.crop.region_mask,
                                   d.info["feather_px"])
                entry["naive_residual"] = {k: nm.get(k) for k in KEYS}
                tiles.append(naive.region)
                if d.flow is not None:
                    tiles.append(flow_image(d.flow, region.shape[0]))
                    tiles.append(np.repeat((d.confidence[..., None] * 255).astype(np.uint8), 3, -1))
            stem = name[:-4] if name.endswith(".png") else name  # a scribble is named by its strokes file
            fname = f"{photo['name']}_{kind}_{stem.replace(':', '_').replace('=', '_')}.png"
            entry["grid"] = _grid(tiles, ARTIFACTS / fname)
            row["edits"][name] = entry
        row["seconds_project"] = round(s.seconds.get("project", 0.0), 3)
        row["seconds_adapt"] = round(t_adapt, 3)
        # compositing alone (median of 3), at this photo's square and at a 1000 px square
        # (the square resized: the 1000 px target); the head turn moves, so every stage runs
        state = s.apply(["direction:head_turn=2"])
        img = s.render(state, composite="replace").generated
        base = s.render(composite="replace").generated
        mask = s.edit_mask(state)
        row["seconds_detail_composite_alone"] = _timed(lambda: detail_composite(region, base, img, mask))
        big = cv2.resize(region, (1000, 1000), interpolation=cv2.INTER_CUBIC)
        big_mask = cv2.resize(mask, (1000, 1000), interpolation=cv2.INTER_NEAREST)
        row["seconds_detail_composite_1000px"] = _timed(lambda: detail_composite(big, base, img, big_mask))
        out["photos"][photo["name"]] = row
    out["worst"] = _worst(out["photos"])
    report["photo"] = out


def _timed(fn, repeat: int = 3) -> float:
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return round(float(np.median(ts)), 4)


def _worst(photos: Dict[str, dict]) -> Dict[str, object]:
    w: Dict[str, object] = {}
    vals = lambda f: [v for v in (f(r) for r in photos.values()) if v is not None]  # noqa: E731
    w["round_trip_detail_min"] = min(vals(lambda r: r["round_trip_detail"]))
    w["round_trip_replace_min"] = min(vals(lambda r: r["round_trip_replace"]))
    w["psnr_projection_min"] = min(vals(lambda r: r["psnr_projection"]))
    w["psnr_adapted_min"] = min(vals(lambda r: r["psnr_adapted"]))
    for kind in ("appearance", "structural", "paint", "scribble"):
        es = [e for r in photos.values() for e in r["edits"].values() if e["kind"] == kind]
        if not es:
            continue
        for mode in ("replace", "detail"):
            for k in ("detail_kept", "effect_carried"):
                xs = [e[mode][k] for e in es if e[mode][k] is not None]
                if xs:
                    w[f"{kind}_{mode}_{k}_min"] = min(xs)
            xs = [e[mode]["seam_grain"] for e in es if e[mode]["seam_grain"] is not None]
            if xs:
                w[f"{kind}_{mode}_seam_grain_max"] = max(xs)
        xs = [e["detail"]["ghost"] - e["detail"]["ghost_reference"] for e in es
              if e["detail"]["ghost"] is not None and e["detail"]["ghost_reference"] is not None]
        if xs:
            w[f"{kind}_detail_ghost_excess_max"] = round(max(xs), 4)
        w[f"{kind}_render_ratio_max"] = round(max(e["seconds_render_detail"] / max(e["seconds_render_replace"], 1e-6)
                                                  for e in es), 3)
        # the whole edit as `priorpaint edit --adapt` runs it: projection + G′ fit + render
        w[f"{kind}_edit_ratio_max"] = round(max(
            (r["seconds_project"] + r["seconds_adapt"] + e["seconds_render_detail"])
            / max(r["seconds_project"] + r["seconds_adapt"] + e["seconds_render_replace"], 1e-6)
            for r in photos.values() for e in r["edits"].values() if e["kind"] == kind), 3)
        w[f"{kind}_changed_outside_mask_max"] = max(e["changed_outside_mask"] for e in es)
    w["seconds_detail_composite_alone_max"] = max(r["seconds_detail_composite_alone"] for r in photos.values())
    w["seconds_detail_composite_1000px_max"] = max(r["seconds_detail_composite_1000px"] for r in photos.values())
    return w
