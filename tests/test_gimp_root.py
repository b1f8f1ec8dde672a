"""The cached GIMP root's bookkeeping: mirror discovery, half-built roots, the package marker.

These run without root: the commands that would build the root are recorded, not run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import gimp_root


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PRIORPAINT_CACHE", str(tmp_path / "cache"))
    calls = []

    def fake_run(cmd, log, **kw):
        calls.append(cmd)
        if cmd[0] == "debootstrap":
            root = Path(cmd[3])
            (root / "etc").mkdir(parents=True)
            (root / "proc").mkdir()
            (root / "dev").mkdir()

    monkeypatch.setattr(gimp_root, "_run", fake_run)
    monkeypatch.setattr(gimp_root.shutil, "which", lambda name: f"/usr/sbin/{name}")

    class NoMount:
        def __init__(self, root):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    monkeypatch.setattr(gimp_root, "mounted", NoMount)
    monkeypatch.setattr(gimp_root, "host_debian_mirror", lambda: "http://mirror.invalid/debian")
    return calls


def test_half_built_root_is_rebuilt(cache):
    root = gimp_root.root_path()
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "leftover").write_text("from an interrupted build")
    with gimp_root.locked():
        assert gimp_root.ensure_root(log=lambda m: None) == root
    assert not (root / "usr" / "bin" / "leftover").exists()
    assert cache[0] == ["debootstrap", "--variant=minbase", "trixie", str(root), "http://mirror.invalid/debian"]
    installs = [c for c in cache if "install" in c]
    assert installs and all(p in installs[0] for p in gimp_root.ROOT_PACKAGES)
    marker = json.loads((root / gimp_root.MARKER).read_text())
    assert marker["packages"] == sorted(gimp_root.ROOT_PACKAGES)
    # complete now: a second call builds nothing
    cache.clear()
    gimp_root.ensure_root(log=lambda m: None)
    assert cache == []


def test_old_marker_gets_the_new_packages(cache):
    root = gimp_root.root_path()
    root.mkdir(parents=True)
    (root / gimp_root.MARKER).write_text("built 2026-11-22T03:16:45Z from http://deb.debian.org/debian in 56s\n")
    gimp_root.ensure_root(log=lambda m: None)
    installs = [c for c in cache if "install" in c]
    assert len(installs) == 1 and installs[0][-2:] == ["xvfb", "xdotool"]
    assert not any(c[0] == "debootstrap" for c in cache)
    assert json.loads((root / gimp_root.MARKER).read_text())["packages"] == sorted(gimp_root.ROOT_PACKAGES)


def test_mirror_from_apt_sources(tmp_path, monkeypatch):
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(
        "Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\n"
        "URIs: http://deb.example.org/debian\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://deb.example.org/debian-security\nSuites: bookworm-security\n")
    real_path = Path

    def fake_path(p="", *rest):
        if p == "/etc/apt/sources.list":
            return real_path(tmp_path / "missing.list")
        if p == "/etc/apt/sources.list.d":
            return real_path(d)
        return real_path(p, *rest)

    monkeypatch.setattr(gimp_root, "Path", fake_path)
    assert gimp_root.host_debian_mirror() == "http://deb.example.org/debian"
    (d / "debian.sources").unlink()
    (d / "old.list").write_text("deb [arch=amd64 signed-by=/k.gpg] http://ftp.example.net/debian/ bookworm main\n")
    assert gimp_root.host_debian_mirror() == "http://ftp.example.net/debian"
    (d / "old.list").unlink()
    assert gimp_root.host_debian_mirror() == gimp_root.DEFAULT_MIRROR
