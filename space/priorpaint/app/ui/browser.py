"""The page's browser side, run once when it loads: its style (two columns on a laptop screen,
the live preview and Render held in view, the before/after compare fitted, history captions
in full) and the "leave the page?" warning while there is work a reload would lose.

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
  const mark = (e) => { const t = e.target;
    if (t && t.closest && t.closest('#pp-editor')) window.__pp_unsaved = true; };
  document.addEventListener('change', mark, true);
  document.addEventListener('drop', mark, true);
}""" % json.dumps(CSS)

#: a relay: the page holds work a reload would lose (after Project, or a resumed session)
UNSAVED_JS = "(sid) => { if (sid) window.__pp_unsaved = true; return []; }"
