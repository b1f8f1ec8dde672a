"""Hugging Face Space entry: build the priorpaint Gradio app and launch it.

A Space runs ``python app.py`` in its container; the app must listen on 0.0.0.0 there
(the container's port is reached only through the Space's proxy), on the port the Space
gives in ``GRADIO_SERVER_PORT`` (7860).  Outside a Space, prefer ``priorpaint serve``,
which binds 127.0.0.1 and refuses other addresses without a token.

Environment: ``PRIORPAINT_MODEL`` (default model id), ``PRIORPAINT_TOKEN`` (require
``Authorization: Bearer <token>``; a public Space normally leaves it unset),
``PRIORPAINT_MAX_UPLOAD_MB`` (default 50), ``PRIORPAINT_STEPS`` (default projection steps).
"""

import os
import sys
from pathlib import Path

# The priorpaint package sits beside this file in the Space (and in this repository).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from priorpaint.app.server import build, launch, server_temp_dir  # noqa: E402

server_temp_dir()  # uploads and results in a folder of this server's own, removed at shutdown

demo, backend = build(model=os.environ.get("PRIORPAINT_MODEL") or None,
                      default_steps=int(os.environ.get("PRIORPAINT_STEPS", "200")))

if __name__ == "__main__":
    launch(demo,
           host=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"),
           port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
           token=os.environ.get("PRIORPAINT_TOKEN") or None,
           max_upload_mb=float(os.environ.get("PRIORPAINT_MAX_UPLOAD_MB", "50")))
