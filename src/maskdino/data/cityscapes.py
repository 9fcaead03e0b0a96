"""Cityscapes from the official gtFine layout: semantic (19 trainIds), instance (8 things) and panoptic.

    cityscapes/leftImg8bit/{split}/{city}/{frame}_leftImg8bit.png
    cityscapes/gtFine/{split}/{city}/{frame}_gtFine_{labelIds,labelTrainIds,instanceIds}.png

Semantic labels come from labelTrainIds when cityscapesScripts' `createTrainIdLabelImgs` has been run,
else from labelIds through the official id -> trainId table. Instance and panoptic targets are read from
instanceIds (value = labelId * 1000 + k for an instance of a class with instances, the bare labelId
otherwise), like cityscapesScripts' `createPanopticImgs`: a thing-class region without an instance id is
a crowd segment; classes with trainId 255 are void.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from maskdino.data.class_names import CITYSCAPES_ISTHING, CITYSCAPES_LABEL_IDS, CITYSCAPES_NAMES
from maskdino.data.image_io import load_label_map
from maskdino.data.records import BadInputTally, DatasetInfo, LoadedDataset
from maskdino.data.semantic import load_semantic_folder

IMAGE_SUFFIX = "_leftImg8bit.png"
NUM_STUFF = CITYSCAPES_ISTHING.count(False)


def cityscapes_info(name: str, task: str) -> DatasetInfo:
    """19 classes for semantic/panoptic (trainId order), the 8 thing classes for instance."""
    if task == "instance":
        return DatasetInfo(
            name,
            task,
            CITYSCAPES_NAMES[NUM_STUFF:],
            CITYSCAPES_LABEL_IDS[NUM_STUFF:],
            (True,) * (19 - NUM_STUFF),
        )
    return DatasetInfo(name, task, CITYSCAPES_NAMES, CITYSCAPES_LABEL_IDS, CITYSCAPES_ISTHING)


def load_cityscapes_semantic(root: str | Path, split: str, name: str | None = None) -> LoadedDataset:
    """`root` is the folder holding leftImg8bit/ and gtFine/; `split` is train, val or test."""
    root = Path(root)
    name = name or f"cityscapes_fine_sem_seg_{split}"
    label_dir = root / "gtFine" / split
    has_train_ids = (
        label_dir.is_dir() and next(label_dir.rglob("*_gtFine_labelTrainIds.png"), None) is not None
    )
    suffix, encoding = (
        ("_gtFine_labelTrainIds.png", "contiguous")
        if has_train_ids
        else ("_gtFine_labelIds.png", "cityscapes_label_ids")
    )
    return load_semantic_folder(
        root / "leftImg8bit" / split,
        label_dir,
        cityscapes_info(name, "semantic"),
        encoding,
        (IMAGE_SUFFIX,),
        suffix,
    )


def load_cityscapes_segments(
    root: str | Path, split: str, task: str, name: str | None = None
) -> LoadedDataset:
    """Instance (`task="instance"`) or panoptic records whose targets come from the instanceIds PNGs."""
    if task not in ("instance", "panoptic"):
        raise ValueError(
            f"cityscapes task {task!r}: expected 'instance' or 'panoptic' (semantic has its own loader)"
        )
    root = Path(root)
    name = name or f"cityscapes_fine_{'instance_seg' if task == 'instance' else 'panoptic'}_{split}"
    image_dir, label_dir = root / "leftImg8bit" / split, root / "gtFine" / split
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            raise FileNotFoundError(
                f"dataset {name!r}: folder not found: {folder} (official Cityscapes layout)"
            )
    tally = BadInputTally()
    records = []
    for file_name in sorted(image_dir.rglob(f"*{IMAGE_SUFFIX}")):
        frame = file_name.name[: -len(IMAGE_SUFFIX)]
        ids_file = label_dir / file_name.parent.name / f"{frame}_gtFine_instanceIds.png"
        if not ids_file.is_file():
            tally.add("missing_file", str(ids_file))
            continue
        records.append(
            {
                "file_name": str(file_name),
                "image_id": frame,
                "height": None,
                "width": None,
                "dataset": name,
                "cityscapes_instance_ids_file": str(ids_file),
                "cityscapes_task": task,
            }
        )
    tally.log(name)
    if not records:
        raise FileNotFoundError(
            f"dataset {name!r}: no *{IMAGE_SUFFIX} with a gtFine instanceIds PNG under {image_dir}"
        )
    return LoadedDataset(cityscapes_info(name, task), records, tally.counts)


def read_cityscapes_segments(record: dict[str, Any]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Segment-id map [H, W] (the instanceIds values) and its segments with contiguous labels."""
    ids = load_label_map(record["cityscapes_instance_ids_file"])
    return ids, segments_from_instance_ids(ids, record["cityscapes_task"])


def segments_from_instance_ids(ids: np.ndarray, task: str) -> list[dict[str, Any]]:
    train_id_of = {label_id: train_id for train_id, label_id in enumerate(CITYSCAPES_LABEL_IDS)}
    segments = []
    for value in np.unique(ids).tolist():
        label_id = value // 1000 if value >= 1000 else value
        train_id = train_id_of.get(label_id)
        if train_id is None:
            continue  # void or a class not evaluated (trainId 255)
        isthing = CITYSCAPES_ISTHING[train_id]
        if task == "instance" and not isthing:
            continue
        label = train_id - NUM_STUFF if task == "instance" else train_id
        segments.append({"id": value, "label": label, "iscrowd": int(isthing and value < 1000)})
    return segments
