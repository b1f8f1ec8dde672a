"""The ``verdict`` endpoint's contract: whether an edit can be carried on this photo, said before
the user renders (issue 23 item 3).  Parsing is checked here without a server; the live endpoint
with the real gradio_client in tests/test_app_api.py."""

from __future__ import annotations

import json

import pytest

from priorpaint.app import contract as C
from priorpaint.app.verdict import VerdictRequest
from priorpaint.errors import InputError


def test_verdict_request_defaults_and_options():
    r = VerdictRequest.parse("S", "[]")
    assert r.composite is C.Composite.DETAIL and r.size == C.VERDICT_DEFAULT_SIZE == 256 and r.edits == ()
    r = VerdictRequest.parse("S", json.dumps(["direction:head_turn=2"]), json.dumps({"composite": "replace", "size": 64}))
    assert r.composite is C.Composite.REPLACE and r.size == 64 and r.edits[0]["kind"] == "direction"


def test_capabilities_declare_the_verdict_options():
    caps = C.capabilities(10, 100)
    assert caps["verdict"] == {"options": ["composite", "size"], "default_size": 256, "min_size": 16,
                               "max_size": C.PREVIEW_MAX_SIZE}


@pytest.mark.parametrize("options,message", [
    ("[1]", "verdict options must be a JSON object"),
    ("{nope", "verdict options must be a JSON object"),
    (json.dumps({"zoom": 2}), "unknown: zoom"),
    (json.dumps({"size": 8}), "verdict size must be between 16 and 1024"),
    (json.dumps({"size": 2048}), "verdict size must be between 16 and 1024"),
    (json.dumps({"composite": "blend"}), "composite must be one of detail, replace"),
])
def test_bad_verdict_options_get_one_line(options, message):
    with pytest.raises(InputError, match=message) as e:
        VerdictRequest.parse("S", "[]", options)
    assert "\n" not in str(e.value)


def test_bad_verdict_edits_get_one_line():
    with pytest.raises(InputError, match="unknown edit kind") as e:
        VerdictRequest.parse("S", json.dumps([{"kind": "nope"}]))
    assert "\n" not in str(e.value)
