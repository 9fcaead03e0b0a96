"""The official augmentations: samplers that draw transform parameters, and one pipeline per preset.

Samplers follow detectron2's `augmentation_impl.py` (ResizeScale, FixedSizeCrop, ResizeShortestEdge,
RandomCrop, RandomCrop_CategoryAreaConstraint, RandomFlip) and PointRend's ColorAugSSD, drawing from the given
`np.random.Generator` instead of the global numpy state so a sample's augmentation is reproducible.
"""

from __future__ import annotations

import sys

import numpy as np

from maskdino.config import InputConfig
from maskdino.data.transforms import (
    AugInput,
    ColorAugSSD,
    Crop,
    HFlip,
    Pad,
    Resize,
    Transform,
    VFlip,
    apply_transforms,
)

IMAGE_PAD_VALUE = 128  # FixedSizeCrop's and the semantic mapper's image padding (0..255 scale)
UNBOUNDED = sys.maxsize  # ResizeShortestEdge's default max_size: no cap on the long side


def random_flip(rng: np.random.Generator, height: int, width: int, direction: str) -> list[Transform]:
    """Flip with probability 0.5; `direction` is InputConfig.random_flip (horizontal | vertical | none)."""
    if direction == "none" or rng.uniform() >= 0.5:
        return []
    if direction == "horizontal":
        return [HFlip(width)]
    if direction == "vertical":
        return [VFlip(height)]
    raise ValueError(f"input.random_flip={direction!r}; expected 'horizontal', 'vertical' or 'none'")


def resize_scale(
    rng: np.random.Generator, height: int, width: int, min_scale: float, max_scale: float, target: int
) -> Resize:
    """Fit the image inside (target * s)^2 for s ~ U(min_scale, max_scale), keeping its aspect ratio."""
    scale = rng.uniform(min_scale, max_scale)
    factor = min(target * scale / height, target * scale / width)
    new_height, new_width = np.round(np.array([height, width]) * factor).astype(int)
    return Resize(height, width, int(new_height), int(new_width))


def fixed_size_crop(
    rng: np.random.Generator, height: int, width: int, crop_height: int, crop_width: int
) -> list[Transform]:
    """Random crop of at most the crop size, then pad bottom/right to exactly the crop size.

    As in detectron2, ONE uniform draw places the window along both axes.
    """
    fraction = rng.uniform(0.0, 1.0)
    y0 = int(np.round(max(height - crop_height, 0) * fraction))
    x0 = int(np.round(max(width - crop_width, 0) * fraction))
    return [Crop(x0, y0, crop_width, crop_height), Pad(crop_height, crop_width, IMAGE_PAD_VALUE)]


def shortest_edge_size(height: int, width: int, short: int, max_size: int) -> tuple[int, int]:
    """(new_height, new_width) with the short side `short` and the long side at most `max_size`."""
    scale = short / min(height, width)
    new_height, new_width = (short, scale * width) if height < width else (scale * height, short)
    if max(new_height, new_width) > max_size:
        shrink = max_size / max(new_height, new_width)
        new_height, new_width = new_height * shrink, new_width * shrink
    return int(new_height + 0.5), int(new_width + 0.5)


def resize_shortest_edge(height: int, width: int, short: int, max_size: int) -> Resize:
    return Resize(height, width, *shortest_edge_size(height, width, short, max_size))


def random_crop_absolute_range(
    rng: np.random.Generator, height: int, width: int, min_size: int, max_size: int
) -> Crop:
    """detectron2 `RandomCrop("absolute_range")`: crop height and width drawn independently from
    [min_size, max_size] (each clamped to the image side), the window placed uniformly."""
    crop_height = int(rng.integers(min(height, min_size), min(height, max_size) + 1))
    crop_width = int(rng.integers(min(width, min_size), min(width, max_size) + 1))
    y0 = int(rng.integers(height - crop_height + 1))
    x0 = int(rng.integers(width - crop_width + 1))
    return Crop(x0, y0, crop_width, crop_height)


def random_crop_with_category_area(
    rng: np.random.Generator,
    label_map: np.ndarray,
    crop_height: int,
    crop_width: int,
    single_category_max_area: float,
    ignore_value: int,
) -> Crop:
    """An absolute-size crop (clamped to the image) where no class covers more than the given area ratio.

    Up to 10 windows are tried; the last one is kept if none satisfies the constraint (official behaviour).
    """
    height, width = label_map.shape
    crop_height, crop_width = min(crop_height, height), min(crop_width, width)
    for _ in range(10):
        y0 = int(rng.integers(height - crop_height + 1))
        x0 = int(rng.integers(width - crop_width + 1))
        if single_category_max_area >= 1.0:
            break
        window = label_map[y0 : y0 + crop_height, x0 : x0 + crop_width]
        labels, counts = np.unique(window, return_counts=True)
        counts = counts[labels != ignore_value]
        if len(counts) > 1 and counts.max() < counts.sum() * single_category_max_area:
            break
    return Crop(x0, y0, crop_width, crop_height)


def color_aug_ssd(rng: np.random.Generator) -> ColorAugSSD:
    """Brightness +-32, contrast and saturation x[0.5, 1.5], hue +-18 (of 180); each step with p=0.5."""
    brightness = rng.uniform(-32, 32) if rng.integers(2) else None
    contrast_first = bool(rng.integers(2))
    contrast = rng.uniform(0.5, 1.5) if rng.integers(2) else None
    saturation = rng.uniform(0.5, 1.5) if rng.integers(2) else None
    hue_shift = int(rng.integers(-18, 19)) if rng.integers(2) else None
    return ColorAugSSD(brightness, contrast, saturation, hue_shift, contrast_first)


def large_scale_jitter(rng: np.random.Generator, data: AugInput, cfg: InputConfig) -> AugInput:
    """COCO instance/panoptic training (`*_lsj` mappers): flip, ResizeScale, FixedSizeCrop with padding."""
    data = apply_transforms(random_flip(rng, *data.size, cfg.random_flip), data)
    data = resize_scale(rng, *data.size, cfg.min_scale, cfg.max_scale, cfg.image_size)(data)
    return apply_transforms(fixed_size_crop(rng, *data.size, cfg.image_size, cfg.image_size), data)


def semantic_crop_jitter(rng: np.random.Generator, data: AugInput, cfg: InputConfig) -> AugInput:
    """ADE20K/Cityscapes training (`mask_former_semantic` mapper).

    Shortest-edge resize, category-area crop, SSD colour jitter, flip, pad to size_divisibility.
    """
    if data.label_map is None:
        raise ValueError("the semantic augmentation needs the label map of the sample (sem_seg)")
    short = int(rng.choice(cfg.min_size_train))
    data = resize_shortest_edge(*data.size, short, cfg.max_size_train)(data)
    if cfg.crop_enabled:
        crop_height, crop_width = _crop_hw(cfg.crop_size)
        crop = random_crop_with_category_area(
            rng, data.label_map, crop_height, crop_width, cfg.crop_single_category_max_area, cfg.ignore_value
        )
        data = crop(data)
    if cfg.color_aug_ssd:
        data = color_aug_ssd(rng)(data)
    data = apply_transforms(random_flip(rng, *data.size, cfg.random_flip), data)
    if cfg.size_divisibility > 0:
        divisor = cfg.size_divisibility
        height, width = data.size
        data = Pad(-(-height // divisor) * divisor, -(-width // divisor) * divisor, IMAGE_PAD_VALUE)(data)
    return data


def multiscale_resize(rng: np.random.Generator, data: AugInput, cfg: InputConfig) -> AugInput:
    """detectron2's default training mapper: random shortest-edge resize, then flip."""
    short = int(rng.choice(cfg.min_size_train))
    data = resize_shortest_edge(*data.size, short, cfg.max_size_train)(data)
    return apply_transforms(random_flip(rng, *data.size, cfg.random_flip), data)


def multiscale_crop(rng: np.random.Generator, data: AugInput, cfg: InputConfig) -> AugInput:
    """MIMDet training (`configs/mimdet/*.py`): flip; with probability crop_prob, shortest edge to one of
    crop_pre_sizes (no cap) and an absolute-range crop of crop_size_range; then the multi-scale
    shortest-edge resize to one of min_size_train, long edge at most max_size_train."""
    if len(cfg.crop_size_range) != 2 or cfg.crop_size_range[0] > cfg.crop_size_range[1]:
        raise ValueError(f"input.crop_size_range={cfg.crop_size_range}; expected (min, max) in pixels")
    data = apply_transforms(random_flip(rng, *data.size, cfg.random_flip), data)
    if rng.uniform() < cfg.crop_prob:
        short = int(rng.choice(cfg.crop_pre_sizes))
        data = resize_shortest_edge(*data.size, short, UNBOUNDED)(data)
        data = random_crop_absolute_range(rng, *data.size, *cfg.crop_size_range)(data)
    short = int(rng.choice(cfg.min_size_train))
    return resize_shortest_edge(*data.size, short, cfg.max_size_train)(data)


def test_resize(data: AugInput, cfg: InputConfig) -> AugInput:
    """Evaluation: shortest edge to min_size_test, long edge at most max_size_test."""
    return resize_shortest_edge(*data.size, cfg.min_size_test, cfg.max_size_test)(data)


def _crop_hw(crop_size: tuple[int, ...]) -> tuple[int, int]:
    if len(crop_size) == 1:
        return crop_size[0], crop_size[0]
    if len(crop_size) == 2:
        return crop_size[0], crop_size[1]
    raise ValueError(f"input.crop_size={crop_size}; expected (height, width) in pixels, e.g. (512, 1024)")
