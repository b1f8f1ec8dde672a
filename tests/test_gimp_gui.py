"""The plug-in in the full GIMP 3 GUI (gimp-3.0 under Xvfb, driven with xdotool).

One GIMP session, the astronaut open with the face selected, the protocol-faithful stand-in
backend (tests/gimp_fake_backend.py). A python-fu-eval batch script keeps running inside
GIMP and executes small command files, so the test can read the image's state between key
presses. Checked here:

1. the menu Filters > Generative > priorpaint lists its entries in workflow order (GIMP sorts
   plug-in entries by label): pressing Down k times and Return in that menu runs the k-th
   procedure (each one traces its name);
2. undo is one step per edit: after a Semantic edit (one layer) and a Project selection (two
   layers), one Ctrl+Z in the image window restores the image exactly;
3. a fit started by the Semantic edit dialog is cancelled on the backend when the plug-in
   process is killed with the dialog open;
4. Settings lists the models, says which are not downloaded, and choosing one offers the
   download, with progress; offline, the one-line error.

Screenshots go to artifacts/gimp/. Needs root (chroot) like the other GIMP tests.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

import gimp_root
from conftest import need, skimage_data

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
SELECTION = (140, 20, 180, 180)
WORKFLOW = ["priorpaint-project", "priorpaint-semantic-edit", "priorpaint-paint-concept",
            "priorpaint-segment", "priorpaint-apply-segmentation", "priorpaint-drag-points", "priorpaint-settings"]

LOOP = r'''
import json, os, time, traceback
from gi.repository import Gimp, Gio, GLib, Gegl
OUT = __OUT__
PDB = Gimp.get_pdb()
img = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(os.path.join(OUT, "astronaut.png")))
Gimp.Display.new(img)
img.select_rectangle(Gimp.ChannelOps.REPLACE, *__SEL__)
Gimp.displays_flush()


def flat_digest():
    import hashlib
    dup = img.duplicate()
    layer = dup.flatten()
    rect = Gegl.Rectangle.new(0, 0, layer.get_width(), layer.get_height())
    data = bytes(layer.get_buffer().get(rect, 1.0, "R'G'B'A u8", Gegl.AbyssPolicy.NONE))
    dup.delete()
    return hashlib.sha1(data).hexdigest()


def state():
    return {"layers": [l.get_name() for l in img.get_layers()], "digest": flat_digest()}


def run(name, drawable=None, **kw):
    proc = PDB.lookup_procedure(name)
    cfg = proc.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    cfg.set_property("image", img if name != "priorpaint-settings" else None)
    if name != "priorpaint-settings":
        cfg.set_core_object_array("drawables", [drawable or img.get_layers()[-1]])
    for k, v in kw.items():
        cfg.set_property(k, v)
    r = proc.run(cfg)
    msg = r.index(1) if r.length() > 1 else None
    Gimp.displays_flush()
    return r.index(0).value_nick, (msg if isinstance(msg, str) else None)


open(os.path.join(OUT, "ready"), "w").write("1")
n = 0
while not os.path.exists(os.path.join(OUT, "quit")):
    cmd = os.path.join(OUT, "cmd-%d.py" % n)
    if not os.path.exists(cmd):
        time.sleep(0.1)
        continue
    g = dict(globals())
    g["RES"] = {}
    try:
        exec(open(cmd).read(), g)
        res = g["RES"]
    except Exception:
        res = {"error": traceback.format_exc()}
    with open(os.path.join(OUT, "res-%d.tmp" % n), "w") as f:
        json.dump(res, f)
    os.replace(os.path.join(OUT, "res-%d.tmp" % n), os.path.join(OUT, "res-%d.json" % n))
    n += 1
'''


class Gui:
    """A running GIMP GUI with the command loop; ``do(code)`` runs code inside GIMP."""

    def __init__(self, root: Path, work: Path, work_in_root: str, display: str, shots: Path, fake):
        self.root, self.work, self.work_in_root, self.display, self.shots, self.fake = \
            root, work, work_in_root, display, shots, fake
        self.n = 0
        self.trace = work / "trace.jsonl"

    def do(self, code: str, timeout: float = 120) -> dict:
        (self.work / f"cmd-{self.n}.py").write_text(code)
        res = self.work / f"res-{self.n}.json"
        deadline = time.monotonic() + timeout
        while not res.exists():
            assert time.monotonic() < deadline, f"GIMP did not run command {self.n}:\n{code}"
            time.sleep(0.1)
        self.n += 1
        out = json.loads(res.read_text())
        assert "error" not in out, out["error"]
        return out

    def xdo(self, *args: str) -> str:
        return gimp_root.xdotool(self.root, self.display, *args)

    def windows(self, name: str) -> list:
        return [w for w in self.xdo("search", "--onlyvisible", "--name", name).split("\n") if w]

    def main_window(self) -> str:
        wins = self.windows("GIMP$")
        assert wins, "no GIMP image window"
        return wins[0]

    def key(self, *keys: str, window: str = "") -> None:
        win = window or self.main_window()
        self.xdo("windowactivate", "--sync", win)
        self.xdo("windowfocus", "--sync", win)
        for k in keys:
            self.xdo("key", "--clearmodifiers", k)
            time.sleep(0.35)

    def shot(self, name: str) -> Path:
        if gimp_root.screenshot(self.root, self.display, f"{self.work_in_root}/{name}"):
            shutil.copyfile(self.work / name, self.shots / name)
        return self.shots / name

    def events(self) -> list:
        if not self.trace.exists():
            return []
        return [json.loads(line) for line in self.trace.read_text().splitlines() if line.strip()]

    def wait_event(self, pred, timeout: float = 60, after: int = 0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [e for e in self.events()[after:] if pred(e)]
            if found:
                return found[0]
            time.sleep(0.1)
        raise AssertionError(f"no such trace event in {timeout:.0f} s; events: {self.events()[after:]}")

    def wait_window(self, name: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            wins = self.windows(name)
            if wins:
                time.sleep(0.8)       # let it finish mapping
                return wins[0]
            time.sleep(0.2)
        raise AssertionError(f"no window named {name!r}")

    def message_boxes(self) -> list:
        """GIMP's message boxes now open (its notes, warnings such as "Can't undo …", errors)."""
        return self.windows("(Message|Warning|Error)$")      # "GIMP Warning", "4 Segment selection Message", …

    def assert_no_messages(self, when: str, expected: int = 0) -> None:
        """A test that closes message boxes first says how many it expected: any other fails it."""
        boxes = self.message_boxes()
        if len(boxes) != expected:
            self.shot(f"unexpected-message-{when}.png")
        assert len(boxes) == expected, f"{len(boxes)} message box(es) {when}, expected {expected}: see artifacts/gimp"

    def close_messages(self, expected: int = 0) -> None:
        """Dismiss GIMP's message boxes (the plug-in's notes) so keys go to the image window,
        after asserting that there are as many as the test ``expected``."""
        self.assert_no_messages("before closing dialogs", expected)
        for w in self.message_boxes():
            self.key("Escape", window=w)

    def open_menu_entry(self, index: int, shot: str = "") -> None:
        """Filters (Alt+R), its last entry (Generative), into priorpaint, Down ``index`` times, Return."""
        self.close_messages()
        self.key("alt+r", "End", "Right", "Right")
        time.sleep(0.5)
        if shot:
            self.shot(shot)
        for _ in range(index):
            self.xdo("key", "Down")
            time.sleep(0.2)
        self.xdo("key", "Return")


@pytest.fixture(scope="module")
def gui():
    from gimp_fake_backend import FakeKindsBackend

    need(gimp_root.unavailable_reason() is None, str(gimp_root.unavailable_reason()))
    shots = REPO / "artifacts" / "gimp"
    shots.mkdir(parents=True, exist_ok=True)
    with gimp_root.locked():
        root = gimp_root.ensure_root(log=lambda m: print(m, flush=True))
        gimp_root.install_plugin(root, REPO)
        work, work_in_root = gimp_root.fresh_workdir(root, "priorpaint-gimp-gui", skimage_data("astronaut.png"))
        (work / "gimprc").write_text("(show-welcome-dialog no)\n")
        script = LOOP.replace("__OUT__", repr(work_in_root)).replace("__SEL__", repr(SELECTION))
        fake = FakeKindsBackend()
        proc = None
        try:
            with gimp_root.mounted(root), gimp_root.xvfb(root) as display:
                env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
                       "DISPLAY": display, "PRIORPAINT_URL": fake.url,
                       "PRIORPAINT_TRACE": f"{work_in_root}/trace.jsonl",
                       "PRIORPAINT_SETTINGS": f"{work_in_root}/settings.json"}
                log = open(work / "gimp.log", "w")
                proc = subprocess.Popen(["chroot", str(root), "env", *[f"{k}={v}" for k, v in env.items()],
                                         "gimp-3.0", "-d", "-f", "--no-splash", "--gimprc", f"{work_in_root}/gimprc",
                                         "--batch-interpreter", "python-fu-eval", "-b", script],
                                        stdout=log, stderr=subprocess.STDOUT, env=gimp_root._ENV)
                deadline = time.monotonic() + 180
                while not (work / "ready").exists():
                    assert proc.poll() is None and time.monotonic() < deadline, \
                        "GIMP did not start:\n" + (work / "gimp.log").read_text()[-3000:]
                    time.sleep(0.3)
                time.sleep(3)
                yield Gui(root, work, work_in_root, display, shots, fake)
                (work / "quit").write_text("1")
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    gimp_root.stop(proc, grace=20)
        finally:
            fake.close()
            if proc is not None and proc.poll() is None:
                proc.kill()
            shutil.copyfile(work / "gimp.log", shots / "gimp-gui.log") if (work / "gimp.log").exists() else None
            shutil.rmtree(work, ignore_errors=True)


def test_menu_entries_are_in_workflow_order(gui):
    ran = []
    for k in range(len(WORKFLOW)):
        n = len(gui.events())
        gui.open_menu_entry(k, shot="menu.png" if k == 0 else "")
        run = gui.wait_event(lambda e: e["event"] == "run", 30, after=n)
        ran.append(run["procedure"])
        if run["procedure"] not in ("priorpaint-segment", "priorpaint-drag-points"):   # the others open a dialog: cancel it
            dialog = gui.wait_event(lambda e: e["event"] == "dialog", 60, after=n)
            win = gui.wait_window(dialog["title"])
            if run["procedure"] == "priorpaint-settings":
                gui.shot("settings-models.png")
            gui.key("Escape", window=win)
        gui.wait_event(lambda e: e["event"] == "done", 60, after=n)
        time.sleep(0.5)
        if run["procedure"] in ("priorpaint-segment", "priorpaint-drag-points"):
            # segment's legend, or drag's "no path is active" (no path drawn), in a message box: expected
            time.sleep(1.0)
            gui.close_messages(expected=1)
    assert ran == WORKFLOW


def test_undo_is_one_step_per_edit(gui):
    """One Ctrl+Z removes a result whole, and GIMP shows no message box on the way (a parasite
    attached without the UNDOABLE flag made every Ctrl+Z say "Can't undo Attach Parasite to Item")."""
    gui.close_messages()
    before = gui.do("RES.update(state())")
    for name, kw, added in (("priorpaint-semantic-edit", "direction='exposure', strength=1.5, adapt=False", 1),
                            ("priorpaint-project", "adapt=True, show=True", 2)):
        after = gui.do(f"RES['status'] = run({name!r}, {kw}); RES.update(state())")
        assert after["status"][0] == "success", after
        assert len(after["layers"]) == len(before["layers"]) + added and after["digest"] != before["digest"]
        if added == 1:
            assert after["layers"][0] == "exposure +1.5 — priorpaint"    # the edit first, then whose
        gui.assert_no_messages(f"after {name}")
        gui.key("ctrl+z")
        time.sleep(1.5)
        gui.shot(f"undo-{name}.png")
        gui.assert_no_messages(f"after Ctrl+Z on {name}")
        undone = gui.do("RES.update(state())")
        assert undone == before, (name, undone, before)      # one Ctrl+Z: the whole result is gone


def test_strength_is_kept_across_directions_and_each_range_is_shown(gui):
    """The user's strength survives browsing: a direction with a narrower range shows it
    clamped, the next direction whose range holds it gets it back. Each direction's range is
    in its list entry and under the list."""
    gui.close_messages()
    n = len(gui.events())
    gui.open_menu_entry(WORKFLOW.index("priorpaint-semantic-edit"))
    labels = gui.wait_event(lambda e: e["event"] == "directions", 60, after=n)["labels"]
    assert labels[0].startswith("exposure (-3 to +3)") and labels[1].startswith("smile (-1.5 to +1.5)"), labels
    win = gui.wait_window("priorpaint: Semantic edit")

    def picked(name):
        m = len(gui.events())
        return lambda: gui.wait_event(lambda e: e["event"] == "strength-range" and e["direction"] == name, 20, after=m)

    opened = gui.wait_event(lambda e: e["event"] == "strength-range", 20, after=n)
    if opened["direction"] != "exposure":
        wait = picked("exposure")
        gui.key("alt+d", "Home", window=win)            # the first direction: exposure, -3 to +3
        wait()
    m = len(gui.events())
    gui.key("alt+n", "ctrl+a", "2", "period", "5", "Tab", window=win)
    gui.wait_event(lambda e: e["event"] == "strength" and abs(e["value"] - 2.5) < 1e-6, 20, after=m)
    wait = picked("smile")
    gui.key("alt+d", "Down", window=win)                # smile: -1.5 to +1.5 holds 2.5 at 1.5
    smile = wait()
    gui.shot("strength-smile-clamped.png")
    assert (smile["min"], smile["max"], smile["strength"], smile["wanted"]) == (-1.5, 1.5, 1.5, 2.5), smile
    wait = picked("exposure")
    gui.key("alt+d", "Up", window=win)                  # back to exposure: the user's 2.5 again
    exposure = wait()
    gui.shot("strength-exposure-kept.png")
    assert (exposure["strength"], exposure["wanted"]) == (2.5, 2.5), exposure
    gui.key("Escape", window=win)
    assert gui.wait_event(lambda e: e["event"] == "done", 60, after=n)["status"] == "cancel"
    gui.assert_no_messages("after cancelling the Semantic edit dialog")


def test_an_edit_on_a_result_edits_the_photo_and_the_dialog_says_so(gui):
    """Run on a result layer, Semantic edit works on the photo under it, starting from the result's
    edits, and its dialog says so; Project keeps the photo selected and adds its layers hidden."""
    gui.close_messages()
    before = gui.do("RES.update(state())")
    made = gui.do("RES['status'] = run('priorpaint-semantic-edit', direction='exposure', strength=1.5, "
                  "adapt=False); RES['selected'] = [d.get_name() for d in img.get_selected_drawables()]")
    assert made["status"][0] == "success" and made["selected"] == ["exposure +1.5 — priorpaint"], made
    n = len(gui.events())
    gui.open_menu_entry(WORKFLOW.index("priorpaint-semantic-edit"))
    about = gui.wait_event(lambda e: e["event"] == "about", 60, after=n)["text"]
    win = gui.wait_window("priorpaint: Semantic edit")
    gui.shot("semantic-edit-on-a-result.png")
    opened = gui.wait_event(lambda e: e["event"] == "strength-range" and e["direction"] == "exposure", 20, after=n)
    assert opened["own"] == 1.5 and opened["strength"] == 1.5, opened   # the result's own strength
    photo = before["layers"][-1]
    assert about == (f"Edits the photo layer '{photo}' (the layer 'exposure +1.5 — priorpaint' came from), "
                     "starting from that result's edits: exposure +1.5."), about
    gui.key("Escape", window=win)
    assert gui.wait_event(lambda e: e["event"] == "done", 60, after=n)["status"] == "cancel"
    # Project: hidden layers, the photo selected (what the user sees and edits next is the photo),
    # and one line saying how closely the model reproduced the selection
    gui.fake.psnr = 27.46
    n = len(gui.events())
    try:
        shown = gui.do(f"img.set_selected_layers([img.get_layers()[-1]]); "
                       f"RES['status'] = run('priorpaint-project', img.get_layers()[-1], adapt=True); "
                       f"RES['selected'] = [d.get_name() for d in img.get_selected_drawables()]; "
                       f"RES['visible'] = [l.get_visible() for l in img.get_layers()]; RES.update(state())")
    finally:
        gui.fake.psnr = None
    assert shown["status"][0] == "success" and shown["selected"] == [photo], shown
    fit = gui.wait_event(lambda e: e["event"] == "fit", 20, after=n)["text"]
    assert fit == "the model reproduced your selection closely (27.5 dB PSNR)", fit
    time.sleep(1.0)
    gui.shot("project-fit-words.png")
    gui.close_messages(expected=1)
    assert shown["visible"][:2] == [False, False] and all(shown["visible"][2:]), shown
    gui.shot("project-hidden.png")
    for _ in range(2):                   # back to the photo alone
        gui.key("ctrl+z")
        time.sleep(1.0)
    gui.assert_no_messages("after undoing")
    assert gui.do("RES.update(state())") == before


def test_killing_the_plugin_with_the_dialog_open_cancels_its_fit(gui):
    gui.fake.project_delay = 120.0
    try:
        n = len(gui.events())
        gui.open_menu_entry(WORKFLOW.index("priorpaint-semantic-edit"))
        gui.wait_event(lambda e: e["event"] == "dialog", 60, after=n)
        deadline = time.monotonic() + 30
        while not any(api == "project" for api, _ in gui.fake.calls[-3:]) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)                       # the fit is running and has named its job
        gui.shot("semantic-edit-fitting.png")
        pids = [p for p in _pids_of("plug-ins/priorpaint/priorpaint.py")]
        assert pids, "the plug-in's process was not found"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while not any(c.startswith("j-project-") for c in gui.fake.cancelled):
            assert time.monotonic() < deadline, f"the fit was not cancelled: {gui.fake.cancelled}"
            time.sleep(0.2)
    finally:
        gui.fake.project_delay = 0.0
    time.sleep(2.0)
    gui.close_messages(expected=1)        # GIMP's own "Plug-in crashed" notice: the test killed it


def _pids_of(needle: str) -> list:
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if needle in cmd and "python" in cmd:
            pids.append(int(d.name))
    return pids


def test_the_dialog_says_when_the_edit_is_not_carried_and_f1_opens_the_guide(gui):
    """A strength the backend's verdict calls a smear puts its one line under the preview
    before OK; a carried one shows none. F1 opens priorpaint's guide, not GIMP's manual."""
    gui.close_messages()
    n = len(gui.events())
    gui.open_menu_entry(WORKFLOW.index("priorpaint-semantic-edit"))
    win = gui.wait_window("priorpaint: Semantic edit")
    opened = gui.wait_event(lambda e: e["event"] == "strength-range", 20, after=n)
    if opened["direction"] != "exposure":
        m = len(gui.events())
        gui.key("alt+d", "Home", window=win)
        gui.wait_event(lambda e: e["event"] == "strength-range" and e["direction"] == "exposure", 20, after=m)
    for value, keys, carried in ((2.5, ("2", "period", "5"), False), (1.0, ("1",), True)):
        m = len(gui.events())
        gui.key("alt+n", "ctrl+a", *keys, "Tab", window=win)
        said = gui.wait_event(lambda e: e["event"] == "verdict-shown" and abs(e["strength"] - value) < 1e-6,
                              30, after=m)
        time.sleep(0.8)
        gui.shot(f"verdict-{value:g}.png")
        if carried:
            assert said["message"] == "", said
        else:
            assert said["message"].startswith("this edit cannot be carried here: the model smeared"), said
    m = len(gui.events())
    gui.key("F1", window=win)
    gui.wait_event(lambda e: e["event"] == "help-key", 30, after=m)
    shown = gui.wait_event(lambda e: e["event"] == "help", 30, after=m)
    helpwin = gui.wait_window("priorpaint: Help")
    gui.shot("help-f1.png")
    assert shown["installed"], shown
    assert gui.windows("(?i)manual") == []
    gui.assert_no_messages("after F1")
    gui.key("Escape", window=helpwin)
    time.sleep(0.5)
    gui.key("Escape", window=win)
    assert gui.wait_event(lambda e: e["event"] == "done", 60, after=n)["status"] == "cancel"


def test_help_opens_the_plugins_own_guide(gui):
    """Help in a dialog shows priorpaint's GIMP guide, not GIMP's "manual not installed" box."""
    gui.close_messages()
    n = len(gui.events())
    gui.open_menu_entry(WORKFLOW.index("priorpaint-project"))
    dialog = gui.wait_event(lambda e: e["event"] == "dialog", 60, after=n)
    win = gui.wait_window(dialog["title"])
    gui.key("alt+h", window=win)
    shown = gui.wait_event(lambda e: e["event"] == "help", 30, after=n)
    helpwin = gui.wait_window("priorpaint: Help")
    gui.shot("help-guide.png")
    assert shown["installed"] and shown["chars"] > 2000, shown
    assert gui.windows("(?i)manual") == []
    gui.assert_no_messages("after Help")
    gui.key("Escape", window=helpwin)
    time.sleep(0.5)
    gui.key("Escape", window=win)
    assert gui.wait_event(lambda e: e["event"] == "done", 60, after=n)["status"] == "cancel"


def test_settings_say_when_the_backend_is_unreachable_and_that_ok_saves(gui):
    gui.close_messages()
    settings = gui.work / "settings.json"
    settings.write_text(json.dumps({"url": "http://127.0.0.1:9"}))     # nothing listens on port 9
    try:
        n = len(gui.events())
        gui.open_menu_entry(WORKFLOW.index("priorpaint-settings"))
        notes = gui.wait_event(lambda e: e["event"] == "settings-notes", 60, after=n)["lines"]
        win = gui.wait_window("priorpaint: Settings")
        gui.shot("settings-unreachable.png")
        assert notes[0].startswith("Cannot reach the backend: backend not running at http://127.0.0.1:9"), notes
        assert "priorpaint serve" in notes[0] and notes[0].endswith("Or enter another address below."), notes
        assert notes[-1].startswith("OK saves these settings in ") and "from then on" in notes[-1], notes
        gui.key("Escape", window=win)
        assert gui.wait_event(lambda e: e["event"] == "done", 60, after=n)["status"] == "cancel"
    finally:
        settings.unlink()


def test_settings_offers_the_download_of_a_model_not_downloaded(gui):
    gui.close_messages()
    n = len(gui.events())
    gui.open_menu_entry(WORKFLOW.index("priorpaint-settings"))
    models = gui.wait_event(lambda e: e["event"] == "models", 60, after=n)
    assert "stylegan2-ffhq-256 (256 px faces) — not downloaded" in models["labels"]
    assert "dcgan-digiface-64 (64 px faces)" in models["labels"]
    assert not any("encoder" in label for label in models["labels"])     # models to edit with only
    # words for users: what the default is good for, what larger ones add, the download, the -tf twin
    about = models["about"]
    assert "64 px faces" in about["dcgan-digiface-64"] and "appearance edits" in about["dcgan-digiface-64"]
    assert "Larger models" in about["dcgan-digiface-64"] and about[""] == about["dcgan-digiface-64"]
    assert "Not downloaded yet (95 MB)" in about["stylegan2-ffhq-256"]
    assert "stylegan2-ffhq-256-tf is the same network" in about["stylegan2-ffhq-256"]
    assert "The same network as stylegan2-ffhq-256" in about["stylegan2-ffhq-256-tf"]
    assert not any("sha256" in t or "commit" in t for t in about.values())
    notes = gui.wait_event(lambda e: e["event"] == "settings-notes", 10, after=n)["lines"]
    assert len(notes) == 1 and notes[0].startswith("OK saves these settings in ")
    win = gui.wait_window("priorpaint: Settings")
    # Model: the backend's default, dcgan, then the FFHQ model (not downloaded)
    gui.key("alt+m", "Down", "Down", window=win)
    gui.shot("settings-choose-model.png")
    gui.key("alt+o", window=win)
    gui.wait_event(lambda e: e["event"] == "ask-download", 30, after=n)
    ask = gui.wait_window("priorpaint: Download model")
    gui.shot("settings-ask-download.png")
    gui.key("Return", window=ask)
    done = gui.wait_event(lambda e: e["event"] == "downloaded", 60, after=n)
    assert done["model"] == "stylegan2-ffhq-256" and done["status"]["present"]
    assert gui.wait_event(lambda e: e["event"] == "done", 30, after=n)["status"] == "success"
    assert ["stylegan2-ffhq-256"] in [d for api, d in gui.fake.calls if api == "download"]
    assert json.loads((gui.work / "settings.json").read_text())["model"] == "stylegan2-ffhq-256"
    # offline: the backend's one line, naming the model, the repo and the command
    res = gui.do("RES['status'] = run('priorpaint-settings', url='', model='stylegan2-car-512', token='', "
                 "download=True)")
    status, message = res["status"]
    assert status == "execution-error" and "\n" not in message
    assert "stylegan2-car-512" in message and "aaronb/StyleGAN2" in message
    assert "`priorpaint download stylegan2-car-512`" in message

