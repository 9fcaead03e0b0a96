"""Semantic segmentation folders (your own images + label PNGs, ADE20K, Cityscapes) and label decoding.

Images pair with label PNGs by file stem (and sub-folder): `images/a/x.jpg` with `labels/a/x.png`.
Label PNGs hold one class value per pixel; `sem_seg_encoding` says how those values become contiguous
classes, and the record's `sem_seg_ignore` (data.ignore_label) is the value of unlabelled pixels:
  * "contiguous": value i is class i (your own folders: line i of classes.txt; detectron2's
    `annotations_detectron2`; Cityscapes labelTrainIds);
  * "reduce_zero": ADE20K style, 0 = unlabelled, value k is class k - 1;
  * "cityscapes_label_ids": raw Cityscapes labelIds (0..33) -> the 19 trainIds, other ids unlabelled.
With the first two, a value that is neither a class nor the ignore value is an error naming the file
(`LabelValueError`): the classes file, `ignore_label` or `reduce_zero_label` does not fit the labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from maskdino.data.class_names import ADE20K_NAMES, CITYSCAPES_LABEL_IDS
from maskdino.data.image_io import ImageReadError, image_size, load_label_map
from maskdino.data.records import BadInputTally, DatasetInfo, LoadedDataset

SEM_SEG_ENCODINGS = ("contiguous", "reduce_zero", "cityscapes_label_ids")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
LABEL_SUFFIX = ".png"
COLOUR_MODES = ("RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV")
CHECKED_LABELS = 4  # label files decoded when a folder is loaded, so a misfit of the whole set fails at once
IGNORED = np.iinfo(np.int64).min  # decoded value of unlabelled pixels before they take the ignore value


class LabelValueError(ImageReadError):
    """A label PNG holds values that are neither classes nor the ignore value."""

    kind = "bad_labels"


def read_classes_file(path: str | Path) -> tuple[str, ...]:
    """Class names, one per line (line i names label value i; trailing blank lines are ignored)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"classes file not found: {path} (one class name per line, line i = label i)")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise ValueError(
            f"classes file {path} is empty: write one class name per line, the name of label value 0 first "
            f"(e.g. 'sky', 'road', ...); the ignore value (data.ignore_label, 255 by default) needs no line"
        )
    blank = [i + 1 for i, line in enumerate(lines) if not line]
    if blank:
        raise ValueError(
            f"classes file {path}: line {blank[0]} is empty, but line i names label value i - 1; "
            f"give every class a name (or remove the line if the value is never used)"
        )
    return tuple(lines)


def semantic_folder_info(name: str, class_names: tuple[str, ...], reduce_zero_label: bool) -> DatasetInfo:
    """Your own semantic classes; dataset id = the class's value in the label PNGs, every class stuff."""
    first = 1 if reduce_zero_label else 0
    ids = tuple(range(first, first + len(class_names)))
    return DatasetInfo(name, "semantic", tuple(class_names), ids, (False,) * len(class_names))


def ade20k_info(name: str) -> DatasetInfo:
    """The 150 ADE20K classes; dataset id = the objectInfo150 index (1..150), every class treated as stuff."""
    return DatasetInfo(name, "semantic", ADE20K_NAMES, tuple(range(1, 151)), (False,) * 150)


def load_ade20k(root: str | Path, split: str, name: str | None = None) -> LoadedDataset:
    """ADEChallengeData2016 under `root`: images/{split}/*.jpg with annotations_detectron2/{split}/*.png
    (already contiguous) when present, else the raw annotations/{split}/*.png (reduce-zero on the fly).
    `split` is "training" or "validation"."""
    root = Path(root)
    prepared = root / "annotations_detectron2" / split
    labels, encoding = (
        (prepared, "contiguous") if prepared.is_dir() else (root / "annotations" / split, "reduce_zero")
    )
    name = name or f"ade20k_{split}"
    return load_semantic_folder(root / "images" / split, labels, ade20k_info(name), encoding)


def load_semantic_folder(
    image_dir: str | Path,
    label_dir: str | Path,
    info: DatasetInfo,
    encoding: str,
    image_suffixes: tuple[str, ...] = IMAGE_SUFFIXES,
    label_suffix: str = LABEL_SUFFIX,
    ignore_label: int = 255,
) -> LoadedDataset:
    """Pair `image_dir/<sub>/<stem><image suffix>` with `label_dir/<sub>/<stem><label_suffix>`.

    An image without a label, a label without an image and a pair whose sizes differ are counted, named
    skips; a colour (RGB) label PNG, and values outside the classes in the first few labels, are errors
    naming the file and the fix.
    """
    image_dir, label_dir = Path(image_dir), Path(label_dir)
    if encoding not in SEM_SEG_ENCODINGS:
        raise ValueError(f"sem_seg encoding {encoding!r} is not one of {SEM_SEG_ENCODINGS}")
    for folder, what in ((image_dir, "image"), (label_dir, "label")):
        if not folder.is_dir():
            raise FileNotFoundError(f"dataset {info.name!r}: {what} folder not found: {folder}")
    images = _files_by_stem(image_dir, image_suffixes)
    labels = _files_by_stem(label_dir, (label_suffix,))
    if not images:
        raise FileNotFoundError(
            f"dataset {info.name!r}: no images ({', '.join(image_suffixes)}) under {image_dir}"
        )
    tally = BadInputTally()
    for key in sorted(set(labels) - set(images)):
        tally.add("label_without_image", str(labels[key]))
    pairs = []
    for key, image_file in sorted(images.items()):
        label_file = labels.get(key)
        if label_file is None:
            tally.add("image_without_label", f"{image_file} (no {key}{label_suffix} under {label_dir})")
            continue
        height, width = _pair_size(image_file, label_file, tally)
        if height is not None:
            pairs.append((key, image_file, label_file, height, width))
    stems = [Path(key).name for key, *_ in pairs]
    unique = len(set(stems)) == len(stems)  # else a stem repeats in sub-folders: the ids keep the folder
    records = [
        dict(
            semantic_record(image, label, info.name, encoding, stem if unique else key, ignore_label),
            height=height,
            width=width,
        )
        for (key, image, label, height, width), stem in zip(pairs, stems)
    ]
    tally.log(info.name)
    if not records:
        example = next(iter(tally.examples.values()), ["no pairs"])[0]
        raise FileNotFoundError(
            f"dataset {info.name!r}: none of the {len(images)} images under {image_dir} has a usable label "
            f"PNG under {label_dir} (e.g. {example}); images pair with labels by file stem"
        )
    for record in records[:CHECKED_LABELS]:
        try:
            read_sem_seg(record, info.num_classes, ignore_value=255)
        except LabelValueError as err:  # the settings do not fit the labels: nothing would train right
            raise ValueError(str(err)) from None
    return LoadedDataset(info, records, tally.counts)


def _files_by_stem(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """{"sub/stem": path} of the files under `folder` ending in one of `suffixes` (case-insensitive)."""
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        suffix = next((s for s in suffixes if path.name.lower().endswith(s.lower())), None)
        if suffix is None or not path.is_file():
            continue
        relative = path.relative_to(folder)
        key = str(relative.parent / relative.name[: -len(suffix)]).removeprefix("./")
        found.setdefault(key, path)
    return found


def _pair_size(image_file: Path, label_file: Path, tally: BadInputTally) -> tuple[int | None, int | None]:
    """(height, width) of the pair from the file headers; None (counted) when the sizes differ."""
    try:
        height, width = image_size(image_file)  # upright, as the image is decoded
        with Image.open(label_file) as label:
            label_wh, mode = label.size, label.mode
    except ImageReadError as err:
        tally.add("unreadable_image", str(err))
        return None, None
    except (OSError, SyntaxError, ValueError) as err:
        tally.add("unreadable_image", f"cannot read the header of label PNG {label_file}: {err}")
        return None, None
    if mode in COLOUR_MODES:
        raise ValueError(_colour_label_message(label_file, mode))
    if label_wh != (width, height):
        tally.add(
            "label_size_mismatch",
            f"{label_file} is {label_wh[0]}x{label_wh[1]} but {image_file.name} is {width}x{height}",
        )
        return None, None
    return height, width


def _colour_label_message(label_file: Path, mode: str) -> str:
    """Why an RGB label PNG cannot be used and how to convert it, with the colours it holds."""
    with Image.open(label_file) as label:
        rgb = np.asarray(label.convert("RGB")).reshape(-1, 3)
    colours = np.unique(rgb, axis=0)
    shown = ", ".join(str(tuple(int(v) for v in c)) for c in colours[:6])
    more = f", ... ({len(colours)} colours)" if len(colours) > 6 else f" ({len(colours)} colours)"
    return (
        f"label PNG {label_file} is a colour image (mode {mode}) holding colours {shown}{more}. Semantic labels "
        f"must be one channel of class values (mode L or P: value i = line i of classes.txt). Convert it "
        f"with your dataset's palette, colour -> class index (e.g. CamVid's or Cityscapes' colour table; "
        f"for each class: labels[(rgb == colour).all(-1)] = index), and save as an 8-bit grayscale PNG; a "
        f"palette PNG already stores indices, so keep it in mode P instead of converting it to RGB"
    )


def semantic_record(
    image: Path, label: Path, dataset: str, encoding: str, image_id: str, ignore_label: int = 255
) -> dict[str, Any]:
    """Height and width are None until known (the Cityscapes loader reads them with the image)."""
    return {
        "file_name": str(image),
        "image_id": image_id,
        "height": None,
        "width": None,
        "dataset": dataset,
        "sem_seg_file_name": str(label),
        "sem_seg_encoding": encoding,
        "sem_seg_ignore": ignore_label,
    }


def read_sem_seg(record: dict[str, Any], num_classes: int, ignore_value: int) -> np.ndarray:
    """The record's label PNG as contiguous classes [H, W] int64, `ignore_value` where unlabelled."""
    path = record["sem_seg_file_name"]
    raw = load_label_map(path)
    encoding, raw_ignore = record["sem_seg_encoding"], record.get("sem_seg_ignore", 255)
    labels = decode_sem_seg(raw, encoding, raw_ignore)
    if encoding != "cityscapes_label_ids":
        bad = (labels != IGNORED) & ((labels < 0) | (labels >= num_classes))
        if bad.any():
            raise LabelValueError(_bad_values_message(path, raw[bad], encoding, num_classes, raw_ignore))
    return np.where(labels == IGNORED, ignore_value, labels)


def decode_sem_seg(raw: np.ndarray, encoding: str, raw_ignore: int = 255) -> np.ndarray:
    """Class per pixel, `IGNORED` where unlabelled; values that fit no class are left out of range."""
    if encoding == "contiguous":
        labels = raw.copy()
    elif encoding == "reduce_zero":
        labels = np.where(raw == 0, IGNORED, raw - 1)
    elif encoding == "cityscapes_label_ids":
        lookup = np.full(max(int(raw.max()) + 1, 34), IGNORED, dtype=np.int64)
        lookup[list(CITYSCAPES_LABEL_IDS)] = np.arange(len(CITYSCAPES_LABEL_IDS))
        labels = lookup[np.clip(raw, 0, None)]
    else:
        raise ValueError(f"sem_seg encoding {encoding!r} is not one of {SEM_SEG_ENCODINGS}")
    return np.where(raw == raw_ignore, IGNORED, labels).astype(np.int64)


def _bad_values_message(
    path: str, values: np.ndarray, encoding: str, num_classes: int, raw_ignore: int
) -> str:
    found = np.unique(values).tolist()
    shown = ", ".join(str(v) for v in found[:8]) + (", ..." if len(found) > 8 else "")
    valid = f"1..{num_classes} (0 unlabelled)" if encoding == "reduce_zero" else f"0..{num_classes - 1}"
    fixes = [
        f"set data.ignore_label={found[0]} if {found[0]} marks unlabelled pixels",
        "add the missing classes to classes.txt",
    ]
    if encoding == "contiguous" and max(found) == num_classes:
        fixes.append(
            "set data.reduce_zero_label=true if 0 means unlabelled and value k is class k - 1 (ADE20K)"
        )
    return (
        f"label PNG {path} holds values {shown} that are neither classes ({num_classes} classes: values "
        f"{valid}) nor the ignore value {raw_ignore}; " + ", or ".join(fixes)
    )
