"""`maskdino demo`: the offline CPU quick start (see maskdino.demo)."""

from __future__ import annotations

import argparse

from maskdino.demo import run_demo
from maskdino.devices import resolve_device


def register(sub) -> None:
    parser = sub.add_parser(
        "demo",
        help="generate synthetic shapes, train the small demo preset on them, evaluate held-out images",
    )
    parser.add_argument("--output", default="runs/demo", help="output folder (default runs/demo)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument(
        "--coco",
        action="store_true",
        help="train on the 24 bundled COCO photos instead (does not generalise)",
    )
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. solver.max_iter=100")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    run_demo(args.output, args.overrides, str(resolve_device(args.device)), coco=args.coco)
    return 0
