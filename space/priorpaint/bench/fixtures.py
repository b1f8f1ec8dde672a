"""What the benchmark sections share: the photos, the face box, the astronaut session, peak RSS.

The photos are the public-domain pictures shipped with scikit-image (``astronaut.png``,
``chelsea.png``, ``coffee.png``, ``camera.png``), read from the installed package, and
matplotlib's sample photo of Grace Hopper (``grace_hopper.jpg``, for the ``photo`` section).
Standard library only at import; the engine is imported when a fixture is used.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

#: the astronaut's face, ``X, Y, W, H`` in pixels of the 512x512 portrait
ASTRONAUT_BOX = (140, 20, 180, 180)


def photo_path(name: str) -> Path:
    """Path of one of scikit-image's sample photos (``astronaut.png``, ``chelsea.png``, ...)."""
    try:
        import skimage
    except ImportError:
        from ..errors import InputError
        raise InputError("the benchmark reads its photos from scikit-image: pip install scikit-image") from None
    return Path(skimage.__file__).parent / "data" / name


def matplotlib_sample_path(name: str) -> Path:
    """Path of one of matplotlib's sample data files (``grace_hopper.jpg``, ...)."""
    try:
        import matplotlib
    except ImportError:
        from ..errors import InputError
        raise InputError("the benchmark reads this photo from matplotlib's sample data: pip install matplotlib") from None
    return Path(matplotlib.get_data_path()) / "sample_data" / name


def astronaut_path() -> Path:
    return photo_path("astronaut.png")


def astronaut_session(model=None):
    """An :class:`~priorpaint.session.EditSession` on the astronaut's face box (not projected)."""
    from ..session import EditSession
    return EditSession.open(astronaut_path(), box=ASTRONAUT_BOX, model=model)


def projected_astronaut(args, max_steps: int):
    """The astronaut session projected with ``min(--steps, max_steps)`` steps (seed 0)."""
    from ..projection.project import ProjectionConfig
    s = astronaut_session(args.model)
    s.project(ProjectionConfig(steps=min(int(getattr(args, "steps", max_steps)), max_steps), seed=0))
    return s


def box_text(box=ASTRONAUT_BOX) -> str:
    """``"X,Y,W,H"``: a box as the CLI and the API take it."""
    return ",".join(str(int(v)) for v in box)


def peak_rss_mb() -> float:
    """The process's resident-memory high-water mark so far, in MiB."""
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024 * 1024) if sys.platform == "darwin" else r / 1024
