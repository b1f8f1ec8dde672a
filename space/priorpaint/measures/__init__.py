"""Measures of an edit's result that are independent of the method that made it.

* :mod:`.artefacts` — smear, unexplained structure and doubled contours, from the photo and the
  result alone (at the photo's resolution);
* :mod:`.effect` — the effect ratio: an attribute (landmark geometry from the independent
  detector of :mod:`priorpaint.faces.mtcnn`, or a pixel statistic) measured on the result and on
  the generator's own samples at the same strength;
* :mod:`.verdict` — the thresholds past which an edit "cannot be carried here", declared once.

The edits never call these; the session's report, the bench and the docs do
(``docs/method/measures.md``).
"""
