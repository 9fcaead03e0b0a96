"""The demo model with seeded random weights and a real photo prepared as the exported model's input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from maskdino import build_model, get_config
from maskdino.config import Config
from maskdino.data.image_io import load_rgb_image
from maskdino.export import prepare_input

ASTRONAUT = Path(__file__).resolve().parents[1] / "data" / "astronaut.png"
HEIGHT, WIDTH = (
    128,
    192,
)  # export size: small enough for a fast CPU test, >= 50 encoder tokens for the queries


@pytest.fixture(scope="module")
def demo_cfg() -> Config:
    return get_config("demo", [f"input.min_size_test={HEIGHT}", f"input.max_size_test={WIDTH}"])


@pytest.fixture(scope="module")
def demo_model(demo_cfg) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(demo_cfg).eval()


@pytest.fixture(scope="module")
def astronaut_batch(demo_cfg) -> np.ndarray:
    """astronaut.png (512x512) resized to 128x128 at the top left of a zero-padded 128x192 canvas."""
    image, _ = load_rgb_image(ASTRONAUT)
    batch, _ = prepare_input(image, demo_cfg, HEIGHT, WIDTH)
    return batch
