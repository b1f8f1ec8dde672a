"""The errors priorpaint raises on purpose.

Every message is one line that tells the user what was wrong and, where possible, what to
do; the CLI prints it and exits with code 2, the web app turns it into ``gr.Error``.
"""


class PriorpaintError(Exception):
    """Base class: an error whose message is meant for the user."""


class InputError(PriorpaintError, ValueError):
    """Bad input from the user: a file, a selection, an option or an edit spec."""


class ModelError(PriorpaintError):
    """A model cannot be found, fetched, verified or loaded."""


class WeightsIntegrityError(ModelError):
    """A weights file whose sha256 differs from the manifest's."""


class Cancelled(PriorpaintError):
    """A job was cancelled through its :class:`priorpaint.jobs.CancelToken`."""
