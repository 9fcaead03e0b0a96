"""RPN anchors as detectron2's `DefaultAnchorGenerator` makes them (the generator MIMDet's configs use).

Per level: one size, a few aspect ratios, a fixed stride from the config and offset 0. The cell anchors
are not rounded (a 32 px anchor of ratio 0.5 spans +-22.63 x +-11.31), and the grid step is the
configured stride whatever the image size (torchvision's generator rounds them and divides the padded
image size by the feature size instead, which moves P6 anchors when the padded side is not a multiple
of 64).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def cell_anchors(size: float, aspect_ratios: tuple[float, ...]) -> torch.Tensor:
    """`[A, 4]` xyxy anchors centred on 0, of area size^2 and height / width = ratio, in ratio order."""
    anchors = []
    for ratio in aspect_ratios:
        width = math.sqrt(size**2 / ratio)
        height = ratio * width
        anchors.append([-width / 2.0, -height / 2.0, width / 2.0, height / 2.0])
    return torch.tensor(anchors, dtype=torch.float32)


class AnchorGenerator(nn.Module):
    """Anchors of every level's grid: `[H * W * A, 4]` xyxy per level, location-major (row, column),
    anchor-minor, which is the order of the RPN head's outputs after `permute(0, 2, 3, 1)`."""

    def __init__(
        self,
        sizes: tuple[float, ...],
        aspect_ratios: tuple[float, ...],
        strides: tuple[int, ...],
        offset: float = 0.0,
    ):
        super().__init__()
        if len(sizes) != len(strides):
            raise ValueError(f"one anchor size per level is needed: sizes {sizes} vs strides {strides}")
        self.strides = tuple(strides)
        self.offset = offset
        self.num_anchors = len(aspect_ratios)
        for level, size in enumerate(sizes):
            # rebuilt from the config, so not saved (detectron2 does not save its cell anchors either)
            self.register_buffer(f"cell_{level}", cell_anchors(size, aspect_ratios), persistent=False)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """`features` one `[B, C, H, W]` map per level -> one `[H * W * A, 4]` anchor tensor per level."""
        if len(features) != len(self.strides):
            raise ValueError(f"expected {len(self.strides)} feature levels, got {len(features)}")
        anchors = []
        for level, (feature, stride) in enumerate(zip(features, self.strides)):
            height, width = feature.shape[-2:]
            cell = getattr(self, f"cell_{level}")
            xs = torch.arange(self.offset * stride, width * stride, step=stride, dtype=torch.float32)
            ys = torch.arange(self.offset * stride, height * stride, step=stride, dtype=torch.float32)
            grid_y, grid_x = torch.meshgrid(ys.to(cell.device), xs.to(cell.device), indexing="ij")
            shifts = torch.stack([grid_x, grid_y, grid_x, grid_y], dim=-1).reshape(-1, 1, 4)  # [H*W, 1, 4]
            anchors.append((shifts + cell[None]).reshape(-1, 4))  # [H*W*A, 4]
        return anchors
