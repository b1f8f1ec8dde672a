"""Data package ``priorpaint.space``: the Hugging Face Space's own files (``app.py``, the Space card
``README.md``, ``requirements.txt``), mapped into the distribution by ``setup.py`` so that
``priorpaint space-export`` writes a deployable Space from an installed wheel as from a checkout.
Nothing imports this package; ``app.py`` is the Space's entry point."""
