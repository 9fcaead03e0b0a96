"""The quick start (`maskdino demo`, `make demo`): train the small `demo` preset on CPU, offline, and show
what it learned.

* `run_synthetic_demo` (the default): generate the synthetic shapes dataset (`maskdino.data.synthetic`),
  train on its panoptic annotations, and evaluate one model on held-out images for all three tasks:
  instance (mask and box AP), panoptic (PQ) and semantic (mIoU) segmentation.
* `run_coco_demo` (`--coco`): the same pipeline on the bundled COCO photos, which a few CPU minutes
  cannot teach to generalise.
"""

from __future__ import annotations

from pathlib import Path

from maskdino.demo.coco import run_coco_demo
from maskdino.demo.shapes import run_synthetic_demo


def run_demo(
    output: str | Path, overrides: list[str] | None = None, device: str = "cpu", coco: bool = False
) -> dict:
    """Train, evaluate and draw into `output` (synthetic shapes, or the bundled COCO images with `coco`)."""
    if coco:
        return run_coco_demo(output, overrides, device)
    return run_synthetic_demo(output, overrides, device)


__all__ = ["run_coco_demo", "run_demo", "run_synthetic_demo"]
