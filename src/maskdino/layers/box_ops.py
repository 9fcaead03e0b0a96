"""Box conversions, IoU/GIoU and mask-to-box (two official conventions)."""

from __future__ import annotations

import torch


def box_cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


def box_xyxy_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    x0, y0, x1, y1 = boxes.unbind(-1)
    return torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], dim=-1)


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """logit(x) with x clamped to [0, 1] and both x and 1-x floored at `eps` (official convention)."""
    x = x.clamp(min=0, max=1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairwise IoU `[N, M]` and union of xyxy boxes; the 1e-6 in the denominator is the official one."""
    area1, area2 = box_area(boxes1), box_area(boxes2)
    lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - inter
    return inter / (union + 1e-6), union


def generalized_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Pairwise GIoU `[N, M]` of xyxy boxes (Rezatofighi et al. 2019)."""
    iou, union = box_iou(boxes1, boxes2)
    lt = torch.min(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.max(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    hull = wh[..., 0] * wh[..., 1]
    return iou - (hull - union) / (hull + 1e-6)


def masks_to_boxes_inclusive(masks: torch.Tensor) -> torch.Tensor:
    """`mask2box`: xyxy with inclusive max pixel index; an empty mask gives (1e8, 1e8, 0, 0).

    masks: bool `[N, H, W]` -> float `[N, 4]`.
    """
    if masks.numel() == 0:
        return torch.zeros((masks.shape[0], 4), device=masks.device)
    h, w = masks.shape[-2:]
    ys = torch.arange(h, dtype=torch.float32, device=masks.device)
    xs = torch.arange(w, dtype=torch.float32, device=masks.device)
    any_x = masks.any(dim=1)  # [N, W]
    any_y = masks.any(dim=2)  # [N, H]
    x_max = (any_x * xs).amax(dim=1)
    y_max = (any_y * ys).amax(dim=1)
    x_min = xs.expand_as(any_x).masked_fill(~any_x, 1e8).amin(dim=1)
    y_min = ys.expand_as(any_y).masked_fill(~any_y, 1e8).amin(dim=1)
    return torch.stack([x_min, y_min, x_max, y_max], dim=1)


def masks_to_boxes_exclusive(masks: torch.Tensor) -> torch.Tensor:
    """`bitmask` (detectron2 BitMasks): xyxy with max index + 1; an empty mask gives zeros.

    masks: bool `[N, H, W]` -> float `[N, 4]`.
    """
    boxes = torch.zeros((masks.shape[0], 4), dtype=torch.float32, device=masks.device)
    if masks.numel() == 0:
        return boxes
    any_x = masks.any(dim=1)  # [N, W]
    any_y = masks.any(dim=2)  # [N, H]
    nonempty = any_x.any(dim=1)
    w, h = any_x.shape[1], any_y.shape[1]
    xs = torch.arange(w, device=masks.device)
    ys = torch.arange(h, device=masks.device)
    x_min = torch.where(any_x, xs, w).amin(dim=1)
    x_max = torch.where(any_x, xs, -1).amax(dim=1) + 1
    y_min = torch.where(any_y, ys, h).amin(dim=1)
    y_max = torch.where(any_y, ys, -1).amax(dim=1) + 1
    stacked = torch.stack([x_min, y_min, x_max, y_max], dim=1).float()
    return torch.where(nonempty[:, None], stacked, boxes)
