"""priorpaint: semantic photo editing with a generative image prior.

The engine (models, projection, edits, adaptation, compositing) never imports Gradio;
the web app lives in :mod:`priorpaint.app` and the command line in :mod:`priorpaint.cli`.
"""

__version__ = "0.1.0"
