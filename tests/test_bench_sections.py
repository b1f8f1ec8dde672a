"""Every ``priorpaint bench`` section completes at its smallest setting.

A bench run that crashes (a section raising, a server it starts dying) must be a failing test,
not a surprise when someone runs the benchmark. The test iterates over the registry
(:data:`priorpaint.bench.SECTIONS`), so a new section is covered the day it is registered, and
runs each one as the command line does (``priorpaint bench --only NAME --smallest``: the options
its registry entry declares for its cheapest run), in a process of its own and an empty folder.
Nothing here looks at the figures' values or at how long a section takes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from priorpaint.bench import SECTIONS

pytestmark = pytest.mark.slow


def test_every_section_declares_a_smallest_setting():
    import argparse

    from priorpaint.bench import add_arguments

    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["--smallest"])
    for section in SECTIONS:
        assert section.smallest, f"section {section.name} declares no smallest setting"
        merged = section.args_for(args)
        assert all(getattr(merged, k) == v for k, v in section.smallest.items())
    # without --smallest the options are the user's
    plain = p.parse_args(["--steps", "7"])
    assert all(s.args_for(plain).steps == 7 for s in SECTIONS)


@pytest.mark.parametrize("name", [s.name for s in SECTIONS])
def test_the_section_completes_at_its_smallest_setting(name, tmp_path):
    out = tmp_path / "report.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", PRIORPAINT_CACHE=str(tmp_path / "cache"),
               GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
    env.pop("PRIORPAINT_MANIFEST_DIR", None)
    r = subprocess.run([sys.executable, "-m", "priorpaint.cli", "bench", "--only", name, "--smallest",
                        "--json", str(out)], capture_output=True, text=True, timeout=1800, cwd=str(tmp_path),
                       env=env)
    assert r.returncode == 0, f"bench section {name} failed:\n{r.stderr[-6000:]}"
    report = json.loads(out.read_text())
    # the section added its figures: something beyond the run's own keys
    assert set(report) - {"threads", "cpu_count", "peak_rss_mb"}, report
