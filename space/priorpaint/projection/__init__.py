"""Projection of a photo crop into a generator (multi-start z search + split-layer refinement)."""

from .project import Projection, ProjectionConfig, project

__all__ = ["Projection", "ProjectionConfig", "project"]
