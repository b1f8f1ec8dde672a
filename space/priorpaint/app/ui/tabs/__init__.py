"""One module per edit kind's tab: each names its ``KIND`` and ``TITLE`` and has
``build(page)`` (inside its ``gr.Tab``) and ``wire(page, service)``.  :data:`TABS` is their
order on the page; a kind this version does not register has no tab."""

from . import direction, drag, interpolate, paint, scribble, segment, vector

TABS = (direction, paint, segment, scribble, interpolate, vector, drag)

__all__ = ["TABS"]
