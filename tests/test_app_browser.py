"""The web page in headless Chromium (Debian's /usr/bin/chromium) driven by Playwright.

The journey of a new user: upload the astronaut photo (through the editor's own upload
button and file chooser, as a person does), paint over the face with the translucent brush
(the photo shows through; the layer's eye icon hides it), Project, move a direction slider
(live preview), add it to the edit list, Render, compare before/after, go back in the
history. Every request to ``/gradio_api/upload`` is counted: an editor's value travels
once per click that needs it, never while a job streams. A screenshot is saved under
artifacts/app/ (gitignored) after each step.
"""

from __future__ import annotations

import io
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app_server import ROOT, Server
from conftest import need, skimage_data

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = os.environ.get("PRIORPAINT_CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "artifacts" / "app"
BRUSH = np.array([255, 51, 102])
#: the most uploads one Project click may cause. The editor's value is three files (background,
#: paint layer, composite); Gradio's page re-reads an editor (and so re-uploads it) on each
#: status update it gets as an input or output of an event, so Project's few quick events
#: (read the selection, project, fill the tabs' editors) cost a few rounds of three; what
#: must never happen is a count that grows with the job's length (the old storm)
MAX_PROJECT_UPLOADS = 15
#: a tab's Add button reads that tab's editor only
MAX_ADD_UPLOADS = 6


def _browser(pw):
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-background-networking",
                                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"])


class Uploads:
    """Counts the page's requests to /gradio_api/upload."""

    def __init__(self, page):
        self.n = 0
        page.on("request", self._seen)

    def _seen(self, request):
        if "/gradio_api/upload" in request.url:
            self.n += 1


def _open_app(pw, server):
    """A headless Chromium showing the app, with the upload editor ready."""
    browser = _browser(pw)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(120_000)
    page.goto(server.url + "/")
    page.wait_for_selector("#pp-editor")
    return browser, page


def _toast(page) -> str:
    toast = page.locator(".toast-body")
    return toast.first.inner_text() if toast.count() else ""


def _project(page, timeout=180_000):
    """Click Project and wait for the session (or fail with the error toast's text)."""
    page.locator("#pp-project").click()
    page.wait_for_function("document.querySelector('#pp-status')?.innerText.includes('Projected') || "
                           "document.querySelector('.toast-body') !== null", timeout=timeout)
    assert not _toast(page), f"the page showed an error: {_toast(page)}"


def _open_details(page):
    """Open the *details* toggle (the projection's images and figures) and wait for its images."""
    button = page.locator("#pp-figures button.label-wrap")
    for _ in range(3):
        if "open" in (button.get_attribute("class") or ""):
            break
        button.scroll_into_view_if_needed()
        button.click()
        page.wait_for_timeout(500)
    page.wait_for_selector("#pp-figures button.label-wrap.open")
    for sel in ("#pp-crop img", "#pp-recon img"):   # the images load lazily: once scrolled into view
        page.locator(sel).scroll_into_view_if_needed()
        page.wait_for_function("(s) => document.querySelector(s)?.naturalWidth > 0", arg=sel)


def _upload(page, path):
    """Upload a photo the way a person does: the editor's Upload button, then the file chooser."""
    with page.expect_file_chooser() as chooser:
        page.locator("#pp-editor button[aria-label='Upload']").first.click()
    chooser.value.set_files(str(path))
    page.wait_for_function("document.querySelector('#pp-photo-name')?.querySelector('textarea, input') !== null "
                           "|| true")
    page.wait_for_timeout(2000)


def _editor_geometry(page):
    """(canvas bounding box, photo px -> screen px scale, screen position of photo pixel (0, 0))."""
    box = page.locator("#pp-editor canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    scale = min(box["width"], box["height"]) * 0.89 / 512  # the editor fits the 512 px photo
    return box, scale, (cx - 256 * scale, cy - 256 * scale)


def _paint_face(page):
    """Select the astronaut's face with the brush."""
    page.locator("#pp-editor button[aria-label='Brush']").click()
    _, scale, (ox, oy) = _editor_geometry(page)
    for y in range(70, 200, 14):
        page.mouse.move(ox + 170 * scale, oy + y * scale)
        page.mouse.down()
        page.mouse.move(ox + 290 * scale, oy + y * scale, steps=8)
        page.mouse.up()


def _screen_patch(page, x, y, r=12) -> np.ndarray:
    """The screen's pixels around photo pixel (x, y) of the editor."""
    _, scale, (ox, oy) = _editor_geometry(page)
    sx, sy = ox + x * scale, oy + y * scale
    png = page.screenshot(clip={"x": sx - r, "y": sy - r, "width": 2 * r, "height": 2 * r})
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(float)


def _need_browser():
    need(Path(CHROMIUM).is_file() or shutil.which(CHROMIUM) is not None,
         f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        need(False, "playwright is not installed (pip install playwright)")
    SHOTS.mkdir(parents=True, exist_ok=True)


def browser_server(*args, shots=SHOTS):
    """A module fixture's body: a live server for Chromium tests (after checking the browser is
    here), ``shots`` made for the screenshots; stopped when the module is done."""
    _need_browser()
    shots.mkdir(parents=True, exist_ok=True)
    s = Server(*args)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def server():
    yield from browser_server("--steps", "20")


def _natural(page, sel):
    return page.eval_on_selector(sel, "im => [im.naturalWidth, im.naturalHeight]")


def _table(page) -> str:
    """The edit list as the page shows it (its text)."""
    return page.locator("#pp-edits").inner_text()


def _wait_list(page, text):
    page.wait_for_function(f"document.querySelector('#pp-list-md')?.innerText.includes({text!r}) || "
                           "document.querySelector('.toast-body') !== null")
    assert not _toast(page), _toast(page)


def _render(page, uploads, timeout=300_000):
    """Click Render; wait for the new entry in the history; return (render text, uploads during the render)."""
    n_hist = page.locator("#pp-history img").count()
    n0 = uploads.n
    page.locator("#pp-render").click()
    page.wait_for_function("(n) => document.querySelectorAll('#pp-history img').length > n || "
                           "document.querySelector('.toast-body') !== null", arg=n_hist, timeout=timeout)
    assert not _toast(page), f"the page showed an error: {_toast(page)}"
    # the progress text has gone ("%" of a verdict's artefact figure is not progress)
    page.wait_for_function("!(document.querySelector('#pp-render-md')?.innerText || '')"
                           ".replace(/artefacts [0-9.]+ %/g, '').includes('%')")
    page.wait_for_timeout(300)
    return page.locator("#pp-render-md").inner_text(), uploads.n - n0


def test_journey(server, tmp_path):
    import time

    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser, page = _open_app(pw, server)
        uploads = Uploads(page)
        # 0. a file that is not an image is named at once (the editor would ignore it silently)
        notes = tmp_path / "notes.txt"
        notes.write_text("not a photo")
        _upload(page, notes)
        page.wait_for_function("document.querySelector('#pp-upload-msg')?.innerText.includes('is not an image')")
        assert "notes.txt" in page.locator("#pp-upload-msg").inner_text()
        # 1. upload, 2. select: the translucent brush lets the photo show through
        _upload(page, skimage_data("astronaut.png"))
        assert "not an image" not in page.locator("#pp-upload-msg").inner_text()
        photo_patch = _screen_patch(page, 230, 130)
        _paint_face(page)
        page.wait_for_timeout(500)
        page.screenshot(path=str(SHOTS / "browser-1-selected.png"))
        painted = _screen_patch(page, 230, 130)
        # painted = a·brush + (1 − a)·photo: the overlay's opacity a, fitted over the patch
        d = (BRUSH - photo_patch).ravel()
        opacity = float(((painted - photo_patch).ravel() @ d) / (d @ d))
        assert 0.2 < opacity < 0.8, f"the selection is drawn with opacity {opacity:.2f}"
        assert painted.std() > 8, "no photo detail shows through the selection"
        # the layer's eye icon hides the selection (and shows it again)
        page.locator("#pp-editor button[aria-label='Show Layers']").click()
        eye = page.locator("#pp-editor li:has(> button[aria-label='layer-1']) > button.icon-button").first
        eye.click()
        page.wait_for_timeout(500)
        hidden = _screen_patch(page, 230, 130)
        page.screenshot(path=str(SHOTS / "browser-1b-selection-hidden.png"))
        assert np.abs(hidden - photo_patch).mean() < 6, "hiding the layer did not show the photo alone"
        eye.click()
        page.wait_for_timeout(300)
        # 3. project: the editor's value is uploaded once, the previews are readable
        n0 = uploads.n
        t0 = time.monotonic()
        _project(page)
        print(f"Project (20 steps + G′) click to result: {time.monotonic() - t0:.1f} s, load {os.getloadavg()}")
        page.wait_for_timeout(500)
        project_uploads = uploads.n - n0
        print(f"uploads per Project: {project_uploads}")
        assert 1 <= project_uploads <= MAX_PROJECT_UPLOADS, project_uploads
        status = page.locator("#pp-status").inner_text()
        assert "reproduces your selection" in status and "selection: the painted region" in status, status
        # the projection's images and figures are behind the details toggle
        _open_details(page)
        assert "PSNR" in page.locator("#pp-figures-md").inner_text()
        for sel in ("#pp-crop img", "#pp-recon img", "#pp-adapted img"):
            page.locator(sel).scroll_into_view_if_needed()
            page.wait_for_function("(s) => document.querySelector(s)?.naturalWidth > 0", arg=sel)
            w, h = _natural(page, sel)
            assert min(w, h) >= 256, (sel, w, h)
            bb = page.locator(sel).bounding_box()
            assert min(bb["width"], bb["height"]) >= 256 * 0.9, (sel, bb)
        # one G′ switch for Project and Render, and the PSNR figures are explained
        n_gprime = page.eval_on_selector_all("label", "ls => ls.filter(l => l.innerText.includes('G′') && "
                                             "l.querySelector('input[type=checkbox]')).length")
        assert n_gprime == 1, n_gprime
        assert "higher is closer" in page.locator("#pp-psnr-help").inner_text()
        crop = page.locator("#pp-crop img").screenshot()
        assert np.asarray(Image.open(io.BytesIO(crop)).convert("L")).std() > 20, "the crop shows no photo"
        page.screenshot(path=str(SHOTS / "browser-2-projected.png"), full_page=True)
        # 4. every direction of the model has a slider, with its description
        n_dirs = page.locator("[id^=pp-dir-] input[type=range]:visible").count()
        assert n_dirs >= 11, n_dirs
        for name in ("colour_temperature", "side_light", "hair_frame"):
            assert page.locator(f"[id^=pp-dir-]:has-text('{name}')").count() == 1, name
        head = page.locator("#pp-dir-0").inner_text()
        assert "head_turn" in head and len(head.split("head_turn", 1)[1].strip()) > 20, head  # its description
        slider = page.locator("#pp-dir-0 input[type=range]")
        slider.scroll_into_view_if_needed()
        sb = slider.bounding_box()
        n0 = uploads.n
        page.mouse.click(sb["x"] + sb["width"] * 0.9, sb["y"] + sb["height"] / 2)
        page.wait_for_selector("#pp-preview img", timeout=120_000)
        page.wait_for_function("document.querySelector('#pp-preview-md')?.innerText.includes('live preview')")
        assert uploads.n == n0, "the live preview uploaded files"
        preview_size = _natural(page, "#pp-preview img")
        assert min(preview_size) >= 256
        md = page.locator("#pp-preview-md").inner_text()
        assert "1 latent edit" in md and "photo's resolution" in md, md
        page.screenshot(path=str(SHOTS / "browser-3-slider.png"), full_page=True)
        # 5. the edit list: add the slider, a strength outside the range is clamped visibly
        page.locator("#pp-dir-add").click()
        _wait_list(page, "added #1")
        table = _table(page)
        assert table.count("direction ") == 1 and "live" in table, table
        page.locator("#pp-strength input").fill("50")
        page.locator("#pp-set-strength").click()
        _wait_list(page, "clamped to")
        assert "strength 3" in _table(page), _table(page)
        # a second direction, moved up: the list is reordered
        s1 = page.locator("#pp-dir-1 input[type=range]")
        s1.scroll_into_view_if_needed()
        b1 = s1.bounding_box()
        page.mouse.click(b1["x"] + b1["width"] * 0.2, b1["y"] + b1["height"] / 2)
        second = page.locator("#pp-dir-1").inner_text().split("\n")[0].strip()
        page.locator("#pp-dir-add").click()
        _wait_list(page, "added #2")
        page.locator("#pp-pick input").fill("2")
        page.locator("#pp-up").click()
        _wait_list(page, "to #1")
        rows = _table(page)
        assert rows.index(second) < rows.index("head_turn"), rows
        # 6. render: exactly the listed edits, no uploads, the compare view and the history
        t0 = time.monotonic()
        text, render_uploads = _render(page, uploads)
        print(f"Render (2 directions, G′) click to result: {time.monotonic() - t0:.1f} s, load {os.getloadavg()}")
        assert render_uploads == 0, render_uploads
        print(f"uploads per Render: {render_uploads}")
        assert "changed outside the mask: 0" in text and "edits: direction, direction" in text, text
        assert page.locator("#pp-compare img").count() >= 2
        compare_sizes = page.eval_on_selector_all("#pp-compare img",
                                                  "ims => ims.map(i => [i.naturalWidth, i.naturalHeight])")
        for w, h in compare_sizes:
            assert min(w, h) >= 256, (w, h)
        # the live preview was the same photo-resolution crop as the compare view (not a 64 px stamp)
        assert preview_size == compare_sizes[0], (preview_size, compare_sizes)
        assert _natural(page, "#pp-preview img") == compare_sizes[0]
        assert "photo's resolution" in page.locator("#pp-preview-md").inner_text()
        page.locator("#pp-result img").scroll_into_view_if_needed()   # loaded lazily, once in view
        page.wait_for_function("document.querySelector('#pp-result img')?.naturalWidth > 0")
        assert _natural(page, "#pp-result img") == [512, 512]
        link = page.locator("#pp-download a").first
        assert "astronaut-priorpaint-1" in (link.get_attribute("href") or "") + link.inner_text()
        page.locator("#pp-compare").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "browser-4-rendered.png"), full_page=True)
        # 7. remove the edit, render again: nothing applied, two renders in the history
        page.locator("#pp-pick input").fill("1")
        page.locator("#pp-remove").click()
        _wait_list(page, "removed #1")
        assert _table(page).count("direction ") == 1, _table(page)
        page.locator("#pp-clear").click()
        _wait_list(page, "the list is empty")
        assert "direction " not in _table(page), _table(page)
        # resetting the sliders refreshes the preview (nothing listed, nothing staged)
        page.locator("#pp-dir-reset").click()
        page.wait_for_function("document.querySelector('#pp-preview-md')?.innerText.includes('0 latent edit')")
        text, render_uploads = _render(page, uploads)
        assert render_uploads == 0 and "edits: none" in text, (render_uploads, text)
        thumbs = page.locator("#pp-history .thumbnail-item, #pp-history button img")
        page.wait_for_function("document.querySelectorAll('#pp-history img').length >= 2")
        page.locator("#pp-history img").nth(1).click()  # back to render #1
        page.wait_for_function("document.querySelector('#pp-render-md')?.innerText.includes('showing render #1')")
        assert "astronaut-priorpaint-1" in page.locator("#pp-download").inner_text()
        page.screenshot(path=str(SHOTS / "browser-5-history.png"), full_page=True)
        del thumbs
        # 8. Stop says so
        page.locator("#pp-stop").click()
        page.wait_for_function("document.querySelector('#pp-notice')?.innerText.includes('cancelled')")
        browser.close()


def test_box_field(server):
    """A box with spaces, Enter in the box field projects; a bad box says what to type."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser, page = _open_app(pw, server)
        _upload(page, skimage_data("astronaut.png"))
        page.locator("#pp-adapt input").uncheck()
        page.locator("#pp-box textarea, #pp-box input").first.fill("140 20 180")
        page.locator("#pp-box textarea, #pp-box input").first.press("Enter")
        page.wait_for_selector(".toast-body")
        msg = _toast(page)
        assert "four numbers X,Y,W,H" in msg and "--box" not in msg, msg
        # a box outside the photo fails in the projection itself (its outputs get Gradio's "Error" badge)
        n_toasts = page.locator(".toast-body").count()
        page.locator("#pp-box textarea, #pp-box input").first.fill("5000 5000 100 100")
        page.locator("#pp-box textarea, #pp-box input").first.press("Enter")
        page.wait_for_function("(n) => [...document.querySelectorAll('.toast-body')].some(t => "
                               "t.innerText.includes('outside'))", arg=n_toasts)
        page.screenshot(path=str(SHOTS / "browser-12-box-outside.png"), full_page=True)
        # the same page: a good box (with paint too) projects, says which selection it used, and no
        # "Error" badge of the failed tries stays behind
        _paint_face(page)
        page.locator("#pp-box textarea, #pp-box input").first.fill("140 20 180 180")
        page.locator("#pp-box textarea, #pp-box input").first.press("Enter")
        page.wait_for_function("document.querySelector('#pp-status')?.innerText.includes('Projected')")
        status = page.locator("#pp-status").inner_text()
        assert "selection: the box 140,20,180,180 (the painted region is ignored" in status, status
        for sel in ("#pp-status", "#pp-notice"):   # the images are behind the details toggle
            assert "Error" not in page.locator(sel).inner_text(), sel
        # interpolation: the t slider previews (projecting the other photo once)
        page.get_by_role("tab", name="Interpolate").click()
        with page.expect_file_chooser() as chooser:
            page.locator("#pp-other").get_by_text("Drop Image Here", exact=False).first.click()
        chooser.value.set_files(str(skimage_data("coffee.png")))
        page.wait_for_selector("#pp-other img")
        t = page.locator("#pp-t input[type=range]")
        t.scroll_into_view_if_needed()
        tb = t.bounding_box()
        n_toasts = page.locator(".toast-body").count()
        page.mouse.click(tb["x"] + tb["width"] * 0.7, tb["y"] + tb["height"] / 2)
        page.wait_for_function("(n) => document.querySelector('#pp-preview-md')?.innerText.includes('interpolation') "
                               "|| document.querySelectorAll('.toast-body').length > n", arg=n_toasts, timeout=180_000)
        assert "interpolation" in page.locator("#pp-preview-md").inner_text(), _toast(page)
        # before Render, the verdict: the other image (a coffee cup) has no face to move toward
        page.wait_for_function("document.querySelector('#pp-preview-md')?.innerText.includes('cannot be carried')",
                               timeout=180_000)
        assert "no face found in the photo, the other image or the result" in \
            page.locator("#pp-preview-md").inner_text()
        page.screenshot(path=str(SHOTS / "browser-11-interpolate-preview.png"), full_page=True)
        assert min(_natural(page, "#pp-preview img")) >= 256
        page.locator("#pp-interp-add").click()
        _wait_list(page, "added #1")
        assert "interpolate" in _table(page) and "t 0." in _table(page), _table(page)
        browser.close()


@pytest.mark.parametrize("tab, editor, add, kind", [
    ("Label map", "#pp-seg-editor", "#pp-seg-add", "segment"),
    ("Scribble", "#pp-scribble-editor", "#pp-scribble-add", "scribble"),
    ("Paint", "#pp-paint-editor", "#pp-paint-add", "paint"),
])
def test_region_tab_edit(server, tab, editor, add, kind):
    """Paint in an edit tab, add it to the list, render without G′: exactly that edit is applied;
    a label edit saved as a vector appears in the vectors list without a reload."""
    from playwright.sync_api import sync_playwright

    vec_name = f"browser-{uuid.uuid4().hex[:6]}"
    with sync_playwright() as pw:
        browser, page = _open_app(pw, server)
        uploads = Uploads(page)
        _upload(page, skimage_data("astronaut.png"))
        _paint_face(page)
        page.locator("#pp-adapt input").uncheck()
        _project(page)
        page.get_by_role("tab", name=tab).scroll_into_view_if_needed()
        page.get_by_role("tab", name=tab).click()
        if kind == "segment":
            page.locator("#pp-seg-get").click()
            page.wait_for_function("document.querySelector('#pp-legend')?.innerText.includes('hair')")
            page.wait_for_timeout(1500)
            page.locator("#pp-seg-name textarea, #pp-seg-name input").first.fill(vec_name)
        page.locator(f"{editor} button[aria-label='Brush']").click()
        canvas = page.locator(f"{editor} canvas").first
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        for dy in (-60, -50, -40):
            page.mouse.move(cx - 50, cy + dy)
            page.mouse.down()
            page.mouse.move(cx + 50, cy + dy, steps=6)
            page.mouse.up()
        page.screenshot(path=str(SHOTS / f"browser-6-{kind}.png"), full_page=True)
        n0 = uploads.n
        page.locator(add).click()
        _wait_list(page, "added #1")
        assert uploads.n - n0 <= MAX_ADD_UPLOADS, uploads.n - n0  # the tab's editor, once
        text, render_uploads = _render(page, uploads, timeout=180_000)
        assert render_uploads == 0, render_uploads
        assert "changed outside the mask: 0" in text and f"edits: {kind}" in text, text
        assert f"edits: {kind}," not in text, text
        page.screenshot(path=str(SHOTS / f"browser-7-{kind}-render.png"), full_page=True)
        if kind == "segment":
            try:
                page.get_by_role("tab", name="Vectors").click()
                page.locator("#pp-vector input").first.click()
                page.wait_for_selector(f"[role=option]:has-text('{vec_name}')", timeout=30_000)
                # picking it and moving its strength previews it
                page.locator(f"[role=option]:has-text('{vec_name}')").first.click()
                vs = page.locator("#pp-vector-strength input[type=range]")
                vs.scroll_into_view_if_needed()
                vb = vs.bounding_box()
                page.mouse.click(vb["x"] + vb["width"] * 0.8, vb["y"] + vb["height"] / 2)
                page.wait_for_function("document.querySelector('#pp-preview-md')?.innerText.includes('live preview')")
                assert "1 latent edit" in page.locator("#pp-preview-md").inner_text()
                page.screenshot(path=str(SHOTS / "browser-7b-vector-preview.png"), full_page=True)
            finally:
                from priorpaint.edits.vectors import vectors_dir
                folder = vectors_dir("dcgan-digiface-64")
                for p in folder.glob(vec_name + ".*"):
                    p.unlink()
        browser.close()


def _pick_model(page, model_id):
    page.locator("#pp-model input").first.click()
    page.locator(f"[role=option]:has-text('{model_id}')").first.click()


def test_model_download_offline_then_with_progress(tmp_path):
    """A Hub model that is not downloaded says so under the model menu; offline, Download answers
    one line naming the model, the repo and the command; online (a local Hub endpoint, no real
    network) it downloads with byte progress, and Project then uses it."""
    _need_browser()
    import threading

    import torch
    from playwright.sync_api import sync_playwright

    from app_server import free_port
    from test_download import Hub, _env, _manifest
    from test_stylegan2 import STYLE_DIM, rosinality_state_dict

    # more than two of huggingface_hub's 10 MiB read chunks: a progress step lands before the middle
    ckpt = tmp_path / "sg2.pt"
    torch.save({"g_ema": rosinality_state_dict(seed=3), "latent_avg": torch.zeros(STYLE_DIM),
                "padding": torch.zeros(6 << 20)}, ckpt)
    payload = ckpt.read_bytes()
    shutil.copytree(ROOT / "weights_manifest", tmp_path / "manifest")
    manifest = _manifest(tmp_path, payload)  # adds tiny-sg2.json (hub repo priorpaint-test/tiny-sg2)
    port = free_port()  # the Hub endpoint: nothing listens there yet (offline)
    # the Hub holds the file midway for as long as the page needs to show it: no read timeout meanwhile
    env = _env(tmp_path, f"http://127.0.0.1:{port}", manifest, HF_HUB_DOWNLOAD_TIMEOUT="600")
    server = Server("--steps", "20", env={k: v for k, v in env.items() if os.environ.get(k) != v})
    hold, hub = threading.Event(), None
    try:
        with sync_playwright() as pw:
            browser, page = _open_app(pw, server)
            _pick_model(page, "tiny-sg2")
            page.wait_for_function("document.querySelector('#pp-model-status')?.innerText.includes('not downloaded')")
            status = page.locator("#pp-model-status").inner_text()
            assert "priorpaint-test/tiny-sg2" in status and "priorpaint download tiny-sg2" in status, status
            # Project before downloading says what to do, not a raw exception
            _upload(page, skimage_data("astronaut.png"))
            page.locator("#pp-box textarea, #pp-box input").first.fill("140,20,180,180")
            page.locator("#pp-project").click()
            page.wait_for_selector(".toast-body")
            assert "Download the model" in _toast(page), _toast(page)
            # offline: one line naming the model, the repo and the command
            page.locator("#pp-model-download").click()
            page.wait_for_function("document.querySelector('#pp-model-status')?.innerText.includes('download failed')")
            line = page.locator("#pp-model-status").inner_text()
            page.screenshot(path=str(SHOTS / "browser-8-download-offline.png"), full_page=True)
            assert "tiny-sg2" in line and "repo priorpaint-test/tiny-sg2" in line, line
            assert "run `priorpaint download tiny-sg2` once online" in line.replace("\n", " ") or \
                "run priorpaint download tiny-sg2 once online" in line, line
            # one line (besides the "Error" badge Gradio puts on the output of a failed event)
            assert len([x for x in line.splitlines() if x.strip() and x.strip() != "Error"]) == 1, line
            page.wait_for_function("[...document.querySelectorAll('.toast-body')].some("
                                   "t => t.innerText.includes('priorpaint-test/tiny-sg2'))")
            # online: the local Hub sends half of the file and waits until the page has shown progress
            hub = Hub({("priorpaint-test/tiny-sg2", "sg2.pt"): payload}, hold=hold, port=port)
            page.locator("#pp-model-download").click()
            page.wait_for_function("document.querySelector('#pp-model-status')?.innerText.includes(' MB of ')")
            shown = page.locator("#pp-model-status").inner_text()
            assert f"of {len(payload) / 1e6:.1f} MB" in shown and "%" in shown, shown
            assert page.locator("#pp-model-status progress").count() == 1
            page.screenshot(path=str(SHOTS / "browser-9-download-progress.png"), full_page=True)
            hold.set()
            page.wait_for_function("document.querySelector('#pp-model-status')?.innerText.includes('sha256-verified')")
            assert not page.locator("#pp-model-download").is_visible()
            assert "Error" not in page.locator("#pp-model-status").inner_text()  # no stale badge after success
            page.screenshot(path=str(SHOTS / "browser-10-downloaded.png"), full_page=True)
            # the downloaded model projects
            page.locator("#pp-adapt input").uncheck()
            page.evaluate("document.querySelectorAll('.toast-body').forEach(t => t.closest('.toast-wrap, "
                          "[data-testid=toast-body]')?.remove() || t.remove())")
            _project(page)
            assert "tiny-sg2" in page.locator("#pp-status").inner_text()
            browser.close()
    finally:
        hold.set()
        if hub is not None:
            hub.close()
        server.stop()
