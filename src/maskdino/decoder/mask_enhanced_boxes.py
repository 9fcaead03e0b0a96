"""Mask-enhanced anchor box initialisation: derive each selected query's anchor box from its predicted
mask, since early masks are more accurate than early boxes (paper Sec. 3.5)."""

from __future__ import annotations

import torch

from maskdino.layers.box_ops import (
    box_xyxy_to_cxcywh,
    inverse_sigmoid,
    masks_to_boxes_exclusive,
    masks_to_boxes_inclusive,
)
from maskdino.layers.ms_deform_attn import level_sizes_xy

BOX_INIT_TYPES = ("no", "bitmask", "mask2box")


def mask_enhanced_boxes(mask_logits: torch.Tensor, box_type: str) -> torch.Tensor:
    """Anchor boxes as logits `[B, Q, 4]` (cx, cy, w, h) from mask logits `[B, Q, H, W]`.

    `bitmask` uses exclusive max corners (detectron2 BitMasks, empty -> 0 box); `mask2box` inclusive
    max corners (empty -> (1e8, 1e8, 0, 0), which saturates after the logit clamp). Both are normalised
    by the mask map size.
    """
    batch, queries, h, w = mask_logits.shape
    binary = mask_logits.detach().flatten(0, 1) > 0  # [B*Q, H, W]
    if box_type == "bitmask":
        xyxy = masks_to_boxes_exclusive(binary)
    elif box_type == "mask2box":
        xyxy = masks_to_boxes_inclusive(binary)
    else:
        raise ValueError(f"initialize_box_type must be one of {BOX_INIT_TYPES}, got {box_type!r}")
    # [4] (w, h, w, h), kept symbolic under torch.export (see `level_sizes_xy`)
    scale = level_sizes_xy([(h, w)], xyxy).repeat(1, 2)[0]
    boxes = box_xyxy_to_cxcywh(xyxy) / scale
    return inverse_sigmoid(boxes.reshape(batch, queries, 4))
