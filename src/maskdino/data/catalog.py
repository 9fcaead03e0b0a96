"""Standard dataset names -> files under a data root, in the official (detectron2/Mask2Former) layouts.

    <root>/coco/{train2017,val2017}/                  <root>/coco/annotations/instances_{train,val}2017.json
    <root>/coco/panoptic_{train,val}2017/*.png        <root>/coco/annotations/panoptic_{train,val}2017.json
    <root>/ADEChallengeData2016/images/{training,validation}/
    <root>/ADEChallengeData2016/annotations[_detectron2]/{training,validation}/
    <root>/cityscapes/leftImg8bit/{train,val}/<city>/  <root>/cityscapes/gtFine/{train,val}/<city>/

The root is `--data-root` (DataConfig.root) or else $MASKDINO_DATASETS; nothing is hard-coded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from maskdino.config import Config
from maskdino.data.cityscapes import cityscapes_info, load_cityscapes_segments, load_cityscapes_semantic
from maskdino.data.class_names import (
    COCO_PANOPTIC_IDS,
    COCO_PANOPTIC_ISTHING,
    COCO_PANOPTIC_NAMES,
    COCO_THING_IDS,
    COCO_THING_NAMES,
)
from maskdino.data.coco import load_coco_instances
from maskdino.data.coco_panoptic import load_coco_panoptic
from maskdino.data.custom import dataset_files, load_dataset_files
from maskdino.data.records import DatasetInfo, LoadedDataset
from maskdino.data.semantic import ade20k_info, load_ade20k

ENV_VAR = "MASKDINO_DATASETS"


@dataclass(frozen=True)
class DatasetLayout:
    """Where a standard dataset lives: `paths` relative to the root, in the order its loader takes them."""

    kind: str  # coco_instances | coco_panoptic | ade20k | cityscapes_{semantic,instance,panoptic}
    paths: tuple[str, ...]
    split: str = ""


def _coco(split: str) -> DatasetLayout:
    return DatasetLayout(
        "coco_instances", (f"coco/annotations/instances_{split}2017.json", f"coco/{split}2017")
    )


def _coco_panoptic(split: str) -> DatasetLayout:
    paths = (f"coco/annotations/panoptic_{split}2017.json", f"coco/{split}2017", f"coco/panoptic_{split}2017")
    return DatasetLayout("coco_panoptic", paths)


STANDARD_DATASETS: dict[str, DatasetLayout] = {
    "coco_2017_train": _coco("train"),
    "coco_2017_val": _coco("val"),
    "coco_2017_train_panoptic": _coco_panoptic("train"),
    "coco_2017_val_panoptic": _coco_panoptic("val"),
    "coco_2017_val_panoptic_with_sem_seg": _coco_panoptic("val"),
    "ade20k_sem_seg_train": DatasetLayout("ade20k", ("ADEChallengeData2016/images/training",), "training"),
    "ade20k_sem_seg_val": DatasetLayout("ade20k", ("ADEChallengeData2016/images/validation",), "validation"),
    **{
        f"cityscapes_fine_{task_name}_{split}": DatasetLayout(
            f"cityscapes_{kind}", (f"cityscapes/leftImg8bit/{split}", f"cityscapes/gtFine/{split}"), split
        )
        for split in ("train", "val")
        for task_name, kind in (
            ("sem_seg", "semantic"),
            ("instance_seg", "instance"),
            ("panoptic", "panoptic"),
        )
    },
}


def datasets_root(root: str | Path | None = None) -> Path:
    """`root`, else $MASKDINO_DATASETS; an error naming both when neither points at a folder."""
    source = "--data-root" if root else f"${ENV_VAR}"
    root = root or os.environ.get(ENV_VAR)
    if not root:
        raise FileNotFoundError(
            f"no dataset root given: pass --data-root (data.root=...) or set ${ENV_VAR} to the folder "
            f"that holds coco/, ADEChallengeData2016/ or cityscapes/ in the official layouts"
        )
    path = Path(root).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"dataset root {path} (from {source}) is not an existing folder")
    return path


def load_standard_dataset(
    name: str, root: str | Path | None = None, filter_empty: bool = False, class_names: tuple[str, ...] = ()
) -> LoadedDataset:
    """Records of a standard dataset found under the data root (see the module docstring for the layout)."""
    layout = _layout(name)
    base = datasets_root(root)
    paths = [base / p for p in layout.paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"dataset {name!r} not found under {base}: missing {', '.join(missing)}. Lay the data out as "
            f"detectron2 does (see maskdino.data.catalog) or pass the right --data-root"
        )
    if layout.kind == "coco_instances":
        return load_coco_instances(
            paths[0], paths[1], name, filter_empty=filter_empty, class_names=class_names
        )
    if layout.kind == "coco_panoptic":
        return load_coco_panoptic(paths[0], paths[1], paths[2], name)
    if layout.kind == "ade20k":
        return load_ade20k(base / "ADEChallengeData2016", layout.split, name)
    if layout.kind == "cityscapes_semantic":
        return load_cityscapes_semantic(base / "cityscapes", layout.split, name)
    return load_cityscapes_segments(base / "cityscapes", layout.split, layout.kind.split("_")[1], name)


def build_dataset(cfg: Config, split: str) -> LoadedDataset:
    """The train or test dataset of a config: your own files when any is given (data.train_json /
    train_images / train_masks, or the val_* ones; see maskdino.data.custom), else the standard name
    data.train / data.test under the data root."""
    if split not in ("train", "test"):
        raise ValueError(f"split {split!r}: expected 'train' or 'test'")
    is_train = split == "train"
    filter_empty = is_train and cfg.data.filter_empty_annotations
    if dataset_files(cfg.data, split).given:
        return load_dataset_files(cfg.data, split, filter_empty=filter_empty)
    name = cfg.data.train if is_train else cfg.data.test
    return load_standard_dataset(
        name, cfg.data.root, filter_empty=filter_empty, class_names=cfg.data.class_names
    )


def standard_info(name: str) -> DatasetInfo:
    """Class metadata of a standard dataset without reading its files (prediction with official weights)."""
    kind = _layout(name).kind
    if kind == "coco_instances":
        return DatasetInfo(name, "instance", COCO_THING_NAMES, COCO_THING_IDS, (True,) * len(COCO_THING_IDS))
    if kind == "coco_panoptic":
        return DatasetInfo(name, "panoptic", COCO_PANOPTIC_NAMES, COCO_PANOPTIC_IDS, COCO_PANOPTIC_ISTHING)
    if kind == "ade20k":
        return ade20k_info(name)
    return cityscapes_info(name, kind.split("_")[1])


def _layout(name: str) -> DatasetLayout:
    if name not in STANDARD_DATASETS:
        raise KeyError(
            f"unknown dataset {name!r}; standard names: {', '.join(sorted(STANDARD_DATASETS))}. "
            f"For your own data give its files (--train-json/--train-images/--train-masks, see "
            f"docs/datasets.md)"
        )
    return STANDARD_DATASETS[name]
