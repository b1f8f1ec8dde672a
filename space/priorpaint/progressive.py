"""A progressive live preview: an instant approximate frame from exact frames already made,
then the exact frame.

A slider moves one strength of an edit list; everything else stays.  The frames the
generator made for that list at other strengths are a cache of the curve ``α ↦ G(α)``
(the frame ``G_F`` renders for the edited state): the edits the live preview runs
(:class:`~priorpaint.edits.registry.PreviewCost` ``LATENT``) move the latent smoothly with
their strength, so a frame at a new strength is well predicted from its neighbours long
before the generator has rendered it (a 256 px config-f ``G_F`` is 83 GFLOP: about a
second on a 2-core CPU).  This module keeps those frames, per *line* (the edit list with
one strength left out), and predicts:

* between two exact frames: a cubic Hermite curve through them, its slopes the
  finite-difference slopes of the neighbouring frames (Catmull-Rom on uneven steps), or
  the exact tangents where :meth:`PreviewLines.add_tangent` gave them;
* beyond the frames: a first-order step from the nearest one along its slope (the tangent
  when known, else the secant of the two nearest frames);
* one frame only: that frame.

Every predicted frame says it is approximate and how it was made (:class:`Frame`); the
caller renders the exact frame next and hands it back (:meth:`PreviewLines.add_exact`),
which makes the next prediction better.  Nothing here runs the generator: the caller owns
the rendering (the session, ``bench``), and this module only does arithmetic on frames it
was given, in microseconds to milliseconds.

Only edit lists made of ``LATENT`` kinds are predicted (the ones that read files are not
a smooth function of a strength); the exact frame is always rendered, even where a frame
for the same list is cached (a saved vector may have changed under its name).  The cache
is bounded in frames per line, lines and bytes.
"""

from __future__ import annotations

import json
import math
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .edits.registry import EDIT_KINDS, PreviewCost
from .errors import InputError

#: the goal for a slider's answer: a model whose exact frame takes longer than this gets an
#: approximate frame first; one that renders within it (the embedded 64 px model) gets only
#: the exact frame, as before.  ``$PRIORPAINT_PREVIEW_BUDGET_MS`` sets another (0: always predict)
PREVIEW_BUDGET_S = 0.05
BUDGET_ENV = "PRIORPAINT_PREVIEW_BUDGET_MS"
#: at most this many exact frames per line (the ones farthest from the newest go first)
MAX_FRAMES_PER_LINE = 12
#: at most this many lines per session (least recently used go first)
MAX_LINES = 6
#: at most this many bytes of frames per session (all 72 a session may keep at 256 px; 5 at 1024 px)
MAX_BYTES = 64 * 2 ** 20
#: two strengths closer than this are the same frame
SAME = 1e-9


@dataclass
class Frame:
    """A preview frame: ``image`` (1, 3, R, R) in the generator's range, and how it was made."""
    image: torch.Tensor
    approximate: bool
    #: "exact"; or how it was predicted: "cached" (an exact frame of the same list),
    #: "interpolated", "extrapolated", "nearest"
    method: str = "exact"
    strength: Optional[float] = None
    #: the strengths of the exact frames it was predicted from
    sources: Tuple[float, ...] = ()
    #: the edit mask of the nearest exact frame (the approximate frame is composited with it)
    edit_mask: Optional[np.ndarray] = None

    def pixels(self) -> np.ndarray:
        """The frame as (R, R, 3) uint8, as the preview shows it (see :func:`pixels`)."""
        return pixels(self.image)

    def info(self) -> Dict[str, object]:
        """The flag a result carries: ``{"approximate", "method", "strength", "from"}``."""
        out: Dict[str, object] = {"approximate": self.approximate, "method": self.method}
        if self.strength is not None:
            out["strength"] = round(float(self.strength), 6)
        if self.sources:
            out["from"] = [round(float(s), 6) for s in self.sources]
        return out


@dataclass
class _Anchor:
    image: torch.Tensor
    edit_mask: Optional[np.ndarray] = None
    tangent: Optional[torch.Tensor] = None

    def nbytes(self) -> int:
        n = self.image.numel() * self.image.element_size()
        if self.tangent is not None:
            n += self.tangent.numel() * self.tangent.element_size()
        return n


@dataclass
class _Line:
    anchors: Dict[float, _Anchor] = field(default_factory=dict)
    #: the strength range this line was seen to clamp to (a request beyond it is predicted at the bound)
    lo: float = -math.inf
    hi: float = math.inf


def line_keys(specs: Sequence[dict]) -> List[Tuple[str, float]]:
    """``[(line key, strength)]``: for each spec of ``specs`` with a declared strength, the edit
    list with that strength left out, and the strength.  Empty when any spec is not a
    ``LATENT`` kind or cannot be written as JSON (nothing to predict)."""
    out = []
    kinds = [EDIT_KINDS.get(sp.get("kind")) if isinstance(sp, dict) else None for sp in specs]
    if not specs or any(k is None or k.preview is not PreviewCost.LATENT for k in kinds):
        return []
    for i, (sp, kind) in enumerate(zip(specs, kinds)):
        if kind.strength is None or kind.strength.field not in sp:
            continue
        try:
            value = float(sp[kind.strength.field])
        except (TypeError, ValueError):
            continue
        if not math.isfinite(value):
            continue
        blank = [dict(s) for s in specs]
        blank[i][kind.strength.field] = None
        try:
            key = json.dumps([i, blank], sort_keys=True, allow_nan=False)
        except (TypeError, ValueError):
            return []
        out.append((key, value))
    return out


def _hermite_weights(s: float) -> Tuple[float, float, float, float]:
    """The cubic Hermite basis at ``s`` in [0, 1]: weights of (y0, m0·h, y1, m1·h)."""
    return (2 * s ** 3 - 3 * s ** 2 + 1, s ** 3 - 2 * s ** 2 + s, -2 * s ** 3 + 3 * s ** 2, s ** 3 - s ** 2)


def _combine(terms: Sequence[Tuple[float, torch.Tensor]]) -> torch.Tensor:
    """``Σ c·t`` over the terms (the same tensor's weights merged first), in one pass.  On the
    CPU in NumPy, in place: a few hundred microseconds for a 256 px frame, where a chain of
    multi-threaded torch operations waits on its threads (tens of ms on a busy 2-core CPU)."""
    merged: "OrderedDict[int, list]" = OrderedDict()
    for c, t in terms:
        merged.setdefault(id(t), [0.0, t])[0] += float(c)
    items = [(c, t) for c, t in merged.values() if c != 0.0]
    first = items[0][1] if items else terms[0][1]
    if not items:
        return torch.zeros_like(first)
    if first.device.type != "cpu" or first.dtype != torch.float32:    # a GPU: torch, on that device
        with torch.no_grad():
            out = items[0][1] * items[0][0]
            for c, t in items[1:]:
                out.add_(t, alpha=c)
            return out
    out = np.multiply(items[0][1].detach().numpy(), np.float32(items[0][0]))
    for c, t in items[1:]:
        out += np.float32(c) * t.detach().numpy()
    return torch.from_numpy(out)


def pixels(image: torch.Tensor) -> np.ndarray:
    """(1, 3, R, R) in [-1, 1] as (R, R, 3) uint8, exactly as
    :func:`~priorpaint.compositing.blend.to_uint8` makes it, in NumPy on the CPU (one pass,
    no thread pool)."""
    if image.device.type != "cpu" or image.dtype != torch.float32:
        from .compositing.blend import to_uint8
        return to_uint8(image)
    a = np.clip(image.detach().numpy()[0], -1.0, 1.0)
    a += 1.0
    a *= np.float32(127.5)
    return np.ascontiguousarray(np.rint(a).astype(np.uint8).transpose(1, 2, 0))


def preview_budget_s() -> float:
    """The budget of an exact frame, in seconds: ``$PRIORPAINT_PREVIEW_BUDGET_MS`` or
    :data:`PREVIEW_BUDGET_S`."""
    raw = os.environ.get(BUDGET_ENV, "").strip()
    if not raw:
        return PREVIEW_BUDGET_S
    try:
        ms = float(raw)
    except ValueError:
        ms = -1.0
    if not (math.isfinite(ms) and ms >= 0):
        raise InputError(f"{BUDGET_ENV} must be a number of milliseconds >= 0, got {raw!r}")
    return ms / 1000.0


class PreviewLines:
    """The exact frames of a session's live preview, by line, and the predictions made from them."""

    def __init__(self, budget_s: Optional[float] = None, max_bytes: int = MAX_BYTES):
        self.budget_s = preview_budget_s() if budget_s is None else float(budget_s)
        self.max_bytes = int(max_bytes)
        self.lines: "OrderedDict[str, _Line]" = OrderedDict()
        #: wall seconds of the latest exact frame (None: none made yet)
        #: wall seconds of the latest exact frames (a few: one slow frame, e.g. the first use of a
        #: direction that is computed then, does not make a fast model look slow)
        self.recent_seconds: List[float] = []

    # -- policy --------------------------------------------------------------------------
    def worth_predicting(self) -> bool:
        """Whether an approximate frame first is worth it: the exact frames take longer than
        the budget (a fast model keeps its exact-only preview, and stores nothing)."""
        return bool(self.recent_seconds) and min(self.recent_seconds) > self.budget_s

    # -- prediction ----------------------------------------------------------------------
    def approximate(self, specs: Sequence[dict]) -> Optional[Frame]:
        """The approximate frame of ``specs`` from the exact frames of its lines, or None (no
        line of it has a frame yet, or the model is fast).  The line whose nearest frame is
        closest to the asked strength is used."""
        if not self.worth_predicting():
            return None
        best = None
        for key, value in line_keys(specs):
            line = self.lines.get(key)
            if line is None or not line.anchors:
                continue
            alpha = min(max(value, line.lo), line.hi)
            gap = min(abs(a - alpha) for a in line.anchors)
            if best is None or gap < best[0]:
                best = (gap, key, line, alpha)
        if best is None:
            return None
        _, key, line, alpha = best
        self.lines.move_to_end(key)
        return self._predict(line, alpha)

    def _predict(self, line: _Line, alpha: float) -> Frame:
        xs = sorted(line.anchors)
        near = min(xs, key=lambda a: abs(a - alpha))
        mask = line.anchors[near].edit_mask
        if abs(near - alpha) <= SAME:
            return Frame(line.anchors[near].image, True, "cached", alpha, (near,), mask)
        if len(xs) == 1 and line.anchors[near].tangent is None:
            return Frame(line.anchors[near].image, True, "nearest", alpha, (near,), mask)
        lower = [a for a in xs if a < alpha]
        upper = [a for a in xs if a > alpha]
        if lower and upper:
            a, b = lower[-1], upper[0]
            h00, h10, h01, h11 = _hermite_weights((alpha - a) / (b - a))
            terms = [(h00, line.anchors[a].image), (h01, line.anchors[b].image)]
            terms += [(c * h10 * (b - a), t) for c, t in self._slope(line, xs, a)]
            terms += [(c * h11 * (b - a), t) for c, t in self._slope(line, xs, b)]
            return Frame(_combine(terms), True, "interpolated", alpha, (a, b), mask)
        terms = [(1.0, line.anchors[near].image)] + [(c * (alpha - near), t) for c, t in self._slope(line, xs, near)]
        sources = (near,) if line.anchors[near].tangent is not None else \
            tuple(sorted(sorted(xs, key=lambda a: abs(a - alpha))[:2]))
        return Frame(_combine(terms), True, "extrapolated", alpha, sources, mask)

    @staticmethod
    def _slope(line: _Line, xs: List[float], x: float) -> List[Tuple[float, torch.Tensor]]:
        """dG/dα at the frame ``x`` as weighted frames: its tangent when given, else the secant
        of its neighbours (one-sided at the ends)."""
        anchor = line.anchors[x]
        if anchor.tangent is not None:
            return [(1.0, anchor.tangent)]
        i = xs.index(x)
        lo, hi = xs[max(i - 1, 0)], xs[min(i + 1, len(xs) - 1)]
        return [(1.0 / (hi - lo), line.anchors[hi].image), (-1.0 / (hi - lo), line.anchors[lo].image)]

    # -- learning ------------------------------------------------------------------------
    def add_exact(self, specs: Sequence[dict], image: torch.Tensor, seconds: Optional[float] = None,
                  applied: Optional[Sequence[dict]] = None, edit_mask: Optional[np.ndarray] = None) -> None:
        """Keep the exact frame of ``specs`` (its render took ``seconds``).  ``applied``: the
        specs as the edits recorded them (a strength clamped to a direction's own range is
        recorded as ``applied_<field>``): the frame is kept at the strength that made it, and
        the line learns its bound."""
        if seconds is not None:
            self.recent_seconds = (self.recent_seconds + [float(seconds)])[-3:]
        if not self.worth_predicting():
            self.lines.clear()
            return
        # a copy: a generator's frame may be a view of a far larger tensor (StyleGAN2's last block
        # output), which a kept view would keep whole
        frame = image.detach().clone(memory_format=torch.contiguous_format)
        for key, value in line_keys(specs):
            line = self.lines.setdefault(key, _Line())
            self.lines.move_to_end(key)
            made = self._applied_value(specs, applied, key, value)
            if made > value + SAME:
                line.lo = max(line.lo, made)
            elif made < value - SAME:
                line.hi = min(line.hi, made)
            line.anchors[made] = _Anchor(frame, edit_mask)
            while len(line.anchors) > MAX_FRAMES_PER_LINE:
                del line.anchors[max(line.anchors, key=lambda a: abs(a - made))]
        self._bound()

    @staticmethod
    def _applied_value(specs, applied, key: str, value: float) -> float:
        if not applied:
            return value
        i = json.loads(key)[0]
        if i >= len(applied) or not isinstance(applied[i], dict):
            return value
        kind = EDIT_KINDS.get(specs[i].get("kind"))
        rec = applied[i].get(f"applied_{kind.strength.field}")
        try:
            return float(rec) if rec is not None and math.isfinite(float(rec)) else value
        except (TypeError, ValueError):
            return value

    def add_tangent(self, specs: Sequence[dict], tangent: torch.Tensor) -> None:
        """Give the exact frame of ``specs`` its tangent ``dG/dα`` (e.g. a finite difference
        or ``torch.func.jvp`` of the render): first-order steps from it use it."""
        for key, value in line_keys(specs):
            line = self.lines.get(key)
            if line is not None:
                near = min(line.anchors, key=lambda a: abs(a - value), default=None)
                if near is not None and abs(near - value) <= SAME:
                    line.anchors[near].tangent = tangent.detach().clone(memory_format=torch.contiguous_format)
        self._bound()

    def nbytes(self) -> int:
        seen, total = set(), 0
        for line in self.lines.values():
            for anchor in line.anchors.values():
                if id(anchor.image) not in seen:
                    seen.add(id(anchor.image))
                    total += anchor.nbytes()
        return total

    def _bound(self) -> None:
        while len(self.lines) > MAX_LINES:
            self.lines.popitem(last=False)
        while self.lines and self.nbytes() > self.max_bytes:
            key, line = next(iter(self.lines.items()))
            if len(line.anchors) <= 1:
                del self.lines[key]
            else:
                del line.anchors[min(line.anchors)]
