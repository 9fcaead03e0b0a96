"""Record -> sample for each task: the sample contract, panoptic and semantic targets, eval resizing."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from maskdino.config import InputConfig
from maskdino.data import DatasetMapper, LoadedDataset, load_ade20k, load_coco_panoptic
from maskdino.data.class_names import COCO_PANOPTIC_IDS, COCO_PANOPTIC_NAMES
from maskdino.data.image_io import ImageReadError, load_label_map
from maskdino.data.mapper import ImageSizeMismatchError

from .conftest import record_of

ADE_TRAIN = InputConfig(
    dataset_mapper="semantic",
    min_size_train=tuple(int(512 * x / 10) for x in range(5, 21)),
    max_size_train=2048,
    min_size_test=512,
    max_size_test=2048,
    crop_enabled=True,
    crop_size=(512, 512),
    color_aug_ssd=True,
    size_divisibility=512,
)


@pytest.fixture(scope="module")
def panoptic(pipeline_data: Path) -> LoadedDataset:
    root = pipeline_data / "coco_panoptic"
    return load_coco_panoptic(root / "panoptic_val2017.json", root / "images", root / "panoptic_val2017")


@pytest.fixture(scope="module")
def ade20k(pipeline_data: Path) -> LoadedDataset:
    return load_ade20k(pipeline_data / "ade20k", "validation")


def test_instance_sample_contract(coco_dataset: LoadedDataset) -> None:
    sample = DatasetMapper(InputConfig(), coco_dataset.info, is_train=True)(
        record_of(coco_dataset, 193271), np.random.default_rng(1)
    )
    image, target = sample["image"], sample["target"]
    assert image.dtype == torch.float32 and image.shape == (3, 1024, 1024)
    assert image.min() >= 0.0 and image.max() <= 1.0
    assert target["labels"].dtype == torch.int64 and target["boxes"].dtype == torch.float32
    assert target["masks"].dtype == torch.bool
    assert len(target["labels"]) > 0 and int(target["labels"].max()) < 80
    assert {k: sample[k] for k in ("image_id", "height", "width", "dataset")} == {
        "image_id": 193271,
        "height": 320,
        "width": 480,
        "dataset": "coco_fixture",
    }
    assert sample["file_name"].endswith("000000193271.jpg")


def test_crowd_is_left_out_of_training_targets(coco_dataset: LoadedDataset) -> None:
    record = record_of(coco_dataset, 159269)  # 35 annotations, one crowd boat
    cfg = dataclasses.replace(InputConfig(), min_size_test=427, max_size_test=10_000)  # no resize
    sample = DatasetMapper(cfg, coco_dataset.info, is_train=False, with_targets=True)(
        record, np.random.default_rng(0)
    )
    assert sample["image"].shape == (3, 640, 427)
    assert len(sample["target"]["labels"]) == 34
    # each mask is its annotation rasterised at full size: pixel counts match COCO's polygon areas
    annotations = [a for a in record["annotations"] if not a["iscrowd"]]
    pixel_counts = sample["target"]["masks"].sum(dim=(1, 2)).numpy()
    areas = json.loads((Path(record["file_name"]).parent / "instances.json").read_text())["annotations"]
    areas = sorted(a["area"] for a in areas if a["image_id"] == 159269 and not a["iscrowd"])
    assert len(annotations) == 34
    np.testing.assert_allclose(sorted(pixel_counts), areas, rtol=0.35, atol=10)
    assert np.median(np.abs(np.sort(pixel_counts) - areas) / np.array(areas)) < 0.03


def test_eval_resizes_to_the_test_size_and_keeps_original_size(coco_dataset: LoadedDataset) -> None:
    mapper = DatasetMapper(InputConfig(), coco_dataset.info, is_train=False)
    sample = mapper(record_of(coco_dataset, 117645), np.random.default_rng(0))  # 640 x 480
    assert sample["image"].shape == (3, 800, 1067)
    assert (sample["height"], sample["width"]) == (480, 640)
    assert "target" not in sample


def test_panoptic_masks_are_disjoint_and_match_segments(panoptic: LoadedDataset, pipeline_data: Path) -> None:
    assert panoptic.info.num_classes == 133
    assert panoptic.info.class_names == COCO_PANOPTIC_NAMES and panoptic.info.dataset_ids == COCO_PANOPTIC_IDS
    assert len(panoptic.info.thing_classes) == 80 and len(panoptic.info.stuff_classes) == 53
    assert dict(panoptic.bad_input) == {"crowd": 3}

    raw = json.loads((pipeline_data / "coco_panoptic/panoptic_val2017.json").read_text())
    for ann in raw["annotations"]:
        record = record_of(panoptic, ann["image_id"])
        short = min(record["height"], record["width"])
        cfg = dataclasses.replace(InputConfig(), min_size_test=short, max_size_test=10_000)  # no resize
        sample = DatasetMapper(cfg, panoptic.info, is_train=False, with_targets=True)(
            record, np.random.default_rng(0)
        )
        target = sample["target"]
        segments = [s for s in ann["segments_info"] if not s["iscrowd"]]
        assert len(target["labels"]) == len(segments)
        assert target["masks"].sum(dim=0).max() == 1  # disjoint
        contiguous = panoptic.info.contiguous_ids()
        assert target["labels"].tolist() == [contiguous[s["category_id"]] for s in segments]
        assert target["masks"].sum(dim=(1, 2)).tolist() == [s["area"] for s in segments]
        x, y, w, h = segments[0]["bbox"]  # COCO panoptic bbox = tight box of the segment, xywh
        assert target["boxes"][0].tolist() == [x, y, x + w, y + h]


def test_panoptic_lsj_training_sample(panoptic: LoadedDataset) -> None:
    cfg = dataclasses.replace(InputConfig(), dataset_mapper="coco_panoptic_lsj")
    mapper = DatasetMapper(cfg, panoptic.info, is_train=True)
    sample = mapper(panoptic.records[1], np.random.default_rng(4))
    target = sample["target"]
    assert sample["image"].shape == (3, 1024, 1024)
    assert target["masks"].shape[1:] == (1024, 1024)
    assert target["masks"].sum(dim=0).max() == 1
    assert (target["masks"].sum(dim=(1, 2)) > 0).all()  # segments cropped away are dropped
    visible_stuff = [label for label in target["labels"].tolist() if not panoptic.info.isthing[label]]
    assert len(visible_stuff) > 0  # stuff segments are targets too


def test_ade20k_reduce_zero_labels(ade20k: LoadedDataset, pipeline_data: Path) -> None:
    assert len(ade20k) == 3 and ade20k.info.num_classes == 150
    record = ade20k.records[0]
    assert record["sem_seg_encoding"] == "reduce_zero"
    raw = load_label_map(pipeline_data / "ade20k/annotations/validation/ADE_val_00000001.png")
    cfg = dataclasses.replace(ADE_TRAIN, min_size_test=512)  # 683 x 512: the test resize keeps it
    sample = DatasetMapper(cfg, ade20k.info, is_train=False, with_targets=True)(
        record, np.random.default_rng(0)
    )
    sem_seg = sample["target"]["sem_seg"].numpy()
    assert sem_seg.shape == (512, 683)
    np.testing.assert_array_equal(sem_seg[raw == 0], 255)
    np.testing.assert_array_equal(sem_seg[raw > 0], raw[raw > 0] - 1)
    present = sorted(int(v) - 1 for v in np.unique(raw) if v > 0)
    assert sample["target"]["labels"].tolist() == present  # 7 classes (SOURCE.md)
    assert len(present) == 7


def test_ade20k_training_crop_and_targets(ade20k: LoadedDataset) -> None:
    mapper = DatasetMapper(ADE_TRAIN, ade20k.info, is_train=True)
    for seed, record in enumerate(ade20k.records):
        sample = mapper(record, np.random.default_rng(seed))
        target = sample["target"]
        assert sample["image"].shape == (3, 512, 512)  # cropped to 512 or padded up to it
        sem_seg = target["sem_seg"]
        assert sem_seg.shape == (512, 512)
        labels = target["labels"].tolist()
        assert labels == sorted(set(sem_seg.unique().tolist()) - {255})
        for label, mask, box in zip(labels, target["masks"], target["boxes"]):
            assert mask.equal(sem_seg == label)
            ys, xs = torch.nonzero(mask, as_tuple=True)
            assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def test_ade20k_small_image_is_padded_with_ignore(ade20k: LoadedDataset) -> None:
    cfg = dataclasses.replace(ADE_TRAIN, min_size_train=(256,), color_aug_ssd=False)
    sample = DatasetMapper(cfg, ade20k.info, is_train=True)(ade20k.records[2], np.random.default_rng(0))
    sem_seg = sample["target"]["sem_seg"]  # 400x300 -> short side 256 -> 341x256, padded to 512x512
    assert sem_seg.shape == (512, 512)
    assert (sem_seg[256:] == 255).all() and (sem_seg[:, 341:] == 255).all()
    assert torch.allclose(sample["image"][:, 300:, :], torch.tensor(128 / 255))


def test_unreadable_and_mismatched_images_raise(coco_dataset: LoadedDataset, tmp_path: Path) -> None:
    mapper = DatasetMapper(InputConfig(), coco_dataset.info, is_train=True)
    record = dict(record_of(coco_dataset, 37777), height=231)
    with pytest.raises(ImageSizeMismatchError, match="decodes to 352x230 .* for 352x231"):
        mapper(record, np.random.default_rng(0))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ImageReadError, match="broken.jpg"):
        mapper(dict(record, file_name=str(broken)), np.random.default_rng(0))


def test_tiny_training_image_warns_once(coco_dataset: LoadedDataset, tmp_path: Path, caplog) -> None:
    photo = np.asarray(Image.open(record_of(coco_dataset, 37777)["file_name"]))[:20, :30]
    Image.fromarray(photo).save(tmp_path / "tiny.png")
    square = [[2.0, 2.0, 12.0, 2.0, 12.0, 12.0, 2.0, 12.0]]
    record = {
        "file_name": str(tmp_path / "tiny.png"),
        "image_id": 1,
        "height": 20,
        "width": 30,
        "dataset": "tiny",
        "annotations": [{"label": 0, "bbox": [2, 2, 12, 12], "segmentation": square, "iscrowd": 0}],
    }
    mapper = DatasetMapper(InputConfig(), coco_dataset.info, is_train=True)
    with caplog.at_level(logging.WARNING, logger="maskdino.data"):
        for seed in range(2):
            sample = mapper(record, np.random.default_rng(seed))
    assert sample["image"].shape == (3, 1024, 1024) and len(sample["target"]["labels"]) == 1
    assert [r.getMessage() for r in caplog.records if "only 30x20 px" in r.getMessage()] != []
    assert len(caplog.records) == 1
    eval_sample = DatasetMapper(InputConfig(), coco_dataset.info, is_train=False)(
        record, np.random.default_rng(0)
    )
    assert eval_sample["image"].shape == (3, 800, 1200)  # still predictable: upscaled to the test size


def test_label_map_of_another_size_is_a_mismatch(ade20k: LoadedDataset) -> None:
    record = dict(ade20k.records[0], sem_seg_file_name=ade20k.records[1]["sem_seg_file_name"])
    mapper = DatasetMapper(ADE_TRAIN, ade20k.info, is_train=True)
    with pytest.raises(
        ImageSizeMismatchError, match="label map .*ADE_val_00000002.png is 500x364 .* 683x512"
    ):
        mapper(record, np.random.default_rng(0))


def test_multiscale_preset_resizes_the_short_side(coco_dataset: LoadedDataset) -> None:
    cfg = dataclasses.replace(InputConfig(), dataset_mapper="multiscale", min_size_train=(480, 640))
    mapper = DatasetMapper(cfg, coco_dataset.info, is_train=True)
    shorts = {
        min(mapper(record_of(coco_dataset, 117645), np.random.default_rng(s))["image"].shape[1:])
        for s in range(8)
    }
    assert shorts == {480, 640}
    with pytest.raises(ValueError, match="input.dataset_mapper='lsj'; expected one of"):
        DatasetMapper(dataclasses.replace(cfg, dataset_mapper="lsj"), coco_dataset.info, is_train=True)
