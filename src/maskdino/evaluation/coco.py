"""COCO box and mask AP: pycocotools' COCOeval (or faster-coco-eval, same numbers) as detectron2 runs it.

Two details decide whether the numbers match published ones:
* results are scored for `segm` without their `bbox` field, so pycocotools takes the detection area
  (small/medium/large) from the mask, as detectron2's COCOEvaluator does;
* category ids in the results are the dataset's ids, not the model's contiguous labels.
Everything a results file can get wrong (unknown images or categories, missing fields, mask sizes)
raises a ValueError instead of being dropped silently by pycocotools.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from maskdino.evaluation.results import read_json

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
IOU_TYPES = ("bbox", "segm")
BACKENDS = ("auto", "pycocotools", "faster_coco_eval")


def _silent(*args: object, **kwargs: object) -> None:
    return None


def coco_backend(backend: str = "auto") -> tuple[type, Any]:
    """(COCO class, COCOeval factory) of `backend`; "auto" prefers faster-coco-eval when installed."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown COCO backend {backend!r}; choose one of {BACKENDS}")
    if backend != "pycocotools":
        try:
            from faster_coco_eval import COCO, COCOeval_faster
        except ImportError:
            if backend == "faster_coco_eval":
                raise ImportError(
                    "backend='faster_coco_eval' needs the faster-coco-eval package: "
                    "pip install faster-coco-eval"
                ) from None
        else:

            def make_eval(gt: Any, dt: Any, iou_type: str) -> Any:
                return COCOeval_faster(gt, dt, iou_type, print_function=_silent)

            return COCO, make_eval
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    return COCO, COCOeval


def _coco_from_dataset(coco_class: type, dataset: dict) -> Any:
    coco = coco_class()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _preview(values: Iterable[object], limit: int = 5) -> str:
    values = sorted(values)
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def _check_ground_truth(gt: Any, gt_name: str, iou_types: Sequence[str]) -> None:
    if not isinstance(gt, Mapping) or not all(key in gt for key in ("images", "annotations", "categories")):
        raise ValueError(
            f"{gt_name} is not a COCO instances file: it needs 'images', 'annotations', 'categories'"
        )
    for ann in gt["annotations"]:
        missing = [key for key in ("image_id", "category_id", "area", "bbox") if key not in ann]
        if "segm" in iou_types and "segmentation" not in ann:
            raise ValueError(
                f"{gt_name}: annotation {ann.get('id')} has no 'segmentation', so mask AP cannot be "
                f"computed; evaluate with iou_types=('bbox',)"
            )
        if missing:
            raise ValueError(f"{gt_name}: annotation {ann.get('id')} lacks {missing}")


def _check_results(results: Any, res_name: str, gt: Mapping, iou_types: Sequence[str]) -> None:
    if not isinstance(results, list):
        raise ValueError(f"{res_name} must be a JSON list of detections, got {type(results).__name__}")
    image_sizes = {img["id"]: [img.get("height"), img.get("width")] for img in gt["images"]}
    category_ids = {cat["id"] for cat in gt["categories"]}
    unknown_images, unknown_categories = set(), set()
    for k, det in enumerate(results):
        missing = [key for key in ("image_id", "category_id", "score") if key not in det]
        if missing:
            raise ValueError(f"{res_name}: detection {k} lacks {missing}")
        if "bbox" in iou_types and "bbox" not in det:
            raise ValueError(
                f"{res_name}: detection {k} has no 'bbox'; for masks only use iou_types=('segm',)"
            )
        if "segm" in iou_types and "segmentation" not in det:
            raise ValueError(
                f"{res_name}: detection {k} has no 'segmentation'; for boxes only use iou_types=('bbox',)"
            )
        if det["image_id"] not in image_sizes:
            unknown_images.add(det["image_id"])
            continue
        if det["category_id"] not in category_ids:
            unknown_categories.add(det["category_id"])
        if "segm" in iou_types:
            rle = det["segmentation"]
            if not isinstance(rle, Mapping) or "counts" not in rle or "size" not in rle:
                raise ValueError(
                    f"{res_name}: detection {k} has a segmentation that is not an RLE dict with 'size' and "
                    f"'counts' (results masks must be RLE-encoded, see instances_to_coco_results)"
                )
            if list(rle["size"]) != image_sizes[det["image_id"]]:
                raise ValueError(
                    f"{res_name}: detection {k} has a mask of size {list(rle['size'])} but image "
                    f"{det['image_id']} is [height, width] = {image_sizes[det['image_id']]}; "
                    f"masks must be at the original image size"
                )
    if unknown_images:
        raise ValueError(
            f"{res_name} has detections for image ids not in the ground truth: {_preview(unknown_images)}"
        )
    if unknown_categories:
        raise ValueError(
            f"{res_name} uses category ids not in the ground truth: {_preview(unknown_categories)} "
            f"(known: {_preview(category_ids)}); results need the dataset's category ids, "
            f"not contiguous labels"
        )


def _run_cocoeval(make_eval: Any, gt: Any, dt: Any, iou_type: str) -> Any:
    evaluator = make_eval(gt, dt, iou_type)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def _percent(value: float) -> float:
    # pycocotools reports -1 for a metric with no ground truth in its area range; keep that marker.
    return float(value) * 100.0 if value >= 0 else -1.0


def evaluate_coco(
    gt_json: str | Path | Mapping,
    results_json: str | Path | list,
    iou_types: Sequence[str] = IOU_TYPES,
    backend: str = "auto",
) -> dict[str, float]:
    """COCO AP of a results file against a ground-truth instances file, in percent.

    Returns `"{iou_type}/{stat}"` for the 12 numbers of the standard summary (`AP`, `AP50`, `AP75`,
    `APs`, `APm`, `APl`, `AR1`, `AR10`, `AR100`, `ARs`, `ARm`, `ARl`; -1 where the ground truth has no
    object in that area range) and `"{iou_type}/AP-{category name}"` for every category with ground
    truth. An empty results list is valid and scores 0, what COCOeval gives for no detections.
    Ground-truth annotations without `iscrowd` count as not crowd.
    """
    unknown = [t for t in iou_types if t not in IOU_TYPES]
    if unknown or not iou_types:
        raise ValueError(f"iou_types must be a non-empty subset of {IOU_TYPES}, got {tuple(iou_types)}")
    gt_data, gt_name = read_json(gt_json, "COCO ground-truth")
    results, res_name = read_json(results_json, "COCO results")
    _check_ground_truth(gt_data, gt_name, iou_types)
    _check_results(results, res_name, gt_data, iou_types)

    coco_class, make_eval = coco_backend(backend)
    gt_dataset = copy.deepcopy(dict(gt_data))
    for ann in gt_dataset["annotations"]:
        ann.setdefault("iscrowd", 0)  # as detectron2 reads COCO files; pycocotools needs the field
    gt = _coco_from_dataset(coco_class, gt_dataset)
    names = {cat["id"]: cat["name"] for cat in gt_data["categories"]}
    metrics: dict[str, float] = {}
    for iou_type in iou_types:
        # loadRes writes into the entries it is given: hand it copies.
        detections = copy.deepcopy(results)
        if iou_type == "segm":
            for det in detections:
                det.pop("bbox", None)
        if detections:
            with contextlib.redirect_stdout(io.StringIO()):
                dt = gt.loadRes(detections)
        else:
            empty = {"images": gt_data["images"], "categories": gt_data["categories"], "annotations": []}
            dt = _coco_from_dataset(coco_class, copy.deepcopy(empty))
        evaluator = _run_cocoeval(make_eval, gt, dt, iou_type)
        for name, value in zip(STAT_NAMES, evaluator.stats):
            metrics[f"{iou_type}/{name}"] = _percent(value)
        # precision: [iou thresholds, recall thresholds, categories, area ranges, max dets]
        precision = np.asarray(evaluator.eval["precision"])
        for k, category_id in enumerate(evaluator.params.catIds):
            values = precision[:, :, k, 0, -1]
            values = values[values > -1]
            if values.size:
                metrics[f"{iou_type}/AP-{names[category_id]}"] = float(values.mean()) * 100.0
    return metrics
