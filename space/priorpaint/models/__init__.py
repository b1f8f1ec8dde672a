"""Generators (as LayeredGenerators), the weights manifest and weight loading."""

from .layered import LayeredGenerator

__all__ = ["LayeredGenerator"]
