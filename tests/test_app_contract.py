"""The API's typed contract, the capabilities each edit kind declares once, and the settings
every surface (CLI, API, page, GIMP) reads from or is checked against."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from priorpaint.app import contract as C
from priorpaint.app import kinds, views
from priorpaint.edits import EDIT_KINDS, parse_spec
from priorpaint.edits.registry import PreviewCost, Strength, register_edit
from priorpaint.errors import InputError
from priorpaint.projection.project import INITS, PUBLIC_INITS, SERVED_STEPS, ProjectionConfig, setting

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "space" / "priorpaint" / "app"

#: the CLI form of each kind with a file in it, and the value of its strength where it has one
EXAMPLES = {
    "direction": ("direction:smile=1.5", None),
    "vector": ("vector:v=-0.5", None),
    "paint": ("paint:tree=add@/tmp/m.png", "/tmp/m.png"),
    "scribble": ("scribble:/tmp/s.png", "/tmp/s.png"),
    "segment": ("segment:/tmp/l.png", "/tmp/l.png"),
    "interpolate": ("interpolate:/tmp/o.png@0.25", "/tmp/o.png"),
    "drag": ("drag:10,10>12,10@/tmp/d.png", "/tmp/d.png"),
}


# -- capabilities, declared at registration -------------------------------------------------------

def test_every_kind_is_covered_here():
    assert set(EXAMPLES) == set(EDIT_KINDS)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_declared_file_fields_are_where_the_parser_puts_files(kind):
    text, path = EXAMPLES[kind]
    spec = parse_spec(text)
    k = EDIT_KINDS[kind]
    holding = {f for f, v in spec.items() if v == path} if path else set()
    assert holding == set(k.file_fields) - set(k.inline_fields)
    if k.preview is PreviewCost.LATENT:
        assert not k.file_fields


@pytest.mark.parametrize("kind,value", [("direction", 1.5), ("vector", -0.5), ("interpolate", 0.25)])
def test_declared_strength_field_holds_the_parsed_strength(kind, value):
    spec = parse_spec(EXAMPLES[kind][0])
    s = EDIT_KINDS[kind].strength
    assert spec[s.field] == value and s.lo <= value <= s.hi


def test_kinds_without_a_strength_have_none_on_the_list():
    for kind in ("paint", "scribble", "segment", "drag"):
        assert EDIT_KINDS[kind].strength is None
        assert views.strength_text(parse_spec(EXAMPLES[kind][0])) == "—"


def test_latent_kinds_survive_a_new_projection():
    """A latent move does not depend on the old square; an edit painted over it does."""
    for k in EDIT_KINDS.values():
        if k.preview is PreviewCost.LATENT:
            assert k.survives_reprojection
        if set(k.file_fields) & {"mask", "strokes", "labels"}:
            assert not k.survives_reprojection


@pytest.fixture
def toy_kind():
    """A kind registered for one test: every reader must see its declarations."""
    register_edit("toy", lambda args: {"name": args}, preview=PreviewCost.LATENT, survives_reprojection=True,
                  strength=Strength("amount", 0.0, 2.0))(lambda ctx, state, spec: state)
    register_edit("toyfile", lambda args: {"pic": args}, preview=PreviewCost.SLOW,
                  file_fields=("pic",))(lambda ctx, state, spec: state)
    yield
    EDIT_KINDS.pop("toy")
    EDIT_KINDS.pop("toyfile")


def test_every_reader_reads_the_declarations(toy_kind):
    items, msg = views.add([], {"kind": "toy", "name": "a", "amount": 5.0})
    assert "clamped to 2" in msg and views.table(items)[0][2:] == ["amount 2", "live"]
    items, _ = views.add(items, {"kind": "toyfile", "pic": "/tmp/p.png"})
    assert views.table(items)[1][3] == "at Render"
    kept, dropped = views.kept_on_reprojection(items)
    assert [it["spec"]["kind"] for it in kept] == ["toy"] and dropped == 1
    assert "toy" in kinds.live_kinds() and "toyfile" in kinds.slow_kinds()
    refs, files = C.file_refs(views.specs(items))
    assert refs[1]["pic"] == "file:0" and files == ["/tmp/p.png"]
    with pytest.raises(InputError, match="pic must be a reference"):
        C.resolve_files([{"kind": "toyfile", "pic": "/etc/passwd"}], [])


def test_registration_refuses_contradictions():
    with pytest.raises(ValueError, match="reads no file"):
        register_edit("bad", str, preview=PreviewCost.LATENT, file_fields=("x",))
    with pytest.raises(ValueError, match="inline fields"):
        register_edit("bad", str, file_fields=("x",), inline_fields=("y",))
    with pytest.raises(ValueError, match="empty strength range"):
        register_edit("bad", str, strength=Strength("s", 1.0, 1.0))
    assert "bad" not in EDIT_KINDS


def test_no_app_module_restates_a_kind_list():
    """The lists the capabilities replaced are gone from the app's sources."""
    for path in APP.rglob("*.py"):
        text = path.read_text()
        for gone in ("CHEAP_KINDS", "STRENGTH_FIELD", "STRENGTH_RANGE", "IMAGE_FIELDS",
                     '("direction", "vector", "interpolate")', '("scribble", "segment", "interpolate")'):
            assert gone not in text, f"{path.name} restates {gone}"


# -- settings, declared once --------------------------------------------------------------------

def _parser():
    from priorpaint.cli import build_parser
    return build_parser()


def _sub(name):
    p = _parser()
    action = next(a for a in p._actions if a.__class__.__name__ == "_SubParsersAction")
    return action.choices[name]


def _option(parser, flag):
    return next(a for a in parser._actions if flag in a.option_strings)


@pytest.mark.parametrize("command", ["project", "edit", "segment"])
def test_cli_projection_flags_match_the_config(command):
    p = _sub(command)
    assert _option(p, "--steps").default == setting("steps").default == ProjectionConfig().steps
    init = _option(p, "--init")
    assert tuple(init.choices) == PUBLIC_INITS and init.default == ProjectionConfig().init


def test_served_steps_are_declared_once():
    from priorpaint.app.service import Service
    assert setting("steps").metadata["served"] == SERVED_STEPS
    assert _option(_sub("serve"), "--steps").default == SERVED_STEPS
    assert Service().default_steps == SERVED_STEPS


def test_bench_steps_match_the_config():
    import argparse
    from priorpaint.bench import add_arguments
    p = argparse.ArgumentParser()
    add_arguments(p)
    assert _option(p, "--steps").default == setting("steps").default


def test_api_choices_are_the_methods():
    from priorpaint.adaptation.gprime import METHODS
    from priorpaint.compositing.warp import RENDER_MODES
    assert tuple(m.value for m in C.Init) == PUBLIC_INITS and set(PUBLIC_INITS) <= set(INITS)
    assert tuple(m.value for m in C.Composite) == RENDER_MODES
    assert tuple(m.value for m in C.Method) == METHODS
    assert setting("init").metadata["choices"] == PUBLIC_INITS


def test_page_controls_read_the_declarations():
    from priorpaint.app.server import build
    demo, backend = build()
    by_id = {c["props"].get("elem_id"): c["props"] for c in demo.get_config_file()["components"]}
    assert by_id["pp-steps"]["value"] == SERVED_STEPS == backend.default_steps
    assert [c[0] for c in by_id["pp-composite"]["choices"]] == [m.value for m in C.Composite]
    assert by_id["pp-composite"]["value"] == C.Composite.DETAIL.value
    s = EDIT_KINDS["vector"].strength
    assert (by_id["pp-vector-strength"]["minimum"], by_id["pp-vector-strength"]["maximum"]) == (s.lo, s.hi)
    s = EDIT_KINDS["interpolate"].strength
    assert (by_id["pp-t"]["minimum"], by_id["pp-t"]["maximum"]) == (s.lo, s.hi)
    s = EDIT_KINDS["direction"].strength
    assert (by_id["pp-dir-0"]["minimum"], by_id["pp-dir-0"]["maximum"]) == (s.lo, s.hi)


def _gimp_sources():
    return [(p, ast.parse(p.read_text())) for folder in ("gimp_bridge", "plugin") for p in (ROOT / folder).rglob("*.py")]


def test_gimp_bridge_and_plugin_agree_with_the_declarations():
    """Read from the sources (the plug-in needs GIMP to import): the bridge's compositing
    modes, the plug-in's ``composite`` choices and default, the strength argument's range
    around the direction kind's, and a projection that leaves its steps to the server."""
    modes, composite_defaults, choices, strength_ranges, steps_defaults = None, [], set(), [], []
    for path, tree in _gimp_sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "COMPOSITE_MODES" for t in node.targets):
                modes = ast.literal_eval(node.value)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                args = node.args
                if node.func.attr == "add_choice_argument" and args and getattr(args[0], "value", None) == "composite":
                    composite_defaults.append(ast.literal_eval(args[4]))
                if node.func.attr == "add" and isinstance(node.func.value, ast.Name) \
                        and node.func.value.id == "composite" and args:
                    choices.add(ast.literal_eval(args[0]))
                if node.func.attr == "add_double_argument" and args and getattr(args[0], "value", None) == "strength":
                    strength_ranges.append((ast.literal_eval(args[3]), ast.literal_eval(args[4])))
            if isinstance(node, ast.FunctionDef) and node.name == "project" and path.parent.name == "gimp_bridge":
                names = [a.arg for a in node.args.args]
                if "steps" in names:
                    defaults = dict(zip(names[len(names) - len(node.args.defaults):], node.args.defaults))
                    steps_defaults.append(ast.literal_eval(defaults["steps"]))
    assert modes == tuple(m.value for m in C.Composite)
    assert composite_defaults and set(composite_defaults) == {C.Composite.DETAIL.value}
    assert choices == {m.value for m in C.Composite}
    s = EDIT_KINDS["direction"].strength
    assert strength_ranges and all(lo <= s.lo and s.hi <= hi for lo, hi in strength_ranges)
    assert steps_defaults == [None]   # the server's default steps (SERVED_STEPS) apply


# -- the contract and its serialiser ------------------------------------------------------------

def test_progress_round_trips_through_the_wire():
    p = C.Progress(stage="project", fraction=0.5, job="J1", extra={"session": "S"})
    text = C.to_wire(p)
    assert json.loads(text) == {"done": False, "stage": "project", "fraction": 0.5, "job": "J1", "session": "S"}
    assert C.from_wire(text) == p
    d = C.Progress(stage="download", fraction=0.0, extra={"model": "m", "bytes_done": 0, "bytes_total": None})
    assert "job" not in json.loads(C.to_wire(d)) and C.from_wire(C.to_wire(d)) == d


def test_results_serialise_their_report_as_it_comes():
    r = C.EditResult(job="J", session="S", layer=C.Box(1, 2, 3, 4), adapt=True,
                     report={"psnr_photo": float("nan"), "some_new_measure": np.float32(0.5), "notes": ("a",)},
                     photo=None, layer_image=np.zeros((1, 1, 4), np.uint8), generated=np.zeros((1, 1, 3), np.uint8))
    d = C.from_wire(C.to_wire(r))
    assert d["done"] is True and d["layer"] == {"x": 1, "y": 2, "w": 3, "h": 4} and d["adapt"] is True
    assert d["psnr_photo"] is None and d["some_new_measure"] == 0.5 and d["notes"] == ["a"]
    assert C.status(C.CancelResult(id="J", jobs=[])) == {"cancelled": False, "id": "J", "jobs": []}


def test_requests_parse_to_enums(tmp_path):
    img = tmp_path / "p.png"
    img.write_bytes(b"")
    r = C.ProjectRequest.parse(str(img), None, "1,2,30,40", "", "", 3, "true", init="search")
    assert r.init is C.Init.SEARCH and r.box == (1, 2, 30, 40) and r.steps is None and r.adapt is True
    assert json.loads(json.dumps(C.status(r)))["init"] == "search"
    e = C.EditRequest.parse("S", "[]", False, None, "replace")
    assert e.composite is C.Composite.REPLACE and e.edits == ()


@pytest.mark.parametrize("call,message", [
    (lambda: C.ProjectRequest.parse("/tmp/x.png", None, "", ""), "exactly one of a mask or a box"),
    (lambda: C.ProjectRequest.parse("/tmp/x.png", None, "1,2,3,4", "", None, -1), "seed must be between"),
    (lambda: C.ProjectRequest.parse("/tmp/x.png", None, "1,2,3,4", init="guess"), "init must be auto, encoder or search"),
    (lambda: C.ProjectRequest.parse("/tmp/x.png", None, "1,2,3,4", adapt="maybe"), "adapt must be true or false"),
    (lambda: C.ProjectRequest.parse(None, None, "1,2,3,4"), "no image given"),
    (lambda: C.ProjectRequest.parse("/tmp/x.png", None, "1,2,3,4", eyes=[1, 2]), "eyes must be a string"),
    (lambda: C.ProjectRequest.parse("/tmp/x.png", "/tmp/m.png", "1,2,3,4"), "exactly one of a mask or a box"),
    (lambda: C.EditRequest.parse("S", "[]", False, None, "blend"), "composite must be one of detail, replace"),
    (lambda: C.EditRequest.parse("S", "[{\"kind\": \"nope\"}]"), "unknown edit kind"),
    (lambda: C.PreviewRequest.parse("S", json.dumps({"edits": [], "zoom": 2})), "unknown: zoom"),
    (lambda: C.PreviewRequest.parse("S", json.dumps({"edits": [], "size": 4})), "preview size must be between"),
    (lambda: C.from_wire("[1]"), "a status is a JSON object"),
])
def test_bad_requests_get_one_line(call, message):
    with pytest.raises(InputError, match=message) as e:
        call()
    assert "\n" not in str(e.value)


def test_contract_and_service_know_nothing_of_gradio():
    for name in ("contract.py", "service.py", "views.py", "kinds.py"):
        tree = ast.parse((APP / name).read_text())
        mods = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        mods |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {m for m in mods if m.split(".")[0] in ("gradio", "gradio_client")}, name


def test_the_page_never_parses_wire_strings():
    for path in (APP / "ui").rglob("*.py"):
        text = path.read_text()
        assert "json.loads" not in text and "inspect.signature" not in text, path.name


def test_capabilities_are_the_declarations():
    from priorpaint.app.api import Backend
    caps = json.loads(Backend().capabilities())
    assert caps["version"] == C.VERSION and caps["init"] == list(PUBLIC_INITS)
    assert caps["default_steps"] == SERVED_STEPS and caps["composite"] == [m.value for m in C.Composite]
    assert set(caps["kinds"]) == set(EDIT_KINDS)
    for name, k in EDIT_KINDS.items():
        c = caps["kinds"][name]
        assert c["preview"] == k.preview.value and c["file_fields"] == list(k.file_fields)
        assert c["survives_reprojection"] is k.survives_reprojection
        assert (c["strength"] is None) == (k.strength is None)
    assert caps["kinds"]["interpolate"]["strength"] == {"field": "t", "min": 0.0, "max": 1.0}
