"""What a loaded dataset is: its class metadata, its per-image records, and what was wrong with its input.

A record is a plain dict (cheap to pickle into DataLoader workers) with `file_name`, `image_id`,
`height`, `width`, `dataset` and the keys of its task:
  * instance: `annotations`, a list of {`label` (contiguous), `bbox` (xyxy, original pixels),
    `segmentation` (list of flat polygons, a COCO RLE dict, or None for a box-only annotation), `iscrowd`};
  * panoptic: `pan_seg_file_name` plus `segments_info` [{`id`, `label`, `iscrowd`}] and `void_ids`
    (segments of the PNG left out of training, e.g. of an unknown category), or
    `cityscapes_instance_ids_file` (segments are read from the PNG);
  * semantic: `sem_seg_file_name`, `sem_seg_encoding` (how the PNG values map to classes) and
    `sem_seg_ignore` (the value of unlabelled pixels).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

LOGGER_NAME = "maskdino.data"

# What each counted kind of bad input means, for the one log line per kind.
BAD_INPUT_KINDS: dict[str, str] = {
    "empty_polygon": "annotations dropped: no polygon with >= 3 points and non-zero area",
    "no_geometry": "annotations dropped: neither `segmentation` nor `bbox`",
    "zero_area_box": "annotations dropped: bbox width or height <= 0",
    "out_of_image_box": "annotations dropped: bbox entirely outside the image",
    "unknown_category": "annotations dropped: category_id not in the json's `categories`",
    "orphan_annotation": "annotations dropped: image_id matches no image in the json's `images`",
    "rle_size_mismatch": "annotations dropped: RLE `size` differs from its image's [height, width]",
    "crowd": "crowd annotations kept for evaluation, excluded from training targets (official)",
    "no_annotations": "images without any non-crowd annotation (dropped for training when filtering empty)",
    "missing_file": "images dropped: file not found",
    "image_without_label": "images dropped: no label PNG with the same file stem",
    "label_without_image": "label PNGs not used: no image with the same file stem",
    "label_size_mismatch": "images dropped: the label PNG's size differs from the image's",
    "unreadable_image": "images that could not be decoded (skipped at load, replaced at train time)",
    "size_mismatch": "samples replaced at train time: decoded size differs from the annotation's",
    "bad_labels": "samples replaced at train time: label values or panoptic segment ids do not fit the json",
    "tiny_image": "images smaller than 32 px on a side (used, but check them)",
}


@dataclass(frozen=True)
class DatasetInfo:
    """Class metadata shared by the mapper, the evaluator and the predictor.

    `dataset_ids[i]` is the id the annotation files use for contiguous class `i`; `isthing[i]` tells
    things (countable instances) from stuff (amorphous regions; panoptic and semantic only).
    """

    name: str
    task: str  # instance | panoptic | semantic
    class_names: tuple[str, ...]
    dataset_ids: tuple[int, ...]
    isthing: tuple[bool, ...]

    def __post_init__(self) -> None:
        if not len(self.class_names) == len(self.dataset_ids) == len(self.isthing):
            raise ValueError(
                f"dataset {self.name!r}: {len(self.class_names)} class names, {len(self.dataset_ids)} ids "
                f"and {len(self.isthing)} isthing flags; they must have one entry per class"
            )
        if self.task not in ("instance", "panoptic", "semantic"):
            raise ValueError(
                f"dataset {self.name!r}: task {self.task!r} is not instance, panoptic or semantic"
            )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def thing_classes(self) -> tuple[int, ...]:
        return tuple(i for i, thing in enumerate(self.isthing) if thing)

    @property
    def stuff_classes(self) -> tuple[int, ...]:
        return tuple(i for i, thing in enumerate(self.isthing) if not thing)

    def contiguous_ids(self) -> dict[int, int]:
        """dataset id -> contiguous class index."""
        return {dataset_id: i for i, dataset_id in enumerate(self.dataset_ids)}


@dataclass
class LoadedDataset:
    """Records of one split plus its metadata and the counts of bad input found while loading.

    `annotation_file` is the COCO-format json the records came from (instance datasets), which the
    evaluator scores results against; `box_only_annotations` counts the json's annotations without a
    `segmentation` (any makes mask AP impossible).
    """

    info: DatasetInfo
    records: list[dict[str, Any]]
    bad_input: Counter = field(default_factory=Counter)
    annotation_file: str | None = None
    box_only_annotations: int = 0

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.records[index]


class BadInputTally:
    """Counts bad input per kind and keeps the first few examples of each, logged once per dataset."""

    def __init__(self, max_examples: int = 3) -> None:
        self.counts: Counter = Counter()
        self.examples: dict[str, list[str]] = {}
        self.max_examples = max_examples

    def add(self, kind: str, example: str) -> None:
        self.counts[kind] += 1
        shown = self.examples.setdefault(kind, [])
        if len(shown) < self.max_examples:
            shown.append(example)

    def log(self, dataset: str) -> None:
        """One warning listing every kind found in `dataset` with its count, meaning and a few examples."""
        if not self.counts:
            return
        lines = []
        for kind, count in sorted(self.counts.items()):
            line = f"  {kind}: {count} ({BAD_INPUT_KINDS.get(kind, kind)})"
            if self.examples.get(kind):
                line += "; e.g. " + ", ".join(self.examples[kind])
            lines.append(line)
        logging.getLogger(LOGGER_NAME).warning("dataset %s, bad input:\n%s", dataset, "\n".join(lines))
