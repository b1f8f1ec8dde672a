"""``priorpaint bench``: the benchmark figures (quality in dB, seconds per stage, peak memory)."""

from __future__ import annotations


def cmd_bench(args) -> int:
    from ..bench import run
    return run(args)


def add_parser(sub) -> None:
    from ..bench import add_arguments
    p = sub.add_parser("bench", help="print the benchmark figures (quality in dB, seconds per stage, peak memory)")
    add_arguments(p)
    p.set_defaults(func=cmd_bench)
