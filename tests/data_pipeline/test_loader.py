"""Loaders: resumable deterministic training order, rank splits, bad-image replacement, collate and padding."""

from __future__ import annotations

import dataclasses
import logging
from itertools import islice
from pathlib import Path

import pytest
import torch

from maskdino.config import Config
from maskdino.data import LoadedDataset, build_test_loader, build_train_loader, collate_samples, pad_images
from maskdino.data.loader import StreamBatchPositions, TrainingStream, shard_indices
from maskdino.data.mapper import DatasetMapper


@pytest.fixture(scope="module")
def small_cfg() -> Config:
    """LSJ at 128 px so that mapping 30 samples stays fast."""
    cfg = Config()
    cfg.input.image_size = 128
    cfg.data.num_workers = 0
    return cfg


def _batches(loader, count: int) -> list:
    return list(islice(iter(loader), count))


def test_resume_reproduces_batches_including_augmentation(
    small_cfg: Config, coco_dataset: LoadedDataset
) -> None:
    full = _batches(build_train_loader(small_cfg, coco_dataset, batch_size=2, seed=7), 10)
    resumed = _batches(build_train_loader(small_cfg, coco_dataset, batch_size=2, seed=7, start_iter=5), 5)
    for (images_a, targets_a, metas_a), (images_b, targets_b, metas_b) in zip(full[5:], resumed):
        assert [m["image_id"] for m in metas_a] == [m["image_id"] for m in metas_b]
        for a, b in zip(images_a, images_b):
            assert a.equal(b)  # same crop, scale and flip
        for a, b in zip(targets_a, targets_b):
            assert a["boxes"].equal(b["boxes"]) and a["masks"].equal(b["masks"])
    # 10 batches of 2 = 20 samples over 6 images: every epoch is a permutation of all 6
    ids = [m["image_id"] for _, _, metas in full for m in metas]
    assert sorted(ids[:6]) == sorted(ids[6:12]) == sorted(r["image_id"] for r in coco_dataset.records)
    assert ids[:6] != ids[6:12]  # a new order each epoch
    other_seed = _batches(build_train_loader(small_cfg, coco_dataset, batch_size=2, seed=8), 3)
    assert [m["image_id"] for _, _, metas in other_seed for m in metas] != ids[:6]


def test_workers_do_not_change_the_stream(small_cfg: Config, coco_dataset: LoadedDataset) -> None:
    serial = _batches(build_train_loader(small_cfg, coco_dataset, batch_size=2, seed=3), 3)
    parallel = _batches(build_train_loader(small_cfg, coco_dataset, batch_size=2, seed=3, num_workers=2), 3)
    for (images_a, _, _), (images_b, _, _) in zip(serial, parallel):
        assert all(a.equal(b) for a, b in zip(images_a, images_b))


def test_two_ranks_split_each_epoch_into_disjoint_halves(
    small_cfg: Config, coco_dataset: LoadedDataset
) -> None:
    positions = [list(islice(iter(StreamBatchPositions(3, rank, 2, 0)), 2)) for rank in (0, 1)]
    assert positions == [[[0, 2, 4], [6, 8, 10]], [[1, 3, 5], [7, 9, 11]]]
    stream = TrainingStream(coco_dataset, DatasetMapper(small_cfg.input, coco_dataset.info, True), seed=1)
    epoch = [
        [stream.record_index(p) for batch in rank_positions[:1] for p in batch]
        for rank_positions in positions
    ]
    assert set(epoch[0]).isdisjoint(epoch[1])
    assert sorted(epoch[0] + epoch[1]) == list(range(6))
    with pytest.raises(ValueError, match="rank 2 is outside 0..1"):
        StreamBatchPositions(2, 2, 2, 0)


def test_unreadable_image_is_replaced_and_counted(
    small_cfg: Config, coco_dataset: LoadedDataset, tmp_path: Path, caplog
) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    records = [dict(r) for r in coco_dataset.records]
    records[0]["file_name"] = str(broken)
    dataset = dataclasses.replace(coco_dataset, records=records)
    stream = TrainingStream(dataset, DatasetMapper(small_cfg.input, dataset.info, True), seed=0)
    with caplog.at_level(logging.WARNING, logger="maskdino.data"):
        samples = [stream[p] for p in range(12)]  # two epochs: the broken record is drawn twice
    assert all(s["file_name"] != str(broken) for s in samples)
    assert stream.bad_input == {"unreadable_image": 2}
    assert sum("broken.jpg" in r.getMessage() for r in caplog.records) == 2
    again = TrainingStream(dataset, DatasetMapper(small_cfg.input, dataset.info, True), seed=0)
    assert [again[p]["image_id"] for p in range(12)] == [s["image_id"] for s in samples]  # deterministic


def test_test_loader_is_in_order_and_sharded(small_cfg: Config, coco_dataset: LoadedDataset) -> None:
    assert [list(shard_indices(6, r, 4)) for r in range(4)] == [[0, 1], [2, 3], [4, 5], []]
    assert [list(shard_indices(5, r, 2)) for r in range(2)] == [[0, 1, 2], [3, 4]]
    loader = build_test_loader(small_cfg, coco_dataset, batch_size=2, rank=1, world_size=2)
    metas = [m for _, _, batch in loader for m in batch]
    assert [m["image_id"] for m in metas] == [r["image_id"] for r in coco_dataset.records[3:]]
    images, targets, _ = next(iter(loader))
    assert targets == [None, None]
    assert min(images[0].shape[1:]) == 800  # test-time resize, not LSJ


def test_collate_and_pad_images() -> None:
    samples = [
        {"image": torch.ones(3, 50, 70), "target": {"labels": torch.tensor([1])}, "image_id": 1, "height": 5},
        {
            "image": torch.full((3, 64, 40), 2.0),
            "target": {"labels": torch.tensor([2])},
            "image_id": 2,
            "height": 6,
        },
    ]
    images, targets, metas = collate_samples(samples)
    assert [t["labels"].item() for t in targets] == [1, 2]
    assert metas == [{"image_id": 1, "height": 5}, {"image_id": 2, "height": 6}]
    batch, sizes = pad_images(images, 32)
    assert batch.shape == (2, 3, 64, 96) and sizes == [(50, 70), (64, 40)]
    assert (
        batch[0, :, :50, :70].eq(1).all() and batch[0, :, 50:].eq(0).all() and batch[0, :, :, 70:].eq(0).all()
    )
    assert batch[1, :, :, :40].eq(2).all() and batch[1, :, :, 40:].eq(0).all()
    unrounded, _ = pad_images(images, 0)
    assert unrounded.shape == (2, 3, 64, 70)
