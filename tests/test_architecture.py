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


# -- every room stays readable, keeps its private parts, and is named on the architecture page ------

MAX_LINES = 500


def _sources():
    for folder in ("space", "gimp_bridge", "plugin"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), path


def test_every_module_is_500_lines_or_fewer():
    big = {rel: n for rel, path in _sources() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert big == {}


def _private_members() -> set:
    """Every private method or attribute a class of the package defines (``def _x`` in a class
    body, ``self._x = ...``)."""
    names = set()
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        names.add(item.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) \
                    and isinstance(node.value, ast.Name) and node.value.id == "self":
                names.add(node.attr)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


PRIVATE = _private_members()


def _room(module: str) -> str:
    path = MODULES[module]
    return module if path.name == "__init__.py" else module.rsplit(".", 1)[0]


def private_crossings(module: str, source: str) -> list:
    """``obj._x`` on anything but ``self``/``cls`` where ``_x`` is a private member of one of the
    package's classes, and ``from other_room import _x``."""
    bad = []
    tree = ast.parse(source)
    path = MODULES.get(module)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in PRIVATE:
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if not (isinstance(root, ast.Name) and root.id in ("self", "cls")):
                bad.append(f"{module}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and node.level and path is not None:
            base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            src = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else []))
            src_room = _room(src) if src in MODULES else src
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__") and src_room != _room(module):
                    bad.append(f"{module}:{node.lineno}: from {src} import {a.name}")
    return bad


def test_no_private_attribute_crosses_a_room():
    bad = [b for m, p in MODULES.items() for b in private_crossings(m, p.read_text())]
    assert bad == []


def test_the_private_check_can_fail():
    assert "_session" in PRIVATE or "_model" in PRIVATE or PRIVATE, "the package defines private members"
    member = sorted(PRIVATE)[0]
    assert private_crossings("priorpaint.app.ui.render", f"def f(backend):\n    return backend.{member}\n")
    assert not private_crossings("priorpaint.app.ui.render", f"class A:\n    def f(self):\n        return self.{member}\n")
    assert private_crossings("priorpaint.app.ui.render", "from ..service import _progress\n")


def _rooms():
    """Every package of the space (a folder with ``__init__.py``), as ``priorpaint/<path>/``."""
    return sorted(p.parent.relative_to(PKG.parent).as_posix() + "/" for p in PKG.rglob("__init__.py"))


@pytest.mark.parametrize("room", _rooms())
def test_the_architecture_page_names_each_room(room):
    page = (ROOT / "docs" / "architecture.md").read_text()
    short = room.split("/", 1)[1] if room.count("/") > 1 else room
    assert room in page or f"`{short}`" in page, f"docs/architecture.md does not name {room}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("priorpaint.app.")
                                          and MODULES[m].name != "__init__.py"))
def test_the_architecture_page_names_each_app_module(module):
    page = (ROOT / "docs" / "architecture.md").read_text()
    assert f"{module.rsplit('.', 1)[1]}.py" in page, f"docs/architecture.md does not name {module}"
