"""`maskdino demo`: the offline CPU quick start on the bundled COCO images (see maskdino.demo)."""

from __future__ import annotations

import argparse

from maskdino.demo import run_demo
from maskdino.devices import resolve_device


def register(sub) -> None:
    parser = sub.add_parser("demo", help="train + evaluate + predict the small demo preset on bundled images")
    parser.add_argument("--output", default="runs/demo", help="output folder (default runs/demo)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. solver.max_iter=100")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    run_demo(args.output, args.overrides, str(resolve_device(args.device)))
    return 0
