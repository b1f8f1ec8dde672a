"""The layout's rules, read from the sources (lazy imports included): no import cycle, the
method never imports the plumbing, the engine never imports Gradio, no argparse in the
method, method modules stay readable in size, gimp_bridge and the plug-in use only the
standard library (and GIMP's bindings)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "space" / "priorpaint"
METHOD = ("models", "projection", "edits", "adaptation", "compositing")
PLUMBING = ("priorpaint.cli", "priorpaint.bench", "priorpaint.app", "priorpaint.batch")


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in PKG.rglob("*.py")}


def _imports(name: str, path: Path):
    """Every module of the package (and every top-level package) that ``name`` imports, anywhere
    in the file (function bodies included)."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                mod = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            for a in node.names:   # `from . import x` imports the module x when it is one
                if f"{mod}.{a.name}" in MODULES:
                    out.add(f"{mod}.{a.name}")
    return out


GRAPH = {m: {i for i in _imports(m, p) if i in MODULES and i != m} for m, p in MODULES.items()}


def _cycles():
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return sccs


def test_no_import_cycle():
    assert _cycles() == []


def test_the_cycle_check_can_fail():
    GRAPH["priorpaint.metrics"].add("priorpaint.session")
    try:
        assert _cycles()
    finally:
        GRAPH["priorpaint.metrics"].discard("priorpaint.session")


def _method_modules():
    return [m for m in MODULES if m.split(".")[1:2] and m.split(".")[1] in METHOD]


@pytest.mark.parametrize("module", sorted(_method_modules()) + ["priorpaint.session", "priorpaint.store",
                                                                 "priorpaint.metrics"])
def test_the_method_never_imports_the_plumbing(module):
    imported = _imports(module, MODULES[module])
    bad = sorted(i for i in imported if i.startswith(PLUMBING) or i in ("argparse", "gradio", "gradio_client"))
    assert bad == []


def test_the_engine_never_imports_gradio():
    engine = [m for m in MODULES if not m.startswith(("priorpaint.app", "priorpaint.bench", "priorpaint.cli"))]
    bad = {m: sorted(i for i in _imports(m, MODULES[m]) if i.split(".")[0] in ("gradio", "gradio_client"))
           for m in engine}
    assert {m: v for m, v in bad.items() if v} == {}


def test_method_modules_stay_readable():
    big = {m: n for m in _method_modules() if (n := len(MODULES[m].read_text().splitlines())) > 520}
    assert big == {}


@pytest.mark.parametrize("folder", ["gimp_bridge", "plugin"])
def test_bridge_and_plugin_use_only_the_standard_library(folder):
    allowed = set(sys.stdlib_module_names) | {"gi", "gimp_bridge", "priorpaint"}
    allowed |= {p.stem for p in (ROOT / "plugin" / "priorpaint").glob("*.py")}   # the plug-in's rooms
    bad = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            bad |= {f"{path.name}: {n}" for n in names if n.split(".")[0] not in allowed}
    assert bad == set()
