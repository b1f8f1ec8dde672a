"""The ``priorpaint`` command line: the parser, :func:`main`, and one module per command.

Each command module has ``add_parser(subparsers)``; the modules are listed, in the order
``--help`` shows them, in :data:`COMMANDS`.  Command modules import the engine lazily, so
``priorpaint --help`` stays fast.  Every user-facing error is one line on stderr and exit
code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from .. import __version__
from ..errors import PriorpaintError
from . import batch, bench, concepts, convert, directions, download, edit, gimp, models, segment, serve, train_encoder

#: the command modules, in the order ``priorpaint --help`` lists them
COMMANDS = [models, download, edit, batch, directions, concepts, segment, train_encoder, convert, serve, gimp, bench]

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="priorpaint",
        description="Semantic photo editing with a generative image prior: project a selection "
                    "into a GAN, edit it semantically, and composite the result back.")
    parser.add_argument("--version", action="version", version=f"priorpaint {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and notices")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except PriorpaintError as e:
        print(f"priorpaint: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("priorpaint: interrupted", file=sys.stderr)
        return 130
