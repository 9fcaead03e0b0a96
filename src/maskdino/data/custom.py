"""Your own data, described by files (the `data.*_json`, `*_images`, `*_masks`, `classes_file` settings,
the same as the `--train-json`, `--train-images`, `--train-masks`, `--classes` flags); the format is
recognised from what is given:

    json + images                   COCO instances: polygons / RLE masks, boxes only, or both mixed
    json + images + masks folder    COCO panoptic (the json's annotations carry `segments_info`;
                                    the masks folder holds its RGB segment-id PNGs)
    images + masks folder           semantic: label PNGs paired with the images by file stem; the class
                                    names from `classes_file` (line i names value i), else `class_names`
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from maskdino.config import DataConfig
from maskdino.data.coco import coco_instances_from_data, read_json
from maskdino.data.coco_panoptic import coco_panoptic_from_data, is_panoptic_json
from maskdino.data.records import LOGGER_NAME, LoadedDataset
from maskdino.data.semantic import load_semantic_folder, read_classes_file, semantic_folder_info

logger = logging.getLogger(LOGGER_NAME)


@dataclass(frozen=True)
class DatasetFiles:
    """The files describing one split, with the flag and config key of each for messages."""

    split: str  # train | val
    json: str | None
    images: str | None
    masks: str | None

    @property
    def given(self) -> bool:
        return bool(self.json or self.images or self.masks)

    def flag(self, what: str) -> str:
        return f"--{self.split}-{what} (data.{self.split}_{what})"


def dataset_files(data: DataConfig, split: str) -> DatasetFiles:
    """The files of the "train" or "test" split (the latter are the `val_*` settings)."""
    if split not in ("train", "test"):
        raise ValueError(f"split {split!r}: expected 'train' or 'test'")
    if split == "train":
        return DatasetFiles("train", data.train_json, data.train_images, data.train_masks)
    return DatasetFiles("val", data.val_json, data.val_images, data.val_masks)


def load_dataset_files(data: DataConfig, split: str, filter_empty: bool = False) -> LoadedDataset:
    """Recognise the format of a split's files and load it (see the module docstring)."""
    files = dataset_files(data, split)
    if not files.images:
        given = files.flag("json") if files.json else files.flag("masks")
        raise ValueError(f"{given} needs the folder of its images: pass {files.flag('images')}")
    if files.json:
        return _load_json(files, data, filter_empty)
    if files.masks:
        return _load_semantic(files, data)
    raise ValueError(
        f"an image folder alone ({files.images}) does not describe a dataset: add {files.flag('json')} "
        f"(COCO instances or panoptic) or {files.flag('masks')} with --classes classes.txt (semantic label "
        f"PNGs); see docs/datasets.md"
    )


def _load_json(files: DatasetFiles, data: DataConfig, filter_empty: bool) -> LoadedDataset:
    json_path = Path(str(files.json))
    content = read_json(json_path)
    if is_panoptic_json(content):
        if not files.masks:
            raise ValueError(
                f"{json_path} is a COCO panoptic json (its annotations have segments_info): pass the folder "
                f"of its panoptic PNGs with {files.flag('masks')}"
            )
        return coco_panoptic_from_data(content, json_path, str(files.images), files.masks)
    if files.masks:
        raise ValueError(
            f"{json_path} is a COCO instances json, whose masks come from its annotations' segmentation; "
            f"{files.flag('masks')} is for panoptic jsons and semantic folders: leave it out"
        )
    names = _class_names_for_json(data, content, json_path)
    return coco_instances_from_data(
        content, json_path, str(files.images), filter_empty=filter_empty, class_names=names
    )


def _class_names_for_json(data: DataConfig, content: dict, json_path: Path) -> tuple[str, ...]:
    """`data.class_names` as a renaming of the json's categories, unless they describe another dataset:
    names stored by an earlier training come with `class_ids`, which then differ from the json's ids."""
    if not data.class_names:
        return ()
    ids = sorted(int(c["id"]) for c in content.get("categories", []) if isinstance(c, dict) and "id" in c)
    if data.class_ids and list(data.class_ids) != ids:
        logger.info(
            "the config's class names belong to another dataset (category ids %s...): using the names of %s",
            list(data.class_ids)[:5],
            json_path,
        )
        return ()
    return tuple(data.class_names)


def _load_semantic(files: DatasetFiles, data: DataConfig) -> LoadedDataset:
    if data.classes_file and (Path(data.classes_file).is_file() or not data.class_names):
        names = read_classes_file(data.classes_file)
    elif data.class_names:
        names = tuple(data.class_names)  # e.g. stored with the weights by the training run
    else:
        raise ValueError(
            f"the semantic folder {files.masks} needs its class names: pass --classes classes.txt "
            f"(data.classes_file), one name per line, line i naming label value i"
        )
    reserved = range(1, len(names) + 1) if data.reduce_zero_label else range(len(names))
    if data.ignore_label in reserved:
        raise ValueError(
            f"data.ignore_label={data.ignore_label} is also the label value of class "
            f"{names[data.ignore_label - reserved.start]!r}; the ignore value must be outside "
            f"{reserved.start}..{reserved.stop - 1} (255 by default)"
        )
    masks = Path(str(files.masks)).resolve()
    name = masks.parent.name or masks.name  # e.g. camvid for camvid/images + camvid/labels
    info = semantic_folder_info(name, names, data.reduce_zero_label)
    encoding = "reduce_zero" if data.reduce_zero_label else "contiguous"
    return load_semantic_folder(
        str(files.images), str(files.masks), info, encoding, ignore_label=data.ignore_label
    )
