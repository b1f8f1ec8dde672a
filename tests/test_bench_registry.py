"""The benchmark's registry and its place in the layering (no section is run here)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import priorpaint
from priorpaint.cli import main

EXPECTED = ["projection", "encoder", "stylegan2", "adaptation", "directions", "scribble", "concepts", "photo", "structural",
            "interpolation", "vectors", "drag", "app", "security", "memory", "soak", "batch"]
PKG = Path(priorpaint.__file__).parent
ENGINE = ["models", "projection", "edits", "adaptation", "compositing", "session.py"]


def test_the_registry_lists_the_sections_in_order_and_each_loads():
    from priorpaint import bench
    assert bench.section_names() == EXPECTED
    for s in bench.SECTIONS:
        assert s.description and "\n" not in s.description
        assert callable(s.load()) and s.load().__module__ == f"priorpaint.bench.{s.name}"


def test_only_keeps_the_registry_order():
    from priorpaint.bench import select
    assert [s.name for s in select("app,projection")] == ["projection", "app"]
    assert [s.name for s in select(None)] == EXPECTED


def test_bench_list_prints_the_sections(capsys):
    assert main(["bench", "--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == EXPECTED
    assert all(len(line.split(None, 1)) == 2 for line in out)  # a name and its description


@pytest.mark.parametrize("only", ["nosuch", "projection,nosuch", ","])
def test_unknown_section_is_a_one_line_error(capsys, only):
    assert main(["bench", "--only", only]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert captured.out == ""
    assert len(err.splitlines()) == 1 and err.startswith("priorpaint: error:")
    assert "--list" in err
    if only != ",":
        assert "'nosuch'" in err and "projection" in err


def test_add_arguments_gives_the_bench_options():
    import argparse

    from priorpaint.bench import add_arguments
    p = argparse.ArgumentParser()
    add_arguments(p)
    a = p.parse_args(["--only", "stylegan2", "--steps", "5", "--json", "x.json", "--model", "m", "--list"])
    assert (a.only, a.steps, a.json, a.model, a.list) == ("stylegan2", 5, "x.json", "m", True)


def _imported_modules(path: Path):
    """Absolute names of every module ``path`` imports (lazy imports included), and its string constants."""
    package = list(path.relative_to(PKG.parent).parts[:-1])  # an __init__.py is its own package
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names, strings = [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            names.append(mod)
            names += [f"{mod}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            strings.append(node.value)
    return names, strings


def _engine_files():
    for entry in ENGINE:
        p = PKG / entry
        yield from ([p] if p.is_file() else sorted(p.rglob("*.py")))


def test_the_import_reader_sees_relative_and_lazy_imports():
    names, _ = _imported_modules(PKG / "bench" / "concepts.py")
    assert "priorpaint.edits.concepts" in names          # from ..edits import concepts (inside run)
    assert "priorpaint.bench.fixtures" in names           # from .fixtures import ...


def test_the_engine_never_imports_bench_code():
    files = list(_engine_files())
    assert len(files) > 20
    offenders = []
    for f in files:
        names, strings = _imported_modules(f)
        bad = [n for n in names if n == "priorpaint.bench" or n.startswith("priorpaint.bench.")]
        bad += [s for s in strings if "priorpaint.bench" in s]
        if bad:
            offenders.append(f"{f.relative_to(PKG)}: {sorted(set(bad))}")
    assert not offenders, offenders
    # and no benchmark file is left inside the engine
    assert not [f for f in files if "bench" in f.name]
