"""A cached Debian trixie root with GIMP 3, for driving the real GIMP headless in tests.

Debian bookworm ships GIMP 2.10 without Python; trixie ships GIMP 3 with Python
plug-in support. The root is built once with ``debootstrap`` and cached under
``${PRIORPAINT_CACHE:-~/.cache/priorpaint}/gimp3-trixie-root``. A file lock
serialises builds and uses; a marker file written last (``.priorpaint-complete``)
tells a finished root from a half-built one, which is removed and rebuilt.

Needs root and the host packages ``debootstrap`` (and ``util-linux`` for mount).
Run ``python tests/gimp_root.py`` to build the root by hand.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

SUITE = "trixie"
ROOT_PACKAGES = ["gimp", "python3", "python3-gi", "gir1.2-gimp-3.0",
                 "xvfb", "xdotool"]   # the last two: a display for the interactive dialog test
MARKER = ".priorpaint-complete"
DEFAULT_MIRROR = "http://deb.debian.org/debian"


def cache_dir() -> Path:
    base = os.environ.get("PRIORPAINT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "priorpaint")
    return Path(base)


def root_path() -> Path:
    return cache_dir() / "gimp3-trixie-root"


def unavailable_reason() -> str | None:
    """Why a GIMP root cannot be built or used here, or None when it can."""
    if sys.platform != "linux":
        return "the GIMP 3 test root needs Linux"
    if os.geteuid() != 0:
        return "building and entering the GIMP 3 debootstrap root needs root (chroot, mount)"
    if shutil.which("debootstrap") is None and not (root_path() / MARKER).exists():
        return "debootstrap is not installed (apt-get install debootstrap)"
    for tool in ("chroot", "mount", "umount"):
        if shutil.which(tool) is None:
            return f"{tool} is not available"
    return None


def host_debian_mirror() -> str:
    """The Debian archive URI this machine's apt uses (deb822 .sources or one-line .list)."""
    files = [Path("/etc/apt/sources.list")]
    d = Path("/etc/apt/sources.list.d")
    if d.is_dir():
        files += sorted(p for p in d.iterdir() if p.suffix in (".sources", ".list"))
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("#"):
                continue
            uris: list[str] = []
            if line.startswith("URIs:"):
                uris = line.split(":", 1)[1].split()
            elif line.startswith("deb ") or line.startswith("deb\t"):
                parts = [p for p in line.split()[1:] if not p.startswith("[")]
                # drop "[opt=val ...]" blocks spread over several tokens
                parts = [p for p in parts if "=" not in p and not p.endswith("]")]
                uris = parts[:1]
            for uri in uris:
                u = uri.rstrip("/")
                if u.endswith("/debian") and "security" not in u:
                    return u
    return DEFAULT_MIRROR


def _run(cmd: list[str], log, **kw) -> None:
    log(f"$ {' '.join(cmd)}")
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-4000:]}")


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()).rstrip("/") + "/"
    found = []
    with open("/proc/self/mounts") as f:
        for line in f:
            target = line.split()[1].replace("\\040", " ")
            if target.startswith(prefix) or target == prefix.rstrip("/"):
                found.append(target)
    return found


def unmount_all(root: Path) -> None:
    # deepest first; repeat because mounts may be stacked
    for _ in range(10):
        targets = sorted(_mounts_under(root), key=len, reverse=True)
        if not targets:
            return
        for t in targets:
            if subprocess.run(["umount", t], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", t], capture_output=True)
    left = _mounts_under(root)
    if left:
        raise RuntimeError(f"could not unmount {left}")


def _remove_root(root: Path) -> None:
    if not root.exists():
        return
    unmount_all(root)
    # --one-file-system: never descend into a mount that might have survived
    subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=True)


@contextlib.contextmanager
def locked(timeout: float = 3600.0):
    cache_dir().mkdir(parents=True, exist_ok=True)
    lock_path = cache_dir() / "gimp3-trixie-root.lock"
    with open(lock_path, "a+") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"timed out waiting for {lock_path}")
                time.sleep(1.0)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_root(log=print) -> Path:
    """Return a complete trixie root with GIMP 3; build it when missing or half-built.

    The caller must hold :func:`locked`.
    """
    root = root_path()
    if (root / MARKER).exists():
        missing = [p for p in ROOT_PACKAGES if p not in _marker_packages(root)]
        if missing:   # a root cached by an older version of this file: add what is new
            log(f"adding {missing} to {root}")
            with mounted(root):
                _apt(root, ["update"], log)
                _apt(root, ["install", "-y", "--no-install-recommends", *missing], log)
                _apt(root, ["clean"], log)
            _write_marker(root, _marker_packages(root) + missing, "updated")
        return root
    if root.exists():
        log(f"removing half-built root {root}")
        _remove_root(root)
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed (apt-get install debootstrap)")
    mirror = host_debian_mirror()
    t0 = time.monotonic()
    root.parent.mkdir(parents=True, exist_ok=True)
    _run(["debootstrap", "--variant=minbase", SUITE, str(root), mirror], log)
    if os.path.exists("/etc/resolv.conf"):
        shutil.copyfile("/etc/resolv.conf", root / "etc" / "resolv.conf")
    with mounted(root):
        _apt(root, ["update"], log)
        _apt(root, ["install", "-y", "--no-install-recommends", *ROOT_PACKAGES], log)
        _apt(root, ["clean"], log)
        _run(["chroot", str(root), "gimp-console-3.0", "--version"], log, env=_ENV)
    _write_marker(root, ROOT_PACKAGES, f"built from {mirror} in {time.monotonic() - t0:.0f}s")
    return root


_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "HOME": "/root"}


def _apt(root: Path, args: list, log) -> None:
    _run(["chroot", str(root), "apt-get", *args], log, env=_ENV)


def _marker_packages(root: Path) -> list:
    try:
        return list(json.loads((root / MARKER).read_text()).get("packages", []))
    except (OSError, ValueError, AttributeError):
        return ["gimp", "python3", "python3-gi", "gir1.2-gimp-3.0"]   # the first version's plain-text marker


def _write_marker(root: Path, packages: list, note: str) -> None:
    tmp = root / (MARKER + ".tmp")
    tmp.write_text(json.dumps({"packages": sorted(set(packages)), "note": note,
                               "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}) + "\n")
    os.replace(tmp, root / MARKER)


@contextlib.contextmanager
def mounted(root: Path):
    """Mount proc and bind /dev into the root; unmount on exit."""
    proc_t, dev_t = root / "proc", root / "dev"
    subprocess.run(["mount", "-t", "proc", "proc", str(proc_t)], check=True)
    try:
        subprocess.run(["mount", "--bind", "/dev", str(dev_t)], check=True)
        try:
            yield root
        finally:
            if subprocess.run(["umount", str(dev_t)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(dev_t)], check=True)
    finally:
        if subprocess.run(["umount", str(proc_t)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(proc_t)], check=True)


def gimp_batch(root: Path, script: str, timeout: float = 600.0, display: str = "") -> subprocess.CompletedProcess:
    """Run a python-fu-eval script in gimp-console-3.0 inside the (mounted) root.

    ``PRIORPAINT_GIMP_URL`` (host environment) becomes the plug-in's ``PRIORPAINT_URL``;
    ``display`` (e.g. ``":93"``, an Xvfb inside the root) lets plug-in dialogs open.
    ``PRIORPAINT_GIMP_TRACE`` (a path inside the root) becomes the plug-in's ``PRIORPAINT_TRACE``.
    """
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
           "PRIORPAINT_URL": os.environ.get("PRIORPAINT_GIMP_URL", ""), "DISPLAY": display,
           "PRIORPAINT_TRACE": os.environ.get("PRIORPAINT_GIMP_TRACE", "")}
    env = {k: v for k, v in env.items() if v}
    cmd = ["chroot", str(root), "gimp-console-3.0", "-i", "-d", "-f",
           "--batch-interpreter", "python-fu-eval", "-b", "-", "--quit"]
    return subprocess.run(cmd, input=script, capture_output=True, text=True, timeout=timeout, env=env)


@contextlib.contextmanager
def xvfb(root: Path):
    """An Xvfb X server inside the (mounted) root; yields its display name (":N")."""
    sockets = root / "tmp" / ".X11-unix"
    n = next(n for n in range(90, 200) if not (sockets / f"X{n}").exists() and not (root / "tmp" / f".X{n}-lock").exists())
    proc = subprocess.Popen(["chroot", str(root), "Xvfb", f":{n}", "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_ENV)
    try:
        deadline = time.monotonic() + 30
        while not (sockets / f"X{n}").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Xvfb :{n} did not start in the GIMP root")
            time.sleep(0.2)
        yield f":{n}"
    finally:
        stop(proc)


def install_plugin(root: Path, repo: Path) -> Path:
    """Install the plug-in into the root's GIMP with ``priorpaint install-gimp-plugin`` and
    drop GIMP's saved last values of our procedures (a strength saved at its maximum by the
    run before would make a dialog test depend on it); returns the plug-ins folder."""
    plugins = root / "root" / ".config" / "GIMP" / "3.0" / "plug-ins"
    out = subprocess.run([sys.executable, "-m", "priorpaint.cli", "install-gimp-plugin", "--plugin-dir",
                          str(plugins)], capture_output=True, text=True, cwd=str(repo))
    assert out.returncode == 0, out.stdout + out.stderr
    for last in (root / "root" / ".config" / "GIMP" / "3.0" / "plug-in-settings").glob("*priorpaint*"):
        last.unlink()
    return plugins


def fresh_workdir(root: Path, name: str, photo: Path) -> tuple:
    """An empty ``/tmp/NAME-PID`` inside the root holding a copy of ``photo``:
    ``(path on the host, path inside the root)``."""
    in_root = f"/tmp/{name}-{os.getpid()}"
    work = root / in_root.lstrip("/")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    shutil.copyfile(photo, work / photo.name)
    return work, in_root


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Terminate ``proc``, then kill it if it has not gone after ``grace`` seconds."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def xdotool(root: Path, display: str, *args: str) -> str:
    """Run xdotool inside the root against ``display``; return its stdout ("" on failure)."""
    p = subprocess.run(["chroot", str(root), "env", f"DISPLAY={display}", "xdotool", *args],
                       capture_output=True, text=True, timeout=30, env=_ENV)
    return p.stdout.strip() if p.returncode == 0 else ""


SCREENSHOT = """
import sys, gi
gi.require_version("Gdk", "3.0")
from gi.repository import Gdk
w = Gdk.get_default_root_window()
pb = Gdk.pixbuf_get_from_window(w, 0, 0, w.get_width(), w.get_height())
pb.savev(sys.argv[1], "png", [], [])
"""


def screenshot(root: Path, display: str, path_in_root: str) -> bool:
    """Save the whole X screen of ``display`` as a PNG (GDK inside the root); True when written."""
    p = subprocess.run(["chroot", str(root), "env", f"DISPLAY={display}", "python3", "-c", SCREENSHOT, path_in_root],
                       capture_output=True, text=True, timeout=60, env=_ENV)
    return p.returncode == 0 and (root / path_in_root.lstrip("/")).exists()


if __name__ == "__main__":
    reason = unavailable_reason()
    if reason:
        sys.exit(reason)
    with locked():
        print(ensure_root())
