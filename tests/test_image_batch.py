"""Input checking and batching: every kind of wrong image gets an error that says what to do."""

from __future__ import annotations

import pytest
import torch

from maskdino import build_model, get_config
from maskdino.image_batch import network_batches, normalize_and_pad, validate_images


@pytest.mark.parametrize(
    ("images", "message"),
    [
        ([], "empty list"),
        (torch.rand(2, 3, 64, 64), "4-D tensor; pass list"),
        ([torch.rand(1, 64, 64)], "grayscale .* img.expand"),
        ([torch.rand(4, 64, 64)], "RGBA .* img\\[:3\\]"),
        ([torch.rand(64, 64, 3)], "looks like HWC.*permute\\(2, 0, 1\\)"),
        ([torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)], "uint8.*img.float\\(\\) / 255"),
        ([torch.randint(0, 65535, (3, 64, 64), dtype=torch.int32)], "int32.*65535"),
        ([torch.rand(3, 64, 64) * 255], "0-255 data: divide by 255"),
        ([torch.rand(3, 64, 64) * 60000], "16-bit data: divide by 65535"),
        ([torch.rand(3, 20, 64)], "20x64 px; the backbone needs at least 32"),
        ([torch.rand(3, 64, 64), "photo.jpg"], "image 1 is a str"),
    ],
)
def test_bad_images_are_explained(images, message):
    with pytest.raises(ValueError, match=message):
        validate_images(images)


def test_model_rejects_bad_input_before_running():
    model = build_model(get_config("demo")).eval()
    with pytest.raises(ValueError, match="uint8"):
        model([torch.zeros(3, 64, 64, dtype=torch.uint8)])


def test_normalise_and_pad_to_a_multiple_of_32():
    mean = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)
    images = [torch.full((3, 40, 70), 0.5), torch.full((3, 65, 33), 1.0)]
    padded = normalize_and_pad(images, mean, std, 32)
    batch, sizes = padded.pixels, padded.image_sizes
    assert batch.shape == (2, 3, 96, 96) and sizes == [(40, 70), (65, 33)] and padded.padded_size == (96, 96)
    torch.testing.assert_close(batch[0, :, 0, 0], (127.5 - mean.flatten()) / std.flatten())
    assert (
        batch[0, :, 40:].abs().sum() == 0 and batch[1, :, :, 33:].abs().sum() == 0
    )  # zeros after normalising


def test_network_batches_exact_one_image_each_grouped_by_padded_size():
    sizes = [(125, 192), (171, 128), (128, 128), (128, 171), (96, 190)]
    assert network_batches(sizes, 32, "exact") == [[0], [1], [2], [3], [4]]
    # 128x192 twice; 192x128; 128x128; 96x192
    assert network_batches(sizes, 32, "grouped") == [[0, 3], [1], [2], [4]]
    assert network_batches(sizes, 0, "grouped") == [[0], [1], [2], [3], [4]]
    with pytest.raises(ValueError, match="batching='padded'; expected one of"):
        network_batches(sizes, 32, "padded")
