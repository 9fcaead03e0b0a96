"""`maskdino` command line: one subcommand per module in this package.

This is the one place that decides how errors look. A user error (a bad path, an unreadable or
unwritable file, an impossible config value, a missing device, weights that do not fit) is printed as
one `maskdino <command>: error: ...` message that names the file or key and the fix, with exit code 2
and no traceback; `--debug` (or MASKDINO_DEBUG=1) shows the traceback too. Anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from maskdino.checkpoints.errors import WeightsError

SUBCOMMANDS = (
    "demo",
    "synth",
    "presets",
    "zoo",
    "train",
    "eval",
    "predict",
    "export",
    "convert",
    "score",
    "bench",
)
DEBUG_ENV = "MASKDINO_DEBUG"
# OSError covers missing, unreadable and unwritable files, undecodable images and a full disk
USER_ERRORS = (OSError, KeyError, ValueError, FloatingPointError, WeightsError)
DEBUG_HELP = f"show the traceback of errors (also {DEBUG_ENV}=1)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="maskdino", description="Mask DINO in plain PyTorch")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"maskdino.cli.{name}").register(sub)
    for subparser in sub.choices.values():  # `maskdino train ... --debug` works too
        subparser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as err:
        if args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"maskdino {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
