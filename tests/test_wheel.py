"""The built wheel is a working tool outside the checkout.

Once per session the wheel is built from a copy of the sources (nothing is written into the
checkout), and installed **without -e** into a fresh virtual environment. No network: the
fresh environment's site-packages holds one plain-path ``.pth`` line naming the development
environment's site-packages, so the dependencies (torch, gradio, ...) resolve from there, but a
plain path line does not run the development install's editable finder: ``import priorpaint``
can only find the installed wheel. Then, from a folder outside the checkout: ``priorpaint
models`` lists the default model as present from the wheel's own files, one ``priorpaint edit``
with a named direction runs on a real photo, and ``space-export`` writes a Space whose package
imports and builds the app.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ASTRONAUT_BOX, need

ROOT = Path(__file__).resolve().parents[1]
#: what the build reads: the metadata, and the folders setup.py maps into the distribution
SOURCES = ("pyproject.toml", "setup.py", "README.md", "space", "gimp_bridge", "plugin", "weights_manifest")
JUNK = ("__pycache__", "*.pyc", "*.egg-info", "build", "dist", ".venv")


def _ignored(name: str) -> bool:
    return name in ("__pycache__", "build", "dist", ".venv") or name.endswith((".pyc", ".egg-info"))


def _source_files(folder: str):
    """Files under a source folder, as the build sees them (junk left out)."""
    for dirpath, dirnames, filenames in os.walk(ROOT / folder):
        dirnames[:] = [d for d in dirnames if not _ignored(d)]
        for f in filenames:
            if not _ignored(f):
                yield Path(dirpath, f).relative_to(ROOT / folder)


def _run(cmd, timeout=300, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    return r


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built once per session from a copy of the sources (offline, no isolation)."""
    work = tmp_path_factory.mktemp("wheel-build")
    src = work / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns(*JUNK))
        else:
            shutil.copy2(ROOT / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "-q", "-w", work / "dist", src], cwd=str(work))
    found = sorted((work / "dist").glob("priorpaint-*.whl"))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="session")
def installed(wheel, tmp_path_factory):
    """(python, priorpaint script, environment) of a fresh venv holding only the wheel."""
    venv = tmp_path_factory.mktemp("wheel-venv") / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", "--without-pip", venv])
    py = venv / "bin" / "python"
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    # a plain path line: the dependencies resolve, the dev install's editable finder never runs
    (site / "zz-dev-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index", "-q", wheel])
    env = {k: v for k, v in os.environ.items()
           if k not in ("PRIORPAINT_MANIFEST_DIR", "PRIORPAINT_MANIFESTS", "PYTHONPATH")}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", GRADIO_ANALYTICS_ENABLED="False",
               PRIORPAINT_CACHE=str(tmp_path_factory.mktemp("wheel-cache")))
    return py, venv / "bin" / "priorpaint", env


def test_the_wheel_holds_every_package_module_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    want = {f"priorpaint/{p.as_posix()}" for p in _source_files("space/priorpaint") if p.suffix == ".py"}
    want |= {f"gimp_bridge/{p.as_posix()}" for p in _source_files("gimp_bridge") if p.suffix == ".py"}
    want |= {f"priorpaint/gimp_plugin/{p.as_posix()}" for p in _source_files("plugin/priorpaint") if p.suffix == ".py"}
    # every file under weights_manifest/, whatever its type (json, safetensors, md, txt, LICENSE)
    want |= {f"priorpaint/manifests/{p.as_posix()}" for p in _source_files("weights_manifest")}
    want |= {f"priorpaint/space/{n}" for n in ("app.py", "README.md", "requirements.txt")}
    assert sorted(want - names) == []
    assert not [n for n in names if "__pycache__" in n or ".egg-info" in n or n.endswith(".pyc")]
    # the embedded model's weights ship with their licence
    assert "priorpaint/manifests/models/dcgan-digiface-64.safetensors" in names
    assert "priorpaint/manifests/models/dcgan-digiface-64.LICENSE.txt" in names


def test_the_installed_wheel_is_what_runs_and_its_dependencies_resolve(installed, tmp_path):
    py, _, env = installed
    probe = ("import importlib.metadata as md, re, sys, priorpaint\n"
             "from priorpaint.models.manifest import manifest_dirs\n"
             "missing = []\n"
             "for req in md.requires('priorpaint') or []:\n"
             "    if 'extra ==' in req: continue\n"
             "    name = re.match(r'[A-Za-z0-9_.-]+', req).group(0)\n"
             "    try: md.version(name)\n"
             "    except md.PackageNotFoundError: missing.append(name)\n"
             "print(json.dumps({'file': priorpaint.__file__, 'missing': missing, "
             "'dirs': [str(d) for d in manifest_dirs()], 'prefix': sys.prefix}))\n")
    r = _run([py, "-c", "import json\n" + probe], cwd=str(tmp_path), env=env)
    got = json.loads(r.stdout.strip().splitlines()[-1])
    prefix = Path(got["prefix"]).resolve()
    assert Path(got["file"]).resolve().is_relative_to(prefix), got["file"]
    assert got["missing"] == []
    assert [Path(d).resolve().is_relative_to(prefix) for d in got["dirs"]] == [True]


def test_models_and_a_named_direction_edit_run_outside_the_checkout(installed, tmp_path, astronaut_path):
    _, script, env = installed
    table = _run([script, "models"], cwd=str(tmp_path), env=env).stdout
    assert any(line.split()[:1] == ["dcgan-digiface-64"] and "present" in line.split() for line in table.splitlines())
    r = _run([script, "models", "--json"], cwd=str(tmp_path), env=env)
    rows = {row["id"]: row for row in json.loads(r.stdout)}
    default = next(row for row in rows.values() if row["default"])
    assert default["id"] == "dcgan-digiface-64" and default["present"] is True
    assert default["source"] == "file models/dcgan-digiface-64.safetensors"
    assert Path(default["path"]).resolve().is_relative_to(script.parent.parent.resolve())
    assert rows["dcgan-digiface-64-encoder"]["present"] is True

    photo = tmp_path / "astronaut.png"
    shutil.copy(astronaut_path, photo)
    box = ",".join(map(str, ASTRONAUT_BOX))
    _run([script, "edit", photo, "--box", box, "-o", tmp_path / "out.png", "--steps", "3", "--no-adapt",
          "--edit", "direction:warm_light=2", "--report", tmp_path / "report.json"],
         cwd=str(tmp_path), env=env, timeout=600)
    report = json.loads((tmp_path / "report.json").read_text())
    assert [e["name"] for e in report["edits"]] == ["warm_light"]
    assert report["encoder"] == "dcgan-digiface-64-encoder"  # the shipped encoder was found in the wheel
    before = np.asarray(Image.open(photo).convert("RGB"))
    after = np.asarray(Image.open(tmp_path / "out.png").convert("RGB"))
    x, y, w, h = ASTRONAUT_BOX
    inside = np.zeros(before.shape[:2], bool)
    inside[y:y + h, x:x + w] = True
    assert np.array_equal(before[~inside], after[~inside])  # outside the selection: bit-identical
    assert np.abs(before[inside].astype(int) - after[inside].astype(int)).mean() > 1  # the edit changed it


def test_space_export_from_the_wheel_imports_and_builds_the_app(installed, tmp_path):
    py, script, env = installed
    dest = tmp_path / "space"
    _run([script, "space-export", dest], cwd=str(tmp_path), env=env)
    for name in ("app.py", "README.md", "requirements.txt", "priorpaint/session.py",
                 "priorpaint/manifests/dcgan-digiface-64.json",
                 "priorpaint/manifests/models/dcgan-digiface-64.safetensors"):
        assert (dest / name).is_file(), name
    assert not (dest / "priorpaint" / "space").exists() and not (dest / "priorpaint" / "gimp_plugin").exists()
    probe = ("import sys; sys.path.insert(0, sys.argv[1])\n"
             "import priorpaint\n"
             "from priorpaint.models.manifest import manifest_dirs\n"
             "from priorpaint.app.server import build\n"
             "demo, backend = build(default_steps=5)\n"
             "print(priorpaint.__file__); print(manifest_dirs()[0]); print(type(demo).__name__)\n")
    r = _run([py, "-c", probe, dest], cwd=str(tmp_path), env=env)
    lines = r.stdout.strip().splitlines()[-3:]
    assert Path(lines[0]).resolve().is_relative_to(dest.resolve())
    assert Path(lines[1]).resolve() == (dest / "priorpaint" / "manifests").resolve()
    assert lines[2] == "Blocks"


def test_the_shipped_default_weights_are_reproduced_by_their_conversion():
    """``python -m priorpaint.models.embedded --check`` converts gan-face-generate 1.1.1's
    ``weights.tar`` again and compares the bytes with the shipped safetensors."""
    import importlib.util
    need(importlib.util.find_spec("gan_face_generate") is not None,
         "gan-face-generate is not installed (dev.sh installs it with --no-deps)")
    r = subprocess.run([sys.executable, "-m", "priorpaint.models.embedded", "--check"],
                       capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "reproduced byte for byte" in r.stdout
