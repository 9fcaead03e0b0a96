"""Cityscapes from the official gtFine layout, on a small frame written in tmp_path.

The frame is a real COCO photo; the gtFine PNGs are drawn by hand with the official encodings
(labelIds 0..33; instanceIds = labelId * 1000 + k for instances, the bare labelId otherwise).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskdino.config import InputConfig
from maskdino.data import DatasetMapper, load_cityscapes_segments, load_cityscapes_semantic
from maskdino.data.cityscapes import segments_from_instance_ids
from maskdino.data.class_names import CITYSCAPES_NAMES

FRAME = "aachen_000000_000019"


@pytest.fixture
def cityscapes_root(tmp_path: Path, coco_dir: Path) -> Path:
    root = tmp_path / "cityscapes"
    image_dir = root / "leftImg8bit" / "train" / "aachen"
    label_dir = root / "gtFine" / "train" / "aachen"
    image_dir.mkdir(parents=True)
    label_dir.mkdir(parents=True)
    photo = Image.open(coco_dir / "000000117645.jpg").convert("RGB").crop((0, 0, 128, 64))
    photo.save(image_dir / f"{FRAME}_leftImg8bit.png")
    instance_ids = np.zeros((64, 128), dtype=np.uint16)  # 0: unlabeled
    instance_ids[32:] = 7  # road
    instance_ids[10:30, 10:40] = 26000  # car #0
    instance_ids[10:30, 50:70] = 26001  # car #1
    instance_ids[40:60, 80:100] = 24  # a group of persons: no instance id -> crowd
    instance_ids[0:10, 100:120] = 29000  # caravan: has instances but trainId 255 -> void
    Image.fromarray(instance_ids).save(label_dir / f"{FRAME}_gtFine_instanceIds.png")
    label_ids = np.where(instance_ids >= 1000, instance_ids // 1000, instance_ids).astype(np.uint8)
    Image.fromarray(label_ids).save(label_dir / f"{FRAME}_gtFine_labelIds.png")
    return root


def test_semantic_from_label_ids(cityscapes_root: Path) -> None:
    dataset = load_cityscapes_semantic(cityscapes_root, "train")
    assert dataset.info.class_names == CITYSCAPES_NAMES and dataset.info.num_classes == 19
    record = dataset.records[0]
    assert record["sem_seg_encoding"] == "cityscapes_label_ids" and record["image_id"] == FRAME
    cfg = dataclasses.replace(InputConfig(), min_size_test=64, max_size_test=2048)
    sample = DatasetMapper(cfg, dataset.info, is_train=False, with_targets=True)(
        record, np.random.default_rng(0)
    )
    sem_seg = sample["target"]["sem_seg"].numpy()
    assert sem_seg[50, 5] == 0 and sem_seg[20, 20] == 13 and sem_seg[50, 90] == 11  # road, car, person
    assert sem_seg[5, 5] == 255 and sem_seg[5, 110] == 255  # unlabeled, caravan
    assert sample["target"]["labels"].tolist() == [0, 11, 13]


def test_semantic_prefers_label_train_ids(cityscapes_root: Path) -> None:
    label_dir = cityscapes_root / "gtFine" / "train" / "aachen"
    train_ids = np.full((64, 128), 255, dtype=np.uint8)
    train_ids[:, :64] = 8  # vegetation
    Image.fromarray(train_ids).save(label_dir / f"{FRAME}_gtFine_labelTrainIds.png")
    dataset = load_cityscapes_semantic(cityscapes_root, "train")
    assert dataset.records[0]["sem_seg_encoding"] == "contiguous"
    assert dataset.records[0]["sem_seg_file_name"].endswith("_gtFine_labelTrainIds.png")


def test_panoptic_and_instance_segments_from_instance_ids(cityscapes_root: Path) -> None:
    panoptic = load_cityscapes_segments(cityscapes_root, "train", "panoptic")
    assert panoptic.info.num_classes == 19 and panoptic.info.thing_classes == tuple(range(11, 19))
    cfg = dataclasses.replace(InputConfig(), min_size_test=64, max_size_test=2048)
    sample = DatasetMapper(cfg, panoptic.info, is_train=False, with_targets=True)(
        panoptic.records[0], np.random.default_rng(0)
    )
    target = sample["target"]
    assert target["labels"].tolist() == [0, 13, 13]  # road, two cars; the person crowd is not a target
    assert target["masks"].sum(dim=(1, 2)).tolist() == [32 * 128 - 400, 600, 400]
    assert target["boxes"][1].tolist() == [10.0, 10.0, 40.0, 30.0]

    instance = load_cityscapes_segments(cityscapes_root, "train", "instance")
    assert instance.info.class_names == CITYSCAPES_NAMES[11:]
    ids = np.array(Image.open(panoptic.records[0]["cityscapes_instance_ids_file"])).astype(np.int64)
    assert segments_from_instance_ids(ids, "instance") == [
        {"id": 24, "label": 0, "iscrowd": 1},
        {"id": 26000, "label": 2, "iscrowd": 0},
        {"id": 26001, "label": 2, "iscrowd": 0},
    ]


def test_missing_folders_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="folder not found: .*leftImg8bit/val"):
        load_cityscapes_segments(tmp_path, "val", "panoptic")
    with pytest.raises(FileNotFoundError, match="image folder not found: .*leftImg8bit/val"):
        load_cityscapes_semantic(tmp_path, "val")
