"""Fixtures for the command-line tests: the CLI run in-process, and demo-preset weights on disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from maskdino.cli import main as cli_main
from tests.test_predictor import save_demo_weights


@pytest.fixture
def maskdino(capsys) -> Callable[..., tuple[int, str, str]]:
    """Run `maskdino ARGS...` in-process; returns (exit code, stdout, stderr)."""

    def run(*args) -> tuple[int, str, str]:
        code = cli_main.main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return save_demo_weights(tmp_path_factory.mktemp("weights") / "demo.safetensors")
