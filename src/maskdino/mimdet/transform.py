"""Image batching for the MIMDet detectors: normalise and pad; map detections back to output sizes.

As for Mask DINO, images arrive at the network's size: augmented by the training pipeline, or resized
by the test mapper / predictor (`input.min_size_test`, `input.max_size_test`). Detections are mapped
back to the requested output sizes (the original images).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.detection.roi_heads import paste_masks_in_image


class DetectionTransform(nn.Module):
    """Batch `[3, H, W]` images in [0, 1] into a normalised, zero-padded `[B, 3, H', W']` tensor.

    H', W' are the largest sizes rounded up to `size_divisibility`, or `fixed_input_size` when set.
    """

    def __init__(
        self,
        pixel_mean: tuple[float, ...],
        pixel_std: tuple[float, ...],
        size_divisibility: int,
        fixed_input_size: int | None = None,
    ):
        super().__init__()
        # the official means/stds are on the 0-255 scale of RGB images
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1) / 255.0, persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1) / 255.0, persistent=False)
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
            normalised.append((image.to(self.pixel_mean) - self.pixel_mean) / self.pixel_std)
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
                    "resize it first (LSJ and the test resize with input.max_size_test do)"
                )
            return self.fixed_input_size, self.fixed_input_size
        div = self.size_divisibility
        if div <= 0:
            return height, width
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
