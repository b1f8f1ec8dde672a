"""``priorpaint install-gimp-plugin``: copy the GIMP 3 plug-in and gimp_bridge into GIMP.

GIMP 3 loads a Python plug-in from ``<plug-ins>/<name>/<name>.py`` (its own folder, the
file executable). The installer writes::

    <plug-ins>/priorpaint/priorpaint.py      (mode 755: GIMP runs it; it only registers)
    <plug-ins>/priorpaint/*.py               (its rooms: procedures, canvas, dialogs, tracing)
    <plug-ins>/priorpaint/gimp_bridge/*.py   (the standard-library client it imports)
    <plug-ins>/priorpaint/gimp.md            (the user guide its dialogs' Help shows)

GIMP starts ``priorpaint.py`` as a script, which puts its own folder first on ``sys.path``:
the rooms beside it and ``gimp_bridge`` are imported from there.

Default ``<plug-ins>`` folder (GIMP 3's user plug-in folder):

- Linux and others: ``${XDG_CONFIG_HOME:-~/.config}/GIMP/3.0/plug-ins``
- macOS: ``~/Library/Application Support/GIMP/3.0/plug-ins``
- Windows: ``%APPDATA%\\GIMP\\3.0\\plug-ins``

Where the sources come from: in a source checkout, the folder ``plugin/priorpaint/``
beside ``space/``; in an installed distribution, the same files ship as the modules of
``priorpaint.gimp_plugin`` (pyproject maps that package to ``plugin/priorpaint``). The
``gimp_bridge`` package is found by importing it (it is installed with priorpaint, and in
a checkout it is the folder at the repository root).
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import Optional

PLUGIN_NAME = "priorpaint"


class InstallError(Exception):
    pass


def default_plugin_dir(platform: Optional[str] = None, env: Optional[dict] = None, home: Optional[Path] = None) -> Path:
    platform = platform or sys.platform
    env = os.environ if env is None else env
    home = Path(home) if home is not None else Path.home()
    if platform == "win32":
        appdata = env.get("APPDATA")
        base = Path(appdata) if appdata else home / "AppData" / "Roaming"
        return base / "GIMP" / "3.0" / "plug-ins"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "GIMP" / "3.0" / "plug-ins"
    xdg = env.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg else home / ".config"
    return base / "GIMP" / "3.0" / "plug-ins"


def plugin_source() -> Path:
    """The plug-in's ``priorpaint.py`` (its rooms lie beside it): the checkout's ``plugin/``
    first, else the installed copy."""
    here = Path(__file__).resolve().parent
    candidates = [here.parent.parent / "plugin" / PLUGIN_NAME / f"{PLUGIN_NAME}.py",
                  here / "gimp_plugin" / f"{PLUGIN_NAME}.py"]
    for c in candidates:
        if c.is_file():
            return c
    raise InstallError("cannot find the GIMP plug-in source; looked at: " + ", ".join(str(c) for c in candidates))


def guide_source() -> Optional[Path]:
    """The GIMP user guide, ``docs/usage/gimp.md``: beside the plug-in's sources (in a checkout
    ``plugin/priorpaint/gimp.md`` links to it; a wheel ships it as package data of
    ``priorpaint.gimp_plugin``), else the checkout's docs; None when neither is there (Help
    then says where it is)."""
    here = Path(__file__).resolve().parent
    try:
        beside = plugin_source().parent / "gimp.md"
    except InstallError:
        beside = here / "gimp_plugin" / "gimp.md"
    for c in (beside, here.parent.parent / "docs" / "usage" / "gimp.md"):
        if c.is_file():
            return c
    return None


def bridge_source() -> Path:
    try:
        import gimp_bridge
    except ImportError as exc:
        raise InstallError(f"the gimp_bridge package is not importable ({exc}); reinstall priorpaint") from None
    return Path(gimp_bridge.__file__).resolve().parent


def install(plugin_dir: Optional[Path] = None) -> Path:
    """Install (or replace) the plug-in; return its folder."""
    plugin_dir = Path(plugin_dir) if plugin_dir else default_plugin_dir()
    source, bridge = plugin_source(), bridge_source()
    plugin_dir.mkdir(parents=True, exist_ok=True)
    target = plugin_dir / PLUGIN_NAME
    staging = Path(tempfile.mkdtemp(prefix=".priorpaint-install-", dir=plugin_dir))
    try:
        for f in sorted(source.parent.glob("*.py")):     # the script and its rooms
            shutil.copyfile(f, staging / f.name)
        script = staging / f"{PLUGIN_NAME}.py"
        script.chmod(script.stat().st_mode | stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        guide = guide_source()
        if guide is not None:
            shutil.copyfile(guide, staging / "gimp.md")
        (staging / "gimp_bridge").mkdir()
        for f in sorted(bridge.glob("*.py")):
            shutil.copyfile(f, staging / "gimp_bridge" / f.name)
        staging.chmod(0o755)
        if target.exists():
            _remove_installed(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _remove_installed(target: Path) -> None:
    if not (target / f"{PLUGIN_NAME}.py").exists() and any(target.iterdir()):
        raise InstallError(f"{target} exists but does not look like the priorpaint plug-in; not touching it")
    shutil.rmtree(target)


def uninstall(plugin_dir: Optional[Path] = None) -> Optional[Path]:
    """Remove the plug-in; return the removed folder, or None when it was not installed."""
    plugin_dir = Path(plugin_dir) if plugin_dir else default_plugin_dir()
    target = plugin_dir / PLUGIN_NAME
    if not target.exists():
        return None
    _remove_installed(target)
    return target
