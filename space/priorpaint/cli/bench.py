"""``priorpaint bench``: the benchmark figures (quality in dB, seconds per stage, peak memory)."""

from __future__ import annotations


def cmd_bench(args) -> int:
    from ..bench import run
    return run(args)


def add_parser(sub) -> None:
    from ..bench import add_arguments
    p = sub.add_parser("bench", help="measure the benchmark figures (quality in dB, seconds per stage, peak memory) "
                                       "and print them as JSON or a markdown page (docs/benchmarks.md)")
    add_arguments(p)
    p.set_defaults(func=cmd_bench)
