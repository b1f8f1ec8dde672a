"""The GIMP 3 plug-in in the real GIMP: a Debian trixie root, gimp-console-3.0, python-fu-eval.

The test builds (once, cached; see gimp_root.py) a trixie root with GIMP 3, installs the
plug-in into it with ``priorpaint install-gimp-plugin``, starts ``priorpaint serve`` on a
loopback port (the chroot shares the network namespace), and drives GIMP headless:

1. with the backend up: the astronaut photo, the face box 140,20,180,180 selected,
   ``priorpaint-semantic-edit`` run non-interactively; plus a grayscale image and a layer
   with offsets and alpha under a feathered selection that touches the layer's border;
2. with the backend stopped: the same call fails with the clear message and leaves the
   image untouched; with no selection it fails with a clear message.

Needs root, ``debootstrap`` and mount/chroot. Under CI=true it must run (a failure
otherwise); elsewhere it skips with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gimp_root
from gimp_backend import Backend, free_port
from conftest import need, skimage_data
from gimp_bridge import catalog, ops
from gimp_bridge.client import Client

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
SELECTION = (140, 20, 180, 180)
STRENGTH = 3.0
TOKEN = "pp-test-token-5f3a9c"      # what the Settings runs save; no GIMP file may hold it


# The script GIMP runs (python-fu-eval, GIMP's own Python: standard library + gi only).
GIMP_COMMON = r'''
import json, os, time
from gi.repository import Gimp, Gio, GLib, Gegl

OUT = __OUT__
PDB = Gimp.get_pdb()
RES = {"cases": {}, "procs": {}}


def raw(drawable, fmt, x=0, y=0, w=None, h=None):
    w = drawable.get_width() if w is None else w
    h = drawable.get_height() if h is None else h
    rect = Gegl.Rectangle.new(x, y, w, h)
    return bytes(drawable.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.NONE))


def flat(img):
    dup = img.duplicate()
    layer = dup.flatten()
    data = raw(layer, "R'G'B'A u8")
    dup.delete()
    return data


def run(img, drawable, name, **kw):
    proc = PDB.lookup_procedure(name)
    cfg = proc.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    cfg.set_property("image", img)
    cfg.set_core_object_array("drawables", [drawable] if drawable is not None else [])
    for k, v in kw.items():
        cfg.set_property(k, v)
    t0 = time.monotonic()
    r = proc.run(cfg)
    dt = time.monotonic() - t0
    status = r.index(0)
    msg = r.index(1) if r.length() > 1 else None
    return status.value_nick, (msg if isinstance(msg, str) else None), dt


def case(key, img, drawable, name, **kw):
    fmt = "Y'A u8" if drawable.is_gray() else "R'G'B'A u8"
    ids_before = [l.get_id() for l in img.get_layers()]
    drawable_before = raw(drawable, fmt)
    offsets_before = list(drawable.get_offsets()[1:])
    flat_before = flat(img)
    W, H = img.get_width(), img.get_height()
    sel = raw(img.get_selection(), "Y u8", 0, 0, W, H)
    status, msg, dt = run(img, drawable, name, **kw)
    new = [l for l in img.get_layers() if l.get_id() not in ids_before]
    info = {"status": status, "message": msg, "seconds": dt, "size": [W, H],
            "layers_before": len(ids_before), "layers_after": len(img.get_layers()),
            "drawable_unchanged": raw(drawable, fmt) == drawable_before
                                   and list(drawable.get_offsets()[1:]) == offsets_before,
            "drawable_offsets": offsets_before}
    if new:
        L = new[0]
        mask = L.get_mask()
        info["new"] = {"name": L.get_name(), "offsets": list(L.get_offsets()[1:]),
                       "size": [L.get_width(), L.get_height()], "has_mask": mask is not None,
                       "gray": L.is_gray(), "above_source": img.get_item_position(L) < img.get_item_position(drawable)}
        if mask is not None:
            open(os.path.join(OUT, key + "_mask.raw"), "wb").write(raw(mask, "Y u8"))
    open(os.path.join(OUT, key + "_before.raw"), "wb").write(flat_before)
    open(os.path.join(OUT, key + "_after.raw"), "wb").write(flat(img))
    open(os.path.join(OUT, key + "_sel.raw"), "wb").write(sel)
    RES["cases"][key] = info
    return info


def role(layer):
    """What the plug-in recorded the layer to be (its parasite), None for the user's layers."""
    p = layer.get_parasite("priorpaint-result")
    return json.loads(bytes(p.get_data()).decode("utf-8")).get("role") if p is not None else None


def load(path):
    return Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))


def finish():
    RES["ok"] = True
    with open(os.path.join(OUT, "result.json"), "w") as f:
        json.dump(RES, f)
'''

GIMP_BACKEND_UP = r'''
for name in ["priorpaint-project", "priorpaint-semantic-edit", "priorpaint-paint-concept",
             "priorpaint-segment", "priorpaint-apply-segmentation", "priorpaint-settings"]:
    RES["procs"][name] = PDB.lookup_procedure(name) is not None

# 1. The astronaut, the face selected, a semantic edit with G' adaptation.
img = load(os.path.join(OUT, "astronaut.png"))
layer = img.get_layers()[0]
img.select_rectangle(Gimp.ChannelOps.REPLACE, *__SEL__)
case("main", img, layer, "priorpaint-semantic-edit", direction=__DIR__, strength=__STRENGTH__, adapt=True)
dup = img.duplicate()
dup.flatten()
Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, dup, Gio.File.new_for_path(os.path.join(OUT, "result.png")), None)
dup.delete()
# 1a. edit again right away, on whatever GIMP selected after the first edit (out-of-range strength)
sel = img.get_selected_drawables()
RES["after_first"] = [type(d).__name__ for d in sel]
ids = [l.get_id() for l in img.get_layers()]
status, msg, dt = run(img, sel[0], "priorpaint-semantic-edit", direction=__DIR__, strength=8.0, adapt=False)
RES["second"] = {"status": status, "message": msg, "seconds": dt,
                 "new": [l.get_name() for l in img.get_layers() if l.get_id() not in ids],
                 "stack": [l.get_name() for l in img.get_layers()],
                 "selected": [type(d).__name__ for d in img.get_selected_drawables()]}
# 1b. the top result's mask as the drawable stands for its layer; with the source selected again
# the next result still lands on top of the source's results
top = img.get_layers()[0]
ids = [l.get_id() for l in img.get_layers()]
status, msg, dt = run(img, top.get_mask(), "priorpaint-semantic-edit", direction=__DIR__, strength=-1.0, adapt=False)
RES["from_mask"] = {"status": status, "message": msg,
                    "new": [l.get_name() for l in img.get_layers() if l.get_id() not in ids],
                    "top": img.get_layers()[0].get_name()}

# 1b. Project selection: G(z) scaled to the square, and the G' round trip with its mask.
pimg = load(os.path.join(OUT, "astronaut.png"))
pimg.select_rectangle(Gimp.ChannelOps.REPLACE, *__SEL__)
ids = [l.get_id() for l in pimg.get_layers()]
status, msg, dt = run(pimg, pimg.get_layers()[0], "priorpaint-project", adapt=True)
RES["project"] = {"status": status, "message": msg, "seconds": dt,
                  "layers": [[l.get_name(), list(l.get_offsets()[1:]), l.get_width(), l.get_height(),
                              l.get_mask() is not None, role(l)] for l in pimg.get_layers() if l.get_id() not in ids],
                  "stack": [[l.get_name(), l.get_visible()] for l in pimg.get_layers()],
                  "selected": [d.get_name() for d in pimg.get_selected_drawables()]}
# ... shown on request; run on its reconstruction, it reproduces the photo under it again
ids = [l.get_id() for l in pimg.get_layers()]
status, msg, dt = run(pimg, pimg.get_layers()[0], "priorpaint-project", adapt=True, show=True)
RES["project_shown"] = {"status": status, "message": msg,
                        "new": [[role(l), l.get_visible()] for l in pimg.get_layers() if l.get_id() not in ids],
                        "selected": [d.get_name() for d in pimg.get_selected_drawables()]}

# 2. Grayscale: converted for the backend, the result layer is gray too.
gimg = load(os.path.join(OUT, "astronaut.png"))
gimg.convert_grayscale()
gimg.select_rectangle(Gimp.ChannelOps.REPLACE, *__SEL__)
case("gray", gimg, gimg.get_layers()[0], "priorpaint-semantic-edit", direction=__DIR__,
     strength=__STRENGTH__, adapt=False)

# 3. A layer with alpha and offsets on a larger canvas; a feathered selection touching its border.
oimg = Gimp.Image.new(700, 620, Gimp.ImageBaseType.RGB)
bg = Gimp.Layer.new(oimg, "white", 700, 620, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
oimg.insert_layer(bg, None, 0)
bg.fill(Gimp.FillType.WHITE)
photo = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, oimg, Gio.File.new_for_path(os.path.join(OUT, "astronaut.png")))
oimg.insert_layer(photo, None, 0)
photo.add_alpha()
photo.set_offsets(150, 90)
oimg.select_ellipse(Gimp.ChannelOps.REPLACE, 150, 90, 200, 190)
Gimp.Selection.feather(oimg, 16.0)
case("offsets", oimg, photo, "priorpaint-semantic-edit", direction=__DIR__, strength=__STRENGTH__, adapt=False)
finish()
'''

GIMP_BACKEND_DOWN = r'''
# Settings procedure (non-interactive): saved settings win over PRIORPAINT_URL.
status, msg, _ = run(None, None, "priorpaint-settings", url=__URL__, model="", token=__TOKEN__)
RES["settings_status"] = status
img = load(os.path.join(OUT, "astronaut.png"))
layer = img.get_layers()[0]
img.select_rectangle(Gimp.ChannelOps.REPLACE, *__SEL__)
case("stopped", img, layer, "priorpaint-semantic-edit", direction=__DIR__, strength=__STRENGTH__, adapt=True)
Gimp.Selection.none(img)
# no selection: refused before any dialog or backend call
case("empty", img, layer, "priorpaint-semantic-edit", direction=__DIR__, strength=__STRENGTH__, adapt=True)
finish()
'''


def _script(body: str, out_in_root: str, direction: str, url: str = "") -> str:
    text = GIMP_COMMON + body
    return (text.replace("__OUT__", repr(out_in_root)).replace("__SEL__", repr(SELECTION))
            .replace("__DIR__", repr(direction)).replace("__STRENGTH__", repr(STRENGTH))
            .replace("__URL__", repr(url)).replace("__TOKEN__", repr(TOKEN)))


def _load_raw(path: Path, w: int, h: int, c: int) -> np.ndarray:
    return np.frombuffer(path.read_bytes(), np.uint8).reshape(h, w, c) if c > 1 else \
        np.frombuffer(path.read_bytes(), np.uint8).reshape(h, w)


@pytest.fixture(scope="module")
def gimp(tmp_path_factory):
    """A mounted, complete trixie root with the plug-in installed; yields (root, workdir in root)."""
    need(gimp_root.unavailable_reason() is None, str(gimp_root.unavailable_reason()))
    timings = {"t0": time.monotonic()}
    with gimp_root.locked():
        t = time.monotonic()
        root = gimp_root.ensure_root(log=lambda m: print(m, flush=True))
        timings["root"] = time.monotonic() - t
        plugins = gimp_root.install_plugin(root, REPO)
        assert os.access(plugins / "priorpaint" / "priorpaint.py", os.X_OK)
        # Saved settings from an earlier run would override PRIORPAINT_URL.
        saved = root / "root" / ".config" / "priorpaint" / "gimp.json"
        if saved.exists():
            saved.unlink()
        work, work_in_root = gimp_root.fresh_workdir(root, "priorpaint-gimp-test", skimage_data("astronaut.png"))
        try:
            with gimp_root.mounted(root):
                yield {"root": root, "work": work, "work_in_root": work_in_root, "timings": timings,
                       "settings": saved, "artifacts": tmp_path_factory.mktemp("gimp")}
        finally:
            shutil.rmtree(work, ignore_errors=True)
            if saved.exists():
                saved.unlink()
    total = time.monotonic() - timings["t0"]
    print(f"\n[gimp] end-to-end wall time of the GIMP test module: {total:.1f} s "
          f"(root ready in {timings['root']:.1f} s)", flush=True)


def _run_gimp(gimp, script: str, url: str = "") -> dict:
    result = gimp["work"] / "result.json"
    if result.exists():
        result.unlink()
    env_url = os.environ.get("PRIORPAINT_GIMP_URL")
    os.environ["PRIORPAINT_GIMP_URL"] = url
    try:
        proc = gimp_root.gimp_batch(gimp["root"], script, timeout=900)
    finally:
        if env_url is None:
            os.environ.pop("PRIORPAINT_GIMP_URL", None)
        else:
            os.environ["PRIORPAINT_GIMP_URL"] = env_url
    (gimp["artifacts"] / "gimp.log").write_text(proc.stdout + "\n" + proc.stderr)
    assert result.exists(), f"the GIMP script did not finish (rc={proc.returncode}):\n{proc.stdout[-3000:]}\n" \
                            f"{proc.stderr[-6000:]}"
    return json.loads(result.read_text())


def test_semantic_edit_in_real_gimp(gimp, capsys):
    t_start = time.monotonic()
    backend = Backend(gimp["artifacts"] / "serve.log")
    try:
        directions = catalog.list_directions(Client(backend.url))
        assert directions, "the backend lists no directions"
        names = [d["name"] for d in directions]
        direction = "exposure" if "exposure" in names else names[0]   # a named, clearly visible edit
        res = _run_gimp(gimp, _script(GIMP_BACKEND_UP, gimp["work_in_root"], direction), url=backend.url)
    finally:
        backend.stop()
    try:
        # PRIORPAINT_URL points elsewhere: the URL saved by the settings procedure must win.
        res2 = _run_gimp(gimp, _script(GIMP_BACKEND_DOWN, gimp["work_in_root"], direction, url=backend.url),
                         url=f"http://127.0.0.1:{free_port()}")
    finally:
        shutil.copytree(gimp["work"], gimp["artifacts"] / "work", dirs_exist_ok=True)
    wall = time.monotonic() - t_start
    work = gimp["work"]
    astronaut = np.asarray(Image.open(work / "astronaut.png").convert("RGB"))

    assert all(res["procs"].values()), res["procs"]

    # -- main case -------------------------------------------------------------------------
    main = res["cases"]["main"]
    assert main["status"] == "success", main["message"]
    assert main["layers_after"] == main["layers_before"] + 1
    new = main["new"]
    x0, y0, cw, ch = ops.crop_rect(SELECTION, (512, 512))
    assert new["offsets"] == [x0, y0] and new["size"] == [cw, ch], new       # at the selection's square
    sx, sy, sw, sh = SELECTION
    assert x0 <= sx and y0 <= sy and x0 + cw >= sx + sw and y0 + ch >= sy + sh
    assert new["has_mask"] and new["above_source"] and direction in new["name"]
    # -- edit again right away: the selected drawable is the new layer; the newest result is on top
    assert res["after_first"] == ["Layer"], res["after_first"]
    second = res["second"]
    assert second["status"] == "success", second["message"]
    hi = next(d for d in directions if d["name"] == direction)["max"]
    [second_name] = second["new"]     # named with the strength used (GIMP adds " #1" to a repeated name)
    assert second_name.split(" #")[0] == f"{direction} {hi:+g} — priorpaint", second
    assert second["stack"][0] == second["new"][0] and second["selected"] == ["Layer"]
    from_mask = res["from_mask"]
    assert from_mask["status"] == "success", from_mask["message"]
    assert from_mask["top"] == from_mask["new"][0] and from_mask["top"].split(" #")[0] == f"{direction} -1 — priorpaint"
    assert main["drawable_unchanged"], "the user's layer was modified"
    before = _load_raw(work / "main_before.raw", 512, 512, 4)[..., :3]
    after = _load_raw(work / "main_after.raw", 512, 512, 4)[..., :3]
    sel = _load_raw(work / "main_sel.raw", 512, 512, 1)
    np.testing.assert_array_equal(before, astronaut)
    outside = sel == 0
    assert outside.sum() == 512 * 512 - sw * sh
    np.testing.assert_array_equal(after[outside], astronaut[outside])        # outside: bit-identical
    inside = ~outside
    diff = np.abs(after.astype(int) - astronaut.astype(int)).max(axis=2)
    assert (diff[inside] > 0).mean() > 0.5, "most selected pixels should change"
    assert diff[inside].mean() > 3.0
    saved = np.asarray(Image.open(work / "result.png").convert("RGB"))
    np.testing.assert_array_equal(saved, after)
    mask = _load_raw(work / "main_mask.raw", cw, ch, 1)
    assert mask.max() == 255 and mask[sy - y0 + sh // 2, sx - x0 + sw // 2] == 255
    assert mask[:sy - y0].max(initial=0) == 0 and mask[:, :sx - x0].max(initial=0) == 0   # 0 outside the selection

    # -- project selection: G(z) and G' as layers ------------------------------------------
    pr = res["project"]
    assert pr["status"] == "success", pr["message"]
    by_kind = {L[5]: L for L in pr["layers"]}          # told apart by the role in their parasite
    assert sorted(by_kind) == ["model-rendering", "reconstruction"], pr["layers"]
    gprime, gz = by_kind["reconstruction"], by_kind["model-rendering"]
    assert (gprime[0], gz[0]) == ("fit to this photo — priorpaint", "model's own rendering — priorpaint")
    assert gprime[1:4] == [[x0, y0], cw, ch] and gprime[4]
    # the reconstruction (faithful, masked) on top of the opaque model rendering, both hidden: the
    # photo stays what the user sees, and stays selected so the next edit works on the photo
    assert [n for n, _ in pr["stack"][:2]] == [gprime[0], gz[0]] and [v for _, v in pr["stack"][:3]] == [False, False, True]
    assert pr["selected"] == [pr["stack"][2][0]]
    shown = res["project_shown"]
    assert shown["status"] == "success", shown["message"]
    assert shown["new"] == [["reconstruction", True], ["model-rendering", False]]   # show: the top one visible
    assert shown["selected"] == pr["selected"]                                      # the photo, not the layer run on
    assert gz[2] == gz[3] == cw and gz[1] == [x0, y0] and not gz[4]          # square inside the image

    # -- grayscale ---------------------------------------------------------------------------
    gray = res["cases"]["gray"]
    assert gray["status"] == "success", gray["message"]
    assert gray["new"]["gray"] and gray["new"]["offsets"] == [x0, y0] and gray["drawable_unchanged"]
    gb = _load_raw(work / "gray_before.raw", 512, 512, 4)
    ga = _load_raw(work / "gray_after.raw", 512, 512, 4)
    gsel = _load_raw(work / "gray_sel.raw", 512, 512, 1)
    np.testing.assert_array_equal(ga[gsel == 0], gb[gsel == 0])
    assert (ga[gsel > 0] != gb[gsel > 0]).any()

    # -- offsets + alpha + feathered selection touching the layer border -----------------------
    off = res["cases"]["offsets"]
    assert off["status"] == "success", off["message"]
    assert off["drawable_unchanged"] and off["drawable_offsets"] == [150, 90]
    ob = _load_raw(work / "offsets_before.raw", 700, 620, 4)
    oa = _load_raw(work / "offsets_after.raw", 700, 620, 4)
    osel = _load_raw(work / "offsets_sel.raw", 700, 620, 1)
    np.testing.assert_array_equal(oa[osel == 0], ob[osel == 0])
    assert (oa[osel == 255] != ob[osel == 255]).any()
    assert 0 < osel.min() or (osel > 0).sum() > (osel == 255).sum()          # the selection is soft
    # the selection's bounds inside the layer (layer coordinates), and the expected crop
    ys, xs = np.nonzero(osel[90:90 + 512, 150:150 + 512])
    box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
    ex, ey, ew, eh = ops.crop_rect(box, (512, 512))
    assert off["new"]["offsets"] == [ex + 150, ey + 90] and off["new"]["size"] == [ew, eh]
    assert ex == 0 and ey == 0          # touches the layer's border: the crop is clipped there

    # -- backend stopped; empty selection ---------------------------------------------------------
    assert res2["settings_status"] == "success"
    assert json.loads(gimp["settings"].read_text())["url"] == backend.url
    # the token: only in priorpaint's 0600 settings file, in no file of GIMP's unless it is 0600 too
    assert json.loads(gimp["settings"].read_text())["token"] == TOKEN
    assert stat.S_IMODE(os.stat(gimp["settings"]).st_mode) == 0o600
    leaks = _files_holding(gimp["root"] / "root" / ".config" / "GIMP", TOKEN)
    assert all(mode == 0o600 for _, mode in leaks), leaks
    stopped = res2["cases"]["stopped"]
    assert stopped["status"] == "execution-error"
    assert f"backend not running at {backend.url} — start it with `priorpaint serve`" in stopped["message"]
    assert stopped["layers_after"] == stopped["layers_before"] and stopped["drawable_unchanged"]
    np.testing.assert_array_equal(_load_raw(work / "stopped_after.raw", 512, 512, 4),
                                  _load_raw(work / "stopped_before.raw", 512, 512, 4))
    empty = res2["cases"]["empty"]
    assert empty["status"] == "execution-error"
    assert empty["message"] == ("priorpaint: nothing is selected: select the part of the photo to edit first "
                                "(Select > All edits the whole layer)")      # one line, before the backend
    assert empty["layers_after"] == empty["layers_before"] and empty["drawable_unchanged"]

    with capsys.disabled():
        print(f"\n[gimp] semantic edit ({direction} {STRENGTH:+g}, adapt on) from invoking the procedure to "
              f"the new layer: {main['seconds']:.1f} s; gray (no adapt): {res['cases']['gray']['seconds']:.1f} s; "
              f"offsets (no adapt): {off['seconds']:.1f} s; this test: {wall:.1f} s", flush=True)


GIMP_INTERACTIVE = r"""
img = load(os.path.join(OUT, "astronaut.png"))
layer = img.get_layers()[0]
img.select_rectangle(Gimp.ChannelOps.REPLACE, *__SEL__)
RES["interactive"] = []
for _ in range(2):   # the driver presses Escape on the first dialog; on the second it moves the strength, then OK
    ids = [l.get_id() for l in img.get_layers()]
    status, msg, dt = run_interactive(img, layer, "priorpaint-semantic-edit")
    RES["interactive"].append({"status": status, "message": msg, "seconds": dt,
                               "new": [l.get_name() for l in img.get_layers() if l.get_id() not in ids],
                               "top": img.get_layers()[0].get_name(),
                               "selected": [type(d).__name__ for d in img.get_selected_drawables()]})
status, msg, dt = run_interactive(None, None, "priorpaint-settings")   # the driver presses OK
RES["settings"] = {"status": status, "message": msg}
finish()
"""

GIMP_RUN_INTERACTIVE = r"""
def run_interactive(img, drawable, name):
    proc = PDB.lookup_procedure(name)
    cfg = proc.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
    cfg.set_property("image", img)
    cfg.set_core_object_array("drawables", [drawable] if drawable is not None else [])
    t0 = time.monotonic()
    r = proc.run(cfg)
    msg = r.index(1) if r.length() > 1 else None
    return r.index(0).value_nick, (msg if isinstance(msg, str) else None), time.monotonic() - t0
"""

def _trace_events(path: Path) -> list:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_interactive_dialog_in_real_gimp(gimp):
    """The dialogs under Xvfb with the real backend. Semantic edit: Escape cancels without touching
    the image; then the live preview appears, the strength moved with the keyboard (its mnemonic,
    Page Up) changes the preview, OK adds the layer on top and selects it. Settings: the token
    shows masked and GIMP's own saved settings never hold it. Screenshots go to artifacts/gimp/."""
    import threading

    root = gimp["root"]
    bridge_settings_path = gimp["settings"]
    bridge_settings_path.parent.mkdir(parents=True, exist_ok=True)
    bridge_settings_path.write_text(json.dumps({"token": TOKEN}))   # as saved by an earlier Settings run
    os.chmod(bridge_settings_path, 0o600)
    shots = REPO / "artifacts" / "gimp"
    shots.mkdir(parents=True, exist_ok=True)
    trace = gimp["work"] / "trace.jsonl"
    trace_in_root = gimp["work_in_root"] + "/trace.jsonl"
    if trace.exists():
        trace.unlink()
    backend = Backend(gimp["artifacts"] / "serve-interactive.log")
    seen, problems = [], []
    stop = threading.Event()

    def wait_for(pred, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not stop.is_set():
            found = [e for e in _trace_events(trace) if pred(e)]
            if found:
                return found
            time.sleep(0.2)
        return []

    try:
        with gimp_root.xvfb(root) as display:
            def window(title):
                return gimp_root.xdotool(root, display, "search", "--name", title).split("\n")[0]

            def key(win, *keys):
                gimp_root.xdotool(root, display, "windowfocus", "--sync", win)
                for k in keys:
                    gimp_root.xdotool(root, display, "key", k)
                    time.sleep(0.3)

            def shot(name):
                if gimp_root.screenshot(root, display, gimp["work_in_root"] + "/" + name):
                    shutil.copyfile(gimp["work"] / name, shots / name)

            def drive():
                title = "priorpaint: Semantic edit"
                for step in ("escape", "edit"):
                    win = ""
                    while not win and not stop.is_set():
                        win = window(title)
                        time.sleep(0.3)
                    if stop.is_set():
                        return
                    time.sleep(1.0)    # let the dialog finish mapping
                    if step == "escape":
                        key(win, "Escape")
                        seen.append("Escape")
                    else:
                        first = wait_for(lambda e: e["event"] == "preview-shown", 300)
                        if not first:
                            problems.append("no preview appeared")
                        time.sleep(0.5)
                        shot("semantic-edit-preview-1.png")
                        key(win, "alt+n", "Page_Up", "Page_Up")   # Stre_ngth: its mnemonic
                        seen.append("strength")
                        # two key presses: the preview may show the first step before the second;
                        # wait for the preview of the strength the dialog holds now (its last "strength")
                        time.sleep(1.0)
                        wanted = [e["value"] for e in _trace_events(trace) if e["event"] == "strength"]
                        moved = wanted and wait_for(lambda e: e["event"] == "preview-shown" and first
                                                    and e["strength"] == wanted[-1]
                                                    and e["strength"] != first[0]["strength"], 60)
                        if not moved:
                            problems.append("the preview did not follow the strength")
                        time.sleep(0.5)
                        shot("semantic-edit-preview-2.png")
                        key(win, "alt+o")
                        seen.append("OK")
                    while window(title) and not stop.is_set():
                        time.sleep(0.3)
                win = ""
                while not win and not stop.is_set():
                    win = window("priorpaint: Settings")
                    time.sleep(0.3)
                time.sleep(1.0)
                shot("settings.png")
                key(win, "alt+o")
                seen.append("Settings OK")

            driver = threading.Thread(target=drive, daemon=True)
            driver.start()
            script = _script(GIMP_RUN_INTERACTIVE + GIMP_INTERACTIVE, gimp["work_in_root"], "")
            os.environ["PRIORPAINT_GIMP_URL"] = backend.url
            os.environ["PRIORPAINT_GIMP_TRACE"] = trace_in_root
            try:
                result = gimp["work"] / "result.json"
                if result.exists():
                    result.unlink()
                proc = gimp_root.gimp_batch(root, script, timeout=900, display=display)
            finally:
                os.environ.pop("PRIORPAINT_GIMP_URL", None)
                os.environ.pop("PRIORPAINT_GIMP_TRACE", None)
                stop.set()
                driver.join(10)
    finally:
        backend.stop()
    (gimp["artifacts"] / "gimp-interactive.log").write_text(proc.stdout + "\n" + proc.stderr)
    assert result.exists(), f"the GIMP script did not finish:\n{proc.stderr[-4000:]}"
    res = json.loads(result.read_text())
    runs = res["interactive"]
    events = _trace_events(trace)
    assert seen == ["Escape", "strength", "OK", "Settings OK"], (seen, problems, runs)
    assert not problems, problems
    assert runs[0]["status"] == "cancel" and runs[0]["new"] == []
    assert runs[1]["status"] == "success", runs[1]["message"]
    [name] = runs[1]["new"]
    assert runs[1]["top"] == name and runs[1]["selected"] == ["Layer"]     # on top, the layer (not its mask)
    shown = [e for e in events if e["event"] == "preview-shown"]
    assert len({e["digest"] for e in shown}) >= 2, shown                     # the preview image changed
    # the photo-resolution composite (the 216 px square, shrunk to the 192 px preview), not the 64 px model rendering
    assert all(e["size"] == [192, 192] and e["composite"] == "detail" for e in shown), shown
    last = shown[-1]
    assert name == f"{last['direction']} {last['strength']:+g} — priorpaint", (name, last)   # what was previewed
    assert last["strength"] != shown[0]["strength"]
    # Settings: the token field is masked; OK keeps the token in the 0600 file only
    assert any(e["event"] == "token-field" and e["masked"] for e in events)
    assert res["settings"]["status"] == "success", res["settings"]
    assert json.loads(bridge_settings_path.read_text())["token"] == TOKEN
    assert stat.S_IMODE(os.stat(bridge_settings_path).st_mode) == 0o600
    leaks = _files_holding(root / "root" / ".config" / "GIMP", TOKEN)
    assert all(mode == 0o600 for _, mode in leaks), leaks
    ok = next(e for e in events if e["event"] == "dialog-closed" and e.get("confirmed"))
    added = next(e for e in events if e["event"] == "layer-added")
    print(f"\n[gimp] Semantic edit dialog: preview after a strength change in "
          f"{', '.join('%.2f s' % e['seconds'] for e in shown)}; from OK to the new layer "
          f"{added['seconds_from_ok']:.1f} s (adapt on, the preview's projection reused; "
          f"dialog closed at +{ok['t'] - events[0]['t']:.1f} s). Screenshots: {shots}", flush=True)


def _files_holding(folder: Path, secret: str) -> list:
    """(path, mode) of every file under ``folder`` whose bytes contain ``secret``."""
    hits = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                if secret.encode() in path.read_bytes():
                    hits.append((str(path), stat.S_IMODE(path.stat().st_mode)))
            except OSError:
                pass
    return hits


GIMP_KINDS = r'''
img = load(os.path.join(OUT, "astronaut.png"))
layer = img.get_layers()[0]
img.select_rectangle(Gimp.ChannelOps.REPLACE, *__SEL__)
RES["segment"] = run(img, layer, "priorpaint-segment")
labels = [l for l in img.get_layers() if l.get_parasite("priorpaint-segment") is not None]
RES["labels"] = [{"name": l.get_name(), "offsets": list(l.get_offsets()[1:]), "size": [l.get_width(), l.get_height()],
                  "meta": json.loads(bytes(l.get_parasite("priorpaint-segment").get_data()).decode("utf-8"))}
                 for l in labels]
lab = labels[0]
lx, ly = lab.get_offsets()[1:]
# the user paints a 10x10 block of the "face" colour onto the background part of the labels
img.select_rectangle(Gimp.ChannelOps.REPLACE, lx + 5, ly + 5, 10, 10)
Gimp.context_set_foreground(Gegl.Color.new("#ff0000"))
lab.edit_fill(Gimp.FillType.FOREGROUND)
# and a stray antialiased-looking pixel between the legend's colours, beside the block
img.select_rectangle(Gimp.ChannelOps.REPLACE, lx + 15, ly + 5, 1, 1)
Gimp.context_set_foreground(Gegl.Color.new("#4000c0"))
lab.edit_fill(Gimp.FillType.FOREGROUND)
Gimp.Selection.none(img)
ids = [l.get_id() for l in img.get_layers()]
status = run(img, layer, "priorpaint-apply-segmentation", adapt=False)   # finds the labels layer itself
new = [l for l in img.get_layers() if l.get_id() not in ids]
RES["apply"] = {"status": status, "labels_visible": lab.get_visible(),
                "new": [[l.get_name(), list(l.get_offsets()[1:]), l.get_width(), l.get_height()] for l in new]}
if new and new[0].get_mask() is not None:
    m = raw(new[0].get_mask(), "Y u8")
    w = new[0].get_width()
    on = [i for i, v in enumerate(m) if v]
    RES["apply"]["mask_on"] = [len(on), [on[0] % w, on[0] // w], [on[-1] % w, on[-1] // w]] if on else [0]
img.select_rectangle(Gimp.ChannelOps.REPLACE, *__SEL__)
ids = [l.get_id() for l in img.get_layers()]
status = run(img, layer, "priorpaint-paint-concept", concept="hair", mode="remove", adapt=False)
RES["paint"] = {"status": status, "new": [[l.get_name(), list(l.get_offsets()[1:])] for l in img.get_layers()
                                           if l.get_id() not in ids]}
# a semantic edit run on that result edits the photo (the result's paint is not carried), and one
# run on *that* result starts from its direction
img.select_rectangle(Gimp.ChannelOps.REPLACE, *__SEL__)
result = img.get_selected_drawables()[0]
RES["on_result"] = {"run_on": result.get_name(),
                    "status": run(img, result, "priorpaint-semantic-edit", direction="exposure", strength=1.0, adapt=False),
                    "top": img.get_layers()[0].get_name()}
RES["on_result2"] = {"status": run(img, img.get_layers()[0], "priorpaint-semantic-edit", direction="smile",
                                   strength=1.0, adapt=False),
                     "top": img.get_layers()[0].get_name(), "edits": json.loads(bytes(img.get_layers()[0]
                     .get_parasite("priorpaint-result").get_data()).decode("utf-8"))["edits"]}
# no selection: refused with one line, nothing added, nothing sent
Gimp.Selection.none(img)
ids = [l.get_id() for l in img.get_layers()]
RES["none"] = {"status": run(img, layer, "priorpaint-paint-concept", concept="hair", mode="add", adapt=False),
               "added": len([l for l in img.get_layers() if l.get_id() not in ids])}
# Select > All: the whole layer is the region
Gimp.Selection.all(img)
ids = [l.get_id() for l in img.get_layers()]
status = run(img, layer, "priorpaint-paint-concept", concept="hair", mode="add", adapt=False)
RES["whole"] = {"status": status, "new": [[l.get_name(), list(l.get_offsets()[1:]), l.get_width(), l.get_height()]
                                          for l in img.get_layers() if l.get_id() not in ids],
                "top": img.get_layers()[0].get_name()}
# a strength the stand-in's verdict calls a smear: the result says so (GIMP's message and the
# layer's parasite), it is never a silent smear
img.select_rectangle(Gimp.ChannelOps.REPLACE, *__SEL__)
status = run(img, layer, "priorpaint-semantic-edit", direction="exposure", strength=2.5, adapt=False)
top = img.get_layers()[0]
RES["smear"] = {"status": status, "top": top.get_name(),
                "meta": json.loads(bytes(top.get_parasite("priorpaint-result").get_data()).decode("utf-8"))}
finish()
'''


def test_segment_apply_and_paint_procedures_in_real_gimp(gimp):
    """Segment selection → label layer (legend in name + parasite) → paint on it → Apply
    segmentation edit; Paint concept. Driven against a protocol-faithful stand-in for the
    segment/concept endpoints (tests/gimp_fake_backend.py)."""
    from gimp_fake_backend import LEGEND, FakeKindsBackend

    if gimp["settings"].exists():
        gimp["settings"].unlink()
    fake = FakeKindsBackend()
    try:
        res = _run_gimp(gimp, _script(GIMP_KINDS, gimp["work_in_root"], ""), url=fake.url)
    finally:
        fake.close()
    x0, y0, cw, ch = ops.crop_rect(SELECTION, (512, 512))
    assert res["segment"][0] == "success", res["segment"]
    [labels] = res["labels"]
    assert labels["offsets"] == [x0, y0] and labels["size"] == [cw, ch]
    assert labels["name"] == "labels — priorpaint"               # short; the legend is in the parasite
    assert labels["meta"]["legend"] == LEGEND and labels["meta"]["url"] == fake.url
    apply = res["apply"]
    assert apply["status"][0] == "success", apply["status"]
    assert apply["new"] == [["segmentation edit — priorpaint", [x0, y0], cw, ch]]
    assert apply["labels_visible"] is False
    assert apply["mask_on"] == [100, [5, 5], [14, 14]]      # exactly the painted block changed
    sent = [d for api, d in fake.calls if api == "edit"]
    assert json.loads(sent[0][1])[0]["kind"] == "segment"
    paint = res["paint"]
    assert paint["status"][0] == "success", paint["status"]
    assert paint["new"] == [["remove hair — priorpaint", [x0, y0]]]
    spec = json.loads(sent[1][1])[0]
    assert spec == {"kind": "paint", "concept": "hair", "mode": "remove", "mask": "file:0"}
    assert len(sent[1]) == 5 and sent[1][4] == "detail"   # the stand-in, like today's backend, takes `composite`
    # edits run on a result read the photo under it: the fitted crop is the astronaut's, not the result's
    on_result, on_result2 = res["on_result"], res["on_result2"]
    assert on_result["run_on"] == "remove hair — priorpaint"
    assert on_result["status"][0] == "success" and on_result["top"] == "exposure +1 — priorpaint", on_result
    assert on_result2["status"][0] == "success" and on_result2["top"] == "exposure +1, smile +1 — priorpaint"
    assert on_result2["edits"] == [{"kind": "direction", "name": "exposure", "strength": 1.0},
                                   {"kind": "direction", "name": "smile", "strength": 1.0}]
    sent = [d for api, d in fake.calls if api == "edit"]
    assert [json.loads(d[1]) for d in sent[2:4]] == [[{"kind": "direction", "name": "exposure", "strength": 1.0}],
                                                     on_result2["edits"]]
    photo = np.asarray(Image.open(skimage_data("astronaut.png")).convert("RGB"))
    for d in [d for api, d in fake.calls if api == "project"][2:4]:
        np.testing.assert_array_equal(fake._img(d[0])[..., :3], photo[y0:y0 + ch, x0:x0 + cw])
    none = res["none"]
    assert none["status"][0] == "execution-error" and none["added"] == 0
    assert none["status"][1].startswith("priorpaint: nothing is selected") and "\n" not in none["status"][1]
    # segmentation, paint, the two edits on results, Select > All and the smear: nothing for the refused run
    assert len([d for api, d in fake.calls if api == "edit"]) == 6
    whole = res["whole"]
    assert whole["status"][0] == "success", whole["status"]
    assert whole["new"] == [["add hair — priorpaint", [0, 0], 512, 512]] and whole["top"] == "add hair — priorpaint"
    smear = res["smear"]
    assert smear["status"][0] == "success" and smear["top"] == "exposure +2.5 — priorpaint", smear
    assert smear["meta"]["verdict"] == {"carried": False, "message": "this edit cannot be carried here: the model "
                                        "smeared the selection; try a smaller strength"}, smear["meta"]
    log = (gimp["artifacts"] / "gimp.log").read_text()
    assert "priorpaint: this edit cannot be carried here: the model smeared" in log, log[-2000:]


GIMP_KINDS_REAL = r'''
img = load(os.path.join(OUT, "astronaut.png"))
layer = img.get_layers()[0]
source_before = raw(layer, "R'G'B'A u8")
img.select_rectangle(Gimp.ChannelOps.REPLACE, *__SEL__)
RES["segment"] = run(img, layer, "priorpaint-segment")
labels = [l for l in img.get_layers() if l.get_parasite("priorpaint-segment") is not None]
RES["labels"] = [{"offsets": list(l.get_offsets()[1:]), "size": [l.get_width(), l.get_height()],
                  "meta": json.loads(bytes(l.get_parasite("priorpaint-segment").get_data()).decode("utf-8"))}
                 for l in labels]
lab = labels[0]
legend = RES["labels"][0]["meta"]["legend"]
name = "hair" if "hair" in legend else sorted(legend)[0]
lx, ly = lab.get_offsets()[1:]
w, h = lab.get_width(), lab.get_height()
# the user paints a block of one part's colour in the middle of the label map
img.select_rectangle(Gimp.ChannelOps.REPLACE, lx + w // 2 - 16, ly + h // 2 - 16, 32, 32)
Gimp.context_set_foreground(Gegl.Color.new("#%02x%02x%02x" % tuple(legend[name])))
lab.edit_fill(Gimp.FillType.FOREGROUND)
Gimp.Selection.none(img)
ids = [l.get_id() for l in img.get_layers()]
RES["apply"] = {"status": run(img, layer, "priorpaint-apply-segmentation", adapt=False),
                "new": [[l.get_name(), list(l.get_offsets()[1:])] for l in img.get_layers() if l.get_id() not in ids]}
open(os.path.join(OUT, "seg_after.raw"), "wb").write(flat(img))
img.select_rectangle(Gimp.ChannelOps.REPLACE, *__SEL__)
ids = [l.get_id() for l in img.get_layers()]
RES["paint"] = {"status": run(img, layer, "priorpaint-paint-concept", concept=name, mode="remove", adapt=True),
                "new": [[l.get_name(), list(l.get_offsets()[1:])] for l in img.get_layers() if l.get_id() not in ids]}
open(os.path.join(OUT, "paint_after.raw"), "wb").write(flat(img))
RES["source_unchanged"] = raw(layer, "R'G'B'A u8") == source_before
finish()
'''


def test_segment_apply_and_paint_against_the_real_backend(gimp, tmp_path, monkeypatch):
    """The same three procedures end to end: real GIMP, real plug-in, real `priorpaint serve`
    (parts, segmentation head and concept units computed by the backend on first use)."""
    if gimp["settings"].exists():
        gimp["settings"].unlink()
    monkeypatch.setenv("PRIORPAINT_CACHE", str(tmp_path / "cache"))
    backend = Backend(gimp["artifacts"] / "serve-kinds.log")
    try:
        res = _run_gimp(gimp, _script(GIMP_KINDS_REAL, gimp["work_in_root"], ""), url=backend.url)
    finally:
        backend.stop()
    x0, y0, cw, ch = ops.crop_rect(SELECTION, (512, 512))
    assert res["segment"][0] == "success", res["segment"]
    [labels] = res["labels"]
    assert labels["offsets"] == [x0, y0] and labels["size"] == [cw, ch]
    assert len(labels["meta"]["legend"]) >= 2
    assert res["apply"]["status"][0] == "success", res["apply"]["status"]
    assert res["apply"]["new"] == [["segmentation edit — priorpaint", [x0, y0]]]
    assert res["paint"]["status"][0] == "success", res["paint"]["status"]
    assert len(res["paint"]["new"]) == 1 and res["paint"]["new"][0][1] == [x0, y0]
    assert res["source_unchanged"], "the user's layer was modified"
    astronaut = np.asarray(Image.open(gimp["work"] / "astronaut.png").convert("RGB"))
    sx, sy, sw, sh = SELECTION
    outside = np.ones((512, 512), bool)
    outside[sy:sy + sh, sx:sx + sw] = False
    seg = _load_raw(gimp["work"] / "seg_after.raw", 512, 512, 4)[..., :3]
    painted = _load_raw(gimp["work"] / "paint_after.raw", 512, 512, 4)[..., :3]
    np.testing.assert_array_equal(seg[outside], astronaut[outside])
    np.testing.assert_array_equal(painted[outside], astronaut[outside])
    assert not np.array_equal(painted[~outside], seg[~outside])   # the concept edit changed the selection


GIMP_ALIGNED = r'''
FACE = (120, 60, 150, 140)
# Project selection with a face model: the eyes detected, G(z) warped back under the selection
img = load(os.path.join(OUT, "rotated.png"))
img.select_rectangle(Gimp.ChannelOps.REPLACE, *FACE)
ids = [l.get_id() for l in img.get_layers()]
status, msg, dt = run(img, img.get_layers()[0], "priorpaint-project", adapt=False)
RES["project"] = {"status": status, "message": msg,
                  "layers": [[l.get_name(), list(l.get_offsets()[1:]), l.get_width(), l.get_height(),
                              l.get_mask() is not None, role(l)] for l in img.get_layers() if l.get_id() not in ids]}
# a semantic edit with two sample points on the eyes: the backend aligns at them
eimg = load(os.path.join(OUT, "rotated.png"))
eimg.select_rectangle(Gimp.ChannelOps.REPLACE, *FACE)
for x, y in __EYES__:
    eimg.add_sample_point(x, y)
case("aligned", eimg, eimg.get_layers()[0], "priorpaint-semantic-edit", direction="sefa0", strength=2.5,
     adapt=False)
finish()
'''


def test_aligned_face_model_in_real_gimp(gimp, tmp_path, monkeypatch):
    """A face model (its manifest declares an alignment) through the real plug-in: Project
    selection's G(z) is warped back into the photo (a masked layer at the rotated square's box,
    not the square pasted upright), and two sample points on the eyes are the eyes the backend
    aligns at; nothing outside the selection changes."""
    import cv2
    from test_face_alignment import ANGLE, ASTRONAUT_EYES, _aligned_manifest
    from priorpaint.compositing import align

    if gimp["settings"].exists():
        gimp["settings"].unlink()
    photo = np.asarray(Image.open(skimage_data("astronaut.png")).convert("RGB"))
    m = cv2.getRotationMatrix2D((256 - 0.5, 256 - 0.5), ANGLE, 1.0)
    rotated = cv2.warpAffine(photo, m, (512, 512), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    Image.fromarray(rotated).save(gimp["work"] / "rotated.png")
    eyes = [(int(x), int(y)) for x, y in align.apply(align.cv_to_cont(m), ASTRONAUT_EYES)]
    monkeypatch.setenv("PRIORPAINT_MANIFEST_DIR", str(_aligned_manifest(tmp_path)))
    trace = gimp["work"] / "trace-aligned.jsonl"
    if trace.exists():
        trace.unlink()
    monkeypatch.setenv("PRIORPAINT_GIMP_TRACE", gimp["work_in_root"] + "/trace-aligned.jsonl")
    backend = Backend(gimp["artifacts"] / "serve-aligned.log", "--model", "faces-aligned", "--steps", "20")
    try:
        script = _script(GIMP_ALIGNED, gimp["work_in_root"], "").replace("__EYES__", repr(eyes))
        res = _run_gimp(gimp, script, url=backend.url)
    finally:
        backend.stop()
    events = _trace_events(trace)
    assert res["project"]["status"] == "success", res["project"]
    [projected] = [e for e in events if e["event"] == "projection"]
    assert projected["alignment"] == "detected"
    lb = projected["layer"]
    cx, cy, _, _ = ops.crop_rect((120, 60, 150, 140), (512, 512))
    [[name, offsets, w, h, has_mask, role]] = res["project"]["layers"]
    assert role == "model-rendering" and has_mask
    assert offsets == [cx + lb["x"], cy + lb["y"]] and [w, h] == [lb["w"], lb["h"]]
    info = res["cases"]["aligned"]
    assert info["status"] == "success", info
    assert info["drawable_unchanged"]
    [edited] = [e for e in events if e["event"] == "result-layer"]
    assert edited["alignment"] == "given"
    before = _load_raw(gimp["work"] / "aligned_before.raw", 512, 512, 4)
    after = _load_raw(gimp["work"] / "aligned_after.raw", 512, 512, 4)
    outside = np.ones((512, 512), bool)
    outside[60:200, 120:270] = False
    np.testing.assert_array_equal(after[outside], before[outside])
    assert (after[~outside] != before[~outside]).any()
