"""Fixtures for the MIMDet tests: one intra-op thread, the official state-dict inventories."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def one_thread(single_thread: None) -> None:
    """Every test here runs on one intra-op thread (see tests/conftest.py)."""


@pytest.fixture(scope="session")
def official_keys(data_dir: Path) -> dict[str, list[tuple[str, tuple[int, ...], str]]]:
    """{official config name: [(name, shape, dtype)]} of hustvl/MIMDet's detectors (see SOURCE.md)."""
    with gzip.open(data_dir / "mimdet" / "official_keys.json.gz", "rt") as f:
        inventories = json.load(f)
    return {
        name: [(key, tuple(shape), dtype) for key, shape, dtype in keys] for name, keys in inventories.items()
    }
