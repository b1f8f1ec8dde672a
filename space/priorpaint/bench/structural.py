"""``structural``: do structural edits carry on real photos? (``report["structural"]``)

Photos: the ``photo`` section's four (:func:`priorpaint.bench.photo.bench_photos`) plus held-out
boxes nobody tuned on (the astronaut and Grace Hopper at other boxes, the cameraman's face; about
130–220 px; and three more, 270–440 px, that no warp setting was chosen on). For each photo the default projection, then each edit of :data:`EDITS` (``+`` stacks
directions: head_turn + head_tilt, whose rows carry each edit's own effect ratio, ``effects``) rendered
``today`` (G′ + ``detail``, the defaults) and ``new`` (``warp``: the photo's pixels moved along
the in-manifold proxy's feature-matched motion, :mod:`priorpaint.compositing.warp`), with the
measures of :mod:`priorpaint.measures` (smear, unexplained structure, ghost, squeeze and stretch, effect ratio) and
the verdict; grids ``photo | today | new | the generator's render`` under
``artifacts/structural/`` (a direction that declares the head motion also gets ``W``, the landmark
spline it replaced: ``photo | today | W | new | the generator's render``). On the photos of :data:`SWEEP_PHOTOS`, head_turn and head_tilt ±2 also
run under each setting of :data:`VARIANTS` (the distortion–editability curve: ``curve``,
``artifacts/structural/curve.png``). ``worst`` holds, per edit and composite, the worst case over photos
and the share of photos where the edit was carried.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List

import numpy as np

from .photo import _grid, _open, _square, bench_photos
from .fixtures import astronaut_path, matplotlib_sample_path, photo_path

ARTIFACTS = Path("artifacts") / "structural"
EDITS = ("head_turn=2", "head_turn=-2", "head_tilt=2", "head_tilt=-2", "headwear=2", "hair_frame=2",
         "profile=2", "warm_light=2",
         # two structural edits stacked (round 6: one head, turned and bowed; each edit judged on its own effect)
         "head_turn=2+head_tilt=2", "head_turn=-2+head_tilt=-2", "head_turn=2+head_tilt=-2", "head_turn=-2+head_tilt=2")
KEYS = ("smear", "unexplained", "ghost", "squeeze", "stretch", "effect", "effect_reference", "effect_ratio")
#: the warp composite's settings swept for the distortion–editability curve (docs/method/editability.md).
#: Each is complete over :data:`SETTINGS` (letters A–T0 were tried on feature motion with the appearance
#: change, the defaults before registration; W is today's default)
FEATURES = {"MOTION": "features", "APPEARANCE": 1.0, "REGISTER": False, "LANDMARK_SMOOTHING": 1.0, "PROXY_STEPS": 0,
            "HEAD_MOTION": False}
NO_NEW = {"MATCH_GOOD": 8.0, "MATCH_LOST": 9.0}
LANDMARKS0 = {"MOTION": "landmarks", "APPEARANCE": 0.0}
VARIANTS = {k: {**FEATURES, **v} for k, v in {
    "A": {"TRUST_RAMP": (9.0, 10.0)}, "B": {**NO_NEW, "TRUST_RAMP": (9.0, 10.0)},
    "C": {**NO_NEW, "APPEARANCE": 0.0}, "D": {**NO_NEW, "GAIN": 1.5, "TRUST_RAMP": (9.0, 10.0)},
    "E": {**NO_NEW, "FIELD_SIGMA": 4.0, "TRUST_RAMP": (9.0, 10.0)}, "F": {},
    "G": {"TRUST_RAMP": (0.05, 0.25)}, "H": {"GAIN": 1.3},
    # the distortion axis: the proxy keeps a share of the photo's refinement h − G_H(z)
    "P3": {"PROXY_BLEND": 0.3}, "P6": {"PROXY_BLEND": 0.6}, "P10": {"PROXY_BLEND": 1.0},
    # the motion as a thin-plate spline through the proxies' landmarks, with and without the appearance change
    "T": {"MOTION": "landmarks"}, "T0": LANDMARKS0,
    # a spline through the confident feature matches (many points), pure and with the appearance change
    "M0": {"MOTION": "matches", "APPEARANCE": 0.0}, "M": {"MOTION": "matches"},
    # the proxy registered onto the photo (affine ECC of the low bands) before its motion is carried
    "RT0": {**LANDMARKS0, "REGISTER": True}, "RM0": {"MOTION": "matches", "APPEARANCE": 0.0, "REGISTER": True},
    "RT": {"MOTION": "landmarks", "REGISTER": True},
    "RTs": {"MOTION": "landmarks", "REGISTER": True, "APPEARANCE_SIGMA": 2.0},
    # W (default): RT0 with a gentler landmark spline (W0: unregistered); RW: W with the proxy refined
    "W0": {**LANDMARKS0, "LANDMARK_SMOOTHING": 12.0},
    "W": {**LANDMARKS0, "REGISTER": True, "LANDMARK_SMOOTHING": 12.0},
    "RW": {**LANDMARKS0, "REGISTER": True, "LANDMARK_SMOOTHING": 12.0, "PROXY_STEPS": 60},
    # W with the appearance change, blurred by 3 / 5 model px
    "Ws3": {"MOTION": "landmarks", "REGISTER": True, "LANDMARK_SMOOTHING": 12.0, "APPEARANCE_SIGMA": 3.0},
    "Ws5": {"MOTION": "landmarks", "REGISTER": True, "LANDMARK_SMOOTHING": 12.0, "APPEARANCE_SIGMA": 5.0},
    # round 4: W with generated pixels (grain matched, a seam) where the proxy's change is not explained
    # by the motion, from 15-35 / 25-50 / 40-80 grey levels of |E - warp(B)|
    "N15": {**LANDMARKS0, "REGISTER": True, "LANDMARK_SMOOTHING": 12.0, "NEW_FROM_CHANGE": (15, 35)},
    "N25": {**LANDMARKS0, "REGISTER": True, "LANDMARK_SMOOTHING": 12.0, "NEW_FROM_CHANGE": (25, 50)},
    "N40": {**LANDMARKS0, "REGISTER": True, "LANDMARK_SMOOTHING": 12.0, "NEW_FROM_CHANGE": (40, 80)},
    # N25 with generated pixels only above the photo's eyes, where a cap goes
    "C25": {**LANDMARKS0, "REGISTER": True, "LANDMARK_SMOOTHING": 12.0, "NEW_FROM_CHANGE": (25, 50), "NEW_REGION": "crown"},
    # round 5: a direction that declares the head motion turns the photo's own head (compositing/warp_head.py;
    # since round 6 head_tilt bows it too); every setting above has it off, so that they sweep the spline's settings
    "HM": {**LANDMARKS0, "REGISTER": True, "LANDMARK_SMOOTHING": 12.0, "HEAD_MOTION": True},
}.items()}
SETTINGS = sorted({k for v in VARIANTS.values() for k in v} | {"FIELD_SIGMA", "TRUST_RAMP", "GAIN", "PROXY_BLEND",
                                                             "APPEARANCE_SIGMA", "MATCH_GOOD", "MATCH_LOST",
                                                             "PROXY_STEPS", "NEW_FROM_CHANGE", "NEW_REGION"})
SWEEP_PHOTOS = ("astronaut", "grace_hopper", "astronaut_x4", "astronaut_heldout", "grace_hopper_heldout")
SWEEP_EDITS = ("head_turn=2", "head_turn=-2", "head_tilt=2", "head_tilt=-2", "headwear=2")


def before_routing(state):
    """``state`` without its directions' declared composite: what G′ + ``detail`` made before
    structural directions were routed to ``warp`` (the grids' "today" column)."""
    st = state.evolve()
    st.applied = [{k: v for k, v in a.items() if k != "composite"} for a in state.applied]
    return st


def held_out_photos() -> List[dict]:
    return [
        {"name": "astronaut_heldout", "path": astronaut_path(), "box": (165, 45, 130, 150)},
        {"name": "grace_hopper_heldout", "path": matplotlib_sample_path("grace_hopper.jpg"), "box": (180, 90, 190, 215)},
        {"name": "cameraman_heldout", "path": photo_path("camera.png"), "box": (200, 60, 110, 120)},
    ]


def validation_photos() -> List[dict]:
    """Boxes nobody chose a warp setting on (W was chosen on :data:`SWEEP_PHOTOS`): 270–440 px."""
    return [
        {"name": "astronaut_x2_heldout", "path": astronaut_path(), "box": (250, 20, 420, 440), "upscale": 2},
        {"name": "grace_hopper_wide", "path": matplotlib_sample_path("grace_hopper.jpg"), "box": (140, 70, 270, 300)},
        {"name": "cameraman_x2_heldout", "path": photo_path("camera.png"), "box": (370, 90, 280, 280), "upscale": 2},
    ]


def _directions(spec: str) -> List[str]:
    """An edit of :data:`EDITS` as the session's direction specs (``+`` stacks several)."""
    return [f"direction:{one}" for one in spec.split("+")]


def _row(render, seconds: float) -> Dict[str, object]:
    st = render.metrics["structure"]
    v = render.metrics["verdict"]
    row = {**{k: st.get(k) for k in KEYS}, "carried": v.get("carried"), "message": v.get("message"),
           "seconds": round(seconds, 3)}
    info = render.metrics.get("composite_info") or {}
    # the head motion's turn and bow (after its limits), and the share of the head the selection holds still
    for key in ("head_angle_deg", "head_pitch_deg", "head_cut"):
        if key in info:
            row[key] = info[key]
    if st.get("effects"):   # a stack: each edit's own effect ratio; the row's ratio is the least of them
        row["effects"] = {n: e.get("effect_ratio") for n, e in st["effects"].items()}
        row["effect_ratio"] = v.get("effect_ratio")
    return row


def run(report: dict, args) -> None:
    from ..projection.project import ProjectionConfig

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    steps = min(int(getattr(args, "steps", 300) or 300), 300)
    adapt = {"fit": "reconstruction"}
    # knobs for a smoke run (the registry's smallest setting): how many photos and edits, and the sweep
    photos = bench_photos() + held_out_photos() + validation_photos()
    photos = photos[:int(getattr(args, "photos", 0) or len(photos))]
    edits = EDITS[:int(getattr(args, "structural_edits", 0) or len(EDITS))]
    sweep = bool(getattr(args, "sweep", True))
    out: Dict[str, object] = {"edits": list(edits), "photos": {},
                              "targets": "head_turn/head_tilt +-2: effect_ratio >= 0.5, smear <= 0.03, "
                                         "unexplained <= 0.10, ghost <= 0.30 (worst over photos)"}
    for photo in photos:
        s = _open(photo, getattr(args, "model", None))
        p = s.project(ProjectionConfig(steps=steps, seed=0))
        row: Dict[str, object] = {"box": list(photo["box"]), "side": int(s.crop.square[2]),
                                  "psnr_projection": round(p.psnr, 2), "edits": {}}
        region = _square(s, s.photo.rgb)
        for spec in edits:
            state = s.apply(_directions(spec))
            t0 = time.perf_counter()
            today = s.render(before_routing(state), adapt=True, adapt_options=adapt, composite="detail")
            t_today = time.perf_counter() - t0
            t0 = time.perf_counter()
            new = s.render(state, composite="warp")
            t_new = time.perf_counter() - t0
            row["edits"][spec] = {"today": _row(today, t_today), "new": _row(new, t_new)}
            tiles = [region, _square(s, today.photo.rgb), _square(s, new.photo.rgb), today.generated]
            if _declares_head(s, state):
                # the head motion against the landmark spline it replaced (W): photo | today | W | new | generator
                t0 = time.perf_counter()
                spline = _without_head_motion(s, state)
                row["edits"][spec]["W"] = _row(spline, time.perf_counter() - t0)
                tiles.insert(2, _square(s, spline.photo.rgb))
            row["edits"][spec]["grid"] = _grid(tiles, ARTIFACTS / f"{photo['name']}_{spec}.png")
        out["photos"][photo["name"]] = row
        if sweep and photo["name"] in SWEEP_PHOTOS:
            for spec in SWEEP_EDITS:
                for key, r in _sweep(s, s.apply(_directions(spec))).items():
                    out.setdefault("sweep", {}).setdefault(key, []).append({"photo": photo["name"], "edit": spec,
                                                                            "psnr_projection": row["psnr_projection"], **r})
    out["worst"] = _worst(out["photos"], edits)
    if "sweep" in out:
        out["curve"] = _curve(out["sweep"])
    report["structural"] = out


def _declares_head(s, state) -> bool:
    from ..warp_render import HEAD, declared_motion, split_specs
    return declared_motion(s, split_specs(state.applied)[0]) == HEAD


def _without_head_motion(s, state):
    """The warp render of ``state`` with the head motion off: the landmark spline (W)."""
    from ..compositing import warp
    saved = warp.HEAD_MOTION
    warp.HEAD_MOTION = False
    try:
        return s.render(state, composite="warp")
    finally:
        warp.HEAD_MOTION = saved


def _sweep(s, state) -> Dict[str, dict]:
    """The warp composite under each of :data:`VARIANTS` (module constants set, then restored)."""
    from ..compositing import warp
    names = SETTINGS
    saved = {k: getattr(warp, k) for k in names}
    rows = {}
    try:
        for key, v in VARIANTS.items():
            for k in names:
                setattr(warp, k, v.get(k, saved[k]))
            st = s.render(state, composite="warp").metrics["structure"]
            rows[key] = {k: st.get(k) for k in ("effect_ratio", "smear", "unexplained", "ghost")}
    finally:
        for k, v in saved.items():
            setattr(warp, k, v)
    return rows


def _curve(sweep: Dict[str, list]) -> Dict[str, object]:
    """Per setting and direction (``head_turn``, ``head_tilt``): median and worst effect ratio and
    artefacts over photos and both signs; the plot under artifacts/ (one panel per direction)."""
    table: Dict[str, Dict[str, dict]] = {}
    for key, rows in sweep.items():
        for name in sorted({r["edit"].split("=")[0] for r in rows}):
            sel = [r for r in rows if r["edit"].split("=")[0] == name]
            e = [r["effect_ratio"] for r in sel if r["effect_ratio"] is not None]
            u = [r["unexplained"] for r in sel if r["unexplained"] is not None]
            table.setdefault(name, {})[key] = {
                "effect_median": float(np.median(e)) if e else None, "effect_min": min(e, default=None),
                "unexplained_median": float(np.median(u)) if u else None, "unexplained_max": max(u, default=None),
                "smear_max": max((r["smear"] for r in sel if r["smear"] is not None), default=None),
                "ghost_max": max((r["ghost"] for r in sel if r["ghost"] is not None), default=None),
                "psnr_projection": sorted({r["psnr_projection"] for r in sel})}
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {"table": table, "plot": None}
    fig, axes = plt.subplots(1, max(1, len(table)), figsize=(5 * max(1, len(table)), 4), squeeze=False)
    for ax, (name, rows) in zip(axes[0], table.items()):
        for key, t in rows.items():
            if t["effect_min"] is None or t["unexplained_max"] is None:
                continue
            ax.scatter(t["unexplained_max"], t["effect_min"])
            ax.annotate(key, (t["unexplained_max"], t["effect_min"]), fontsize=7)
        ax.axhline(0.5, ls=":")
        ax.axvline(0.10, ls=":")
        ax.set_xlabel("unexplained structure (worst)")
        ax.set_ylabel("effect ratio (worst)")
        ax.set_title(f"{name} ±2")
    fig.suptitle("warp composite settings: worst over photos (target: top left of the dotted lines)")
    fig.tight_layout()
    path = ARTIFACTS / "curve.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return {"table": table, "plot": str(path)}


def _worst(photos: Dict[str, dict], edits=EDITS) -> Dict[str, object]:
    worst: Dict[str, object] = {}
    for spec in edits:
        for mode in ("today", "W", "new"):
            rows = [r["edits"][spec][mode] for r in photos.values() if mode in r["edits"][spec]]
            if not rows:
                continue
            nums = lambda k: [x[k] for x in rows if x.get(k) is not None]
            ratios = nums("effect_ratio")
            worst[f"{spec}/{mode}"] = {
                "effect_ratio_min": min(ratios) if ratios else None,
                "smear_max": max(nums("smear"), default=None),
                "unexplained_max": max(nums("unexplained"), default=None),
                "ghost_max": max(nums("ghost"), default=None),
                "carried": f"{sum(1 for x in rows if x.get('carried'))}/{len(rows)}",
                "seconds_max": max(nums("seconds"), default=None),
            }
            names = sorted({n for x in rows for n in (x.get("effects") or {})})
            if names:   # a stack: each edit's own worst effect ratio
                worst[f"{spec}/{mode}"]["effects_min"] = {
                    n: min((x["effects"][n] for x in rows if (x.get("effects") or {}).get(n) is not None), default=None)
                    for n in names}
        # the whole edit's time, the head motion against the landmark spline it replaced (W), per photo
        pairs = [r["edits"][spec] for r in photos.values() if "W" in r["edits"][spec]]
        times = [e["new"]["seconds"] / e["W"]["seconds"] for e in pairs if e["W"].get("seconds")]
        if times:
            worst[f"{spec}/new"]["seconds_vs_W"] = {"median": round(float(np.median(times)), 3),
                                                    "max": round(max(times), 3)}
    return worst
