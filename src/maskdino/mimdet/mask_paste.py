"""Pasting R-CNN mask probabilities into the image, as detectron2's `paste_masks_in_image` does.

Every image pixel centre (x + 0.5, y + 0.5) inside or near a box is mapped into the box's M x M mask
and sampled bilinearly with `grid_sample` (zeros outside the mask, `align_corners=False`); a pixel is
on where the sample is >= threshold. On the CPU each mask is pasted alone over the pixels its box
touches (plus one pixel each side), on a GPU whole-image chunks of masks up to ~1 GB at a time; both
give the same masks. (torchvision's `paste_masks_in_image` resizes a padded mask to the rounded box
instead, which moves the edges by up to a pixel.)
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

GPU_CHUNK_BYTES = 1 << 30  # detectron2's memory limit for one chunk of whole-image float masks


def _paste(
    masks: torch.Tensor, boxes: torch.Tensor, rows: tuple[int, int], cols: tuple[int, int]
) -> torch.Tensor:
    """`masks` `[N, 1, M, M]` sampled at the pixel centres of the window rows x cols -> `[N, h, w]`."""
    x0, y0, x1, y1 = boxes.split(1, dim=1)  # each [N, 1]
    ys = torch.arange(*rows, device=boxes.device, dtype=torch.float32) + 0.5
    xs = torch.arange(*cols, device=boxes.device, dtype=torch.float32) + 0.5
    ys = (ys - y0) / (y1 - y0) * 2 - 1  # [N, h], -1..1 across the box
    xs = (xs - x0) / (x1 - x0) * 2 - 1  # [N, w]
    grid = torch.stack(
        [xs[:, None, :].expand(-1, ys.shape[1], -1), ys[:, :, None].expand(-1, -1, xs.shape[1])], dim=3
    )  # [N, h, w, 2]
    return F.grid_sample(masks, grid.to(masks.dtype), align_corners=False)[:, 0]


def paste_masks_in_image(
    masks: torch.Tensor,
    boxes: torch.Tensor,
    image_size: tuple[int, int],
    threshold: float = 0.5,
    per_box: bool | None = None,
) -> torch.Tensor:
    """`masks` `[N, M, M]` probabilities, `boxes` `[N, 4]` xyxy in image pixels -> bool `[N, H, W]`.

    `per_box`: paste each mask over its box's window (default on the CPU) or whole-image chunks."""
    if masks.shape[-1] != masks.shape[-2]:
        raise ValueError(f"masks must be square, got {tuple(masks.shape)}")
    height, width = image_size
    count = len(masks)
    pasted = torch.zeros(count, height, width, dtype=torch.bool, device=boxes.device)
    if count == 0:
        return pasted
    masks = masks[:, None].float()  # [N, 1, M, M]
    boxes = boxes.float()
    if per_box is None:
        per_box = boxes.device.type == "cpu"
    if per_box:
        for i, (left, top, right, bottom) in enumerate(boxes.tolist()):
            x0, y0 = max(math.floor(left) - 1, 0), max(math.floor(top) - 1, 0)
            x1, y1 = min(math.ceil(right) + 1, width), min(math.ceil(bottom) + 1, height)
            if x1 > x0 and y1 > y0:
                window = _paste(masks[i : i + 1], boxes[i : i + 1], (y0, y1), (x0, x1))
                pasted[i, y0:y1, x0:x1] = window[0] >= threshold
        return pasted
    chunks = min(count, math.ceil(count * height * width * 4 / GPU_CHUNK_BYTES))
    for index in torch.arange(count, device=boxes.device).chunk(chunks):
        pasted[index] = _paste(masks[index], boxes[index], (0, height), (0, width)) >= threshold
    return pasted
