"""Transforms move the image, polygons, bitmasks and label maps together."""

from __future__ import annotations

import numpy as np
import pytest

from maskdino.data.targets import instance_target, mask_box, rasterize_polygons
from maskdino.data.transforms import (
    AugInput,
    ColorAugSSD,
    Crop,
    HFlip,
    Pad,
    Resize,
    VFlip,
    apply_transforms,
    clip_polygon,
    polygon_area,
)


def _scene() -> tuple[AugInput, np.ndarray]:
    """A 60x80 image with an L-shaped polygon, the same shape as a bitmask and as a label map."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    l_shape = np.array([[10, 5], [30, 5], [30, 20], [20, 20], [20, 40], [10, 40]], dtype=np.float64)
    mask = rasterize_polygons([l_shape], 60, 80)
    label_map = np.where(mask, 7, 0).astype(np.int64)
    return AugInput(image, [[l_shape], mask], label_map, label_map_pad=255), mask


def test_hflip_moves_polygon_bitmask_and_label_map_consistently() -> None:
    data, mask = _scene()
    flipped = HFlip(80)(data)
    np.testing.assert_array_equal(flipped.image, data.image[:, ::-1])
    polygon_mask = rasterize_polygons(flipped.shapes[0], 60, 80)
    np.testing.assert_array_equal(polygon_mask, mask[:, ::-1])
    np.testing.assert_array_equal(flipped.shapes[1], mask[:, ::-1])
    np.testing.assert_array_equal(flipped.label_map == 7, mask[:, ::-1])
    target = instance_target(flipped.shapes, [3, 3], 60, 80)
    # polygon x in [10, 30] -> [50, 70]; bitmask box of the same pixels
    assert target["boxes"][0].tolist() == [50.0, 5.0, 70.0, 40.0]
    assert target["boxes"][1].tolist() == [50.0, 5.0, 70.0, 40.0]
    assert target["masks"][0].equal(target["masks"][1])


def test_vflip_twice_is_identity() -> None:
    data, _ = _scene()
    back = apply_transforms([VFlip(60), VFlip(60)], data)
    np.testing.assert_array_equal(back.image, data.image)
    np.testing.assert_allclose(back.shapes[0][0], data.shapes[0][0])
    np.testing.assert_array_equal(back.label_map, data.label_map)


def test_resize_scales_coordinates_and_keeps_masks_aligned() -> None:
    data, _ = _scene()
    resized = Resize(60, 80, 120, 200)(data)
    assert resized.image.shape == (120, 200, 3)
    np.testing.assert_allclose(resized.shapes[0][0][0], [25.0, 10.0])  # (10, 5) * (2.5, 2)
    from_polygon = rasterize_polygons(resized.shapes[0], 120, 200)
    # nearest-resized bitmask and label map agree with the polygon rasterised at the new size
    assert (from_polygon != resized.shapes[1]).mean() < 0.01
    np.testing.assert_array_equal(resized.shapes[1], resized.label_map == 7)


def test_crop_clips_polygons_and_pad_fills_label_map() -> None:
    data, _ = _scene()
    cropped = apply_transforms([Crop(15, 10, 50, 50), Pad(64, 64, image_value=128)], data)
    assert cropped.image.shape == (64, 64, 3)
    np.testing.assert_array_equal(cropped.image[:50, :50], data.image[10:60, 15:65])
    assert (cropped.image[50:] == 128).all() and (cropped.image[:, 50:] == 128).all()
    assert (cropped.label_map[50:] == 255).all()  # the label map's own pad value
    assert not cropped.shapes[1][50:].any()
    polygon = cropped.shapes[0][0]
    assert polygon[:, 0].min() >= 0 and polygon[:, 1].min() >= 0
    target = instance_target(cropped.shapes, [1, 1], 64, 64)
    # L-shape x [10, 30] y [5, 40] shifted by (-15, -10) and clipped at 0: x [0, 15], y [0, 30]
    assert target["boxes"][0].tolist() == [0.0, 0.0, 15.0, 30.0]
    assert target["boxes"][1].tolist() == [0.0, 0.0, 15.0, 30.0]


def test_crop_removes_polygons_outside_the_window() -> None:
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], dtype=np.float64)
    assert Crop(20, 20, 30, 30).apply_polygons([square]) == []


def test_clip_polygon_of_a_concave_shape() -> None:
    u_shape = np.array([[0, 0], [30, 0], [30, 30], [20, 30], [20, 10], [10, 10], [10, 30], [0, 30]], float)
    clipped = clip_polygon(u_shape, 40, 20)  # cut the two arms at y = 20
    assert polygon_area(u_shape) == 700.0
    assert polygon_area(clipped) == pytest.approx(30 * 10 + 2 * 10 * 10)
    assert clipped[:, 1].max() == 20.0


def test_mask_box_uses_exclusive_max() -> None:
    mask = np.zeros((10, 10), dtype=bool)
    mask[2:5, 3:9] = True
    assert mask_box(mask) == [3.0, 2.0, 9.0, 5.0]


def test_color_aug_ssd_steps() -> None:
    data, _ = _scene()
    unchanged = ColorAugSSD(None, None, None, None, True)(data)
    np.testing.assert_array_equal(unchanged.image, data.image)
    brighter = ColorAugSSD(20.0, None, None, None, True)(data)
    np.testing.assert_array_equal(brighter.image, np.clip(data.image.astype(int) + 20, 0, 255))
    # full hue turn (180 OpenCV units = 360 degrees) and unit saturation give back the image
    turned = ColorAugSSD(None, None, 1.0, 180, False)(data)
    assert np.abs(turned.image.astype(int) - data.image).max() <= 1
    gray = ColorAugSSD(None, None, 0.0, None, False)(data).image
    assert np.abs(gray.max(axis=2).astype(int) - gray.min(axis=2)).max() <= 1
    np.testing.assert_array_equal(gray.max(axis=2), data.image.max(axis=2))  # value is kept
    assert unchanged.label_map is not None and np.array_equal(brighter.label_map, data.label_map)
