"""The page's browser side, run once when it loads: its style (two columns on a laptop screen,
the live preview and Render held in view, history captions in full), the label map's brush
swatches named after the legend, and the "leave the page?" warning while there is work a
reload would lose.

The server mounts the page with its own ``css``/``js`` settings, so the style is added here by
the page itself.
"""

from __future__ import annotations

import json

#: the page's style. ``#pp-side`` (the live preview, Render, the results) stays in view while
#: the left column scrolls to the tabs' controls; it scrolls on its own when taller than the screen.
CSS = """
.gradio-container { overflow: clip !important; }
#pp-side { position: sticky; top: 4px; align-self: flex-start; max-height: calc(100vh - 8px);
           overflow-y: auto; overflow-x: hidden; }
#pp-main { align-items: flex-start; }
#pp-seg-editor menu.swatch { display: flex; flex-direction: column; align-items: flex-start; gap: 4px;
                  min-width: 160px; overflow: visible; }
#pp-seg-editor .swatch-wrap, #pp-seg-editor .swatch-container, #pp-seg-editor .wrap { overflow: visible;
                  height: auto; }
#pp-seg-editor button.color { position: relative; overflow: visible; flex: none; }
#pp-seg-editor button.color[title]::after { content: attr(title); position: absolute; left: 100%; top: 50%;
                  transform: translateY(-50%); margin-left: 8px; font-size: 12px; white-space: nowrap;
                  color: var(--body-text-color); pointer-events: none; }
#pp-history .caption-label, #pp-history figcaption { white-space: normal !important; overflow: visible !important;
                  text-overflow: clip !important; max-width: none !important; }
"""

#: runs at load: adds the style, and warns before leaving once a photo was picked or a session
#: exists (``window.__pp_unsaved``, set by the page's own relays)
LOAD_JS = """() => {
  if (!document.getElementById('pp-style')) {
    const st = document.createElement('style');
    st.id = 'pp-style';
    st.textContent = %s;
    document.head.appendChild(st);
  }
  window.addEventListener('beforeunload', (e) => {
    if (!window.__pp_unsaved) return;
    e.preventDefault();
    e.returnValue = 'Leave priorpaint? The photo, the edit list and renders not downloaded are lost '
      + '(a reload resumes the session while the server still holds it).';
    return e.returnValue;
  });
  // the label map's brush swatches carry the legend's names (hover, screen readers)
  const nameSwatches = () => {
    const names = {};
    document.querySelectorAll('#pp-legend span[style*="color"]').forEach((sp) => {
      const n = ((sp.nextSibling && sp.nextSibling.textContent) || '').split('·')[0].trim();
      if (n) names[getComputedStyle(sp).color] = n;
    });
    document.querySelectorAll('#pp-seg-editor button.color').forEach((b) => {
      const n = names[getComputedStyle(b).backgroundColor];
      if (n && b.title !== n) { b.title = n; b.setAttribute('aria-label', n); }
    });
  };
  let queued = false;
  new MutationObserver(() => { if (!queued) { queued = true;
    requestAnimationFrame(() => { queued = false; nameSwatches(); }); } })
    .observe(document.body, {childList: true, subtree: true});
  const mark = (e) => { const t = e.target;
    if (t && t.closest && t.closest('#pp-editor')) window.__pp_unsaved = true; };
  document.addEventListener('change', mark, true);
  document.addEventListener('drop', mark, true);
}""" % json.dumps(CSS)

#: a relay: the page holds work a reload would lose (after Project, or a resumed session)
UNSAVED_JS = "(sid) => { if (sid) window.__pp_unsaved = true; return []; }"
