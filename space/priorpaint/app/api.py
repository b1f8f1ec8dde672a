"""The app's API, as earlier versions named it: one import place for what clients and tests
of the app used from here.

The API is three rooms now: :mod:`priorpaint.app.contract` (typed requests and results, and
the one serialiser), :mod:`priorpaint.app.service` (sessions and jobs behind typed calls, no
Gradio) and :mod:`priorpaint.app.endpoints` (the Gradio adapters of ``docs/api.md``).
"""

from __future__ import annotations

from .contract import (PREVIEW_MAX_SIZE, PROJECT_OPTIONS, composite_mode, file_path, parse_edit_list,  # noqa: F401
                       project_options, refs_for_paths, resolve_files)
from .endpoints import Backend, client_key, no_paths, one_line, user_errors  # noqa: F401
from .service import Service, namespace_of  # noqa: F401

__all__ = ["Backend", "Service", "PREVIEW_MAX_SIZE", "PROJECT_OPTIONS", "client_key", "composite_mode", "file_path",
           "namespace_of", "no_paths", "one_line", "parse_edit_list", "project_options", "refs_for_paths", "resolve_files",
           "user_errors"]
