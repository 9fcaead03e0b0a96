"""Fixtures for backbone tests: the official state-dict inventories of the backbones."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def official_backbone_keys(data_dir: Path) -> dict[str, list[tuple[str, tuple[int, ...], str]]]:
    """{config: [(name, shape, dtype), ...]}: the official `backbone.*` entries with the prefix dropped."""
    with gzip.open(data_dir / "backbones" / "official_backbone_keys.json.gz", "rt") as f:
        inventories = json.load(f)
    return {
        config: [
            (name.removeprefix("backbone."), tuple(shape), dtype) for name, shape, dtype in entry["keys"]
        ]
        for config, entry in inventories.items()
    }
