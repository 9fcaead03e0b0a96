"""Shared test fixtures: paths to the small bundled data and the official reference artefacts, one thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
REPO = TESTS.parent


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture
def single_thread() -> Iterator[None]:
    """One intra-op thread: tiny models run faster on a shared CPU and give the same floats each run.
    The engine and MIMDet tests use it for every test (their conftests make it autouse)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
