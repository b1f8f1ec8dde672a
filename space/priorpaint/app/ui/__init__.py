"""The web page, one module per panel: :mod:`.layout` (the page's order and shared states),
:mod:`.project` (the photo, its selection, Project), :mod:`.models` (the model menu),
:mod:`.preview` (the projection's images and the live preview), :mod:`.editlist`,
:mod:`.render` (Render, before/after, history, Stop) and :mod:`.tabs` (one per edit kind).
Each has ``build(page)`` and ``wire(page, service)``; every panel calls the typed
:class:`~priorpaint.app.service.Service`, never the wire format.

The page: upload a photo into the editor and paint the region to edit with the translucent
brush (a box ``X,Y,W,H`` works too), choose the model (one that is not downloaded says so and
downloads with progress on request), *Project*, add edits from the tabs to the **edit list**
(the only thing Render applies, in order, each with its strength), watch the live preview of
the cheap edits, *Render* (G′ + composite), compare the selection before and after, go back
to an earlier render in the history and download the full-resolution PNG.

:func:`priorpaint.app.ui.app.build_app` builds the page and the named API endpoints.
"""
