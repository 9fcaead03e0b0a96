"""`maskdino` command line: one subcommand per module in this package."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from maskdino.checkpoints.errors import WeightsError

SUBCOMMANDS = ("demo", "presets", "zoo", "train", "eval", "predict", "export", "convert", "score", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="maskdino", description="Mask DINO in plain PyTorch")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"maskdino.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, KeyError, ValueError, FloatingPointError, WeightsError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"maskdino {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
