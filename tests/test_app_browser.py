"""The web page in headless Chromium (Debian's /usr/bin/chromium) driven by Playwright.

Upload the astronaut photo into the editor, paint over the face with the brush, Project,
move a direction slider (live preview), Render, and check the result image appears.
A screenshot is saved under artifacts/app/ (gitignored) after each step.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from app_server import ROOT, Server
from conftest import need, skimage_data

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = os.environ.get("PRIORPAINT_CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "artifacts" / "app"


def _browser(pw):
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-background-networking",
                                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"])


def _open_app(pw, server):
    """A headless Chromium showing the app, with the upload editor ready."""
    browser = _browser(pw)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(120_000)
    page.goto(server.url + "/")
    page.wait_for_selector("#pp-editor")
    return browser, page


def _project(page, timeout=180_000):
    """Click Project and wait for the session (or fail with the error toast's text)."""
    page.locator("#pp-project").click()
    page.wait_for_function("document.querySelector('#pp-status')?.innerText.includes('session') || "
                           "document.querySelector('.toast-body') !== null", timeout=timeout)
    toast = page.locator(".toast-body")
    assert toast.count() == 0, f"the page showed an error: {toast.first.inner_text()}"


def _upload(page, path, attempts: int = 30):
    """Put a photo into the editor and wait until the editor shows it.  A file set before the
    page has attached its handlers (a slow, loaded machine) is lost, so it is set again until
    the editor's "Upload an image" placeholder is gone (bounded: ``attempts`` tries)."""
    placeholder = page.locator("#pp-editor").get_by_text("Upload an image")
    for _ in range(attempts):
        page.locator("#pp-editor input[type=file]").first.set_input_files(str(path))
        try:
            placeholder.wait_for(state="hidden", timeout=4000)
            return
        except Exception:  # still the placeholder: the page was not ready; set the file again
            continue
    raise AssertionError(f"the editor never showed the uploaded photo {path}")


def _paint_face(page):
    """Select the astronaut's face with the brush."""
    page.locator("#pp-editor button[aria-label='Brush']").click()
    box = page.locator("#pp-editor canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    scale = min(box["width"], box["height"]) * 0.89 / 512  # the editor fits the 512 px photo
    fx, fy = cx + (230 - 256) * scale, cy + (110 - 256) * scale  # the face centre in the photo
    for dy in range(-40, 41, 12):
        page.mouse.move(fx - 45 * scale * 2, fy + dy * scale * 2)
        page.mouse.down()
        page.mouse.move(fx + 45 * scale * 2, fy + dy * scale * 2, steps=8)
        page.mouse.up()


def _need_browser():
    need(Path(CHROMIUM).is_file() or shutil.which(CHROMIUM) is not None,
         f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        need(False, "playwright is not installed (pip install playwright)")
    SHOTS.mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="module")
def server():
    _need_browser()
    s = Server("--steps", "20")
    yield s
    s.stop()


def test_upload_select_project_slide_render(server):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser, page = _open_app(pw, server)
        # 1. upload
        _upload(page, skimage_data("astronaut.png"))
        # 2. select: paint over the face with the brush
        _paint_face(page)
        page.screenshot(path=str(SHOTS / "browser-1-selected.png"))
        # 3. project
        _project(page)
        status = page.locator("#pp-status").inner_text()
        assert "PSNR" in status
        assert page.locator("#pp-recon img").count() == 1
        page.screenshot(path=str(SHOTS / "browser-2-projected.png"))
        # 4. move a direction slider: the live preview appears
        slider = page.locator("#pp-dir-0 input[type=range]")
        slider.wait_for(state="visible")
        slider.scroll_into_view_if_needed()
        sb = slider.bounding_box()
        page.mouse.click(sb["x"] + sb["width"] * 0.9, sb["y"] + sb["height"] / 2)
        page.wait_for_selector("#pp-preview img", timeout=120_000)
        page.screenshot(path=str(SHOTS / "browser-3-slider.png"))
        # 5. render (G′ + composite) and the full-resolution download
        page.get_by_role("tab", name="Render").scroll_into_view_if_needed()
        page.get_by_role("tab", name="Render").click()
        page.locator("#pp-render").click()
        page.wait_for_selector("#pp-result img", timeout=300_000)
        page.wait_for_function("document.querySelector('#pp-render-md')?.innerText.includes('changed outside')",
                               timeout=60_000)
        assert "changed outside the mask: 0" in page.locator("#pp-render-md").inner_text()
        assert page.locator("#pp-download a").count() >= 1
        page.locator("#pp-result").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "browser-4-rendered.png"), full_page=True)
        # The result image is the full-resolution photo.
        nat = page.eval_on_selector("#pp-result img", "im => [im.naturalWidth, im.naturalHeight]")
        assert nat == [512, 512]
        browser.close()


@pytest.mark.parametrize("tab, editor, kind", [
    ("Label map", "#pp-seg-editor", "segment"),
    ("Colour scribble", "#pp-scribble-editor", "scribble"),
    ("Concept paint", "#pp-paint-editor", "paint"),
])
def test_region_tab_edit(server, tab, editor, kind):
    """Project a painted selection, paint in an edit tab, render without G′: the edit is applied."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser, page = _open_app(pw, server)
        _upload(page, skimage_data("astronaut.png"))
        _paint_face(page)
        page.locator("#pp-adapt input").uncheck()
        _project(page)
        page.get_by_role("tab", name=tab).scroll_into_view_if_needed()
        page.get_by_role("tab", name=tab).click()
        if kind == "segment":
            page.locator("#pp-seg-get").click()
            page.wait_for_function("document.querySelector('#pp-legend')?.innerText.includes('hair')")
            # the label map becomes the editor's background (no "Upload an image" placeholder left)
            page.locator(editor).get_by_text("Upload an image").wait_for(state="hidden")
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
        page.screenshot(path=str(SHOTS / f"browser-5-{kind}.png"), full_page=True)
        page.get_by_role("tab", name="Render").click()
        page.locator("#pp-render-adapt input").uncheck()
        page.locator("#pp-render").click()
        page.wait_for_function("document.querySelector('#pp-render-md')?.innerText.includes('changed outside') || "
                               "document.querySelector('.toast-body') !== null", timeout=180_000)
        toast = page.locator(".toast-body")
        assert toast.count() == 0, f"the page showed an error: {toast.first.inner_text()}"
        text = page.locator("#pp-render-md").inner_text()
        assert "changed outside the mask: 0" in text and f"edits: {kind}" in text, text
        page.screenshot(path=str(SHOTS / f"browser-6-{kind}-render.png"), full_page=True)
        browser.close()
