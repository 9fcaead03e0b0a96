"""Fixtures for the data-pipeline tests: the small real datasets copied under tests/data/pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from maskdino.data import LoadedDataset, load_coco_instances


@pytest.fixture(scope="session")
def pipeline_data(data_dir: Path) -> Path:
    return data_dir / "pipeline"


@pytest.fixture(scope="session")
def coco_dir(pipeline_data: Path) -> Path:
    return pipeline_data / "coco"


@pytest.fixture(scope="session")
def coco_dataset(coco_dir: Path) -> LoadedDataset:
    """6 real COCO images, 78 official annotations (one crowd)."""
    return load_coco_instances(coco_dir / "instances.json", coco_dir, name="coco_fixture")


def record_of(dataset: LoadedDataset, image_id: int) -> dict:
    return next(r for r in dataset.records if r["image_id"] == image_id)
