"""Paths to the evaluation fixtures copied under tests/data/eval (see its SOURCE.md)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def eval_data(data_dir: Path) -> Path:
    return data_dir / "eval"
