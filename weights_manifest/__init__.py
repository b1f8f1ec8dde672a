"""Data package ``priorpaint.manifests``: one JSON manifest per model, beside the data they name
(``directions/``, ``parts/``, ``encoders/``, ``models/``). Nothing here is code; the files are found
with :mod:`importlib.resources` (see :mod:`priorpaint.models.manifest`)."""
