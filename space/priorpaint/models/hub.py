"""Talking about the Hub when it is not there: the offline message and a fast reachability probe.

Shared by the loader (:mod:`.weights`) and ``priorpaint download`` (:mod:`.download`).
"""

from __future__ import annotations

import os

from .manifest import ModelEntry, Source


def offline_message(entry: ModelEntry, src: Source) -> str:
    why = "HF_HUB_OFFLINE is set" if os.environ.get("HF_HUB_OFFLINE") else "the Hub cannot be reached"
    return (f"weights for {entry.id} are not downloaded and {why} (repo {src.repo_id}, file {src.filename}); "
            f"run `priorpaint download {entry.id}` once online")


def hub_unreachable(timeout: float = 3.0) -> bool:
    """True when a TCP connection to the Hub endpoint fails at once (no network, nothing
    listening).  huggingface_hub retries a refused connection with back-off for ~25 s
    before giving up; this answers within ``timeout``.  With a proxy configured the probe
    is skipped (the proxy, not the endpoint, is what must be reachable)."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants
    if os.environ.get("HF_HUB_OFFLINE"):
        return True
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                                        "all_proxy")):
        return False
    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout).close()
        return False
    except OSError:
        return True
