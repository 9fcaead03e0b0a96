"""Checking, normalising and padding a list of input images into one batch, as the official model does,
and splitting a list of images into the batches the network runs (`network_batches`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from maskdino.data.loader import pad_images

MIN_SIDE = 32
Batching = Literal["exact", "grouped"]
BATCHING_MODES: tuple[Batching, ...] = ("exact", "grouped")


def validate_images(images: list[torch.Tensor] | tuple[torch.Tensor, ...]) -> None:
    """Raise a ValueError that says what is wrong and how to fix it unless every image is float RGB
    `[3, H, W]` in [0, 1] with both sides >= 32 px."""
    if isinstance(images, torch.Tensor):
        if images.dim() == 4:
            raise ValueError(
                "model expects a list of [3, H, W] tensors, got one 4-D tensor; pass list(batch) instead"
            )
        raise ValueError(
            f"model expects a list of [3, H, W] tensors, got a tensor of shape {tuple(images.shape)}"
        )
    if len(images) == 0:
        raise ValueError("model got an empty list of images; pass at least one [3, H, W] tensor")
    for i, img in enumerate(images):
        where = f"image {i}"
        if not isinstance(img, torch.Tensor):
            raise ValueError(
                f"{where} is a {type(img).__name__}, expected a torch.Tensor [3, H, W] in [0, 1]"
            )
        if img.dim() != 3:
            raise ValueError(f"{where} has shape {tuple(img.shape)}; expected [3, H, W] (one RGB image)")
        if img.shape[0] != 3:
            if img.shape[-1] in (1, 3, 4) and img.shape[0] not in (1, 3, 4):
                raise ValueError(
                    f"{where} has shape {tuple(img.shape)}, which looks like HWC; expected CHW: use img.permute(2, 0, 1)"
                )
            kind = {1: "grayscale", 4: "RGBA"}.get(img.shape[0], f"{img.shape[0]}-channel")
            fix = {
                1: "repeat the channel: img.expand(3, -1, -1)",
                4: "drop or composite the alpha channel: img[:3]",
            }.get(img.shape[0], "convert it to 3-channel RGB")
            raise ValueError(f"{where} is {kind} (shape {tuple(img.shape)}); expected 3 RGB channels: {fix}")
        if not img.is_floating_point():
            hint = "img.float() / 255" if img.dtype == torch.uint8 else "img.float() / 65535 for 16-bit data"
            raise ValueError(f"{where} has dtype {img.dtype}; expected float values in [0, 1]: use {hint}")
        if min(img.shape[1:]) < MIN_SIDE:
            raise ValueError(
                f"{where} is {img.shape[1]}x{img.shape[2]} px; the backbone needs at least {MIN_SIDE} px per side "
                "(resize it up, e.g. with the preset's test resize)"
            )
        if torch.compiler.is_compiling():
            continue  # value checks read tensor data, which a traced graph cannot branch on
        low, high = float(img.min()), float(img.max())
        if low < -1e-3 or high > 1 + 1e-3:
            hint = (
                "it looks like 0-255 data: divide by 255"
                if high <= 255.5
                else "it looks like 16-bit data: divide by 65535"
            )
            raise ValueError(f"{where} has values in [{low:.3g}, {high:.3g}]; expected [0, 1] ({hint})")


@dataclass
class ImageBatch:
    """The network's input: `pixels` `[B, 3, Hp, Wp]` normalised and zero-padded at the bottom/right, and
    the (H, W) each image occupies in it."""

    pixels: torch.Tensor
    image_sizes: list[tuple[int, int]]

    @property
    def padded_size(self) -> tuple[int, int]:
        return int(self.pixels.shape[-2]), int(self.pixels.shape[-1])


def normalize_and_pad(
    images: list[torch.Tensor], pixel_mean: torch.Tensor, pixel_std: torch.Tensor, size_divisibility: int
) -> ImageBatch:
    """Scale [0, 1] images to 0-255, normalise per channel, pad bottom/right with zeros to a common size
    divisible by `size_divisibility`."""
    pixels, sizes = pad_images([(img * 255.0 - pixel_mean) / pixel_std for img in images], size_divisibility)
    return ImageBatch(pixels, sizes)


def padded_size(height: int, width: int, size_divisibility: int) -> tuple[int, int]:
    """(H, W) rounded up to a multiple of `size_divisibility` (<= 0: unchanged)."""
    if size_divisibility <= 0:
        return height, width
    return -(-height // size_divisibility) * size_divisibility, -(
        -width // size_divisibility
    ) * size_divisibility


def group_by_padded_size(sizes: list[tuple[int, int]], size_divisibility: int) -> list[list[int]]:
    """Indices of the images that pad to the same size, one list per size in order of first appearance.

    Mask DINO's encoder sees the zero padding (the official model masks none of it), so an image padded
    to a larger batch neighbour's size gives different results than alone. Images that pad to the same
    size see exactly the input they would see alone: running each group as one batch keeps every result
    equal to the image's own.
    """
    groups: dict[tuple[int, int], list[int]] = {}
    for index, (height, width) in enumerate(sizes):
        groups.setdefault(padded_size(height, width, size_divisibility), []).append(index)
    return list(groups.values())


def network_batches(
    sizes: list[tuple[int, int]], size_divisibility: int, batching: Batching
) -> list[list[int]]:
    """Indices of the images that go through the network together.

    exact: one image per pass, so every result is bitwise the image's own (the official batch-size-1
    result). grouped: the images that pad to the same size share a pass (`group_by_padded_size`); results
    equal each image's own to float rounding (batched kernels sum in another order: ~1e-6 in the logits,
    so a mask pixel whose logit is that close to 0 can flip).
    """
    if batching == "exact":
        return [[i] for i in range(len(sizes))]
    if batching == "grouped":
        return group_by_padded_size(sizes, size_divisibility)
    raise ValueError(f"batching={batching!r}; expected one of {BATCHING_MODES}")
