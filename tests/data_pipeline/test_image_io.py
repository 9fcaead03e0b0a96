"""Decoding of odd image files, generated from a real COCO photo, plus the label-map readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskdino.data.image_io import (
    ImageReadError,
    image_size,
    load_label_map,
    load_panoptic_ids,
    load_rgb_image,
)

PHOTO = "000000037777.jpg"  # 352 x 230


@pytest.fixture(scope="module")
def photo(coco_dir: Path) -> np.ndarray:
    return np.asarray(Image.open(coco_dir / PHOTO).convert("RGB"))


def test_plain_jpeg_is_rgb_uint8_without_notes(coco_dir: Path) -> None:
    image, notes = load_rgb_image(coco_dir / PHOTO)
    assert image.shape == (230, 352, 3) and image.dtype == np.uint8
    assert notes == []


def test_grayscale_is_replicated(photo: np.ndarray, tmp_path: Path) -> None:
    gray = Image.fromarray(photo).convert("L")
    gray.save(tmp_path / "gray.png")
    image, notes = load_rgb_image(tmp_path / "gray.png")
    expected = np.asarray(gray)
    assert image.shape == (230, 352, 3)
    for channel in range(3):
        np.testing.assert_array_equal(image[..., channel], expected)
    assert notes == ["grayscale replicated to RGB"]


def test_rgba_alpha_is_dropped_not_composited(photo: np.ndarray, tmp_path: Path) -> None:
    alpha = np.zeros(photo.shape[:2], dtype=np.uint8)  # fully transparent: compositing would change colours
    Image.fromarray(np.dstack([photo, alpha]), "RGBA").save(tmp_path / "rgba.png")
    image, notes = load_rgb_image(tmp_path / "rgba.png")
    np.testing.assert_array_equal(image, photo)
    assert notes == ["alpha channel of RGBA image dropped"]


def test_sixteen_bit_png_is_scaled_not_clipped(photo: np.ndarray, tmp_path: Path) -> None:
    gray8 = np.asarray(Image.fromarray(photo).convert("L")).astype(np.uint16)
    Image.fromarray(gray8 * 257).save(tmp_path / "gray16.png")  # full 16-bit range
    assert Image.open(tmp_path / "gray16.png").mode.startswith("I")
    image, notes = load_rgb_image(tmp_path / "gray16.png")
    np.testing.assert_array_equal(image[..., 0], gray8)  # clipping would saturate almost every pixel at 255
    assert "16-bit" in notes[0]


def test_palette_and_cmyk_convert_to_rgb(photo: np.ndarray, tmp_path: Path) -> None:
    Image.fromarray(photo).quantize(256).save(tmp_path / "palette.png")
    image, notes = load_rgb_image(tmp_path / "palette.png")
    assert image.shape == (230, 352, 3) and notes == ["palette image expanded to RGB"]
    assert np.abs(image.astype(int) - photo).mean() < 4  # colours, not palette indices

    Image.fromarray(photo).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    image, notes = load_rgb_image(tmp_path / "cmyk.jpg")
    assert notes == ["CMYK image converted to RGB"]
    assert np.abs(image.astype(int) - photo).mean() < 6


def test_exif_orientation_is_applied(photo: np.ndarray, tmp_path: Path) -> None:
    # Store the photo rotated 90 degrees clockwise with orientation 6 ("rotate 90 CW to display"):
    # a viewer (and detectron2's read_image) shows the original upright photo.
    stored = Image.fromarray(np.rot90(photo, k=1).copy())
    exif = Image.Exif()
    exif[274] = 6
    stored.save(tmp_path / "rotated.jpg", exif=exif, quality=98)
    assert Image.open(tmp_path / "rotated.jpg").size == (230, 352)
    image, notes = load_rgb_image(tmp_path / "rotated.jpg")
    assert image.shape == (230, 352, 3)
    assert notes == ["EXIF orientation 6 applied"]
    assert np.abs(image.astype(int) - photo).mean() < 4
    assert image_size(tmp_path / "rotated.jpg") == (230, 352)


def test_tiny_image_gets_a_note(photo: np.ndarray, tmp_path: Path) -> None:
    Image.fromarray(photo[:20, :28]).save(tmp_path / "tiny.png")
    image, notes = load_rgb_image(tmp_path / "tiny.png")
    assert image.shape == (20, 28, 3)
    assert notes == ["image is only 28x20 px (< 32 px on a side)"]


def test_missing_and_corrupt_files_raise_naming_the_path(coco_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="not found: .*nothing.jpg"):
        load_rgb_image(tmp_path / "nothing.jpg")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes((coco_dir / PHOTO).read_bytes()[:5000])
    with pytest.raises(ImageReadError, match="cannot decode image .*truncated.jpg"):
        load_rgb_image(truncated)
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(ImageReadError, match="text.jpg"):
        load_rgb_image(tmp_path / "text.jpg")


def test_label_maps_keep_raw_ids(pipeline_data: Path, tmp_path: Path) -> None:
    labels = load_label_map(pipeline_data / "ade20k/annotations/validation/ADE_val_00000001.png")
    assert labels.shape == (512, 683) and labels.dtype == np.int64
    assert labels.min() == 0 and labels.max() == 18  # raw ADE20K values (SOURCE.md: max label 18)

    ids16 = np.array([[0, 26001], [7, 33000]], dtype=np.uint16)
    Image.fromarray(ids16).save(tmp_path / "ids.png")
    np.testing.assert_array_equal(load_label_map(tmp_path / "ids.png"), ids16)
    with pytest.raises(ImageReadError, match="mode RGB"):
        load_label_map(pipeline_data / "coco_panoptic/panoptic_val2017/000000142238.png")


def test_panoptic_ids_decode_rgb(pipeline_data: Path) -> None:
    ids = load_panoptic_ids(pipeline_data / "coco_panoptic/panoptic_val2017/000000142238.png")
    assert ids.shape == (427, 640)
    assert 3937500 in ids and 4260062 in ids  # the first two segments of panoptic_val2017.json
