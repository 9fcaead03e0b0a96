"""Files shipped with the package: `demo_assets()` is the folder of the bundled COCO photos (32 COCO 2017
images with their official instance annotations, split 24 / 8 in `instances_train.json` /
`instances_val.json`; see its SOURCE.md), used by `maskdino demo --coco`, `export` and `bench`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def demo_assets() -> Path:
    """The folder of the bundled COCO photos and their annotation files."""
    return Path(str(resources.files("maskdino") / "assets" / "coco_demo"))
