"""The benchmark entry point: Mask DINO presets beside torchvision Mask R-CNN and HF Mask2Former.

Inference (the full `model(images)` call) at batch 1 and 4 on bundled COCO photos resized to 800 x 1200,
a per-stage split at batch 1, and training steps on 1024 x 1024 LSJ crops; medians after warm-up, peak
memory per workload in a fresh process. Prints tables, writes JSON (see `maskdino.benchmark`).

    python -m benchmarks.run --quick                      # a few minutes on CPU
    python -m benchmarks.run                              # all presets, batch 1 and 4
    python -m benchmarks.run --presets r50_ins_4s --batches 1 --peers maskrcnn --train-presets

`maskdino bench` takes the same options.
"""

from __future__ import annotations

import argparse
import sys

from benchmarks.peers import PEERS
from maskdino.benchmark import add_arguments, run_benchmarks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run_benchmarks(parser.parse_args(argv), PEERS)


if __name__ == "__main__":
    sys.exit(main())
