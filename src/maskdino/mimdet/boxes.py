"""Box arithmetic of detectron2's R-CNN inference: delta decoding, clipping, the non-empty test."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# the largest log-scale a delta may apply: a box grows at most 1000/16 times (detectron2's default)
SCALE_CLAMP = math.log(1000.0 / 16)


@dataclass(frozen=True)
class BoxDecoder:
    """detectron2's `Box2BoxTransform.apply_deltas`: (dx, dy, dw, dh) / weights applied to xyxy boxes,
    with dw, dh clamped at `scale_clamp`."""

    weights: tuple[float, float, float, float]
    scale_clamp: float = SCALE_CLAMP

    def __call__(self, deltas: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """`deltas` `[N, 4 K]` (K boxes per row, e.g. one per class), `boxes` `[N, 4]` -> `[N, 4 K]`."""
        deltas = deltas.float()
        boxes = boxes.to(deltas.dtype)
        widths = boxes[:, 2] - boxes[:, 0]
        heights = boxes[:, 3] - boxes[:, 1]
        ctr_x = boxes[:, 0] + 0.5 * widths
        ctr_y = boxes[:, 1] + 0.5 * heights
        wx, wy, ww, wh = self.weights
        dx = deltas[:, 0::4] / wx  # [N, K]
        dy = deltas[:, 1::4] / wy
        dw = (deltas[:, 2::4] / ww).clamp(max=self.scale_clamp)
        dh = (deltas[:, 3::4] / wh).clamp(max=self.scale_clamp)
        pred_ctr_x = dx * widths[:, None] + ctr_x[:, None]
        pred_ctr_y = dy * heights[:, None] + ctr_y[:, None]
        pred_w = torch.exp(dw) * widths[:, None]
        pred_h = torch.exp(dh) * heights[:, None]
        x1 = pred_ctr_x - 0.5 * pred_w
        y1 = pred_ctr_y - 0.5 * pred_h
        x2 = pred_ctr_x + 0.5 * pred_w
        y2 = pred_ctr_y + 0.5 * pred_h
        return torch.stack([x1, y1, x2, y2], dim=-1).reshape(deltas.shape)  # [N, K, 4] -> [N, 4 K]


def clip_boxes(boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Clamp `[..., 4]` xyxy boxes to x in [0, w], y in [0, h] (detectron2 `Boxes.clip`)."""
    height, width = size
    x1 = boxes[..., 0].clamp(min=0, max=width)
    y1 = boxes[..., 1].clamp(min=0, max=height)
    x2 = boxes[..., 2].clamp(min=0, max=width)
    y2 = boxes[..., 3].clamp(min=0, max=height)
    return torch.stack([x1, y1, x2, y2], dim=-1)


def nonempty(boxes: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """`[N]` bool: width and height both above `threshold` (detectron2 `Boxes.nonempty`)."""
    return (boxes[:, 2] - boxes[:, 0] > threshold) & (boxes[:, 3] - boxes[:, 1] > threshold)
