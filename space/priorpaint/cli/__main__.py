"""``python -m priorpaint.cli``: the same as the ``priorpaint`` command."""

import sys

from . import main

sys.exit(main())
