"""Honest limits on the page, in real Chromium against a live server (issue 23 item 3, issue 27):
the live preview says, before Render, that an edit cannot be carried on this photo; Render says it
again from its own measure; a render that changes nothing says so in plain words.  Screenshots go
to artifacts/web/."""

from __future__ import annotations

import pytest

from app_server import ROOT
from conftest import skimage_data
from test_app_browser import browser_server, _open_app, _toast, _upload, _wait_list

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SHOTS = ROOT / "artifacts" / "web"


@pytest.fixture(scope="module")
def server():
    yield from browser_server("--steps", "20", shots=SHOTS)


def _render(page) -> str:
    """Click Render; wait for the new history entry and the finished render's line (a verdict's
    message may hold a "%", so the progress text is not what is waited out)."""
    n_hist = page.locator("#pp-history img").count()
    page.locator("#pp-render").click()
    page.wait_for_function("(n) => document.querySelectorAll('#pp-history img').length > n || "
                           "document.querySelector('.toast-body') !== null", arg=n_hist, timeout=300_000)
    assert not _toast(page), f"the page showed an error: {_toast(page)}"
    page.wait_for_function("document.querySelector('#pp-render-md')?.innerText.includes('changed outside the mask')")
    return page.locator("#pp-render-md").inner_text()


def test_the_page_says_when_an_edit_cannot_be_carried(server):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser, page = _open_app(pw, server)
        _upload(page, skimage_data("chelsea.png"))        # a cat: no face for the head measure
        page.locator("#pp-adapt input").uncheck()
        box = page.locator("#pp-box textarea, #pp-box input").first
        box.fill("120 20 200 200")
        box.press("Enter")
        # the status leaves its opening line as soon as the projection starts
        page.wait_for_function("!document.querySelector('#pp-status')?.innerText.includes('Project a selection to start')",
                               timeout=60_000)
        page.wait_for_function("document.querySelector('#pp-status')?.innerText.includes('Projected') || "
                               "document.querySelector('.toast-body') !== null", timeout=180_000)
        assert not _toast(page), _toast(page)
        # a render without edits is the photo: said in plain words, not a silent "success"
        text = _render(page)
        assert "Nothing changed: no edits are listed" in text, text
        # head_turn on the cat: the live preview says it cannot be carried, before Render
        slider = page.locator("#pp-dir-0 input[type=range]")
        assert "head_turn" in page.locator("#pp-dir-0").inner_text()
        slider.scroll_into_view_if_needed()
        sb = slider.bounding_box()
        page.mouse.click(sb["x"] + sb["width"] * 0.95, sb["y"] + sb["height"] / 2)
        page.wait_for_function("document.querySelector('#pp-preview-md')?.innerText.includes('cannot be carried') "
                               "|| document.querySelector('.toast-body') !== null", timeout=120_000)
        assert not _toast(page), _toast(page)
        md = page.locator("#pp-preview-md").inner_text()
        assert "this edit cannot be carried here" in md and "no face found" in md, md
        page.locator("#pp-preview-md").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "verdict-1-preview.png"))
        # listed and rendered: the render's own verdict says the same
        page.locator("#pp-dir-add").click()
        _wait_list(page, "added #1")
        text = _render(page)
        assert "this edit cannot be carried here" in text and "Nothing changed" not in text, text
        page.locator("#pp-render-md").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "verdict-2-render.png"))
        browser.close()
