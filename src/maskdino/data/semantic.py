"""Semantic segmentation folders (ADE20K and any image/label-PNG pair layout) and label decoding.

Label PNGs hold one class value per pixel; `sem_seg_encoding` says how those values become contiguous
classes with `ignore_value` for unlabeled pixels:
  * "contiguous": already 0..C-1 (e.g. detectron2's `annotations_detectron2`, Cityscapes labelTrainIds);
  * "reduce_zero": raw ADE20K, 0 = other/unlabeled -> ignore, k -> k - 1;
  * "cityscapes_label_ids": raw Cityscapes labelIds (0..33) -> the 19 trainIds.
Any value outside 0..C-1 after decoding becomes `ignore_value`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from maskdino.data.class_names import ADE20K_NAMES, CITYSCAPES_LABEL_IDS
from maskdino.data.image_io import load_label_map
from maskdino.data.records import BadInputTally, DatasetInfo, LoadedDataset

SEM_SEG_ENCODINGS = ("contiguous", "reduce_zero", "cityscapes_label_ids")


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
    image_suffix: str = ".jpg",
    label_suffix: str = ".png",
) -> LoadedDataset:
    """Pair every `image_dir/**/<stem><image_suffix>` with `label_dir/<same subpath>/<stem><label_suffix>`."""
    image_dir, label_dir = Path(image_dir), Path(label_dir)
    if encoding not in SEM_SEG_ENCODINGS:
        raise ValueError(f"sem_seg encoding {encoding!r} is not one of {SEM_SEG_ENCODINGS}")
    for folder, what in ((image_dir, "image"), (label_dir, "label")):
        if not folder.is_dir():
            raise FileNotFoundError(f"dataset {info.name!r}: {what} folder not found: {folder}")
    image_files = sorted(image_dir.rglob(f"*{image_suffix}"))
    if not image_files:
        raise FileNotFoundError(f"dataset {info.name!r}: no *{image_suffix} images under {image_dir}")
    tally = BadInputTally()
    records = []
    for file_name in image_files:
        relative = file_name.relative_to(image_dir)
        stem = relative.name[: -len(image_suffix)]
        label_file = label_dir / relative.parent / f"{stem}{label_suffix}"
        if not label_file.is_file():
            tally.add("missing_file", str(label_file))
            continue
        records.append(semantic_record(file_name, label_file, info.name, encoding, image_id=stem))
    tally.log(info.name)
    if not records:
        raise FileNotFoundError(
            f"dataset {info.name!r}: none of the {len(image_files)} images under {image_dir} has a label "
            f"file under {label_dir} (e.g. {tally.examples['missing_file'][0]})"
        )
    return LoadedDataset(info, records, tally.counts)


def semantic_record(image: Path, label: Path, dataset: str, encoding: str, image_id: str) -> dict[str, Any]:
    """Height and width are left None: they are read with the image (no header pass over the whole set)."""
    return {
        "file_name": str(image),
        "image_id": image_id,
        "height": None,
        "width": None,
        "dataset": dataset,
        "sem_seg_file_name": str(label),
        "sem_seg_encoding": encoding,
    }


def read_sem_seg(record: dict[str, Any], num_classes: int, ignore_value: int) -> np.ndarray:
    """The record's label PNG as contiguous classes [H, W] int64, `ignore_value` where unlabeled."""
    raw = load_label_map(record["sem_seg_file_name"])
    return decode_sem_seg(raw, record["sem_seg_encoding"], num_classes, ignore_value)


def decode_sem_seg(raw: np.ndarray, encoding: str, num_classes: int, ignore_value: int) -> np.ndarray:
    if encoding == "contiguous":
        labels = raw
    elif encoding == "reduce_zero":
        labels = raw - 1  # 0 (unlabeled) becomes -1, i.e. out of range -> ignore below
    elif encoding == "cityscapes_label_ids":
        lookup = np.full(max(int(raw.max()) + 1, 34), -1, dtype=np.int64)
        lookup[list(CITYSCAPES_LABEL_IDS)] = np.arange(len(CITYSCAPES_LABEL_IDS))
        labels = lookup[np.clip(raw, 0, None)]
    else:
        raise ValueError(f"sem_seg encoding {encoding!r} is not one of {SEM_SEG_ENCODINGS}")
    return np.where((labels >= 0) & (labels < num_classes), labels, ignore_value).astype(np.int64)
