"""Shared test fixtures: paths to the small bundled data and the official reference artefacts."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
REPO = TESTS.parent


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA
