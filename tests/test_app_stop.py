"""The page's Stop: a browser handler whose job is cancelled ends without an error toast, while
every other engine error still reaches the page as ``gr.Error`` (and API endpoints keep raising)."""

import gradio as gr
import pytest

from priorpaint.app.endpoints import stoppable, user_errors
from priorpaint.errors import InputError
from priorpaint.jobs import CancelToken, checkpoint


def _job(token, seen):
    """A handler that yields a frame per step and checks its token, as the real ones do."""
    for i in range(5):
        checkpoint(token, None, "drag", i / 5)
        seen.append(i)
        yield f"step {i}"
        if i == 1:
            token.cancel("cancelled by the client")


def test_a_cancelled_job_ends_the_browser_handler_quietly():
    token, seen = CancelToken(), []
    frames = list(stoppable(_job)(token, seen))
    assert frames == ["step 0", "step 1"] and seen == [0, 1]     # stopped within one step, no error


def test_the_api_wrapper_still_reports_the_cancel():
    token, seen = CancelToken(), []
    with pytest.raises(gr.Error, match="job cancelled by the client"):
        list(user_errors(_job)(token, seen))


def test_other_errors_still_reach_the_page():
    def bad():
        yield "starting"
        raise InputError("project a selection first")
    with pytest.raises(gr.Error, match="project a selection first"):
        list(stoppable(bad)())


def test_only_generator_handlers_are_stoppable():
    with pytest.raises(TypeError, match="generator"):
        stoppable(lambda: None)
