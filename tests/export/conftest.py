"""One export per test session: the demo preset with seeded random weights (test size 128/192) written by
`maskdino export` as ONNX, and its `torch.export` program; real photos resized to the checked shapes."""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from maskdino.cli import main as cli_main
from maskdino.export import export_program
from maskdino.predictor import load_model
from tests.test_predictor import ASTRONAUT, COCO_IMAGES, save_demo_weights

SHAPES = [(1, 3, 256, 384), (1, 3, 384, 256), (2, 3, 320, 320)]  # landscape, portrait, batch 2


@pytest.fixture(scope="session")
def demo_weights(tmp_path_factory) -> Path:
    return save_demo_weights(tmp_path_factory.mktemp("export_weights") / "demo.safetensors")


@pytest.fixture(scope="session")
def demo(demo_weights):
    """(config, eval model) loaded from the weights the export read."""
    return load_model(None, demo_weights)


@pytest.fixture(scope="session")
def exported(tmp_path_factory, demo_weights) -> tuple[Path, str, list[logging.LogRecord]]:
    """`maskdino export --format onnx` with INFO logging on: (the .onnx, its stdout, exporter log records)."""
    path = tmp_path_factory.mktemp("onnx") / "demo.onnx"
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    stdout = io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout):
            code = cli_main.main(["export", "--weights", str(demo_weights), "--output", str(path)])
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert code == 0, stdout.getvalue()
    return path, stdout.getvalue(), records


@pytest.fixture(scope="session")
def program(demo) -> torch.export.ExportedProgram:
    return export_program(demo[1])


def photo_batch(shape: tuple[int, ...], cfg) -> np.ndarray:
    """`shape` `[B, 3, H, W]` of real photos (astronaut, then COCO) resized to H x W and normalised."""
    batch, _, height, width = shape
    mean = np.asarray(cfg.model.pixel_mean, np.float32)
    std = np.asarray(cfg.model.pixel_std, np.float32)
    images = []
    for path in [ASTRONAUT, *COCO_IMAGES][:batch]:
        photo = Image.open(path).convert("RGB").resize((width, height), Image.BILINEAR)
        images.append(((np.asarray(photo, np.float32) - mean) / std).transpose(2, 0, 1))
    return np.stack(images)
