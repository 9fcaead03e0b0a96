"""Dataset record -> model sample: decode, augment per preset, build targets.

A sample is a dict with `image` (float32 [3, H, W] RGB in [0, 1], after augmentation), `target`
(`labels` int64 [N], `boxes` float32 [N, 4] xyxy pixels, `masks` bool [N, H, W]; instance records add
`has_mask` bool [N], False for box-only annotations whose mask is empty; semantic records add `sem_seg`
int64 [H, W]), and the metadata `image_id`, `file_name`, `height`, `width` (the decoded,
upright image before any resize: evaluation outputs are produced at this size) and `dataset`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from pycocotools import mask as mask_util

from maskdino.config import InputConfig
from maskdino.data.augmentations import (
    large_scale_jitter,
    multiscale_crop,
    multiscale_resize,
    semantic_crop_jitter,
    test_resize,
)
from maskdino.data.cityscapes import read_cityscapes_segments
from maskdino.data.coco_panoptic import read_coco_panoptic
from maskdino.data.image_io import MIN_SIDE, ImageReadError, load_rgb_image
from maskdino.data.records import LOGGER_NAME, DatasetInfo
from maskdino.data.semantic import read_sem_seg
from maskdino.data.targets import instance_target, segment_target, semantic_target
from maskdino.data.transforms import AugInput, Shape, clip_polygon, polygon_area

TRAIN_AUGMENTATIONS = {
    "coco_instance_lsj": large_scale_jitter,
    "coco_panoptic_lsj": large_scale_jitter,
    "semantic": semantic_crop_jitter,
    "multiscale": multiscale_resize,
    "multiscale_crop": multiscale_crop,
}


class ImageSizeMismatchError(ImageReadError):
    """The decoded image does not have the size its annotations were made for."""

    kind = "size_mismatch"


class DatasetMapper:
    """Callable turning a record into a sample; all randomness comes from the `rng` passed per call.

    Training samples always carry targets; evaluation samples only with `with_targets`.
    """

    def __init__(
        self, cfg: InputConfig, info: DatasetInfo, is_train: bool, with_targets: bool = False
    ) -> None:
        if is_train and cfg.dataset_mapper not in TRAIN_AUGMENTATIONS:
            raise ValueError(
                f"input.dataset_mapper={cfg.dataset_mapper!r}; expected one of {sorted(TRAIN_AUGMENTATIONS)}"
            )
        self.cfg = cfg
        self.info = info
        self.is_train = is_train
        self.with_targets = with_targets or is_train
        self._warned_tiny: set[str] = set()

    def __call__(self, record: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        image, _ = load_rgb_image(record["file_name"])
        height, width = image.shape[:2]
        expected = (record.get("height"), record.get("width"))
        if expected[0] is not None and expected != (height, width):
            raise ImageSizeMismatchError(
                f"{record['file_name']} decodes to {width}x{height} (after EXIF orientation) but its "
                f"annotations are for {expected[1]}x{expected[0]}; fix the json's width/height or the image"
            )
        if self.is_train and min(height, width) < MIN_SIDE:
            self._warn_tiny(record["file_name"], height, width)
        data, extra = self._aug_input(record, image)
        if self.is_train:
            data = TRAIN_AUGMENTATIONS[self.cfg.dataset_mapper](rng, data, self.cfg)
        else:
            data = test_resize(data, self.cfg)
        sample = {
            "image": torch.from_numpy(np.ascontiguousarray(data.image.transpose(2, 0, 1))).float() / 255.0,
            "image_id": record["image_id"],
            "file_name": record["file_name"],
            "height": height,
            "width": width,
            "dataset": record["dataset"],
        }
        if self.with_targets:
            sample["target"] = self._target(record, data, extra)
        return sample

    def _warn_tiny(self, file_name: str, height: int, width: int) -> None:
        """Once per file and worker: such an image is legal, but usually a thumbnail or a broken export."""
        if file_name in self._warned_tiny:
            return
        self._warned_tiny.add(file_name)
        logging.getLogger(LOGGER_NAME).warning(
            "training image %s is only %dx%d px (< %d on a side); the resize upscales it, check the file",
            file_name,
            width,
            height,
            MIN_SIDE,
        )

    def _aug_input(self, record: dict[str, Any], image: np.ndarray) -> tuple[AugInput, list[Any]]:
        """The image plus the geometry its targets are made from, and per-target metadata: the
        annotations of instance shapes, or the segments of a segment-id map (nothing when targets are off)."""
        if not self.with_targets:
            return AugInput(image), []
        height, width = image.shape[:2]
        if "annotations" in record:
            kept = [a for a in record["annotations"] if not a["iscrowd"]]
            shapes = [_instance_shape(a["segmentation"], a["bbox"], height, width) for a in kept]
            return AugInput(image, shapes), kept
        if "sem_seg_file_name" in record:
            sem_seg = read_sem_seg(record, self.info.num_classes, self.cfg.ignore_value)
            _check_same_size(record["sem_seg_file_name"], sem_seg, image)
            return AugInput(image, label_map=sem_seg, label_map_pad=self.cfg.ignore_value), []
        if "pan_seg_file_name" in record:
            ids, segments = read_coco_panoptic(record)
        elif "cityscapes_instance_ids_file" in record:
            ids, segments = read_cityscapes_segments(record)
        else:
            raise ValueError(
                f"record of {record.get('file_name')} has no annotations, sem_seg_file_name, "
                f"pan_seg_file_name or cityscapes_instance_ids_file: nothing to build targets from"
            )
        _check_same_size(
            record.get("pan_seg_file_name") or record["cityscapes_instance_ids_file"], ids, image
        )
        return AugInput(image, label_map=ids, label_map_pad=0), segments

    def _target(self, record: dict[str, Any], data: AugInput, extra: list[Any]) -> dict[str, torch.Tensor]:
        height, width = data.size
        if "annotations" in record:
            has_mask = [a["segmentation"] is not None for a in extra]
            return instance_target(data.shapes, [a["label"] for a in extra], height, width, has_mask)
        if "sem_seg_file_name" in record:
            return semantic_target(data.label_map, self.cfg.ignore_value)
        return segment_target(data.label_map, extra)


def _instance_shape(
    segmentation: list[list[float]] | dict | None, box: list[float], height: int, width: int
) -> Shape:
    """Polygons clipped to the image (COCO polygons may overshoot by a fraction of a pixel) or an RLE mask;
    a box-only annotation moves as the polygon of its box corners (its box after augmentation is their
    extent, as detectron2 transforms boxes)."""
    if segmentation is None:
        x0, y0, x1, y1 = box
        return [np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)]
    if isinstance(segmentation, dict):
        return mask_util.decode(segmentation).astype(bool)
    polygons = [
        clip_polygon(np.asarray(p, dtype=np.float64).reshape(-1, 2), width, height) for p in segmentation
    ]
    return [p for p in polygons if len(p) >= 3 and polygon_area(p) > 0]


def _check_same_size(label_file: str, label_map: np.ndarray, image: np.ndarray) -> None:
    if label_map.shape != image.shape[:2]:
        raise ImageSizeMismatchError(
            f"label map {label_file} is {label_map.shape[1]}x{label_map.shape[0]} but its image is "
            f"{image.shape[1]}x{image.shape[0]}; the two files must have the same size"
        )
