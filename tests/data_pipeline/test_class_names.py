"""Class tables against the official category lists bundled with the fixtures."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from maskdino.data.class_names import (
    ADE20K_NAMES,
    CITYSCAPES_ISTHING,
    CITYSCAPES_LABEL_IDS,
    COCO_PANOPTIC_IDS,
    COCO_PANOPTIC_ISTHING,
    COCO_PANOPTIC_NAMES,
    COCO_THING_IDS,
    COCO_THING_NAMES,
)


def test_coco_things_match_the_official_categories(coco_dir: Path) -> None:
    categories = json.loads((coco_dir / "instances.json").read_text())["categories"]
    assert [(c["id"], c["name"]) for c in sorted(categories, key=lambda c: c["id"])] == list(
        zip(COCO_THING_IDS, COCO_THING_NAMES)
    )


def test_coco_panoptic_matches_panopticapi(pipeline_data: Path) -> None:
    categories = json.loads((pipeline_data / "coco_panoptic/panoptic_coco_categories.json").read_text())
    ordered = sorted(categories, key=lambda c: c["id"])
    assert [c["id"] for c in ordered] == list(COCO_PANOPTIC_IDS)
    assert [c["name"] for c in ordered] == list(COCO_PANOPTIC_NAMES)
    assert [bool(c["isthing"]) for c in ordered] == list(COCO_PANOPTIC_ISTHING)


def test_ade20k_names_follow_object_info_150(pipeline_data: Path) -> None:
    rows = list(csv.DictReader((pipeline_data / "ade20k/objectInfo150.csv").open()))
    assert len(rows) == len(ADE20K_NAMES) == 150
    # the csv lost its spaces ("chest;of;drawers"): compare first words; detectron2 renamed 10 classes
    renamed = {8: "window", 37: "tub", 38: "rail", 87: "street lamp", 89: "tv", 90: "plane", 92: "clothes"}
    renamed |= {109: "pool", 113: "falls", 138: "trash can"}
    for index, (row, name) in enumerate(zip(rows, ADE20K_NAMES)):
        if index in renamed:
            assert name == renamed[index] and name.split(" ")[-1] in row["Name"].split(";")
        else:
            assert row["Name"].split(";")[0] == name.split(" ")[0]


def test_cityscapes_train_ids() -> None:
    assert len(CITYSCAPES_LABEL_IDS) == 19 and CITYSCAPES_LABEL_IDS[0] == 7 and CITYSCAPES_LABEL_IDS[-1] == 33
    assert sum(CITYSCAPES_ISTHING) == 8 and CITYSCAPES_ISTHING.index(True) == 11
