"""Image batching for the MIMDet detectors: normalise, resize at inference, pad; map detections back.

Training images arrive already augmented (multi-scale + crop, or LSJ) from the data pipeline, so they are
only normalised and padded. At inference each image is resized as the official test mapper does
(shortest edge `min_size_test`, longest at most `max_size_test`) and detections are mapped back to the
requested output size.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models.detection.roi_heads import paste_masks_in_image


def resized_size(height: int, width: int, min_size: int, max_size: int) -> tuple[int, int]:
    """detectron2 `ResizeShortestEdge` size: shortest edge to min_size, unless the longest passes max_size."""
    scale = min(min_size / min(height, width), max_size / max(height, width))
    return int(height * scale + 0.5), int(width * scale + 0.5)


class DetectionTransform(nn.Module):
    """Batch `[3, H, W]` images in [0, 1] into a normalised, zero-padded `[B, 3, H', W']` tensor."""

    def __init__(
        self,
        pixel_mean: tuple[float, ...],
        pixel_std: tuple[float, ...],
        min_size_test: int,
        max_size_test: int,
        size_divisibility: int,
        fixed_input_size: int | None = None,
    ):
        super().__init__()
        # the official means/stds are on the 0-255 scale of RGB images
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1) / 255.0, persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1) / 255.0, persistent=False)
        self.min_size_test = min_size_test
        self.max_size_test = max_size_test
        self.size_divisibility = size_divisibility
        self.fixed_input_size = fixed_input_size

    def forward(self, images: list[torch.Tensor]) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """Returns the padded batch and each image's (h, w) inside it."""
        if not isinstance(images, list | tuple) or not images:
            raise TypeError("images must be a non-empty list of [3, H, W] float tensors in [0, 1]")
        normalised = []
        for i, image in enumerate(images):
            if image.dim() != 3 or image.shape[0] != 3 or not image.is_floating_point():
                raise ValueError(
                    f"images[{i}] must be a [3, H, W] float RGB tensor in [0, 1], got {tuple(image.shape)} "
                    f"{image.dtype}; convert uint8 images with image.float() / 255"
                )
            if not self.training:
                size = resized_size(*image.shape[-2:], self.min_size_test, self.max_size_test)
                if size != tuple(image.shape[-2:]):
                    # antialiased bilinear, like the PIL resize of the official test mapper
                    image = F.interpolate(image[None], size=size, mode="bilinear", antialias=True)[0]
            normalised.append((image - self.pixel_mean) / self.pixel_std)
        sizes = [(int(img.shape[1]), int(img.shape[2])) for img in normalised]
        height, width = self.padded_size(sizes)
        batch = normalised[0].new_zeros(len(normalised), 3, height, width)
        for image, slot in zip(normalised, batch):
            slot[:, : image.shape[1], : image.shape[2]].copy_(image)
        return batch, sizes

    def padded_size(self, sizes: list[tuple[int, int]]) -> tuple[int, int]:
        height, width = max(h for h, _ in sizes), max(w for _, w in sizes)
        if self.fixed_input_size is not None:
            if max(height, width) > self.fixed_input_size:
                raise ValueError(
                    f"an image of {height}x{width} exceeds the fixed input size {self.fixed_input_size}; "
                    "resize/crop it first (LSJ does) or raise MaskRCNNConfig.fixed_input_size"
                )
            return self.fixed_input_size, self.fixed_input_size
        div = self.size_divisibility
        return -(-height // div) * div, -(-width // div) * div

    def postprocess(
        self,
        detections: list[dict[str, torch.Tensor]],
        image_sizes: list[tuple[int, int]],
        output_sizes: list[tuple[int, int]],
    ) -> list[dict[str, torch.Tensor]]:
        """Scale boxes from the network's image size to `output_sizes`, paste masks there (bool, > 0.5)."""
        results = []
        for det, (h, w), (out_h, out_w) in zip(detections, image_sizes, output_sizes):
            scale = det["boxes"].new_tensor([out_w / w, out_h / h, out_w / w, out_h / h])
            boxes = det["boxes"] * scale
            result = {"boxes": boxes, "labels": det["labels"] - 1, "scores": det["scores"]}
            if "masks" in det:
                masks = paste_masks_in_image(det["masks"], boxes, (out_h, out_w))  # [N, 1, out_h, out_w]
                result["masks"] = masks[:, 0] > 0.5
            results.append(result)
        return results
