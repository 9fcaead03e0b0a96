"""The metric tables `maskdino eval` and `maskdino score` print (all numbers in percent)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from maskdino.evaluation.coco import IOU_TYPES
from maskdino.evaluation.table import format_table, metrics_table

SEMANTIC_PREFIX = "sem_seg/"  # how `evaluate_model` names the semantic metrics


def coco_tables(
    metrics: Mapping[str, float], iou_types: Sequence[str], per_category: bool = False
) -> list[str]:
    """The 12 COCO numbers of each iou type (AP and AR rows), optionally the AP of every category."""
    rows = [(iou_type, f"{iou_type}/{{}}") for iou_type in iou_types]
    tables = [
        metrics_table(metrics, rows, ("AP", "AP50", "AP75", "APs", "APm", "APl")),
        metrics_table(metrics, rows, ("AR1", "AR10", "AR100", "ARs", "ARm", "ARl")),
    ]
    if per_category:
        names = dict.fromkeys(key.split("/AP-", 1)[1] for key in metrics if "/AP-" in key)
        body = [[name] + [metrics.get(f"{t}/AP-{name}") for t in iou_types] for name in names]
        tables.append(format_table(["category", *(f"{t} AP" for t in iou_types)], body))
    return tables


def panoptic_table(metrics: Mapping[str, float]) -> str:
    """PQ, SQ, RQ and the category count of all categories, things and stuff."""
    rows = [("All", "{}"), ("Things", "{}_th"), ("Stuff", "{}_st")]
    return metrics_table(metrics, rows, ("PQ", "SQ", "RQ", "N"))


def semantic_tables(
    metrics: Mapping[str, float], prefix: str = "", per_class: bool = False, cityscapes: bool = False
) -> list[str]:
    """mIoU, fwIoU, mean and pixel accuracy; optionally the IoU and accuracy of every class."""
    columns = ["mIoU", "fwIoU", "mACC", "pACC"] + (["IoU", "IoU_sup"] if cityscapes else [])
    tables = [metrics_table(metrics, [("semantic", prefix + "{}")], columns)]
    if per_class:
        start = prefix + "IoU-"
        classes = [key[len(start) :] for key in metrics if key.startswith(start)]
        body = [[name, metrics[f"{start}{name}"], metrics.get(f"{prefix}ACC-{name}")] for name in classes]
        tables.append(format_table(["class", "IoU", "ACC"], body))
    return tables


def metric_tables(metrics: Mapping[str, float]) -> str:
    """Every table the metrics of `evaluate_model` fill: COCO AP, PQ, or semantic with per-class IoU."""
    tables = []
    iou_types = [t for t in IOU_TYPES if f"{t}/AP" in metrics]
    if iou_types:
        tables += coco_tables(metrics, iou_types)
    if "PQ" in metrics:
        tables.append(panoptic_table(metrics))
    if SEMANTIC_PREFIX + "mIoU" in metrics:
        tables += semantic_tables(metrics, SEMANTIC_PREFIX, per_class=True)
    return "\n\n".join(tables) if tables else "(no metrics)"
