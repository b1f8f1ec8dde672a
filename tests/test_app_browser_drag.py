"""The page's Drag points tab in real Chromium against a live server: click a handle, then its target,
on the selection's picture; the arrow is drawn; Add lists a drag in photo pixels; Render renders it
with the warp composite. Screenshots go to artifacts/web/."""

from __future__ import annotations

import numpy as np
import pytest

from app_server import ROOT
from conftest import skimage_data
from test_app_browser import browser_server, _open_app, _toast, _upload, _wait_list

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SHOTS = ROOT / "artifacts" / "web"


@pytest.fixture(scope="module")
def server():
    yield from browser_server("--steps", "20", shots=SHOTS)


def _click_photo_px(page, x, y, layer):
    """Click the drag picture at the photo's pixel (x, y) (the picture is the layer box, scaled to fit)."""
    # after a click the picture is replaced (the new point drawn): wait until the new one has loaded
    page.wait_for_function("(() => { const im = document.querySelector('#pp-drag-img img'); "
                           "return im !== null && im.complete && im.naturalWidth > 0; })()", timeout=60_000)
    img = page.locator("#pp-drag-img img").first
    img.scroll_into_view_if_needed()
    b = img.bounding_box()
    nw, nh = page.eval_on_selector("#pp-drag-img img", "im => [im.naturalWidth, im.naturalHeight]")
    s = min(1.0, b["width"] / nw, b["height"] / nh)     # object-fit: scale-down, centred
    k = nw / float(layer[2])                              # the picture's pixels per photo pixel
    ox, oy = b["x"] + (b["width"] - nw * s) / 2, b["y"] + (b["height"] - nh * s) / 2
    page.mouse.click(ox + (x - layer[0] + 0.5) * k * s, oy + (y - layer[1] + 0.5) * k * s)


def _projected_drag_tab(page) -> None:
    """Upload the astronaut, project its face box without G′ and open the Drag tab."""
    _upload(page, skimage_data("astronaut.png"))
    page.locator("#pp-adapt input").uncheck()
    box = page.locator("#pp-box textarea, #pp-box input").first
    box.fill("140,20,180,180")
    box.press("Enter")
    page.wait_for_function("document.querySelector('#pp-status')?.innerText.includes('Projected') || "
                           "document.querySelector('.toast-body') !== null", timeout=180_000)
    assert not _toast(page), _toast(page)
    page.get_by_role("tab", name="Drag", exact=True).click()
    page.wait_for_function("document.querySelector('#pp-drag-img img') !== null", timeout=60_000)


def test_drag_points_on_the_page(server):
    from playwright.sync_api import sync_playwright
    from gimp_bridge import ops
    layer = ops.crop_rect((140, 20, 180, 180), (512, 512))   # the astronaut's layer box (the crop)
    with sync_playwright() as pw:
        browser, page = _open_app(pw, server)
        _projected_drag_tab(page)
        page.wait_for_function("document.querySelector('#pp-drag-md')?.innerText.includes('Click a point')")
        before = page.locator("#pp-drag-img img").first.screenshot()
        _click_photo_px(page, 230, 150, layer)
        page.wait_for_function("document.querySelector('#pp-drag-md')?.innerText.includes('target of the blue')")
        _click_photo_px(page, 230, 138, layer)
        page.wait_for_function("document.querySelector('#pp-drag-md')?.innerText.includes('1 pair')")
        md = page.locator("#pp-drag-md").inner_text()
        # the click lands on the photo's pixel (±1 for the picture's scaling)
        import re
        hx, hy, tx, ty = (float(v) for v in re.search(r"\(([\d.]+), ([\d.]+)\) → \(([\d.]+), ([\d.]+)\)", md).groups())
        assert abs(hx - 230) <= 1 and abs(hy - 150) <= 1 and abs(tx - 230) <= 1 and abs(ty - 138) <= 1, md
        page.wait_for_timeout(500)
        after = page.locator("#pp-drag-img img").first.screenshot()
        assert before != after                                   # the arrow is drawn over the photo
        page.locator("#pp-drag-img").screenshot(path=str(SHOTS / "drag-1-arrow.png"))
        # a second pair, undone: the list keeps one
        _click_photo_px(page, 200, 100, layer)
        page.wait_for_function("document.querySelector('#pp-drag-md')?.innerText.includes('target of the blue')")
        page.locator("#pp-drag-undo").click()
        page.wait_for_function("!document.querySelector('#pp-drag-md')?.innerText.includes('target of the blue')")
        page.locator("#pp-drag-steps input[type=number]").fill("20")
        page.locator("#pp-drag-steps input[type=number]").press("Enter")
        page.locator("#pp-drag-add").click()
        _wait_list(page, "added #1")
        assert "drag" in page.locator("#pp-edits").inner_text()
        n_hist = page.locator("#pp-history img").count()
        page.locator("#pp-render").click()
        page.wait_for_function("(n) => document.querySelectorAll('#pp-history img').length > n || "
                               "document.querySelector('.toast-body') !== null", arg=n_hist, timeout=300_000)
        assert not _toast(page), _toast(page)
        page.wait_for_function("document.querySelector('#pp-render-md')?.innerText.includes('changed outside the mask')")
        text = page.locator("#pp-render-md").inner_text()
        assert "warp comp" in text and "changed outside the mask: 0 px" in text, text
        page.screenshot(path=str(SHOTS / "drag-2-render.png"), full_page=True)
        browser.close()


#: records each text a component shows (a MutationObserver installed before the run), so the test
#: reads what the page drew during the run, not only its end
WATCH_JS = """([sel, key]) => { window[key] = []; const el = document.querySelector(sel);
  const seen = () => { const t = el.innerText; if (window[key].at(-1) !== t) window[key].push(t); };
  new MutationObserver(seen).observe(el, {subtree: true, childList: true, characterData: true, attributes: true}); }"""
IMG_WATCH_JS = """(key) => { window[key] = []; const root = document.querySelector('#pp-drag-img');
  const seen = () => { const im = root.querySelector('img'); const s = im && im.src;
    if (s && window[key].at(-1) !== s) window[key].push(s); };
  new MutationObserver(seen).observe(root, {subtree: true, childList: true, attributes: true}); }"""
HANDLE = r"handle 1 at \(([\d.]+), ([\d.]+)\)"


def test_the_drag_preview_shows_the_points_moving(server):
    """Preview the drag: while it runs the tab's line and picture follow the handle (its drawn
    position changes), and they end at the drag's final position; Stop ends a second run; Render
    of the listed drag shows the moving handle in the live preview's line."""
    import re
    from playwright.sync_api import sync_playwright
    from gimp_bridge import ops
    layer = ops.crop_rect((140, 20, 180, 180), (512, 512))
    with sync_playwright() as pw:
        browser, page = _open_app(pw, server)
        _projected_drag_tab(page)
        _click_photo_px(page, 230, 150, layer)
        page.wait_for_function("document.querySelector('#pp-drag-md')?.innerText.includes('target of the blue')")
        _click_photo_px(page, 236, 118, layer)       # far: the handle does not arrive, so every step runs
        page.wait_for_function("document.querySelector('#pp-drag-md')?.innerText.includes('1 pair')")
        page.locator("#pp-drag-steps input[type=number]").fill("300")
        page.locator("#pp-drag-steps input[type=number]").press("Enter")
        page.evaluate(WATCH_JS, ["#pp-drag-live", "ppLive"])
        page.evaluate(IMG_WATCH_JS, "ppImg")
        page.locator("#pp-drag-preview").click()
        page.wait_for_function("document.querySelector('#pp-drag-live')?.innerText.includes('drag done') || "
                               "document.querySelector('.toast-body') !== null", timeout=300_000)
        assert not _toast(page), _toast(page)
        page.locator("#pp-drag-img").screenshot(path=str(SHOTS / "drag-3-live-done.png"))
        seen = page.evaluate("window.ppLive")
        running = [t for t in seen if "dragging, step" in t]
        assert running, seen                                     # the line followed the run
        drawn = [tuple(float(v) for v in re.search(HANDLE, t).groups()) for t in running]
        done = tuple(float(v) for v in re.search(HANDLE, seen[-1]).groups())
        assert "drag done" in seen[-1]
        # the drawn handle moved during the run (it starts at the handle the user clicked)
        assert len({(230.0, 150.0), *drawn, done}) > 1, seen
        assert len(page.evaluate("window.ppImg")) >= 2            # the picture was redrawn as it ran
        # a second run is stopped: the line stops following it
        page.evaluate(WATCH_JS, ["#pp-drag-live", "ppLive2"])
        page.locator("#pp-drag-preview").click()
        page.wait_for_function("(window.ppLive2 || []).some(t => t.includes('dragging, step'))", timeout=120_000)
        page.locator("#pp-drag-img").screenshot(path=str(SHOTS / "drag-4-live-running.png"))
        page.locator("#pp-stop").click()
        page.wait_for_function("document.querySelector('#pp-notice')?.innerText.includes('cancelled')")
        page.wait_for_timeout(1500)
        later = page.evaluate("window.ppLive2")
        later = later[next(i for i, t in enumerate(later) if "dragging" in t):]
        assert not any("drag done" in t for t in later), (seen, later)
        # Render of the listed drag shows the points moving in the live preview too
        page.locator("#pp-drag-add").click()
        _wait_list(page, "added #1")
        page.evaluate(WATCH_JS, ["#pp-preview-md", "ppRender"])
        n_hist = page.locator("#pp-history img").count()
        page.locator("#pp-render").click()
        page.wait_for_function("(n) => document.querySelectorAll('#pp-history img').length > n || "
                               "document.querySelector('.toast-body') !== null", arg=n_hist, timeout=300_000)
        assert not _toast(page), _toast(page)
        rendered = [t for t in page.evaluate("window.ppRender") if "dragging, step" in t]
        assert rendered and re.search(HANDLE, rendered[-1]), page.evaluate("window.ppRender")
        browser.close()


def test_the_tabs_points_and_spec_without_a_browser():
    """The tab's own logic: clicks become pairs in photo pixels; bad clicks are one-line errors."""
    from priorpaint.app.ui.tabs import drag as T
    from priorpaint.errors import InputError
    state = {"photo": str(skimage_data("astronaut.png")), "layer": [122, 2, 216, 216]}
    k = T.scale_of(state["layer"])
    assert k == pytest.approx(420 / 216)
    pts = T.click(state, dict(T.EMPTY), 108.5 * k, 148.5 * k)
    assert pts == {"pairs": [], "pending": [230.0, 150.0]}
    pts = T.click(state, pts, 108.7 * k, 136.2 * k)
    assert pts == {"pairs": [[230.0, 150.0, 230.0, 138.0]], "pending": None}
    assert "1 pair" in T.describe(pts) and "(230, 150) → (230, 138)" in T.describe(pts)
    im = np.asarray(T.draw(state, pts))
    plain = np.asarray(T.draw(state, T.EMPTY))
    assert im.shape == (420, 420, 3) and (im != plain).any()
    assert T.spec_of(pts, 30, None) == {"kind": "drag", "points": [[230.0, 150.0, 230.0, 138.0]], "steps": 30}
    assert T.undo(pts) == {"pairs": [], "pending": None}
    for bad, message in [((state, pts, 430, 10), "outside the selection's picture"),
                         (({}, pts, 1, 1), "project a selection first"),
                         ((state, {"pairs": [], "pending": [230.0, 150.0]}, 108 * k, 148 * k), "the target is the handle"),
                         ((state, {"pairs": [[1, 1, 2, 2]] * 16, "pending": None}, 5, 5), "at most 16")]:
        with pytest.raises(InputError, match=message) as e:
            T.click(*bad)
        assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="click a handle, then its target"):
        T.spec_of(T.EMPTY, 30, None)
