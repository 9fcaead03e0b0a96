"""Robust decoding of photos and label maps with PIL.

Photos always come back as uint8 RGB with the EXIF orientation applied (as detectron2's `read_image`
does), whatever the file stores: grayscale, palette, CMYK, RGBA/LA (alpha dropped, like PIL's
`convert("RGB")` in the official reader), 16-bit (scaled to 8-bit instead of being clipped). Each
conversion is reported in a list of notes so callers can log what happened.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

MIN_SIDE = 32  # the model's stride; smaller images are legal but worth a note
_EXIF_ORIENTATION_TAG = 274
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


class ImageReadError(OSError):
    """A photo or label map that is missing or cannot be decoded; the message names the file.

    Training replaces such a sample and counts it under `kind` (see records.BAD_INPUT_KINDS)."""

    kind = "unreadable_image"


def load_rgb_image(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """Decode `path` to an [H, W, 3] uint8 RGB array, upright per EXIF; also return conversion notes."""
    with _open(path) as image:
        notes: list[str] = []
        orientation = image.getexif().get(_EXIF_ORIENTATION_TAG, 1)
        if orientation not in (1, None):
            image = ImageOps.exif_transpose(image)
            notes.append(f"EXIF orientation {orientation} applied")
        array = _to_rgb_uint8(image, notes, path)
    height, width = array.shape[:2]
    if min(height, width) < MIN_SIDE:
        notes.append(f"image is only {width}x{height} px (< {MIN_SIDE} px on a side)")
    return array, notes


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of the upright image, read from the header only (EXIF 5-8 swap the sides)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    except FileNotFoundError:
        raise ImageReadError(f"image file not found: {path}") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageReadError(f"cannot read the header of image {path}: {err}") from err
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)


def load_label_map(path: str | Path) -> np.ndarray:
    """Decode a single-channel label PNG to its raw integer values [H, W] (palette indices, not colours)."""
    with _open(path) as image:
        if image.mode not in ("L", "P", *_SIXTEEN_BIT_MODES):
            raise ImageReadError(
                f"label map {path} has mode {image.mode}; expected one channel of class/instance ids "
                f"(mode L, P or 16-bit). Colour-coded label images must be converted to ids first."
            )
        array = np.asarray(image)
    return array.astype(np.int64)


def load_panoptic_ids(path: str | Path) -> np.ndarray:
    """Decode a COCO-panoptic RGB PNG to segment ids [H, W] with id = R + 256 G + 256^2 B."""
    with _open(path) as image:
        if image.mode != "RGB":
            raise ImageReadError(
                f"panoptic PNG {path} has mode {image.mode}; expected RGB-encoded segment ids"
            )
        rgb = np.asarray(image).astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def _open(path: str | Path) -> Image.Image:
    """Open and fully decode now, so that truncated or corrupt files fail here with the path named."""
    try:
        image = Image.open(path)
        image.load()
    except FileNotFoundError:
        raise ImageReadError(f"image file not found: {path}") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageReadError(f"cannot decode image {path}: {err}") from err
    return image


def _to_rgb_uint8(image: Image.Image, notes: list[str], path: str | Path) -> np.ndarray:
    mode = image.mode
    if mode == "RGB":
        return np.asarray(image).copy()
    if mode in _SIXTEEN_BIT_MODES:
        # PIL's convert("RGB") would clip 16-bit values at 255; scale the full range instead.
        values = np.clip(np.asarray(image).astype(np.float64), 0, 65535)
        gray = np.round(values / 257.0).astype(np.uint8)
        notes.append(f"16-bit image ({mode}) scaled to 8-bit")
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        gray = np.clip(np.asarray(image), 0, 255).astype(np.uint8)
        notes.append("32-bit float image clipped to 0..255")
        return np.repeat(gray[..., None], 3, axis=2)
    if mode in ("RGBA", "RGBa", "LA", "La", "PA"):
        notes.append(f"alpha channel of {mode} image dropped")
    elif mode in ("L", "1"):
        notes.append("grayscale replicated to RGB")
    elif mode == "P":
        notes.append("palette image expanded to RGB")
    elif mode == "CMYK":
        notes.append("CMYK image converted to RGB")
    try:
        return np.asarray(image.convert("RGB")).copy()
    except ValueError as err:
        raise ImageReadError(f"cannot convert image {path} of mode {mode} to RGB: {err}") from err
