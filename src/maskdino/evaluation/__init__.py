"""Standard metrics for results from any model: COCO box/mask AP, panoptic PQ, semantic mIoU.

All metrics are percentages. The `*_to_*` helpers turn model outputs into the results formats these
evaluators read.
"""

from maskdino.evaluation.coco import evaluate_coco
from maskdino.evaluation.panoptic import PQStats, evaluate_panoptic, pq_image_stats, pq_summary
from maskdino.evaluation.results import (
    encode_masks,
    instances_to_coco_results,
    panoptic_to_png,
    semantic_to_png,
    write_png,
)
from maskdino.evaluation.semantic import (
    cityscapes_metrics_from_confusion,
    confusion_matrix,
    evaluate_semantic,
    semantic_metrics_from_confusion,
)

__all__ = [
    "PQStats",
    "cityscapes_metrics_from_confusion",
    "confusion_matrix",
    "encode_masks",
    "evaluate_coco",
    "evaluate_panoptic",
    "evaluate_semantic",
    "instances_to_coco_results",
    "panoptic_to_png",
    "pq_image_stats",
    "pq_summary",
    "semantic_metrics_from_confusion",
    "semantic_to_png",
    "write_png",
]
