"""Training targets from augmented geometry: labels, xyxy boxes and bool masks at the augmented size.

Box conventions follow the official mappers: instance boxes are the extent of the (transformed, clipped)
polygons (`PolygonMasks.get_bounding_boxes`); boxes of bitmask instances, panoptic segments and semantic
classes come from their masks as [x0, y0, x1 + 1, y1 + 1] (`BitMasks.get_bounding_boxes`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pycocotools import mask as mask_util

from maskdino.data.transforms import Shape

_MIN_BOX_SIDE = 1e-5  # detectron2 `filter_empty_instances` box threshold


def instance_target(
    shapes: list[Shape], labels: list[int], height: int, width: int, has_mask: list[bool] | None = None
) -> dict[str, torch.Tensor]:
    """Rasterise each instance at (height, width); drop instances the augmentation emptied (official).

    `has_mask[i]` False marks a box-only annotation (its shape is the polygon of its box): it gets an
    empty mask and `has_mask` False in the target, so the losses leave its mask out.
    """
    has_mask = [True] * len(shapes) if has_mask is None else has_mask
    kept_labels, kept_has_mask, boxes, masks = [], [], [], []
    for shape, label, with_mask in zip(shapes, labels, has_mask):
        if isinstance(shape, list):
            if not shape:
                continue
            points = np.concatenate(shape)
            box = [*points.min(axis=0), *points.max(axis=0)]
            mask = rasterize_polygons(shape, height, width) if with_mask else np.zeros((height, width), bool)
        else:
            if not shape.any():
                continue
            box, mask = mask_box(shape), shape
        if box[2] - box[0] <= _MIN_BOX_SIDE or box[3] - box[1] <= _MIN_BOX_SIDE:
            continue
        kept_labels.append(label)
        kept_has_mask.append(with_mask)
        boxes.append(box)
        masks.append(mask)
    target = _pack(kept_labels, boxes, masks, height, width)
    target["has_mask"] = torch.tensor(kept_has_mask, dtype=torch.bool)
    return target


def segment_target(ids: np.ndarray, segments: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """One target per non-crowd segment still visible after augmentation (panoptic: things and stuff)."""
    labels, boxes, masks = [], [], []
    for segment in segments:
        if segment["iscrowd"]:
            continue
        mask = ids == segment["id"]
        if not mask.any():
            continue
        labels.append(segment["label"])
        boxes.append(mask_box(mask))
        masks.append(mask)
    return _pack(labels, boxes, masks, *ids.shape)


def semantic_target(sem_seg: np.ndarray, ignore_value: int) -> dict[str, torch.Tensor]:
    """One target per class present (ignore excluded), as the official semantic mapper; plus `sem_seg`."""
    classes = [int(c) for c in np.unique(sem_seg) if c != ignore_value]
    masks = [sem_seg == c for c in classes]
    target = _pack(classes, [mask_box(m) for m in masks], masks, *sem_seg.shape)
    target["sem_seg"] = torch.from_numpy(np.ascontiguousarray(sem_seg, dtype=np.int64))
    return target


def rasterize_polygons(polygons: list[np.ndarray], height: int, width: int) -> np.ndarray:
    """Union of the polygons as a bool mask [height, width] (pycocotools, as the official mapper)."""
    rles = mask_util.frPyObjects([p.reshape(-1).tolist() for p in polygons], height, width)
    return mask_util.decode(mask_util.merge(rles)).astype(bool)


def mask_box(mask: np.ndarray) -> list[float]:
    """[x0, y0, x1 + 1, y1 + 1] of the set pixels of a non-empty mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return [float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)]


def _pack(
    labels: list[int], boxes: list[list[float]], masks: list[np.ndarray], height: int, width: int
) -> dict[str, torch.Tensor]:
    mask_tensor = (
        torch.from_numpy(np.stack(masks)) if masks else torch.zeros((0, height, width), dtype=torch.bool)
    )
    return {
        "labels": torch.tensor(labels, dtype=torch.int64),
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "masks": mask_tensor,
    }
