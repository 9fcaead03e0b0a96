"""Fixtures for the engine tests: a very small Mask DINO on 96 px crops of the 6-image COCO fixture."""

from __future__ import annotations

from pathlib import Path

import pytest

from maskdino.config import Config
from maskdino.presets import get_config

# the `demo` preset shrunk further: 96 px LSJ crops, 1 encoder / 2 decoder layers, 20 queries, and the
# official frozen BN (batch statistics would differ between one process and two in the DDP test)
TINY = (
    "input.image_size=96",
    "model.backbone.resnet.norm=FrozenBN",
    "model.pixel_decoder.num_encoder_layers=1",
    "model.decoder.num_layers=2",
    "model.decoder.num_queries=20",
    "model.decoder.dn_num=5",
    "model.loss.num_points=256",
    "data.num_workers=0",
    "solver.ims_per_batch=1",
    "solver.log_period=5",
    "solver.checkpoint_period=0",
    "solver.eval_period=0",
)


@pytest.fixture(scope="session")
def coco_dir(data_dir: Path) -> Path:
    return data_dir / "pipeline" / "coco"


@pytest.fixture(autouse=True)
def one_thread(single_thread: None) -> None:
    """Every test here runs on one intra-op thread (see tests/conftest.py)."""


def tiny_config(coco_dir: Path, output_dir: Path, *overrides: str) -> Config:
    return get_config(
        "demo",
        [
            *TINY,
            f"data.train_json={coco_dir / 'instances.json'}",
            f"data.train_images={coco_dir}",
            f"output_dir={output_dir}",
            *overrides,
        ],
    )
