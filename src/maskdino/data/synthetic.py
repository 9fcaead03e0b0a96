"""A synthetic shapes dataset that a small Mask DINO can learn on a CPU in minutes, deterministic from a seed.

Each image is a landscape of stuff bands (sky on top; grass and/or water below, with wavy borders and
their own textures) with 1-6 things on it: circles, squares and triangles of random size, colour and
rotation, painted in turn so that later shapes occlude earlier ones. A thing's mask is what stays
visible, and every thing keeps at least `min_visible_fraction` of its area.

`write_synthetic_dataset(root, ...)` writes a train and a held-out split in the standard formats:

    root/classes.txt                 one class name per line, in contiguous label order (things, then stuff)
    root/<split>/images/000000.jpg
    root/<split>/instances.json      COCO instances (things only; RLE masks, xywh boxes)
    root/<split>/panoptic.json       COCO panoptic (segments_info, categories with isthing)
    root/<split>/panoptic/000000.png segment ids as R + 256 G + 256^2 B
    root/<split>/semantic/000000.png contiguous class index per pixel (255 = ignore, unused here)

Image `i` of a split is drawn from `numpy.random.default_rng([seed, split_index, i])`, so a split's
images do not depend on how many are generated and the two splits never share an image.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as mask_util

from maskdino.evaluation.results import encode_masks, panoptic_to_png, semantic_to_png, write_png

THING_CLASSES = ("circle", "square", "triangle")
STUFF_CLASSES = ("sky", "grass", "water")
CLASS_NAMES = THING_CLASSES + STUFF_CLASSES
SKY, GRASS, WATER = (len(THING_CLASSES) + i for i in range(len(STUFF_CLASSES)))
SPLITS = ("train", "val")
JPEG_QUALITY = 92


@dataclass(frozen=True)
class SynthConfig:
    """What one image looks like; the defaults are what the `demo` preset is tuned for."""

    image_size: int = 256
    min_objects: int = 1
    max_objects: int = 6
    min_object_size: int = 20  # extent of the shape before rotation, in pixels
    max_object_size: int = 80
    min_visible_fraction: float = 0.5  # every thing keeps at least this share of its own area
    min_visible_pixels: int = 100
    placement_tries: int = 30


@dataclass
class SynthImage:
    """One generated image with its ground truth (thing i was painted i-th; labels are contiguous)."""

    image: np.ndarray  # uint8 [H, W, 3]
    semantic: np.ndarray  # uint8 [H, W], contiguous class index
    thing_labels: list[int]
    thing_masks: np.ndarray  # bool [N, H, W], visible part only
    stuff_labels: list[int]  # stuff classes present, ascending


def category_id(label: int) -> int:
    """Dataset category id of contiguous label `label` (ids start at 1, as in COCO)."""
    return label + 1


def categories() -> list[dict[str, Any]]:
    return [
        {"id": category_id(i), "name": name, "isthing": int(i < len(THING_CLASSES)), "supercategory": "shape"}
        for i, name in enumerate(CLASS_NAMES)
    ]


def generate_image(rng: np.random.Generator, cfg: SynthConfig = SynthConfig()) -> SynthImage:
    """Draw one image and its annotations from `rng`."""
    size = cfg.image_size
    semantic = _stuff_layout(rng, size)
    image = np.zeros((size, size, 3), dtype=np.float32)
    for label in (SKY, GRASS, WATER):
        where = semantic == label
        if where.any():
            image[where] = _stuff_texture(rng, label, size)[where]

    shapes: list[np.ndarray] = []  # full (unoccluded) mask of each placed thing
    labels: list[int] = []
    for _ in range(int(rng.integers(cfg.min_objects, cfg.max_objects + 1))):
        for _ in range(cfg.placement_tries):
            label = int(rng.integers(len(THING_CLASSES)))
            shape = _shape_mask(rng, label, size, cfg)
            if _keeps_everyone_visible(shapes, shape, cfg):
                break
        else:
            continue
        image[shape] = _thing_texture(rng, image, shape, label)[shape]
        semantic[shape] = label
        shapes.append(shape)
        labels.append(label)

    visible = _visible_masks(shapes, size)
    noise = rng.normal(0.0, 4.0, size=image.shape)  # sensor noise over everything
    pixels = np.clip(image + noise, 0, 255).round().astype(np.uint8)
    stuff = sorted(int(v) for v in np.unique(semantic) if v >= len(THING_CLASSES))
    return SynthImage(pixels, semantic.astype(np.uint8), labels, visible, stuff)


def _stuff_layout(rng: np.random.Generator, size: int) -> np.ndarray:
    """Sky above a wavy horizon; below it grass, water, or both split by a second wavy border."""
    x = np.arange(size, dtype=np.float32)
    rows = np.arange(size, dtype=np.float32)[:, None]
    horizon = _wavy_line(rng, x, size * rng.uniform(0.2, 0.5), size)
    layout = np.where(rows < horizon[None, :], SKY, GRASS).astype(np.int64)
    lower = [GRASS, WATER][int(rng.integers(2))]
    kind = int(rng.integers(3))  # 0: one band below the sky, 1: grass over water, 2: water over grass
    if kind == 0:
        layout[layout == GRASS] = lower
    else:
        top, bottom = (GRASS, WATER) if kind == 1 else (WATER, GRASS)
        border = np.maximum(_wavy_line(rng, x, size * rng.uniform(0.6, 0.85), size), horizon + size * 0.1)
        below = layout != SKY
        layout[below] = top
        layout[below & (rows >= border[None, :])] = bottom
    return layout


def _wavy_line(rng: np.random.Generator, x: np.ndarray, mean: float, size: int) -> np.ndarray:
    """A height per column: `mean` plus two random sinusoids of a few pixels."""
    line = np.full_like(x, mean)
    for period, amplitude in ((rng.uniform(0.5, 1.5), 0.04), (rng.uniform(0.1, 0.3), 0.015)):
        line += (
            size
            * amplitude
            * rng.uniform(0.3, 1.0)
            * np.sin(2 * np.pi * x / (size * period) + rng.uniform(0, 6.3))
        )
    return line


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1] [size, size]: a random `cells` x `cells` grid, bicubically upsampled."""
    grid = rng.uniform(-1, 1, size=(cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(grid, mode="F").resize((size, size), Image.BICUBIC)).clip(-1, 1)


def _stuff_texture(rng: np.random.Generator, label: int, size: int) -> np.ndarray:
    """Float RGB [size, size, 3] for a whole image of stuff class `label` (only its region is used)."""
    rows = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    if label == SKY:  # blue at the top fading to pale near the horizon, with soft clouds
        top = np.array([rng.uniform(40, 110), rng.uniform(110, 170), rng.uniform(200, 250)], np.float32)
        texture = top + (np.array([225, 232, 240], np.float32) - top) * rows * rng.uniform(0.4, 0.9)
        clouds = np.clip(_smooth_noise(rng, size, 6), 0, 1)[..., None]
        return texture + (245 - texture) * clouds * rng.uniform(0.3, 0.8)
    if label == GRASS:  # green-to-brown with coarse blotches and fine speckle
        base = np.array([rng.uniform(60, 130), rng.uniform(110, 170), rng.uniform(30, 70)], np.float32)
        blotches = _smooth_noise(rng, size, 12)[..., None] * np.array([25, 30, 10], np.float32)
        speckle = rng.normal(0, 14, size=(size, size, 1)).astype(np.float32)
        return base + blotches + speckle
    # water: dark blue-green with horizontal ripples
    base = np.array([rng.uniform(10, 50), rng.uniform(60, 110), rng.uniform(110, 170)], np.float32)
    x = np.arange(size, dtype=np.float32)[None, :]
    y = np.arange(size, dtype=np.float32)[:, None]
    ripples = np.sin(2 * np.pi * y / rng.uniform(5, 9) + 0.6 * np.sin(2 * np.pi * x / rng.uniform(30, 60)))
    return base + (18 * ripples + 10 * _smooth_noise(rng, size, 8))[..., None]


def _shape_mask(rng: np.random.Generator, label: int, size: int, cfg: SynthConfig) -> np.ndarray:
    """Bool mask [size, size] of one circle / square / triangle, rotated at random, inside the image."""
    extent = rng.uniform(cfg.min_object_size, cfg.max_object_size)
    radius = extent / 2
    cx, cy = rng.uniform(radius, size - radius, size=2)
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    if THING_CLASSES[label] == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=1)
    else:
        corners = 4 if THING_CLASSES[label] == "square" else 3
        # a square of side `extent`; an equilateral triangle of side 1.2 `extent`, for a comparable area
        reach = radius * (np.sqrt(2) if corners == 4 else 1.4)
        angles = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(corners) / corners
        points = [(cx + reach * np.cos(a), cy + reach * np.sin(a)) for a in angles]
        draw.polygon(points, fill=1)
    return np.asarray(canvas, dtype=bool)


def _keeps_everyone_visible(shapes: list[np.ndarray], new: np.ndarray, cfg: SynthConfig) -> bool:
    """Whether painting `new` on top leaves every earlier thing (and `new`) visible enough."""
    if new.sum() < cfg.min_visible_pixels:
        return False
    covered = new.copy()
    for shape in reversed(shapes):  # latest first: what covers each earlier shape
        area = shape.sum()
        left = (shape & ~covered).sum()
        if left < max(cfg.min_visible_fraction * area, cfg.min_visible_pixels):
            return False
        covered |= shape
    return True


def _thing_texture(rng: np.random.Generator, image: np.ndarray, shape: np.ndarray, label: int) -> np.ndarray:
    """Float RGB [H, W, 3]: a saturated colour that stands out from what lies under `shape`, lit from one
    side (a linear brightness ramp), with the class's surface pattern: circles plain, squares striped,
    triangles chequered (stripes and squares at a random angle and a 6-9 px period)."""
    under = image[shape].mean(axis=0)
    for _ in range(20):
        hue, sat, val = rng.uniform(0, 1), rng.uniform(0.5, 1.0), rng.uniform(0.6, 1.0)
        colour = _hsv_to_rgb(hue, sat, val) * 255
        if np.linalg.norm(colour - under) > 90:
            break
    size = image.shape[0]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    along = np.cos(angle) * xs + np.sin(angle) * ys
    across = -np.sin(angle) * xs + np.cos(angle) * ys
    shade = 1 + rng.uniform(0.1, 0.3) * (along / size - 0.5)
    period = rng.uniform(6, 9)
    if THING_CLASSES[label] == "square":
        shade *= 1 + 0.3 * np.sign(np.sin(2 * np.pi * along / period))
    elif THING_CLASSES[label] == "triangle":
        shade *= 1 + 0.3 * np.sign(np.sin(2 * np.pi * along / period) * np.sin(2 * np.pi * across / period))
    return colour[None, None, :] * shade[..., None]


def _hsv_to_rgb(hue: float, sat: float, val: float) -> np.ndarray:
    k = (np.array([5.0, 3.0, 1.0]) + hue * 6) % 6
    return val - val * sat * np.clip(np.minimum(k, 4 - k), 0, 1)


def _visible_masks(shapes: list[np.ndarray], size: int) -> np.ndarray:
    """Each shape minus everything painted after it: bool [N, size, size]."""
    visible = np.zeros((len(shapes), size, size), dtype=bool)
    covered = np.zeros((size, size), dtype=bool)
    for i in range(len(shapes) - 1, -1, -1):
        visible[i] = shapes[i] & ~covered
        covered |= shapes[i]
    return visible


def write_split(
    folder: str | Path, num_images: int, seed: int, split_index: int, cfg: SynthConfig = SynthConfig()
) -> Path:
    """Generate `num_images` images into `folder` (images/, instances.json, panoptic.json + panoptic/,
    semantic/); image i comes from `default_rng([seed, split_index, i])`."""
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    images, instances, panoptic = [], [], []
    for index in range(num_images):
        sample = generate_image(np.random.default_rng([seed, split_index, index]), cfg)
        stem = f"{index:06d}"
        Image.fromarray(sample.image).save(folder / "images" / f"{stem}.jpg", quality=JPEG_QUALITY)
        write_png(semantic_to_png(sample.semantic), folder / "semantic" / f"{stem}.png")
        images.append(
            {"id": index, "file_name": f"{stem}.jpg", "height": cfg.image_size, "width": cfg.image_size}
        )
        instances.extend(_instance_annotations(sample, index, len(instances)))
        panoptic.append(_panoptic_annotation(sample, index, folder / "panoptic" / f"{stem}.png"))
    thing_categories = [c for c in categories() if c["isthing"]]
    _write_json(
        folder / "instances.json",
        {"images": images, "annotations": instances, "categories": thing_categories},
    )
    _write_json(
        folder / "panoptic.json", {"images": images, "annotations": panoptic, "categories": categories()}
    )
    return folder


def _instance_annotations(sample: SynthImage, image_id: int, first_id: int) -> list[dict[str, Any]]:
    if not sample.thing_labels:
        return []
    rles = encode_masks(sample.thing_masks)
    return [
        {
            "id": first_id + k + 1,
            "image_id": image_id,
            "category_id": category_id(label),
            "segmentation": rle,
            "area": int(sample.thing_masks[k].sum()),
            "bbox": [float(v) for v in mask_util.toBbox(rle)],
            "iscrowd": 0,
        }
        for k, (label, rle) in enumerate(zip(sample.thing_labels, rles))
    ]


def _panoptic_annotation(sample: SynthImage, image_id: int, png_path: Path) -> dict[str, Any]:
    """Stuff segments get ids 1..S (one per class present), things S+1.. in painting order."""
    ids = np.zeros(sample.semantic.shape, dtype=np.int64)
    segments = []
    for label in sample.stuff_labels:
        segments.append({"id": len(segments) + 1, "category_id": label})
        ids[sample.semantic == label] = segments[-1]["id"]
    for label, mask in zip(sample.thing_labels, sample.thing_masks):
        segments.append({"id": len(segments) + 1, "category_id": label})
        ids[mask] = segments[-1]["id"]
    rgb, infos = panoptic_to_png(
        ids, segments, {label: category_id(label) for label in range(len(CLASS_NAMES))}
    )
    write_png(rgb, png_path)
    for info in infos:
        ys, xs = np.nonzero(ids == info["id"])
        info["bbox"] = [
            int(xs.min()),
            int(ys.min()),
            int(xs.max() - xs.min() + 1),
            int(ys.max() - ys.min() + 1),
        ]
        info["iscrowd"] = 0
    return {"image_id": image_id, "file_name": png_path.name, "segments_info": infos}


def _write_json(path: Path, content: dict[str, Any]) -> None:
    path.write_text(json.dumps(content, separators=(",", ":")))


def write_synthetic_dataset(
    root: str | Path, num_train: int, num_val: int, seed: int = 0, cfg: SynthConfig = SynthConfig()
) -> dict[str, Path]:
    """Write `classes.txt`, `train/` and the held-out `val/` split under `root`; returns the split folders."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("\n".join(CLASS_NAMES) + "\n")
    counts = {"train": num_train, "val": num_val}
    return {
        split: write_split(root / split, counts[split], seed, index, cfg)
        for index, split in enumerate(SPLITS)
    }
