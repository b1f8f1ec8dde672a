"""``priorpaint batch``: one recipe over many photos, on local worker processes or on Ray.

Plumbing beside the CLI (the method never imports it, and nothing here parses
arguments, so workers need neither argparse nor the CLI):

* :mod:`.photo` — the per-photo function shared with ``priorpaint edit``
  (:func:`~.photo.edit_photo`; :func:`~.photo.run_job` for a batch's photo), the
  :class:`~.photo.Recipe`, the outputs and the resume marker, and the :class:`~.photo.Worker`
  that holds one generator;
* :mod:`.plan` — inputs (files, folders, list files), boxes files, per-photo recipe hashes;
* :mod:`.faces` — selections from OpenCV's bundled Haar face detector;
* :mod:`.local` — ``--workers N`` processes, one generator each;
* :mod:`.ray_runner` — ``--ray``: Ray actors, one generator each;
* :mod:`.driver` — plan, resume, run, progress bar, summary and exit code.
"""
