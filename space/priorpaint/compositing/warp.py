"""Structural compositing: the photo's own pixels move along the edit's motion.

The core, :func:`warp_composite`, takes a *dense correspondence field* at model resolution (for
every pixel of the edited content, where it came from in the unedited content) and knows nothing
of where the field came from, so the drag edit can hand it a field of its own. The field for a
latent edit comes from :func:`feature_correspondence`: nearest neighbours in the generator's
feature maps between the unedited and the edited *in-manifold proxy* (``G(z)`` and ``G(z_e)``,
which the model renders cleanly even where the refined feature ``h`` of the photo would break),
as DragGAN's point tracking matches features, not RGB.

Per region, never a cross-fade of two structured images:

* where the field explains the edited proxy (its feature match is good), the result is the
  photo warped along the field (bicubic) plus the *low band* of the appearance change
  ``E − warp(B)`` (light, shading: nothing finer than the model can know);
* where content is new (no good match: a cap, an opened mouth), the result is generated: the
  warped photo's low band plus the proxy's full change, with grain of the photo's own strength
  added, so the patch does not look pasted. The two regions meet at a seam a few pixels wide
  (:data:`SEAM`), not a wide blend.

Blended into the photo with the inward-feathered edit mask: wherever the mask is 0 the photo is
copied bit for bit; a zero field and a zero change return the photo's square unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .blend import blend_region, feather_mask
from .detail import MODES, upsampled_low_band

#: the composite mode this module makes (``session.render(composite="warp")``)
MODE = "warp"
#: every composite a render or a preview may be asked for: the CLI's, the API's, the batch recipes'
#: choices (``detail`` turns into ``warp`` for a structural edit,
#: :func:`priorpaint.edits.registry.structural_composite`)
RENDER_MODES = MODES + (MODE,)


def check_render_mode(mode: str) -> str:
    """``mode`` if a render can composite in it, else a one-line :class:`InputError`."""
    from ..errors import InputError
    if mode not in RENDER_MODES:
        raise InputError(f"composite must be one of {', '.join(RENDER_MODES)}, got {mode!r}")
    return mode
#: search radius of the feature match, in model pixels
RADIUS = 6
#: feature distance (cosine, 0..2) from which a match is poor / lost: new content beyond
MATCH_GOOD, MATCH_LOST = 0.35, 0.8
#: Gaussian smoothing of the field, in model pixels (confidence-weighted)
FIELD_SIGMA = 2.5
#: cosine distance an offset must gain over staying in place; the length prior at the radius
STAY_MARGIN, LENGTH_PRIOR = 0.03, 0.05
#: width of the seam between warped and generated regions, in photo px per model px
SEAM = 1.0
#: the share of the proxy's low-band appearance change added, and the gain on the motion (0: a pure
#: warp, the default: the appearance change is what tore texture on every setting that added it)
APPEARANCE, GAIN = 0.0, 1.0
#: an extra blur of the appearance change at the model's resolution (model px; 0: the band split alone)
APPEARANCE_SIGMA = 0.0
#: the appearance change fades out as ``new_content`` rises over this range (trust 1 → 0)
TRUST_RAMP = (0.1, 0.5)
#: how much of the photo's own refinement ``h − G_H(z)`` the proxy keeps (0: ``G(z)`` itself)
PROXY_BLEND = 0.0
#: Adam steps of the proxy's refinement towards the photo (:mod:`priorpaint.projection.proxy`; 0: none)
PROXY_STEPS = 0
#: where the motion comes from: "features" (nearest neighbours in the generator's feature maps) or
#: "landmarks" (a thin-plate spline through the proxies' five face landmarks; features when no face)
#: or "matches" (a thin-plate spline through the confident feature matches, :func:`match_correspondence`)
MOTION = "landmarks"
#: a direction that declares the ``head`` motion in its manifest entry (head_turn, profile) turns the
#: photo's own head (:mod:`~priorpaint.compositing.warp_head`); off: it gets the settings here (W)
HEAD_MOTION = True
#: the landmark spline's smoothing (the diagonal of :func:`thin_plate_field`; larger: gentler stretch
#: between the eyes, nose and mouth, which sit a few model px apart)
LANDMARK_SMOOTHING = 12.0
#: the most a proxy landmark's motion (the shared shift, and each one's own beyond it) may be, in eye
#: distances (:func:`bounded_motion`)
MAX_LANDMARK_MOTION = 0.25
#: generated content where the motion does not explain the proxy's change: ``(lo, hi)`` grey levels
#: (0..255) of ``|E − warp(B)|`` over which a model pixel turns from warped photo to generated
#: (:func:`unexplained_change`); ``None``: a pure warp (landmark motion declares no new content)
NEW_FROM_CHANGE = None
#: where generated pixels may go: None (anywhere the change is unexplained) or "crown" (the region
#: above the photo's eyes, ±1.4 eye distances along the eye line, 0.3–2.0 above it: where a cap goes)
NEW_REGION = None
#: seed of the grain added to generated pixels
GRAIN_SEED = 0
#: "matches" motion: grid step (model px) of the matches the spline goes through, the most it takes,
#: the forward–backward disagreement (model px) a confident match may show, and the spline's smoothing
MATCH_STEP, MATCH_POINTS, MATCH_CONSISTENT, MATCH_SMOOTHING = 2, 600, 1.0, 30.0
#: the least Jacobian determinant of ``x + field`` a spline may have before it is smoothed further (no fold)
MIN_JACOBIAN = 0.3
#: register the proxy onto the photo (an affine fit of their low bands) and carry its motion across,
#: so the proxy's motion lands on the photo's own features, not where the proxy's face happens to be
REGISTER = True
#: ECC iterations of the registration, and the least correlation it must reach to be used
REGISTER_ITERATIONS, REGISTER_MIN_CC = 80, 0.3


@dataclass
class WarpResult:
    region: np.ndarray                 # (side, side, 3) uint8: the composited square
    inner: np.ndarray                  # (side, side, 3) uint8: the result before the mask blend
    alpha: np.ndarray                  # (side, side) float32: the feathered edit mask
    new_content: np.ndarray            # (R, R) float32 in [0, 1]: where pixels were generated
    info: Dict[str, object] = field(default_factory=dict)


def _normalised(feats: Sequence[torch.Tensor], res: int) -> torch.Tensor:
    maps = [F.normalize(F.interpolate(f.float(), size=(res, res), mode="bilinear", align_corners=False), dim=1)
            for f in feats]
    return F.normalize(torch.cat(maps, dim=1), dim=1)


@torch.no_grad()
def feature_correspondence(base_feats: Sequence[torch.Tensor], edited_feats: Sequence[torch.Tensor],
                           res: int, radius: int = RADIUS) -> Dict[str, np.ndarray]:
    """``{"field", "distance"}``: for each edited pixel (R×R), the offset (dx, dy) in model px to
    its nearest neighbour in the unedited features within ``radius`` (cosine distance), and that
    distance. Each list holds (1, C, h, w) maps of one generator layer (they are upsampled to R,
    unit-normalised per layer and concatenated); tensors stay on their device. An offset must beat
    staying in place by :data:`STAY_MARGIN` (ties and ambiguous texture do not move), and longer
    offsets pay a small prior (:data:`LENGTH_PRIOR` at the radius)."""
    fb, fe = _normalised(base_feats, res), _normalised(edited_feats, res)
    pad = F.pad(fb, (radius,) * 4, mode="replicate")
    best = torch.full((res, res), float("inf"), device=fb.device)
    arg = torch.zeros((res, res, 2), device=fb.device)
    raw = None
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            shifted = pad[:, :, radius + dy:radius + dy + res, radius + dx:radius + dx + res]
            d = 1.0 - (shifted * fe).sum(dim=1)[0]
            if dx == 0 and dy == 0:
                cost = d - STAY_MARGIN
            else:
                cost = d + LENGTH_PRIOR * (dx * dx + dy * dy) / float(radius * radius)
            better = cost < best
            best = torch.where(better, cost, best)
            raw = torch.where(better, d, raw) if raw is not None else d
            arg[better] = torch.tensor([float(dx), float(dy)], device=fb.device)
    return {"field": arg.cpu().numpy(), "distance": raw.cpu().numpy().astype(np.float32)}


def smooth_field(flow: np.ndarray, confidence: np.ndarray, sigma: float = FIELD_SIGMA) -> np.ndarray:
    """Confidence-weighted Gaussian smoothing of a field (R×R×2): integer nearest-neighbour
    offsets become a smooth motion; unmatched pixels take their neighbours' motion."""
    w = confidence.astype(np.float32) + 1e-3
    num = cv2.GaussianBlur(flow * w[..., None], (0, 0), sigma)
    den = cv2.GaussianBlur(w, (0, 0), sigma)[..., None]
    return (num / den).astype(np.float32)


def _ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def warp_model(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``img`` (R×R×C float) sampled at ``x + flow(x)`` (bilinear, edges replicated)."""
    r = flow.shape[0]
    gx, gy = np.meshgrid(np.arange(r, dtype=np.float32), np.arange(r, dtype=np.float32))
    return cv2.remap(img.astype(np.float32), gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def _detail_std(photo: np.ndarray, sel: np.ndarray, sigma: float) -> np.ndarray:
    band = photo - cv2.GaussianBlur(photo, (0, 0), sigma)
    return band[sel].std(axis=0) if sel.any() else np.zeros(photo.shape[2], np.float32)


def warp_composite(region: np.ndarray, base: np.ndarray, edited: np.ndarray, flow: np.ndarray,
                   new_content: np.ndarray, mask: np.ndarray, feather: int,
                   appearance: Optional[float] = None) -> WarpResult:
    """Composite one square.

    ``region``: the photo's square (side×side×3 uint8); ``base`` / ``edited``: the unedited and
    edited proxy renderings (R×R×3 uint8); ``flow``: the backward correspondence field (R×R×2,
    model px: edited pixel x shows base pixel x + flow(x)); ``new_content``: R×R in [0, 1], where
    nothing in the base corresponds; ``mask``: the square's edit mask (uint8); ``feather``: px;
    ``appearance``: the share of the low-band appearance change added where content is matched
    (default :data:`APPEARANCE`; a drag declares its own).
    """
    side, res = region.shape[0], base.shape[0]
    alpha = feather_mask(mask, int(feather))
    info: Dict[str, object] = {"composite": "warp"}
    change = edited.astype(np.float32) - warp_model(base.astype(np.float32), flow)
    if not np.any(flow) and not np.any(edited.astype(np.int16) - base.astype(np.int16)):
        return WarpResult(region.copy(), region.copy(), alpha, np.zeros((res, res), np.float32), info)
    scale = side / float(res)
    photo = region.astype(np.float32)
    up = cv2.resize(flow, (side, side), interpolation=cv2.INTER_CUBIC) * np.float32(scale)
    gx, gy = np.meshgrid(np.arange(side, dtype=np.float32), np.arange(side, dtype=np.float32))
    warped = cv2.remap(photo, gx + up[..., 0], gy + up[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    new = np.clip(new_content.astype(np.float32), 0.0, 1.0)
    # the appearance change is trusted where the match is: a residual the field does not explain
    # (a moved edge the match missed) would add a halo, so it fades out as the match worsens
    trust = 1.0 - _ramp(new, *TRUST_RAMP)
    share = APPEARANCE if appearance is None else float(appearance)
    carried = change * trust[..., None]
    if APPEARANCE_SIGMA > 0:   # only the broad shading: the band the photo's detail is not in
        carried = cv2.GaussianBlur(carried, (0, 0), APPEARANCE_SIGMA)
    low = upsampled_low_band(carried, side) * np.float32(share)
    inner = warped + low
    info["moved_model_px"] = round(float(np.percentile(np.hypot(flow[..., 0], flow[..., 1]), 90)), 3)
    info["new_content"] = round(float(new.mean()), 4)
    if new.max() > 0.5:
        # generated where content is new: the warped photo's low band plus the proxy's whole
        # change, with grain of the photo's own strength; chosen per region with a narrow seam
        sigma = max(scale * 0.5, 1.0)
        full = cv2.resize(change, (side, side), interpolation=cv2.INTER_CUBIC)
        gen = cv2.GaussianBlur(warped, (0, 0), sigma) + full
        sel = (mask > 0)
        std = _detail_std(photo, sel, sigma)
        rng = np.random.default_rng(GRAIN_SEED)
        grain = rng.standard_normal((side, side, 1)).astype(np.float32)
        gen = gen + cv2.GaussianBlur(grain, (0, 0), 0.6)[..., None] * (std[None, None, :] * 1.6)
        hard = (cv2.resize(new, (side, side), interpolation=cv2.INTER_LINEAR) > 0.5).astype(np.float32)
        k = max(1, int(round(SEAM * scale)))
        seam = cv2.GaussianBlur(hard, (0, 0), k)[..., None]
        inner = inner * (1.0 - seam) + gen * seam
    inner_u8 = np.clip(np.round(inner), 0, 255).astype(np.uint8)
    out = blend_region(region, inner_u8, alpha)
    return WarpResult(out, inner_u8, alpha, new, info)


def correspondence_from_features(base_feats, edited_feats, res: int, radius: int = RADIUS):
    """``(flow, new_content)`` for :func:`warp_composite` from two feature lists: the nearest
    neighbours, their confidence (1 up to :data:`MATCH_GOOD`, 0 from :data:`MATCH_LOST`), the
    field smoothed by it, and new content where the match is lost."""
    m = feature_correspondence(base_feats, edited_feats, res, radius)
    conf = 1.0 - _ramp(m["distance"], MATCH_GOOD, MATCH_LOST)
    flow = smooth_field(m["field"], conf, FIELD_SIGMA) * np.float32(GAIN)
    new = 1.0 - cv2.GaussianBlur(conf, (0, 0), 1.0)
    return flow, new, m["distance"]


@torch.no_grad()
def new_content_along(base_feats, edited_feats, flow: np.ndarray, res: int, off: bool = False) -> np.ndarray:
    """(R, R) in [0, 1]: where the edited features do not match the base features at the place the
    given field says they came from (a field made elsewhere, e.g. a drag's): new content there.
    ``off``: none anywhere (a drag whose proxy was let loose, edits/drag_optimise.py's ``ESCALATE``)."""
    if off:
        return np.zeros((res, res), np.float32)
    fb, fe = _normalised(base_feats, res), _normalised(edited_feats, res)
    gy, gx = np.mgrid[0:res, 0:res].astype(np.float32)
    grid = np.stack([(gx + flow[..., 0] + 0.5) / res * 2 - 1, (gy + flow[..., 1] + 0.5) / res * 2 - 1], -1)
    g = torch.from_numpy(grid)[None].to(fb.device)
    moved = F.grid_sample(fb, g, mode="bilinear", padding_mode="border", align_corners=False)
    d = (1.0 - (F.normalize(moved, dim=1) * fe).sum(dim=1)[0]).cpu().numpy()
    conf = 1.0 - _ramp(d, MATCH_GOOD, MATCH_LOST)
    return (1.0 - cv2.GaussianBlur(conf, (0, 0), 1.0)).astype(np.float32)


@torch.no_grad()
def proxy_renders(gen, split: str, z: torch.Tensor, h: torch.Tensor, z_e: torch.Tensor, h_e: torch.Tensor,
                  interventions=None, z_proxy: Optional[torch.Tensor] = None):
    """The in-manifold proxy of an edit: ``B = G_F(G_H(z))`` and ``E = G_F(G_H(z) + (h_e − h))``
    (with ``z_e`` and the edit's interventions), and the feature maps of both at the layers after
    the split whose side is between R/8 and R/2 (what :func:`correspondence_from_features` matches;
    the output itself when no such layer follows the split).
    The photo's refined ``h`` is not used for the motion: a direction added to it can break the
    render, while the proxy stays on the generator's manifold."""
    if z_proxy is not None:   # a refined proxy (projection/proxy.py): the edit taken again at z_proxy
        from ..projection.proxy import proxy_features
        hp, hpe, z_e = proxy_features(gen, split, z, z_proxy, z_e, h, h_e)
        z = z_proxy
    else:
        hp = gen.forward_to(z, split)
        hp = hp + PROXY_BLEND * (h - hp)
        hpe = hp + (h_e - h)
    names = [n for n in gen.layers_after(split)]
    xb, cb = gen.run(hp, start=split, capture=names, z=z)
    xe, ce = gen.run(hpe, start=split, capture=names, z=z_e, interventions=interventions or None)
    res = xb.shape[-1]
    keep = [n for n in names if res // 8 <= cb[n].shape[-1] <= res // 2] or names[-1:]  # a tiny model: its image
    return xb, xe, [cb[n] for n in keep], [ce[n] for n in keep]


def thin_plate_field(src: np.ndarray, dst: np.ndarray, res: int, smoothing: float = 1.0) -> np.ndarray:
    """A smooth backward field (R×R×2) through point pairs: at ``src`` (the edited content's
    points, model px) it points to ``dst`` (where they were in the unedited content), and it is zero
    on the square's border (anchors every R/5 px). A thin-plate spline (kernel r² log r, with
    ``smoothing`` on the diagonal), solved with numpy: it cannot fold or tear."""
    edge = np.linspace(0, res - 1, 6)
    border = np.array([[x, y] for x in edge for y in (0, res - 1)]
                      + [[x, y] for y in edge[1:-1] for x in (0, res - 1)], np.float64)
    pts = np.concatenate([np.asarray(src, np.float64), border])
    disp = np.concatenate([np.asarray(dst, np.float64) - np.asarray(src, np.float64), np.zeros_like(border)])

    def kernel(a, b):
        d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
        return np.where(d > 0, d * d * np.log(np.maximum(d, 1e-12)), 0.0)

    n = len(pts)
    poly = np.concatenate([np.ones((n, 1)), pts], axis=1)
    a = np.zeros((n + 3, n + 3))
    a[:n, :n] = kernel(pts, pts) + smoothing * np.eye(n)
    a[:n, n:], a[n:, :n] = poly, poly.T
    coef = np.linalg.solve(a, np.concatenate([disp, np.zeros((3, 2))]))
    gy, gx = np.mgrid[0:res, 0:res]
    grid = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float64)
    field = kernel(grid, pts) @ coef[:n] + np.concatenate([np.ones((len(grid), 1)), grid], 1) @ coef[n:]
    return field.reshape(res, res, 2).astype(np.float32)


def landmark_correspondence(base: np.ndarray, edited: np.ndarray):
    """``(flow, new_content)`` from the five face landmarks of the two proxy renderings (the
    detector of :mod:`priorpaint.faces.mtcnn`, on the renderings grown to 256 px) through
    :func:`thin_plate_field`; ``None`` when either has no face. Note: the effect ratio of
    :mod:`priorpaint.measures` reads the same detector, so with this motion only its artefact
    figures stay independent of the method."""
    from ..faces.landmarks import square_landmarks
    res = base.shape[0]
    pts = [square_landmarks(img) for img in (base, edited)]
    if pts[0] is None or pts[1] is None:
        return None
    edited_pts = bounded_motion(pts[0], pts[1])
    return thin_plate_field(edited_pts, pts[0], res, LANDMARK_SMOOTHING), np.zeros((res, res), np.float32)


def bounded_motion(before: np.ndarray, after: np.ndarray, limit: Optional[float] = None) -> np.ndarray:
    """``after`` with the landmarks' motion bounded: the shared shift (their mean motion) and each
    landmark's motion beyond it are each scaled down to at most ``limit`` (default
    :data:`MAX_LANDMARK_MOTION`) times the eye distance in ``before``. The model's own head turn moves
    the nose by about 0.2 eye distances against the eyes; a proxy whose landmarks move much more
    (its face changed, or the detector jumped) would bend the photo, not turn it."""
    limit = MAX_LANDMARK_MOTION if limit is None else float(limit)
    before, after = np.asarray(before, np.float64), np.asarray(after, np.float64)
    eye = max(float(np.linalg.norm(before[1] - before[0])), 1e-6)
    motion = after - before
    shift = motion.mean(axis=0)
    own = motion - shift
    shift *= min(1.0, limit * eye / max(float(np.linalg.norm(shift)), 1e-9))
    own *= min(1.0, limit * eye / max(float(np.linalg.norm(own, axis=1).max()), 1e-9))
    return before + shift + own



@torch.no_grad()
def subpixel_matches(base_feats, edited_feats, res: int, radius: int = RADIUS) -> Dict[str, np.ndarray]:
    """``{"field", "distance"}`` like :func:`feature_correspondence` (same margin and length prior),
    refined to sub-pixel offsets by a parabola through the cost at the best offset's neighbours."""
    fb, fe = _normalised(base_feats, res), _normalised(edited_feats, res)
    pad = F.pad(fb, (radius + 1,) * 4, mode="replicate")
    n = 2 * radius + 3                                   # one extra ring for the parabola
    cost = torch.empty((n, n, res, res), device=fb.device)
    raw = torch.empty_like(cost)
    for j in range(n):
        for i in range(n):
            dy, dx = j - radius - 1, i - radius - 1
            d = 1.0 - (pad[:, :, j:j + res, i:i + res] * fe).sum(dim=1)[0]
            raw[j, i] = d
            cost[j, i] = d - STAY_MARGIN if dx == 0 and dy == 0 else \
                d + LENGTH_PRIOR * (dx * dx + dy * dy) / float(radius * radius)
    inner = cost[1:-1, 1:-1].reshape(-1, res, res)
    k = inner.argmin(dim=0)
    by, bx = k // (n - 2) + 1, k % (n - 2) + 1
    g = lambda j, i: cost.permute(2, 3, 0, 1).reshape(res * res, n, n)[torch.arange(res * res), j.ravel(), i.ravel()].reshape(res, res)

    def vertex(lo, mid, hi):
        den = lo - 2 * mid + hi
        return torch.where(den > 1e-6, 0.5 * (lo - hi) / den.clamp_min(1e-6), torch.zeros_like(den)).clamp(-0.5, 0.5)

    c0 = g(by, bx)
    sx = vertex(g(by, bx - 1), c0, g(by, bx + 1))
    sy = vertex(g(by - 1, bx), c0, g(by + 1, bx))
    fx = (bx - radius - 1).float() + sx
    fy = (by - radius - 1).float() + sy
    dist = raw.permute(2, 3, 0, 1).reshape(res * res, n, n)[torch.arange(res * res), by.ravel(), bx.ravel()].reshape(res, res)
    return {"field": torch.stack([fx, fy], -1).cpu().numpy().astype(np.float32),
            "distance": dist.cpu().numpy().astype(np.float32)}


def min_jacobian(flow: np.ndarray) -> float:
    """The least determinant of the Jacobian of ``x ↦ x + flow(x)`` (≤ 0: the field folds)."""
    dxx = np.gradient(flow[..., 0], axis=1) + 1.0
    dxy = np.gradient(flow[..., 0], axis=0)
    dyx = np.gradient(flow[..., 1], axis=1)
    dyy = np.gradient(flow[..., 1], axis=0) + 1.0
    return float((dxx * dyy - dxy * dyx).min())


def match_correspondence(base_feats, edited_feats, res: int, radius: int = RADIUS):
    """``(flow, new_content, info)``: a thin-plate spline (:func:`thin_plate_field`) through the
    *confident* feature matches — sub-pixel nearest neighbours whose distance is under
    :data:`MATCH_GOOD` and whose backward match agrees with the forward one within
    :data:`MATCH_CONSISTENT` px — on a grid of :data:`MATCH_STEP` px (at most :data:`MATCH_POINTS`).
    Many points, not five landmarks, and a spline that cannot tear; if it would fold (Jacobian under
    :data:`MIN_JACOBIAN`) it is smoothed further (bounded: four tries, then no motion). New content
    where even the best match is lost (:data:`MATCH_LOST`)."""
    back = subpixel_matches(base_feats, edited_feats, res, radius)      # edited pixel -> base
    fwd = subpixel_matches(edited_feats, base_feats, res, radius)       # base pixel -> edited
    f = back["field"]
    gy, gx = np.mgrid[0:res, 0:res].astype(np.float32)
    there = warp_model(fwd["field"], f)                                 # the forward offset at x + f(x)
    disagree = np.hypot(f[..., 0] + there[..., 0], f[..., 1] + there[..., 1])
    ok = (back["distance"] < MATCH_GOOD) & (disagree < MATCH_CONSISTENT)
    grid = np.zeros_like(ok)
    grid[MATCH_STEP // 2::MATCH_STEP, MATCH_STEP // 2::MATCH_STEP] = True
    ys, xs = np.nonzero(ok & grid)
    if len(xs) > MATCH_POINTS:
        keep = np.linspace(0, len(xs) - 1, MATCH_POINTS).round().astype(int)
        ys, xs = ys[keep], xs[keep]
    conf = 1.0 - _ramp(back["distance"], MATCH_GOOD, MATCH_LOST)
    new = (1.0 - cv2.GaussianBlur(conf, (0, 0), 1.0)).astype(np.float32)
    info = {"matches": int(len(xs)), "confident_share": round(float(ok.mean()), 3)}
    flow = np.zeros((res, res, 2), np.float32)
    if len(xs) >= 3:
        src = np.stack([xs, ys], 1).astype(np.float64)
        dst = src + f[ys, xs].astype(np.float64)
        smoothing = MATCH_SMOOTHING
        for _ in range(4):
            cand = thin_plate_field(src, dst, res, smoothing=smoothing)
            if min_jacobian(cand) >= MIN_JACOBIAN:
                flow = cand
                break
            smoothing *= 4.0
        info["smoothing"] = smoothing
    info["min_jacobian"] = round(min_jacobian(flow), 3)
    return flow * np.float32(GAIN), new, info



def register_affine(photo_square: np.ndarray, base: np.ndarray) -> Optional[np.ndarray]:
    """The affine map ``A`` (2×3, model px) with ``base(A·x) ≈ photo(x)``: an ECC fit of the two
    low bands in gray (bounded iterations). ``None`` when it does not converge, correlates less than
    :data:`REGISTER_MIN_CC`, or is implausible (scale outside 0.6–1.6, a shift over R/4)."""
    res = base.shape[0]
    small = cv2.resize(photo_square, (res, res), interpolation=cv2.INTER_AREA)

    def low(img):
        g = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        return cv2.GaussianBlur(g, (0, 0), 1.5)

    a = np.eye(2, 3, dtype=np.float32)
    crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, REGISTER_ITERATIONS, 1e-5)
    try:
        cc, a = cv2.findTransformECC(low(small), low(base), a, cv2.MOTION_AFFINE, crit, None, 5)
    except cv2.error:
        return None
    sv = np.linalg.svd(a[:, :2], compute_uv=False)
    if cc < REGISTER_MIN_CC or sv.min() < 0.6 or sv.max() > 1.6 or np.abs(a[:, 2]).max() > res / 4 + res * 0.5:
        return None
    return a


def to_photo_frame(a: np.ndarray, flow: np.ndarray, new: np.ndarray, base: np.ndarray, edited: np.ndarray):
    """The proxy's motion carried into the photo's frame through ``A`` (:func:`register_affine`):
    photo pixel ``x`` sits at proxy pixel ``p = A·x``; the proxy's edited ``p`` shows its base
    ``p + f(p)``, so the photo's edited ``x`` shows its base ``x + L⁻¹ f(A·x)`` (``L``: A's linear
    part). ``(flow, new, base, edited)`` resampled into the photo's frame."""
    res = flow.shape[0]
    gx, gy = np.meshgrid(np.arange(res, dtype=np.float32), np.arange(res, dtype=np.float32))
    mx = a[0, 0] * gx + a[0, 1] * gy + a[0, 2]
    my = a[1, 0] * gx + a[1, 1] * gy + a[1, 2]

    def at(img, interp=cv2.INTER_LINEAR):
        return cv2.remap(np.ascontiguousarray(img), mx.astype(np.float32), my.astype(np.float32), interp,
                         borderMode=cv2.BORDER_REPLICATE)

    f = at(flow.astype(np.float32))
    inv = np.linalg.inv(a[:, :2].astype(np.float64)).astype(np.float32)
    moved = np.einsum("ij,yxj->yxi", inv, f).astype(np.float32)
    return moved, at(new.astype(np.float32)), at(base, cv2.INTER_CUBIC), at(edited, cv2.INTER_CUBIC)


def unexplained_change(base: np.ndarray, edited: np.ndarray, flow: np.ndarray, ramp=None) -> np.ndarray:
    """(R, R) in [0, 1]: where the edited proxy differs from its base moved along ``flow`` by more
    than the motion explains (a cap, the far side of a turning face): the largest channel of
    ``|E − warp(B)|``, blurred by one model pixel, through the ramp ``ramp`` (grey levels; default
    :data:`NEW_FROM_CHANGE`). Zero where the motion explains the change."""
    lo, hi = NEW_FROM_CHANGE if ramp is None else ramp
    diff = np.abs(edited.astype(np.float32) - warp_model(base.astype(np.float32), flow)).max(axis=2)
    return _ramp(cv2.GaussianBlur(diff, (0, 0), 1.0), float(lo), float(hi))
