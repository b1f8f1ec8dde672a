"""``LayeredGenerator``: one small API to read and edit any layer of a generator.

A generator is an ordered list of named layers ``z -> L1 -> L2 -> ... -> Ln`` (the last
one produces the image in [-1, 1]).  Everything in priorpaint is written against this
API, so a method written once (projection, directions, dissection, segmentation heads,
the image-specific generator G′) works for every architecture:

* ``features(z, names)``: outputs of the named layers;
* ``forward_to(z, name)``: ``G_H``, the image generator up to and including ``name``;
* ``forward_from(name, h, interventions, z=None)``: ``G_F``, the rest, from the output
  ``h`` of layer ``name``;
* ``interventions``: ``{layer_name: fn(tensor) -> tensor}`` applied to that layer's
  output (how concept painting and G′'s multiplicative perturbations are inserted).

Some architectures (StyleGAN2) also feed the latent into later layers.  Their layers
read it from a *context* built once per latent by :meth:`make_context`; ``forward_from``
therefore accepts the latent ``z`` too.  For the DCGAN the context is empty.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..errors import InputError

Intervention = Callable[[torch.Tensor], torch.Tensor]


class LayeredGenerator(nn.Module):
    """Base class; subclasses register their layers in order with :meth:`_set_layers`."""

    #: short architecture name, as written in manifests ("dcgan", "stylegan2")
    architecture: str = ""
    #: the manifest id of the loaded weights; every derived artefact (directions, parts,
    #: heads, vectors) is keyed by it.  Set by the model registry when it loads a model; a
    #: generator built by hand must be given one before anything is derived for it.
    model_id: str = ""
    #: what loading the weights had to say (e.g. noise maps made from a seed), for every report
    load_notes: Tuple[str, ...] = ()
    #: projection's multi-start budget: random candidates scored, starts optimised as a batch
    #: (a cheap 64 px generator affords many; a large StyleGAN2 overrides this with fewer)
    projection_defaults = {"candidates": 256, "starts": 8}

    def __init__(self, resolution: int, latent_shape: Tuple[int, ...], default_split: str):
        super().__init__()
        self.resolution = int(resolution)
        self.latent_shape = tuple(latent_shape)
        self.default_split = default_split
        self.layers = nn.ModuleDict()

    # -- construction -------------------------------------------------------------------
    def _set_layers(self, named: Sequence[Tuple[str, nn.Module]]) -> None:
        for name, module in named:
            self.layers[name] = module
        if self.default_split not in self.layers:
            raise ValueError(f"default split {self.default_split!r} is not a layer")

    # -- introspection ------------------------------------------------------------------
    @property
    def layer_names(self) -> List[str]:
        return list(self.layers.keys())

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def index(self, name: str) -> int:
        try:
            return self.layer_names.index(name)
        except ValueError:
            raise KeyError(f"no layer {name!r}; layers are {', '.join(self.layer_names)}") from None

    def layers_after(self, name: str) -> List[str]:
        """Names of the layers of ``G_F`` for a split at ``name``."""
        return self.layer_names[self.index(name) + 1:]

    # -- latents ------------------------------------------------------------------------
    def sample_latents(self, n: int, seed: Optional[int] = None,
                       generator: Optional[torch.Generator] = None,
                       space: Optional[str] = None) -> torch.Tensor:
        """``n`` latents from the prior (standard normal), deterministic for a seed.

        Sampling happens on the CPU so a seed gives the same latents on every device.
        ``space`` names a latent space where the architecture has several (StyleGAN2:
        "w+", "w", "z"); plain generators have only their input ``z``.
        """
        self._check_space(space)
        if generator is None:
            generator = torch.Generator()
            if seed is not None:
                generator.manual_seed(int(seed))
        z = torch.randn((n,) + self.latent_shape, generator=generator)
        return z.to(self.device)

    def _check_space(self, space: Optional[str]) -> None:
        if space not in (None, "z"):
            raise InputError(f"{self.architecture or type(self).__name__} has no latent space {space!r}; "
                             "its only latent is z")

    def mean_latent(self, space: Optional[str] = None) -> torch.Tensor:
        """The mean of the latent prior, ``(1, *latent_shape)`` (zero for a normal prior);
        projection can start from it."""
        self._check_space(space)
        return torch.zeros((1,) + self.latent_shape, device=self.device)

    def noise_inputs(self, upto: Optional[str] = None) -> Dict[str, torch.Tensor]:
        """Per-layer noise inputs (name -> tensor) of the layers up to ``upto``, which
        :meth:`make_context` accepts replacements for; none for plain generators."""
        return {}

    def make_context(self, z: Optional[torch.Tensor], noise: Optional[Dict[str, torch.Tensor]] = None) -> dict:
        """Per-latent inputs of later layers (none for plain feed-forward generators)."""
        return {}

    def _call_layer(self, name: str, module: nn.Module, x: torch.Tensor, context: dict) -> torch.Tensor:
        return module(x)

    # -- running ------------------------------------------------------------------------
    def run(self, x: torch.Tensor, start: Optional[str] = None, stop: Optional[str] = None,
            interventions: Optional[Dict[str, Intervention]] = None,
            capture: Iterable[str] = (), z: Optional[torch.Tensor] = None,
            context: Optional[dict] = None):
        """Run the layers after ``start`` (``None``: ``x`` is the latent) up to ``stop``.

        Returns ``(output, captured)`` where ``captured`` maps each name in ``capture``
        to that layer's output (after its intervention, if any).
        """
        names = self.layer_names
        first = 0 if start is None else self.index(start) + 1
        last = len(names) - 1 if stop is None else self.index(stop)
        if last < first - 1:
            raise ValueError(f"stop layer {stop!r} comes before start layer {start!r}")
        if context is None:
            context = self.make_context(x if start is None else z)
        interventions = interventions or {}
        capture = set(capture)
        unknown = (capture | set(interventions)) - set(names)
        if unknown:
            raise KeyError(f"unknown layers {sorted(unknown)}; layers are {', '.join(names)}")
        captured: Dict[str, torch.Tensor] = {}
        for name in names[first:last + 1]:
            x = self._call_layer(name, self.layers[name], x, context)
            fn = interventions.get(name)
            if fn is not None:
                x = fn(x)
            if name in capture:
                captured[name] = x
        return x, captured

    def forward(self, z: torch.Tensor, interventions: Optional[Dict[str, Intervention]] = None) -> torch.Tensor:
        return self.run(z, interventions=interventions)[0]

    def features(self, z: torch.Tensor, names: Optional[Iterable[str]] = None,
                 interventions: Optional[Dict[str, Intervention]] = None) -> Dict[str, torch.Tensor]:
        """Outputs of the named layers (all layers when ``names`` is None)."""
        names = list(self.layer_names if names is None else names)
        stop = max(names, key=self.index)
        return self.run(z, stop=stop, capture=names, interventions=interventions)[1]

    def forward_to(self, z: torch.Tensor, name: Optional[str] = None) -> torch.Tensor:
        """``G_H(z)``: the output of layer ``name`` (default: the split layer)."""
        return self.run(z, stop=name or self.default_split)[0]

    def forward_from(self, name: Optional[str], h: torch.Tensor,
                     interventions: Optional[Dict[str, Intervention]] = None,
                     z: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``G_F(h)``: the image from the output ``h`` of layer ``name``.

        ``z`` supplies the per-latent context of later layers where the architecture
        has one (StyleGAN2); it is ignored otherwise.
        """
        return self.run(h, start=name or self.default_split, interventions=interventions, z=z)[0]

    def units(self, name: str, h: torch.Tensor) -> torch.Tensor:
        """The *units* of layer ``name``'s output ``h``: its feature channels.  A layer whose
        output also carries other data (StyleGAN2's running skip image) leaves it out, so
        unit-level methods (dissection) rank only real units; the units are the leading
        channels of ``h``, so unit ``i`` is channel ``i``."""
        return h

    def run_with(self, modules: Dict[str, nn.Module], x: torch.Tensor, start: Optional[str] = None,
                 interventions: Optional[Dict[str, Intervention]] = None,
                 z: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Like :meth:`run` after ``start`` to the output, with the layers named in ``modules``
        replaced by those modules (e.g. private tuned copies; ``self`` is not changed)."""
        names = self.layer_names
        first = 0 if start is None else self.index(start) + 1
        context = self.make_context(x if start is None else z)
        interventions = interventions or {}
        for name in names[first:]:
            x = self._call_layer(name, modules.get(name, self.layers[name]), x, context)
            fn = interventions.get(name)
            if fn is not None:
                x = fn(x)
        return x

    def describe(self) -> List[dict]:
        """One dict per layer with its output shape, for listings and documentation."""
        with torch.no_grad():
            feats = self.features(self.sample_latents(1, seed=0))
        return [{"name": n, "shape": list(feats[n].shape[1:])} for n in self.layer_names]
