"""Geometric and photometric transforms applied to an image and its targets together.

A transform is a deterministic operation with its parameters fixed (`Resize(480, 640, 800, 1067)`);
the samplers in `augmentations.py` draw those parameters from a per-sample random generator. Every
transform moves the image, instance polygons (continuous pixel coordinates, as COCO stores them),
per-instance bitmasks and one integer label map (semantic classes or panoptic segment ids) consistently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

# One instance's geometry: a list of polygons ([K, 2] float arrays of x, y) or a bool mask [H, W].
Shape = list[np.ndarray] | np.ndarray


@dataclass
class AugInput:
    """An image and whatever must move with it. `label_map_pad` fills label-map pixels added by padding."""

    image: np.ndarray  # [H, W, 3] uint8
    shapes: list[Shape] = field(default_factory=list)
    label_map: np.ndarray | None = None  # [H, W] int64
    label_map_pad: int = 0

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[0], self.image.shape[1]


class Transform:
    """Identity by default; subclasses override what they change."""

    def apply_image(self, image: np.ndarray) -> np.ndarray:
        return image

    def apply_coords(self, xy: np.ndarray) -> np.ndarray:
        return xy

    def apply_polygons(self, polygons: list[np.ndarray]) -> list[np.ndarray]:
        return [self.apply_coords(p) for p in polygons]

    def apply_label_map(self, label_map: np.ndarray, pad_value: int) -> np.ndarray:
        return label_map

    def __call__(self, data: AugInput) -> AugInput:
        shapes = [
            self.apply_polygons(s) if isinstance(s, list) else self.apply_label_map(s, 0) for s in data.shapes
        ]
        label_map = (
            None if data.label_map is None else self.apply_label_map(data.label_map, data.label_map_pad)
        )
        return AugInput(self.apply_image(data.image), shapes, label_map, data.label_map_pad)


@dataclass
class HFlip(Transform):
    width: int

    def apply_image(self, image: np.ndarray) -> np.ndarray:
        return image[:, ::-1].copy()

    def apply_coords(self, xy: np.ndarray) -> np.ndarray:
        return np.stack([self.width - xy[:, 0], xy[:, 1]], axis=1)

    def apply_label_map(self, label_map: np.ndarray, pad_value: int) -> np.ndarray:
        return label_map[:, ::-1].copy()


@dataclass
class VFlip(Transform):
    height: int

    def apply_image(self, image: np.ndarray) -> np.ndarray:
        return image[::-1].copy()

    def apply_coords(self, xy: np.ndarray) -> np.ndarray:
        return np.stack([xy[:, 0], self.height - xy[:, 1]], axis=1)

    def apply_label_map(self, label_map: np.ndarray, pad_value: int) -> np.ndarray:
        return label_map[::-1].copy()


@dataclass
class Resize(Transform):
    """Image: PIL bilinear (detectron2's `ResizeTransform`); label maps: nearest pixel centre."""

    height: int
    width: int
    new_height: int
    new_width: int

    def apply_image(self, image: np.ndarray) -> np.ndarray:
        resized = Image.fromarray(image).resize((self.new_width, self.new_height), Image.BILINEAR)
        return np.asarray(resized).copy()

    def apply_coords(self, xy: np.ndarray) -> np.ndarray:
        scale = np.array([self.new_width / self.width, self.new_height / self.height])
        return xy * scale

    def apply_label_map(self, label_map: np.ndarray, pad_value: int) -> np.ndarray:
        rows = _nearest_source_index(self.height, self.new_height)
        cols = _nearest_source_index(self.width, self.new_width)
        return label_map[rows[:, None], cols[None, :]]


@dataclass
class Crop(Transform):
    """Keep the window [x0, x0 + width) x [y0, y0 + height); polygons are clipped to it."""

    x0: int
    y0: int
    width: int
    height: int

    def apply_image(self, image: np.ndarray) -> np.ndarray:
        return image[self.y0 : self.y0 + self.height, self.x0 : self.x0 + self.width].copy()

    def apply_coords(self, xy: np.ndarray) -> np.ndarray:
        return xy - np.array([self.x0, self.y0], dtype=xy.dtype)

    def apply_polygons(self, polygons: list[np.ndarray]) -> list[np.ndarray]:
        # The window may extend past the image (FixedSizeCrop of a small image); clip to what is kept.
        clipped = [clip_polygon(self.apply_coords(p), self.width, self.height) for p in polygons]
        return [p for p in clipped if len(p) >= 3 and polygon_area(p) > 0]

    def apply_label_map(self, label_map: np.ndarray, pad_value: int) -> np.ndarray:
        return label_map[self.y0 : self.y0 + self.height, self.x0 : self.x0 + self.width].copy()


@dataclass
class Pad(Transform):
    """Pad bottom and right up to (height, width); image pixels get `image_value`."""

    height: int
    width: int
    image_value: int = 128

    def apply_image(self, image: np.ndarray) -> np.ndarray:
        out = np.full((self.height, self.width, image.shape[2]), self.image_value, dtype=image.dtype)
        out[: image.shape[0], : image.shape[1]] = image
        return out

    def apply_label_map(self, label_map: np.ndarray, pad_value: int) -> np.ndarray:
        out = np.full((self.height, self.width), pad_value, dtype=label_map.dtype)
        out[: label_map.shape[0], : label_map.shape[1]] = label_map
        return out


@dataclass
class ColorAugSSD(Transform):
    """SSD photometric distortion with drawn parameters (`None` = that step is skipped).

    Brightness shift, then either contrast -> saturation -> hue or saturation -> hue -> contrast, as in
    detectron2's PointRend `ColorAugSSDTransform`. Saturation scales S of HSV (clipped to 1); hue shifts
    by `hue_shift` units of 2 degrees (OpenCV's 0..180 hue scale). HSV is computed in float here, where
    the official code round-trips through OpenCV's uint8 HSV.
    """

    brightness: float | None
    contrast: float | None
    saturation: float | None
    hue_shift: int | None
    contrast_first: bool

    def apply_image(self, image: np.ndarray) -> np.ndarray:
        out = image
        if self.brightness is not None:
            out = _affine_uint8(out, 1.0, self.brightness)
        if self.contrast_first:
            out = self._hsv_steps(self._contrast(out))
        else:
            out = self._contrast(self._hsv_steps(out))
        return out

    def _contrast(self, image: np.ndarray) -> np.ndarray:
        return image if self.contrast is None else _affine_uint8(image, self.contrast, 0.0)

    def _hsv_steps(self, image: np.ndarray) -> np.ndarray:
        if self.saturation is not None:
            hue, sat, val = _rgb_to_hsv(image)
            image = _hsv_to_rgb(hue, np.clip(sat * self.saturation, 0.0, 1.0), val)
        if self.hue_shift is not None:
            hue, sat, val = _rgb_to_hsv(image)
            image = _hsv_to_rgb((hue + 2.0 * self.hue_shift) % 360.0, sat, val)
        return image


def apply_transforms(transforms: list[Transform], data: AugInput) -> AugInput:
    for transform in transforms:
        data = transform(data)
    return data


def clip_polygon(xy: np.ndarray, width: float, height: float) -> np.ndarray:
    """Sutherland-Hodgman clip of a polygon [K, 2] to the box [0, width] x [0, height]."""
    # (axis, bound, keep_below): the four half-planes of the box
    for axis, bound, keep_below in ((0, 0.0, False), (0, width, True), (1, 0.0, False), (1, height, True)):
        if len(xy) == 0:
            break
        inside = xy[:, axis] <= bound if keep_below else xy[:, axis] >= bound
        if inside.all():
            continue
        previous = np.roll(xy, 1, axis=0)
        previous_inside = np.roll(inside, 1)
        points = []
        for point, prev, point_in, prev_in in zip(xy, previous, inside, previous_inside):
            if point_in != prev_in:
                t = (bound - prev[axis]) / (point[axis] - prev[axis])
                points.append(prev + t * (point - prev))
            if point_in:
                points.append(point)
        xy = np.array(points, dtype=np.float64).reshape(-1, 2)
    return xy


def polygon_area(xy: np.ndarray) -> float:
    """Absolute shoelace area of a polygon [K, 2]."""
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _nearest_source_index(size: int, new_size: int) -> np.ndarray:
    """Source index of each output pixel whose centre maps inside it (PIL's NEAREST convention)."""
    centres = (np.arange(new_size) + 0.5) * (size / new_size)
    return np.minimum(np.floor(centres).astype(np.int64), size - 1)


def _affine_uint8(image: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    return np.clip(image.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)


def _rgb_to_hsv(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 RGB -> hue in degrees [0, 360), saturation and value in [0, 1]."""
    rgb = image.astype(np.float64) / 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    value = rgb.max(axis=-1)
    chroma = value - rgb.min(axis=-1)
    saturation = np.where(value > 0, chroma / np.maximum(value, 1e-12), 0.0)
    safe = np.maximum(chroma, 1e-12)
    hue = np.where(
        value == r, ((g - b) / safe) % 6.0, np.where(value == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)
    )
    hue = np.where(chroma > 0, hue * 60.0, 0.0)
    return hue, saturation, value


def _hsv_to_rgb(hue: np.ndarray, saturation: np.ndarray, value: np.ndarray) -> np.ndarray:
    chroma = value * saturation
    sector = hue / 60.0
    x = chroma * (1.0 - np.abs(sector % 2.0 - 1.0))
    zeros = np.zeros_like(chroma)
    index = np.floor(sector).astype(np.int64) % 6
    # (r, g, b) before adding the minimum, for each 60-degree sector
    table = [
        (chroma, x, zeros),
        (x, chroma, zeros),
        (zeros, chroma, x),
        (zeros, x, chroma),
        (x, zeros, chroma),
    ]
    table.append((chroma, zeros, x))
    channels = [np.choose(index, [row[c] for row in table]) for c in range(3)]
    rgb = np.stack(channels, axis=-1) + (value - chroma)[..., None]
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)
