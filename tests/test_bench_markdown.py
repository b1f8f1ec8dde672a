"""``priorpaint bench --markdown``: the report as a well-formed markdown page (docs/benchmarks.md)."""

from __future__ import annotations

import json
import re

from priorpaint import bench
from priorpaint.bench import markdown
from priorpaint.cli import main


def _cells(line: str):
    """The cells of a markdown table row (an escaped ``\\|`` stays inside its cell)."""
    assert line.startswith("|") and line.endswith("|"), line
    return re.split(r"(?<!\\)\|", line[1:-1])


def _tables(page: str):
    """Every table of the page as (header, rows); checks each row has the header's column count."""
    tables, lines, i = [], page.splitlines(), 0
    while i < len(lines):
        if lines[i].startswith("|"):
            header = _cells(lines[i])
            sep = _cells(lines[i + 1])
            assert len(sep) == len(header) and all(c.strip() == "---" for c in sep), lines[i + 1]
            rows, i = [], i + 2
            while i < len(lines) and lines[i].startswith("|"):
                row = _cells(lines[i])
                assert len(row) == len(header), lines[i]
                rows.append([c.strip() for c in row])
                i += 1
            assert i == len(lines) or lines[i] == "", "a table ends with a blank line"
            tables.append(([c.strip() for c in header], rows))
        else:
            i += 1
    return tables


def _check_page(page: str, sections):
    lines = page.splitlines()
    assert lines[0] == "# Benchmarks"
    headings = [line for line in lines if line.startswith("## ")]
    assert headings == ["## Machine"] + [f"## {name}" for name in sections]
    machine = dict(_tables(page)[0][1])
    for key in ("date", "cpu", "cores", "torch", "device", "load average before (1, 5, 15 min)",
                "load average after (1, 5, 15 min)"):
        assert machine.get(key), key
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", machine["date"])
    assert all(not line.startswith("#") or re.match(r"#{1,4} \S", line) for line in lines)
    return machine


def test_markdown_writes_a_well_formed_page_for_one_small_section(tmp_path, capsys):
    out, js = tmp_path / "docs" / "benchmarks.md", tmp_path / "b.json"
    assert main(["bench", "--only", "projection", "--steps", "5", "--json", str(js), "--markdown", str(out)]) == 0
    report = json.loads(js.read_text())
    assert json.loads(capsys.readouterr().out) == report      # the JSON is still printed
    page = out.read_text(encoding="utf-8")
    machine = _check_page(page, ["projection"])
    assert machine["cores"].isdigit() and machine["device"] == report["projection"]["device"]
    assert f"--only projection --steps 5 --markdown {out}" in page
    assert "Not in this page:" in page and "`security`" in page
    figures = {}
    for header, rows in _tables(page)[1:]:
        figures.update(dict(rows))
    assert figures["psnr"] == str(report["projection"]["psnr"])
    assert figures["changed_outside_mask"] == "0"


def test_markdown_without_a_file_prints_the_page_instead_of_the_json(monkeypatch, capsys):
    class Fake(bench.Section):
        def load(self):
            def run(report, args):
                report["fake"] = {"n": 3, "ok": True, "note": "a | b\nc", "per_photo": {"a": {"db": 30.1}, "b": {"db": 28.0, "s": 1.5}},
                                  "deep": {"a": {"b": {"c": 1}}},
                                  "rows": [{"x": 1}, {"x": 2, "y": [1, 2]}], "none": None}
                report["fake_extra"] = 7
            return run
    monkeypatch.setattr(bench, "SECTIONS", [Fake("fake", "fake", "one fake section")])
    assert main(["bench", "--markdown"]) == 0
    page = capsys.readouterr().out
    _check_page(page, ["fake"])
    assert "one fake section" in page and "Not in this page" not in page
    tables = dict((tuple(h), r) for h, r in _tables(page))
    assert ["note", "a \\| b c"] in [r for h, rows in _tables(page) for r in rows]
    assert "#### fake › per_photo" in page and "#### fake › rows" in page
    assert tables[("", "db", "s")] == [["a", "30.1", "—"], ["b", "28.0", "1.5"]]     # a row per photo
    assert ["a", '`{"b": {"c": 1}}`'] in [r for h, rows in _tables(page) for r in rows]     # deeper: inline JSON
    assert tables[("x", "y")] == [["1", "—"], ["2", "1, 2"]]
    assert ["fake_extra", "7"] in [r for h, rows in _tables(page) for r in rows]


def test_markdown_reads_the_machine_without_torch_too():
    info = markdown.machine()
    assert info["cores"] and info["cpu"] and re.fullmatch(r"\d+\.\d+\.\d+", info["python"])
