"""The page and the named API endpoints, over one backend."""

from __future__ import annotations

import gradio as gr

from .. import kinds
from ..endpoints import Backend
from ..endpoints import wire as wire_endpoints
from . import layout


def build_app(backend: Backend) -> gr.Blocks:
    """The page and the named API endpoints over ``backend``'s service."""
    service = backend.service
    page = layout.new_page(service, kinds.edit_kinds())
    with gr.Blocks(title="priorpaint", delete_cache=(900, 3600)) as demo:
        page.demo = demo
        layout.build(page)
        layout.wire(page, service)
        wire_endpoints(backend)
    demo.backend = backend
    return demo
