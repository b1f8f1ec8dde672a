"""Building generators from manifest entries, and a small in-process cache of them."""

from __future__ import annotations

import threading
from typing import Callable, Dict, Optional, Tuple

from ..device import as_device
from ..errors import ModelError
from .layered import LayeredGenerator
from .manifest import ModelEntry, get_entry
from .weights import load_weights

#: architecture name -> builder(entry) returning an un-loaded generator
BUILDERS: Dict[str, Callable[[ModelEntry], LayeredGenerator]] = {}


def register_architecture(name: str):
    def deco(fn):
        BUILDERS[name] = fn
        return fn
    return deco


@register_architecture("dcgan")
def _build_dcgan(entry: ModelEntry) -> LayeredGenerator:
    from .dcgan import DCGANGenerator
    cfg = dict(entry.config, resolution=entry.resolution)
    return DCGANGenerator.from_config(cfg, split=entry.split_layer or "b8")


@register_architecture("stylegan2")
def _build_stylegan2(entry: ModelEntry) -> LayeredGenerator:
    from .stylegan2 import StyleGAN2Generator
    size = int(entry.config.get("size", entry.resolution))
    if size != entry.resolution:
        raise ModelError(f"model {entry.id}: config size {size} differs from resolution {entry.resolution}")
    try:
        return StyleGAN2Generator.from_config(dict(entry.config, size=size), split=entry.split_layer)
    except ValueError as e:
        raise ModelError(f"model {entry.id}: bad StyleGAN2 config: {e}") from None


def build(entry: ModelEntry) -> LayeredGenerator:
    if entry.architecture not in BUILDERS:
        raise ModelError(f"model {entry.id}: unknown architecture {entry.architecture!r}; "
                         f"known: {', '.join(sorted(BUILDERS))}")
    return BUILDERS[entry.architecture](entry)


def generator_from_entry(entry: ModelEntry, device=None, allow_download: bool = False) -> LayeredGenerator:
    state, src, path = load_weights(entry, allow_download=allow_download)
    gen = build(entry)
    try:
        gen.load_state_dict(state)
    except (ValueError, RuntimeError) as e:
        raise ModelError(f"model {entry.id}: weights {path} do not fit the manifest's config: "
                         f"{str(e).splitlines()[0]}") from None
    gen.model_id = entry.id
    gen.entry = entry
    for p in gen.parameters():
        p.requires_grad_(False)
    return gen.eval().to(as_device(device))


def manifest_extra(gen: LayeredGenerator) -> dict:
    """The optional fields of a loaded generator's manifest entry (``content_box``,
    ``alignment``, ...); ``{}`` for a generator built by hand, which has no entry."""
    return getattr(getattr(gen, "entry", None), "extra", None) or {}


_cache: Dict[Tuple[str, str], LayeredGenerator] = {}
_lock = threading.Lock()


def load_generator(model_id: Optional[str] = None, device=None,
                   allow_download: bool = False) -> LayeredGenerator:
    """The generator for a manifest id (default model when None), cached per device."""
    entry = get_entry(model_id)
    dev = as_device(device)
    key = (entry.id, str(dev))
    with _lock:
        if key not in _cache:
            _cache[key] = generator_from_entry(entry, dev, allow_download=allow_download)
        return _cache[key]


def clear_cache() -> None:
    with _lock:
        _cache.clear()
