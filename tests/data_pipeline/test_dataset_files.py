"""The format of your own data is recognised from its files (COCO instances, COCO panoptic, semantic
folder); wrong combinations and panoptic PNGs that do not fit their json are errors naming the fix."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from maskdino.config import Config, InputConfig
from maskdino.data import DatasetMapper, adopt_dataset, build_dataset
from maskdino.data.coco_panoptic import SegmentIdError
from maskdino.data.loader import TrainingStream
from maskdino.engine.evaluator import _Collector


@pytest.fixture(scope="module")
def panoptic_dir(pipeline_data: Path) -> Path:
    return pipeline_data / "coco_panoptic"


def _files(**fields: object) -> Config:
    return Config().apply_overrides([f"data.{key}={value}" for key, value in fields.items()])


def test_panoptic_json_is_recognised_with_its_things_and_stuff(panoptic_dir: Path, caplog) -> None:
    cfg = _files(
        train_json=panoptic_dir / "panoptic_val2017.json",
        train_images=panoptic_dir / "images",
        train_masks=panoptic_dir / "panoptic_val2017",
    )
    dataset = build_dataset(cfg, "train")
    assert dataset.info.task == "panoptic" and len(dataset) == 2 and dataset.info.num_classes == 133
    with caplog.at_level(logging.INFO, logger="maskdino.data"):
        adopt_dataset(cfg, dataset, "train")
    assert cfg.model.test.panoptic_on and cfg.model.thing_classes == tuple(range(80))
    assert cfg.data.class_ids[80] == 92 and cfg.data.class_names[-1] == "rug-merged"
    assert cfg.input.dataset_mapper == "coco_panoptic_lsj"
    assert "133 classes from the json" in caplog.text and "80 things, 53 stuff" in caplog.text


def test_wrong_combinations_of_files_name_the_missing_or_extra_flag(
    panoptic_dir: Path, coco_dir: Path
) -> None:
    panoptic_json = panoptic_dir / "panoptic_val2017.json"
    with pytest.raises(ValueError, match=r"is a COCO panoptic json .* pass .* with --train-masks"):
        build_dataset(_files(train_json=panoptic_json, train_images=panoptic_dir / "images"), "train")
    instances = _files(train_json=coco_dir / "instances.json", train_images=coco_dir, train_masks=coco_dir)
    with pytest.raises(ValueError, match=r"is a COCO instances json.*--train-masks .* leave it out"):
        build_dataset(instances, "train")
    with pytest.raises(ValueError, match=r"an image folder alone .* does not describe a dataset"):
        build_dataset(_files(val_images=coco_dir), "test")
    with pytest.raises(ValueError, match=r"--val-masks \(data.val_masks\) needs the folder of its images"):
        build_dataset(_files(val_masks=coco_dir), "test")


def test_panoptic_png_with_segments_the_json_does_not_list(
    panoptic_dir: Path, tmp_path: Path, caplog
) -> None:
    data = json.loads((panoptic_dir / "panoptic_val2017.json").read_text())
    dropped = data["annotations"][0]["segments_info"].pop(3)  # the json forgets one segment of image 1
    (tmp_path / "pan.json").write_text(json.dumps(data))
    cfg = _files(
        train_json=tmp_path / "pan.json",
        train_images=panoptic_dir / "images",
        train_masks=panoptic_dir / "panoptic_val2017",
    )
    dataset = build_dataset(cfg, "train")
    mapper = DatasetMapper(InputConfig(image_size=128), dataset.info, is_train=True)
    bad = dataset.records[0]
    with pytest.raises(
        SegmentIdError, match=rf"000000142238.png holds segment ids {dropped['id']} that the json"
    ):
        mapper(bad, np.random.default_rng(0))
    # training replaces the sample and counts it; evaluation refuses to score without it
    stream = TrainingStream(dataset, mapper, seed=0)
    position = next(p for p in range(4) if stream.record_index(p) == 0)
    with caplog.at_level(logging.WARNING, logger="maskdino.data"):
        sample = stream[position]
    assert sample["image_id"] == 439180 and stream.bad_input["bad_labels"] >= 1
    assert "sample replaced" in caplog.text and "000000142238.png" in caplog.text
    collector = _Collector(
        dataset.info, Config().apply_overrides(["model.test.panoptic_on=true"]), {142238: bad}
    )
    with pytest.raises(ValueError, match=r"cannot score image 142238: panoptic PNG .* holds segment ids"):
        empty = {"segments": torch.zeros(427, 640, dtype=torch.int32), "segments_info": []}
        collector.add({"image_id": 142238}, {"panoptic": empty})


def test_segments_of_unknown_categories_are_void(panoptic_dir: Path, tmp_path: Path) -> None:
    data = json.loads((panoptic_dir / "panoptic_val2017.json").read_text())
    data["annotations"][0]["segments_info"][0]["category_id"] = 999  # not among the categories
    (tmp_path / "pan.json").write_text(json.dumps(data))
    shutil.copytree(panoptic_dir / "panoptic_val2017", tmp_path / "png")
    cfg = _files(
        train_json=tmp_path / "pan.json", train_images=panoptic_dir / "images", train_masks=tmp_path / "png"
    )
    dataset = build_dataset(cfg, "train")
    assert dataset.bad_input["unknown_category"] == 1 and len(dataset.records[0]["void_ids"]) == 1
    cfg_input = InputConfig(min_size_test=427, max_size_test=640)
    mapper = DatasetMapper(cfg_input, dataset.info, is_train=False, with_targets=True)
    target = mapper(dataset.records[0], np.random.default_rng(0))["target"]
    assert len(target["labels"]) == len(dataset.records[0]["segments_info"]) - sum(
        s["iscrowd"] for s in dataset.records[0]["segments_info"]
    )
