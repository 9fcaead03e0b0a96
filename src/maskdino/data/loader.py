"""DataLoaders: an infinite, resumable training stream and in-order evaluation shards; collate and padding.

Training order is a pure function of (seed, position in the stream): the stream visits every record once
per epoch in the order of a permutation seeded by (seed, epoch), rank r of W takes positions r, r + W, ...
(detectron2's `TrainingSampler` split), and each sample's augmentation draws from a generator seeded by
(seed, position). Restarting at iteration k therefore reproduces batches k, k+1, ... exactly, crops
included, whatever the number of workers.
"""

from __future__ import annotations

import logging
import pickle
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from maskdino.config import Config
from maskdino.data.image_io import ImageReadError
from maskdino.data.mapper import DatasetMapper
from maskdino.data.records import LOGGER_NAME, LoadedDataset

MAX_REPLACEMENTS = 20  # consecutive unreadable draws before giving up: the data is broken, not one file


class PackedRecords:
    """Records pickled into one numpy byte buffer, unpickled on access.

    DataLoader workers then share the buffer's pages instead of copying, on write, the millions of small
    Python objects a COCO-size record list holds (the reason detectron2 serialises its dataset lists).
    """

    def __init__(self, records: list[dict[str, Any]]) -> None:
        blobs = [pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL) for r in records]
        self._ends = np.cumsum([len(b) for b in blobs], dtype=np.int64)
        self._buffer = np.frombuffer(b"".join(blobs), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, index: int) -> dict[str, Any]:
        start = int(self._ends[index - 1]) if index > 0 else 0
        return pickle.loads(self._buffer[start : int(self._ends[index])].tobytes())


class TrainingStream(Dataset):
    """Item `position` of the infinite training stream, mapped and augmented.

    An image that cannot be decoded (or does not match its annotations' size, or whose labels do not fit
    the classes) is replaced by another record drawn deterministically from (seed, position), counted per
    kind, and logged with its path.
    """

    def __init__(self, dataset: LoadedDataset, mapper: DatasetMapper, seed: int) -> None:
        if len(dataset) == 0:
            raise ValueError(f"dataset {dataset.info.name!r} has no records to train on")
        self.name = dataset.info.name
        self.records = PackedRecords(dataset.records)
        self.mapper = mapper
        self.seed = seed
        self.bad_input: Counter = Counter()
        self._cached_epoch: tuple[int, np.ndarray] | None = None

    def record_index(self, position: int) -> int:
        epoch, offset = divmod(position, len(self.records))
        if self._cached_epoch is None or self._cached_epoch[0] != epoch:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.records))
            self._cached_epoch = (epoch, order)
        return int(self._cached_epoch[1][offset])

    def __getitem__(self, position: int) -> dict[str, Any]:
        index = self.record_index(position)
        for attempt in range(MAX_REPLACEMENTS):
            rng = np.random.default_rng([self.seed, position, attempt])
            if attempt > 0:
                index = int(rng.integers(len(self.records)))
            record = self.records[index]
            try:
                return self.mapper(record, rng)
            except ImageReadError as err:
                self.bad_input[err.kind] += 1
                logging.getLogger(LOGGER_NAME).warning(
                    "%s (sample replaced; %d %s so far in this process)",
                    err,
                    self.bad_input[err.kind],
                    err.kind,
                )
        raise RuntimeError(
            f"{MAX_REPLACEMENTS} consecutive samples of dataset {self.name!r} could not be read "
            f"(last: {record['file_name']}); check the image folder and the logged errors"
        )

    def __len__(self) -> int:
        return len(self.records)


class StreamBatchPositions(Sampler[list[int]]):
    """Positions of this rank's batches from iteration `start_iter` on, forever."""

    def __init__(self, batch_size: int, rank: int, world_size: int, start_iter: int) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1} (world_size {world_size})")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 per rank, got {batch_size}")
        self.batch_size, self.rank, self.world_size, self.start_iter = (
            batch_size,
            rank,
            world_size,
            start_iter,
        )

    def __iter__(self) -> Iterator[list[int]]:
        iteration = self.start_iter
        while True:
            first = iteration * self.batch_size
            yield [(first + j) * self.world_size + self.rank for j in range(self.batch_size)]
            iteration += 1


class _EvalRecords(Dataset):
    def __init__(self, dataset: LoadedDataset, mapper: DatasetMapper, indices: range) -> None:
        self.records = PackedRecords([dataset.records[i] for i in indices])
        self.mapper = mapper

    def __getitem__(self, i: int) -> dict[str, Any]:
        record = self.records[i]
        try:
            # Evaluation has no randomness; the generator is only there to satisfy the mapper's signature.
            return self.mapper(record, np.random.default_rng(0))
        except ImageReadError as err:  # skipped by the evaluator, which names and counts it
            kept = {k: record[k] for k in ("image_id", "file_name", "dataset") if k in record}
            return {"image": None, "error": str(err), **kept}

    def __len__(self) -> int:
        return len(self.records)


def build_train_loader(
    cfg: Config,
    dataset: LoadedDataset,
    batch_size: int,
    rank: int = 0,
    world_size: int = 1,
    seed: int | None = None,
    start_iter: int = 0,
    num_workers: int | None = None,
) -> DataLoader:
    """Infinite loader of this rank's batches (`batch_size` images per rank) from `start_iter` on.

    `seed` defaults to cfg.seed; `num_workers` to cfg.data.num_workers.
    """
    mapper = DatasetMapper(cfg.input, dataset.info, is_train=True)
    stream = TrainingStream(dataset, mapper, cfg.seed if seed is None else seed)
    workers = cfg.data.num_workers if num_workers is None else num_workers
    return DataLoader(
        stream,
        batch_sampler=StreamBatchPositions(batch_size, rank, world_size, start_iter),
        num_workers=workers,
        collate_fn=collate_samples,
        persistent_workers=workers > 0,
    )


def build_test_loader(
    cfg: Config,
    dataset: LoadedDataset,
    batch_size: int = 1,
    rank: int = 0,
    world_size: int = 1,
    with_targets: bool = False,
    num_workers: int | None = None,
) -> DataLoader:
    """In-order loader of this rank's contiguous shard (detectron2's `InferenceSampler` split).

    Samples carry `target` only with `with_targets` (the official evaluation reads ground truth from the
    annotation files instead). An image that cannot be read gives a sample with `image` None and its
    `error`, so that one broken file does not stop an evaluation.
    """
    indices = shard_indices(len(dataset), rank, world_size)
    mapper = DatasetMapper(cfg.input, dataset.info, is_train=False, with_targets=with_targets)
    return DataLoader(
        _EvalRecords(dataset, mapper, indices),
        batch_size=batch_size,
        shuffle=False,
        num_workers=cfg.data.num_workers if num_workers is None else num_workers,
        collate_fn=collate_samples,
    )


def shard_indices(size: int, rank: int, world_size: int) -> range:
    """Contiguous shard of range(size) for `rank`; shards cover every index exactly once."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside 0..{world_size - 1} (world_size {world_size})")
    shard = (size - 1) // world_size + 1 if size else 0
    return range(min(rank * shard, size), min((rank + 1) * shard, size))


def collate_samples(
    samples: list[dict[str, Any]],
) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor] | None], list[dict[str, Any]]]:
    """(images, targets, metas): images keep their own sizes (pad with `pad_images`); a target is None
    when the loader was built without targets; metas hold image_id, file_name, height, width, dataset.
    In a test loader an image that cannot be read is None and its meta's `error` says why."""
    images = [s["image"] for s in samples]
    targets = [s.get("target") for s in samples]
    metas = [{k: v for k, v in s.items() if k not in ("image", "target")} for s in samples]
    return images, targets, metas


def pad_images(
    images: list[torch.Tensor], size_divisibility: int, pad_value: float = 0.0
) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Stack [C, H, W] images into [B, C, Hp, Wp], padding bottom/right to the largest size rounded up to
    a multiple of `size_divisibility` (<= 0: no rounding); also return each image's (H, W)."""
    if not images:
        raise ValueError("pad_images needs at least one image")
    sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in images]
    height, width = max(h for h, _ in sizes), max(w for _, w in sizes)
    if size_divisibility > 0:
        height = -(-height // size_divisibility) * size_divisibility
        width = -(-width // size_divisibility) * size_divisibility
    batch = images[0].new_full((len(images), images[0].shape[0], height, width), pad_value)
    for out, image, (h, w) in zip(batch, images, sizes):
        out[:, :h, :w].copy_(image)
    return batch, sizes
