"""`maskdino bench`: inference and training speed and peak memory, beside peer models where available."""

from __future__ import annotations

import argparse

from maskdino.benchmark import add_arguments, run_benchmarks


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `bench` command to a CLI's subparsers."""
    parser = subparsers.add_parser(
        "bench",
        help="time inference and training and measure peak memory (prints a table, writes JSON)",
        description="Time the full inference call of presets (and a per-stage split) and training steps, "
        "each in a fresh process, with the peak memory of its calls; medians after warm-up, beside peer "
        "models (torchvision Mask R-CNN, HF Mask2Former where transformers is installed). "
        "`maskdino bench --quick` takes a few minutes on CPU.",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_benchmarks(args)
