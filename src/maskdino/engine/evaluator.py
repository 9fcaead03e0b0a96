"""Run a model over a test set and score it with the standard metrics (COCO AP, PQ, mIoU).

Each rank predicts its contiguous shard; instance results, PQ statistics and confusion matrices are
gathered on rank 0, which computes the metrics and writes `metrics.json` and the raw results files.

Images that are missing or cannot be decoded are left out, like `predict` does: each is named in the log,
`images/evaluated` and `images/left_out` count them in the metrics (`metrics.json` also lists the files
skipped during inference), and the metrics score only the evaluated images (their ground truth alone).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from maskdino.config import Config
from maskdino.data.catalog import build_dataset
from maskdino.data.cityscapes import read_cityscapes_segments
from maskdino.data.coco_panoptic import read_coco_panoptic
from maskdino.data.image_io import ImageReadError
from maskdino.data.loader import build_test_loader
from maskdino.data.records import DatasetInfo, LoadedDataset
from maskdino.data.semantic import read_sem_seg
from maskdino.evaluation.coco import IOU_TYPES, evaluate_coco
from maskdino.evaluation.panoptic import PQStats, pq_image_stats, pq_summary
from maskdino.evaluation.results import instances_to_coco_results, panoptic_to_png, rgb_to_id
from maskdino.evaluation.semantic import confusion_matrix, semantic_metrics_from_confusion
from maskdino.evaluation.table import format_table

logger = logging.getLogger("maskdino.eval")


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _gather(obj: Any) -> list[Any]:
    rank, world = _world()
    if world == 1:
        return [obj]
    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, obj)
    return gathered


class _Collector:
    """Accumulates what one task's metrics need, image by image."""

    def __init__(self, info: DatasetInfo, cfg: Config, records: dict[Any, dict]):
        self.info = info
        self.records = records
        self.ignore_value = cfg.input.ignore_value
        test = cfg.model.test
        self.instance_on = test.instance_on and info.task == "instance"
        self.panoptic_on = test.panoptic_on and info.task == "panoptic"
        self.semantic_on = test.semantic_on and info.task in ("semantic", "panoptic")
        if not (self.instance_on or self.panoptic_on or self.semantic_on):
            flag = f"{info.task}_on"
            raise ValueError(
                f"dataset {info.name} is {info.task} but the model's post-processing makes no {info.task} "
                f"output (model.test.{flag}=false): set model.test.{flag}=true (`maskdino eval` does this "
                f"for your own data)"
            )
        self.to_dataset_id = dict(enumerate(info.dataset_ids))
        self.category_index = {d: i for i, d in enumerate(info.dataset_ids)}
        self.iou_types: tuple[str, ...] = IOU_TYPES
        self.instances: list[dict] = []
        self.pq = PQStats.zeros(info.num_classes)
        self.confusion = np.zeros((info.num_classes, info.num_classes), dtype=np.int64)
        self.evaluated: list[Any] = []  # image ids
        self.skipped: list[str] = []  # why each unreadable image was left out

    def skip(self, meta: dict) -> None:
        self.skipped.append(meta["error"])
        logger.warning("evaluation: skipped %s", meta["error"])

    def add(self, meta: dict, result: dict) -> None:
        self.evaluated.append(meta["image_id"])
        try:
            self._add(self.records[meta["image_id"]], meta, result)
        except ImageReadError as err:  # ground truth that does not fit: scoring without it would mislead
            raise ValueError(f"cannot score image {meta['image_id']}: {err}") from None

    def _add(self, record: dict, meta: dict, result: dict) -> None:
        if self.instance_on:
            self.instances.extend(instances_to_coco_results(meta["image_id"], result, self.to_dataset_id))
        if self.panoptic_on:
            rgb, segments = panoptic_to_png(
                result["panoptic"]["segments"], result["panoptic"]["segments_info"], self.to_dataset_id
            )
            read = read_coco_panoptic if "pan_seg_file_name" in record else read_cityscapes_segments
            gt_ids, gt_segments = read(record)
            gt = [
                {"id": s["id"], "category_id": self.to_dataset_id[s["label"]], "iscrowd": s.get("iscrowd", 0)}
                for s in gt_segments
            ]
            self.pq += pq_image_stats(gt_ids, gt, rgb_to_id(rgb), segments, self.category_index)
        if self.semantic_on and "sem_seg_file_name" in record:
            gt = read_sem_seg(record, self.info.num_classes, self.ignore_value)
            pred = result["semantic"].argmax(0).cpu().numpy()
            self.confusion += confusion_matrix(pred, gt, self.info.num_classes, self.ignore_value)

    def merge(self) -> _Collector:
        """Combine every rank's collector into this one (meaningful on rank 0)."""
        parts = _gather((self.instances, self.pq, self.confusion, self.evaluated, self.skipped))
        self.instances = [r for part in parts for r in part[0]]
        self.pq = PQStats.zeros(self.info.num_classes)
        for part in parts:
            self.pq += part[1]
        self.confusion = sum(part[2] for part in parts)
        self.evaluated = [i for part in parts for i in part[3]]
        self.skipped = [m for part in parts for m in part[4]]
        return self


def coco_iou_types(
    dataset: LoadedDataset, requested: Sequence[str] | None = None, mask_on: bool = True
) -> tuple[str, ...]:
    """The COCO AP kinds to report for an instance dataset: `requested`, else box and mask AP, or box AP
    alone when the json has annotations without `segmentation` (mask AP needs every mask) or the model
    gives no masks (`model.test.mask_on` off)."""
    missing = dataset.box_only_annotations
    where = dataset.annotation_file or dataset.info.name
    if requested is not None and "segm" in requested and not mask_on:
        raise ValueError(
            "the model gives no masks (model.test.mask_on=false: trained on boxes only), so mask AP cannot be "
            "computed: evaluate box AP with --iou-types bbox"
        )
    if requested is None:
        if missing:
            logger.info("%s: %d annotations have no segmentation: box AP only", where, missing)
        return ("bbox",) if missing or not mask_on else IOU_TYPES
    unknown = [t for t in requested if t not in IOU_TYPES]
    if unknown or not requested:
        raise ValueError(f"iou types {list(requested)}: choose from {', '.join(IOU_TYPES)}")
    if "segm" in requested and missing:
        raise ValueError(
            f"{where} has {missing} annotations without 'segmentation' (boxes only), so mask AP cannot be "
            f"computed: evaluate box AP with --iou-types bbox (iou_types=('bbox',))"
        )
    return tuple(dict.fromkeys(requested))


def evaluate_model(
    model: torch.nn.Module,
    cfg: Config,
    dataset: LoadedDataset | None = None,
    output_dir: str | Path | None = None,
    batch_size: int = 1,
    show_progress: bool = True,
    iou_types: Sequence[str] | None = None,
) -> dict[str, float]:
    """Predict every test image at its original size and return the metrics (in percent, on every rank).

    `iou_types` ("bbox", "segm") picks the COCO AP of instance datasets; by default both, or box AP alone
    for a json with box-only annotations or a model without masks (see `coco_iou_types`).
    """
    dataset = dataset if dataset is not None else build_dataset(cfg, "test")
    records = {r["image_id"]: r for r in dataset.records}
    collector = _Collector(dataset.info, cfg, records)
    if iou_types is not None and not collector.instance_on:
        raise ValueError(
            f"iou types apply to COCO instance datasets; {dataset.info.name} is {dataset.info.task}"
        )
    if collector.instance_on:
        collector.iou_types = coco_iou_types(dataset, iou_types, cfg.model.test.mask_on)
    rank, world = _world()
    loader = build_test_loader(cfg, dataset, batch_size=batch_size, rank=rank, world_size=world)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.inference_mode():
        for images, _, metas in tqdm(loader, desc="evaluate", disable=not show_progress or rank != 0):
            for meta in metas:
                if "error" in meta:
                    collector.skip(meta)
            read = [(img, m) for img, m in zip(images, metas) if img is not None]
            if not read:
                continue
            sizes = [(int(m["height"]), int(m["width"])) for _, m in read]
            results = model([img.to(device) for img, _ in read], output_sizes=sizes)
            for (_, meta), result in zip(read, results):
                collector.add(meta, result)
    model.train(was_training)
    collector.merge()
    left_out = _report_left_out(collector, dataset)
    metrics: dict[str, float] = {}
    if rank == 0:
        metrics = _metrics(collector, dataset, output_dir)
        metrics.update({"images/evaluated": len(collector.evaluated), "images/left_out": left_out})
        if output_dir is not None:
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            written = {**metrics, "skipped_images": collector.skipped} if collector.skipped else metrics
            (Path(output_dir) / "metrics.json").write_text(json.dumps(written, indent=2))
        logger.info(
            "evaluation of %s (%d images):\n%s",
            dataset.info.name,
            len(collector.evaluated),
            summary_table(metrics),
        )
    metrics = _gather(metrics)[0] if world > 1 else metrics
    model.last_evaluation = metrics  # what save_pretrained writes into the model card
    return metrics


def _report_left_out(collector: _Collector, dataset: LoadedDataset) -> int:
    """How many images of the dataset were not evaluated (missing or undecodable when the dataset was
    loaded, or unreadable during inference); logged, and an error when none was evaluated."""
    at_load = dataset.bad_input.get("missing_file", 0) + dataset.bad_input.get("unreadable_image", 0)
    left_out = at_load + len(collector.skipped)
    if not collector.evaluated:
        raise ValueError(
            f"none of the images of dataset {dataset.info.name!r} could be read ({left_out} left out, see the "
            f"logged errors); check the image folder (--val-images / --data-root)"
        )
    if left_out:
        logger.warning(
            "evaluation of %s: %d image(s) left out (%d missing or undecodable when loading, %d unreadable "
            "during inference); the metrics score the %d evaluated images only",
            dataset.info.name,
            left_out,
            at_load,
            len(collector.skipped),
            len(collector.evaluated),
        )
    return left_out


def _evaluated_ground_truth(gt_file: str, image_ids: list[Any]) -> dict[str, Any]:
    """The annotation json restricted to the evaluated images, so that an image left out does not count
    its ground truth as missed detections."""
    data = json.loads(Path(gt_file).read_text())
    keep = set(image_ids)
    return {
        **data,
        "images": [image for image in data["images"] if image["id"] in keep],
        "annotations": [ann for ann in data["annotations"] if ann.get("image_id") in keep],
    }


def _metrics(
    collector: _Collector, dataset: LoadedDataset, output_dir: str | Path | None
) -> dict[str, float]:
    metrics: dict[str, float] = {}
    if collector.instance_on:
        gt_file = getattr(dataset, "annotation_file", None)
        if gt_file is None:
            raise ValueError(
                f"dataset {dataset.info.name!r} has no annotation file to score instances against"
            )
        if output_dir is not None:
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            (Path(output_dir) / "coco_instances_results.json").write_text(json.dumps(collector.instances))
        ground_truth = _evaluated_ground_truth(gt_file, collector.evaluated)
        metrics.update(evaluate_coco(ground_truth, collector.instances, iou_types=collector.iou_types))
    if collector.panoptic_on:
        categories = [
            {"id": d, "name": n, "isthing": int(t)}
            for d, n, t in zip(dataset.info.dataset_ids, dataset.info.class_names, dataset.info.isthing)
        ]
        metrics.update(pq_summary(collector.pq, categories))
    if collector.semantic_on and collector.confusion.any():
        semantic = semantic_metrics_from_confusion(collector.confusion, dataset.info.class_names)
        metrics.update({f"sem_seg/{k}": v for k, v in semantic.items()})
    return metrics


def summary_table(metrics: dict[str, float]) -> str:
    """The headline numbers as a table (per-class entries left to metrics.json)."""
    headline = (
        "AP",
        "AP50",
        "AP75",
        "APs",
        "APm",
        "APl",
        "PQ",
        "SQ",
        "RQ",
        "PQ_th",
        "PQ_st",
        "mIoU",
        "fwIoU",
        "mACC",
        "pACC",
    )
    rows = [[key, value] for key, value in metrics.items() if key.split("/")[-1] in headline]
    return format_table(["metric", "value"], rows) if rows else "(no metrics)"
