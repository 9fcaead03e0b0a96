"""Model outputs -> the official results formats (COCO results json, panoptic PNG + segments, label PNG).

The evaluators in this package read only these formats, so anything that writes them (our model, another
codebase) is scored the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pycocotools.mask as mask_util
import torch
from PIL import Image

# Panoptic PNGs store a segment id as id = R + 256 * G + 256^2 * B (COCO panoptic format); 0 is void.
MAX_PANOPTIC_ID = 256**3 - 1

CategoryMapping = Sequence[int] | Mapping[int, int]
ArrayLike = torch.Tensor | np.ndarray


def read_json(source: str | Path | Mapping | list, role: str) -> tuple[Any, str]:
    """Load `source` (a path, or already-parsed JSON) and return it with a name for error messages."""
    if isinstance(source, Mapping | list):
        return source, f"<{role} given as a Python object>"
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"{role} file not found: {path}")
    with path.open() as f:
        try:
            return json.load(f), str(path)
        except json.JSONDecodeError as err:
            raise ValueError(f"{role} file {path} is not valid JSON: {err}") from None


def _numpy(x: ArrayLike) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _dataset_id(mapping: CategoryMapping, label: int) -> int:
    try:
        return int(mapping[label])
    except (IndexError, KeyError):
        raise ValueError(
            f"label {label} has no dataset category id: contiguous_to_dataset_id covers "
            f"{len(mapping)} labels; pass the mapping of the dataset the model was trained on"
        ) from None


def encode_masks(masks: ArrayLike) -> list[dict]:
    """Binary masks [N, H, W] -> COCO compressed RLEs with `counts` as str (JSON-serialisable)."""
    masks = _numpy(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must be [N, H, W], got shape {tuple(masks.shape)}")
    rles = mask_util.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))  # [H, W, N]
    for rle in rles:
        rle["counts"] = rle["counts"].decode("ascii")
    return rles


def instances_to_coco_results(
    image_id: int, result: Mapping[str, ArrayLike], contiguous_to_dataset_id: CategoryMapping
) -> list[dict]:
    """One image's instances -> COCO results entries (detectron2's `instances_to_coco_json` format).

    `result` holds `boxes` (xyxy pixels [N, 4]), `labels` (contiguous [N]), `scores` [N] and optionally
    `masks` (bool [N, H, W] at the original image size). Entries carry the dataset category id, an
    xywh `bbox` and, with masks, an RLE `segmentation`.
    """
    for key in ("boxes", "labels", "scores"):
        if key not in result:
            raise ValueError(f"instance result for image {image_id} has no '{key}' (keys: {sorted(result)})")
    boxes = _numpy(result["boxes"]).astype(np.float64)
    labels = _numpy(result["labels"]).astype(np.int64)
    scores = _numpy(result["scores"]).astype(np.float64)
    num = len(scores)
    if boxes.shape != (num, 4) or labels.shape != (num,):
        raise ValueError(
            f"image {image_id}: expected boxes [N, 4] and labels [N] with N = {num} scores, "
            f"got boxes {tuple(boxes.shape)} and labels {tuple(labels.shape)}"
        )
    if num == 0:
        return []
    rles = None
    if "masks" in result:
        masks = _numpy(result["masks"])
        if masks.ndim != 3 or masks.shape[0] != num:
            raise ValueError(f"image {image_id}: expected masks [{num}, H, W], got {tuple(masks.shape)}")
        rles = encode_masks(masks)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    entries = []
    for k in range(num):
        entry = {
            "image_id": int(image_id),
            "category_id": _dataset_id(contiguous_to_dataset_id, int(labels[k])),
            "bbox": [float(v) for v in xywh[k]],
            "score": float(scores[k]),
        }
        if rles is not None:
            entry["segmentation"] = rles[k]
        entries.append(entry)
    return entries


def id_to_rgb(ids: np.ndarray) -> np.ndarray:
    """Segment ids [H, W] -> RGB uint8 [H, W, 3] in the COCO panoptic encoding."""
    ids = ids.astype(np.int64)
    return np.stack([ids % 256, ids // 256 % 256, ids // 256**2], axis=-1).astype(np.uint8)


def rgb_to_id(rgb: np.ndarray) -> np.ndarray:
    """RGB [H, W, 3] -> segment ids [H, W] (uint32) in the COCO panoptic encoding."""
    rgb = rgb.astype(np.uint32)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def panoptic_to_png(
    segments: ArrayLike, segments_info: Sequence[Mapping], contiguous_to_dataset_id: CategoryMapping
) -> tuple[np.ndarray, list[dict]]:
    """A panoptic prediction -> (RGB PNG array [H, W, 3], segments_info with dataset category ids).

    `segments` is the int map [H, W] (0 = void) and `segments_info` its entries {"id", "category_id"
    (contiguous), ...}. Segments with no pixel are dropped: the panoptic API rejects a listed segment
    that is absent from the PNG.
    """
    segments = _numpy(segments).astype(np.int64)
    if segments.ndim != 2:
        raise ValueError(f"panoptic segments must be an [H, W] id map, got shape {tuple(segments.shape)}")
    if segments.size and (segments.min() < 0 or segments.max() > MAX_PANOPTIC_ID):
        raise ValueError(
            f"panoptic segment ids must lie in [0, {MAX_PANOPTIC_ID}] (0 = void), "
            f"got [{segments.min()}, {segments.max()}]"
        )
    ids, areas = np.unique(segments, return_counts=True)
    area_of = dict(zip(ids.tolist(), areas.tolist()))
    listed = {int(info["id"]) for info in segments_info}
    unlisted = sorted(set(area_of) - listed - {0})
    if unlisted:
        raise ValueError(f"panoptic map has segment ids {unlisted} that segments_info does not list")
    infos = []
    for info in segments_info:
        segment_id = int(info["id"])
        if segment_id == 0:
            raise ValueError("segments_info lists id 0, which the panoptic format reserves for void")
        if segment_id not in area_of:
            continue
        infos.append(
            {
                "id": segment_id,
                "category_id": _dataset_id(contiguous_to_dataset_id, int(info["category_id"])),
                "area": int(area_of[segment_id]),
            }
        )
    return id_to_rgb(segments), infos


def semantic_to_png(labels: ArrayLike) -> np.ndarray:
    """A label map [H, W] -> uint8 array for a PNG (uint16 when a label exceeds 255)."""
    labels = _numpy(labels)
    if labels.ndim != 2:
        raise ValueError(f"semantic labels must be an [H, W] map, got shape {tuple(labels.shape)}")
    if labels.size and (labels.min() < 0 or labels.max() > np.iinfo(np.uint16).max):
        raise ValueError(f"semantic labels must lie in [0, 65535], got [{labels.min()}, {labels.max()}]")
    dtype = np.uint8 if not labels.size or labels.max() <= 255 else np.uint16
    return labels.astype(dtype)


def write_png(array: np.ndarray, path: str | Path) -> None:
    """Save an RGB uint8 [H, W, 3] or label uint8/uint16 [H, W] array losslessly as PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
