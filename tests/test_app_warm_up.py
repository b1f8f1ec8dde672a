"""The server warms its default model up while it starts (``Backend.warm_up`` in a thread of
``launch``), so the first Project is as quick as the next; a model whose weights are not on
the machine is left alone, and a warm-up that fails says so in one line and stops nothing."""

from __future__ import annotations

import pytest

from priorpaint.app import server as S
from priorpaint.app.api import Backend
from priorpaint.device import as_device
from priorpaint.models import registry


@pytest.mark.slow
def test_warm_up_loads_the_default_model_and_runs_the_hybrid(tmp_cache):
    done = Backend().warm_up()
    assert done["model"] == "dcgan-digiface-64" and done["init"] == "encoder", done
    assert done["device"] == str(as_device(None)) and done["seconds"] >= 0
    assert ("dcgan-digiface-64", str(as_device(None))) in registry._cache   # what the first request uses


def test_warm_up_leaves_a_model_that_is_not_downloaded_alone(tmp_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    done = Backend(model="stylegan2-cat-256").warm_up()
    assert set(done) == {"model", "skipped"}, done
    assert "priorpaint download stylegan2-cat-256" in done["skipped"] and "\n" not in done["skipped"]


def test_a_failing_warm_up_says_so_in_one_line(capsys):
    class Broken:
        def warm_up(self):
            raise RuntimeError("boom")

    S._warm_up(Broken())
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "warm-up failed (RuntimeError: boom)" in out


def test_the_warm_up_line_names_model_device_and_start(capsys):
    class Done:
        def warm_up(self):
            return {"model": "m", "device": "cpu", "init": "search", "seconds": 1.25}

    S._warm_up(Done())
    assert capsys.readouterr().out == "priorpaint: m loaded and warmed up on cpu (search projection) in 1.2 s\n"
