"""Where the backend is: saved settings, else ``PRIORPAINT_URL``, else the local default.

Settings are a small JSON file (``url``, ``model``, ``token``, ``timeout``) in the user's
configuration folder:

- Linux and others: ``${XDG_CONFIG_HOME:-~/.config}/priorpaint/gimp.json``
- macOS: ``~/Library/Application Support/priorpaint/gimp.json``
- Windows: ``%APPDATA%\\priorpaint\\gimp.json``

``PRIORPAINT_SETTINGS`` names another file (used by tests).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:7860"
DEFAULT_TIMEOUT = 600.0


@dataclass
class Settings:
    url: str = ""          # "" = use PRIORPAINT_URL, else DEFAULT_URL
    model: str = ""        # "" = the backend's default model
    token: str = ""        # bearer token for a server started with --token
    timeout: float = DEFAULT_TIMEOUT  # seconds one request (or a silent stream) may take

    def resolved_url(self) -> str:
        return resolve_url(self.url)


def settings_path() -> Path:
    override = os.environ.get("PRIORPAINT_SETTINGS")
    if override:
        return Path(override)
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "priorpaint" / "gimp.json"


def resolve_url(saved: str = "") -> str:
    """Saved URL, else ``PRIORPAINT_URL``, else ``http://127.0.0.1:7860`` (no trailing slash)."""
    url = (saved or "").strip() or os.environ.get("PRIORPAINT_URL", "").strip() or DEFAULT_URL
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


def load(path: Path | None = None) -> Settings:
    """Read saved settings; a missing or unreadable file gives the defaults."""
    path = path or settings_path()
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Settings()
    if not isinstance(raw, dict):
        return Settings()
    known = {f.name: f.type for f in fields(Settings)}
    s = Settings()
    for key, value in raw.items():
        if key not in known or value is None:
            continue
        if key == "timeout":
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
            if value <= 0:
                continue
        else:
            value = str(value)
        setattr(s, key, value)
    return s


def save(settings: Settings, path: Path | None = None) -> Path:
    """Write settings atomically (owner-readable only: the file may hold a token)."""
    path = Path(path or settings_path())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(asdict(settings), f, indent=2)
    os.replace(tmp, path)
    return path
