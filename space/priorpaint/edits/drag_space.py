"""The latent state a drag optimises (``space``), for :func:`priorpaint.edits.drag.optimise`.

* ``"z"``: ``δz`` over the whole latent; the split feature follows it with the photo's residual kept
  (``h + G_H(z + δz) − G_H(z)``), so the render stays on the model's manifold.
* ``"pose"``: ``δz = c·B`` with ``B`` the model's first :data:`POSE_COMPONENTS` closed-form (SeFa)
  directions of the first layer, which on a face model are its pose and shape controls (the
  embedded model's head turn, profile and head tilt are components 0–2); the residual is kept as for ``"z"``.
* ``"w+"`` (StyleGAN2, DragGAN's setting): ``δ`` on the first :data:`FIRST_LAYERS` styles of ``w+``;
  the other styles are unchanged.
* ``"h"`` / ``"z+h"``: the split feature itself (also with ``δz`` for ``"z+h"``); on the embedded
  model that tears the image apart.
* ``"z+coarse"``: ``δz`` and a *spatial* offset ``δc`` added to the output of a coarse layer before
  the split (:func:`coarse_layer`, declared per architecture in :data:`COARSE_LAYER`: the embedded
  DCGAN's 4×4 ``b4``), run through the layers after it: the proxy's split feature is
  ``G_{c→split}(G_{→c}(z + δz) + δc)``, so a part of the face can move without the rest, and the
  coarse grid cannot tear the fine texture. The offset has its own Adam rate and penalties
  (:data:`COARSE`); a zero offset is the ``"z"`` drag, bit for bit. The photo keeps its residual as
  for ``"z"``.

The default is declared per architecture (:data:`DEFAULT_SPACE`, :func:`default_space`).

A drag may optimise a *batch* of latents, one per group of nearby handles (``batch``: one forward
through the generator per step for all of them, each row its own offset; the generator's layers
treat the rows independently). :meth:`DragLatent.combined` gives the photo's one state from them:
the split feature takes each group's change where that group's weight is (a partition of unity over
the split's grid, :func:`priorpaint.edits.drag_region.group_weights`), the latent the groups' mean offset.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np
import torch

from ..errors import InputError

SPACES = ("z", "pose", "w+", "h", "z+h", "z+coarse")
#: the space a drag optimises by default, per architecture (others: ``"z"``)
DEFAULT_SPACE = {"stylegan2": "w+", "dcgan": "z"}
#: StyleGAN2: how many of the first styles of ``w+`` a drag moves (the paper's 6)
FIRST_LAYERS = 6
#: the share of the photo's residual ``h − G_H(z)`` the drag's features see (spaces that move the
#: latent). On the embedded model the projected residual is larger than ``G_H(z)`` itself (1.16× on
#: the astronaut) and pinned in place: with it (share 1) the generator's own motion was −0.02…0.03 in
#: every setting; on the proxy ``G_H(z)`` alone it moves (0.15–0.44, docs/method/drag.md). The
#: photo's state keeps the whole residual: ``h_e = h + G_H(z_e) − G_H(z)``.
RESIDUAL = 0.0
#: ``"z+coarse"``: the layer whose output takes the spatial offset, per architecture (a generator may
#: declare its own ``drag_coarse_layer``; undeclared: its first layer). It must come before the split.
COARSE_LAYER = {"dcgan": "b4"}
#: ``"z+coarse"``: the offset's Adam rate as a share of the drag's ``lr`` (the embedded model's ``b4``
#: features are about 0.14 in mean magnitude; at 0.1 the offset painted red and grey patches on the
#: generated faces, 0.03 kept them), and the weights of its penalties per row: ``l2`` on its mean square,
#: ``tv`` on its mean total variation over the grid (off: ``tv`` 1 cost the three-pair drags, 0.12 → 0.02
#: worst); ``z_scale``: ``δz``'s rate as a share of ``lr`` beside the offset (1: free; 0: frozen, the
#: offset alone); docs/method/drag.md
COARSE = {"lr_scale": 0.03, "l2": 0.0, "tv": 0.0, "z_scale": 1.0}
#: ``"pose"``: how many of the first-layer closed-form directions span the geometric subspace
POSE_COMPONENTS = 3


def default_space(gen) -> str:
    return DEFAULT_SPACE.get(getattr(gen, "architecture", ""), "z")


def coarse_layer(gen, split: str, want: Optional[str] = None) -> str:
    """The layer (before ``split``) whose output a ``"z+coarse"`` drag offsets: ``want``, or the
    generator's ``drag_coarse_layer``, or :data:`COARSE_LAYER`'s for its architecture, or its first."""
    names = list(gen.layer_names)
    before = names[:names.index(split)] if split in names else []
    if not before:
        raise InputError(f"drag space 'z+coarse' needs a layer before the split {str(split)[:20]!r}; "
                         "this model has none")
    if want is None:
        want = getattr(gen, "drag_coarse_layer", None) or COARSE_LAYER.get(getattr(gen, "architecture", ""))
        want = want if want in before else before[0]
    if not isinstance(want, str) or want not in before:
        raise InputError(f"drag coarse_layer must be one of {', '.join(repr(n) for n in before)} (the layers "
                         f"before the split {split!r}), got {str(want)[:20]!r}")
    return want


def pose_basis(gen, k: int = POSE_COMPONENTS) -> torch.Tensor:
    """(k, *latent_shape): the first ``k`` closed-form (SeFa) directions of ``gen``'s first layer."""
    from .directions.closedform import sefa
    vecs = sefa(gen)["vectors"]
    k = max(1, min(int(k), vecs.shape[0]))
    return vecs[:k].reshape((k,) + tuple(gen.latent_shape)).to(gen.device)


class DragLatent:
    """The optimised tensors of one drag and the latent ``(z_e, h_e)`` they give."""

    def __init__(self, gen, z: torch.Tensor, h: torch.Tensor, split: str, space: Optional[str] = None,
                 basis: Optional[torch.Tensor] = None, batch: int = 1, coarse: Optional[str] = None):
        space = default_space(gen) if space is None else space
        if space not in SPACES:
            raise InputError(f"drag space must be one of {', '.join(repr(s) for s in SPACES)}, got {space!r}")
        if space == "w+" and not hasattr(gen, "to_wplus"):
            raise InputError(f"drag space 'w+' needs a StyleGAN2 model; {gen.architecture or 'this model'} "
                             "has no w+ (use 'z' or 'pose')")
        if not isinstance(batch, int) or batch < 1 or z.shape[0] != 1:
            raise InputError(f"a drag optimises a batch of at least one latent of one image, got {batch!r}")
        self.gen, self.z, self.h, self.split, self.space, self.batch = gen, z, h, split, space, batch
        self.hz, self.base = None, h
        if space != "h":
            with torch.no_grad():
                self.hz = gen.forward_to(z, split)
            self.base = self.hz + RESIDUAL * (h - self.hz)
        self.basis = None
        if space == "pose":
            self.basis = pose_basis(gen) if basis is None else basis.to(z.device, z.dtype)
            shape = (batch, self.basis.shape[0])
        elif space == "w+":
            self.wplus = gen.to_wplus(z).detach()
            shape = (batch, min(FIRST_LAYERS, self.wplus.shape[1]), self.wplus.shape[2])
        else:
            shape = (batch,) + tuple(z.shape[1:])
        self.dz = torch.zeros(shape, device=z.device, dtype=z.dtype, requires_grad=True) \
            if space != "h" else None
        self.dh = torch.zeros((batch,) + tuple(h.shape[1:]), device=h.device, dtype=h.dtype, requires_grad=True) \
            if space in ("h", "z+h") else None
        self.coarse, self.dc = None, None
        if space == "z+coarse":
            self.coarse = coarse_layer(gen, split, coarse)
            with torch.no_grad():
                c = gen.run(z, stop=self.coarse)[0]
            self.dc = torch.zeros((batch,) + tuple(c.shape[1:]), device=c.device, dtype=c.dtype, requires_grad=True)
        elif coarse is not None:
            raise InputError(f"drag coarse_layer applies to space 'z+coarse' only, not {space!r}")

    @property
    def second(self) -> Optional[torch.Tensor]:
        """The tensor optimised beside ``δz``: the split feature's ``δh``, or the coarse offset ``δc``."""
        return self.dh if self.dh is not None else self.dc

    @property
    def params(self) -> List[torch.Tensor]:
        return [v for v in (self.dz, self.second) if v is not None]

    def param_groups(self, lr: float) -> List[dict]:
        """Adam's parameter groups: every tensor at ``lr``; with the coarse offset, the offset at ``lr ×``
        :data:`COARSE` ``lr_scale`` and ``δz`` at ``lr ×`` ``z_scale``."""
        if self.dc is None:
            return [{"params": self.params, "lr": lr}]
        return [{"params": [self.dz], "lr": lr * COARSE["z_scale"]},
                {"params": [self.dc], "lr": lr * COARSE["lr_scale"]}]

    def penalty(self) -> torch.Tensor:
        """The coarse offset's penalties, summed over the rows (each row's own: its gradient stays in
        its row): :data:`COARSE` ``l2`` × its mean square + ``tv`` × its mean total variation; 0 otherwise."""
        if self.dc is None or not (COARSE["l2"] or COARSE["tv"]):
            return torch.zeros((), device=self.z.device, dtype=self.z.dtype)
        d = self.dc
        out = COARSE["l2"] * (d ** 2).mean(dim=(1, 2, 3)).sum()
        if COARSE["tv"]:
            tv = (d[..., 1:, :] - d[..., :-1, :]).abs().mean(dim=(1, 2, 3)) \
                + (d[..., :, 1:] - d[..., :, :-1]).abs().mean(dim=(1, 2, 3))
            out = out + COARSE["tv"] * tv.sum()
        return out

    def snapshot(self) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """``(δz, the second tensor)`` (:attr:`second`), detached copies."""
        return tuple(None if v is None else v.detach().clone() for v in (self.dz, self.second))

    def to_split(self, z_rows: torch.Tensor, dc: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The generator's split feature of ``z_rows``, with the coarse offset ``dc`` (rows like
        ``z_rows``) added to the coarse layer's output on the way (``None``: ``G_H(z_rows)``)."""
        if dc is None:
            return self.gen.forward_to(z_rows, self.split)
        c = self.gen.run(z_rows, stop=self.coarse)[0]
        return self.gen.run(c + dc, start=self.coarse, stop=self.split, z=z_rows)[0]

    def _split_change(self, z_e: torch.Tensor, second: Optional[torch.Tensor]) -> torch.Tensor:
        """The split feature's change: the generator's (with the coarse offset) and ``δh``."""
        dc = second if self.space == "z+coarse" else None
        delta = self.to_split(z_e, dc) - self.hz
        return delta + second if self.dh is not None and second is not None else delta

    def moved_z(self, dz: Optional[torch.Tensor]) -> torch.Tensor:
        """The latent for the optimised ``dz`` (the input's shape for ``z``/``pose``; ``w+`` for ``w+``)."""
        if dz is None:
            return self.z.expand((self.batch,) + tuple(self.z.shape[1:]))
        if self.space == "pose":
            return self.z + torch.einsum("nk,k...->n...", dz, self.basis)
        if self.space == "w+":
            k = dz.shape[1]
            w = self.wplus.expand((dz.shape[0],) + tuple(self.wplus.shape[1:]))
            return torch.cat([w[:, :k] + dz, w[:, k:]], 1)
        return self.z + dz

    def latent(self, snap=None, photo: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(z_e, h_e)`` of the current tensors, or of a :meth:`snapshot`: what the drag's features
        see (the proxy, :data:`RESIDUAL`), or with ``photo`` the photo's state (its whole residual)."""
        dz, second = (self.dz, self.second) if snap is None else snap
        z_e = self.moved_z(dz)
        h0 = self.h if photo else self.base
        dc = second if self.space == "z+coarse" else None
        dh = second if self.dh is not None else None
        h_e = h0 if dz is None else h0 + self.to_split(z_e, dc) - self.hz
        return z_e, (h_e if dh is None else h_e + dh)

    def combined(self, snap, weights: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """The photo's one state ``(z_e, h_e)`` (batch 1, its whole residual) from a :meth:`snapshot`
        of the batch: row ``g``'s change of the split feature where ``weights[g]`` is (``(G, 1, s, s)``
        on the split's grid, summing to 1; ``None``: the rows' mean), the latent the rows' mean offset.
        With one latent it is that latent's own state."""
        dz, second = snap
        if self.batch == 1:
            return self.latent(snap, photo=True)
        if weights is None:
            weights = torch.full((self.batch,) + (1,) * (self.h.dim() - 1), 1.0 / self.batch,
                                 device=self.h.device, dtype=self.h.dtype)
        delta = second if dz is None else self._split_change(self.moved_z(dz), second)
        h_e = self.h + (weights * delta).sum(0, keepdim=True)
        z_e = self.z if dz is None else self.moved_z(dz.mean(0, keepdim=True))[:1]
        return z_e, h_e

    @torch.no_grad()
    def renders(self, snap, interventions=None) -> List[np.ndarray]:
        """The generator's renders (one R×R×3 uint8 per latent of the batch) of a :meth:`snapshot` as
        the drag's features see them."""
        from ..compositing.blend import to_uint8
        z_e, h_e = self.latent(snap)
        x = self.gen.forward_from(self.split, h_e, z=z_e, interventions=interventions)
        return [to_uint8(x[i]) for i in range(x.shape[0])]
