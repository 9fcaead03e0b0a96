"""Semantic segmentation metrics from one confusion matrix (detectron2's SemSegEvaluator definitions).

Ignored ground-truth pixels are dropped; a class enters the means only if it has ground-truth pixels,
so a class that is merely predicted somewhere does not pull mIoU down. Cityscapes' own class and
category IoU (cityscapesscripts, which the official Cityscapes numbers come from) are computed from the
same matrix by `cityscapes_metrics_from_confusion`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

# Cityscapes' 19 train ids grouped into its 7 categories (cityscapesscripts labels.py).
CITYSCAPES_CATEGORIES = {
    "flat": (0, 1),
    "construction": (2, 3, 4),
    "object": (5, 6, 7),
    "nature": (8, 9),
    "sky": (10,),
    "human": (11, 12),
    "vehicle": (13, 14, 15, 16, 17, 18),
}


def confusion_matrix(
    pred: np.ndarray, gt: np.ndarray, num_classes: int, ignore_label: int = 255
) -> np.ndarray:
    """Pixel counts [num_classes, num_classes] indexed [gt class, predicted class], ignored pixels dropped.

    `pred` holds class indices 0..num_classes-1, `gt` the same or `ignore_label`; matrices of several
    images add up, so a running evaluator needs no PNGs.
    """
    pred, gt = np.asarray(pred).astype(np.int64), np.asarray(gt).astype(np.int64)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground-truth shape {gt.shape}")
    # Predictions are checked everywhere, also under ignored pixels: a stray value means a wrong format.
    if pred.size and (pred.min() < 0 or pred.max() >= num_classes):
        bad = np.unique(pred[(pred < 0) | (pred >= num_classes)])
        raise ValueError(f"predicted labels {bad[:10].tolist()} are outside the classes 0..{num_classes - 1}")
    keep = gt != ignore_label
    gt, pred = gt[keep], pred[keep]
    if gt.size and (gt.min() < 0 or gt.max() >= num_classes):
        bad = np.unique(gt[(gt < 0) | (gt >= num_classes)])
        raise ValueError(
            f"ground-truth labels {bad[:10].tolist()} are neither classes 0..{num_classes - 1} nor the "
            f"ignore label {ignore_label}; check num_classes / ignore_label (ADE20K-style 1-based labels "
            f"need reduce_zero_label)"
        )
    counts = np.bincount(gt * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def _class_names(num_classes: int, class_names: Sequence[str] | None) -> list[str]:
    if class_names is None:
        return [str(k) for k in range(num_classes)]
    if len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names given for {num_classes} classes")
    return list(class_names)


def semantic_metrics_from_confusion(
    conf: np.ndarray, class_names: Sequence[str] | None = None
) -> dict[str, float]:
    """mIoU, fwIoU, mACC, pACC (percent) and per-class `IoU-{name}`, `ACC-{name}` of classes with
    ground-truth pixels, from a [gt, pred] confusion matrix (see `confusion_matrix`)."""
    conf = np.asarray(conf, dtype=np.float64)
    if conf.ndim != 2 or conf.shape[0] != conf.shape[1]:
        raise ValueError(f"confusion matrix must be square [C, C], got shape {conf.shape}")
    names = _class_names(conf.shape[0], class_names)
    tp = np.diag(conf)
    pos_gt, pos_pred = conf.sum(axis=1), conf.sum(axis=0)
    valid = pos_gt > 0
    if not valid.any():
        raise ValueError(
            "the confusion matrix has no ground-truth pixel: every pixel was ignored or none was seen"
        )
    iou = tp[valid] / (pos_gt + pos_pred - tp)[valid]
    acc = tp[valid] / pos_gt[valid]
    metrics = {
        "mIoU": float(iou.mean()) * 100.0,
        "fwIoU": float((iou * pos_gt[valid]).sum() / pos_gt.sum()) * 100.0,
        "mACC": float(acc.mean()) * 100.0,
        "pACC": float(tp.sum() / pos_gt.sum()) * 100.0,
    }
    valid_names = [name for name, keep in zip(names, valid) if keep]
    metrics.update({f"IoU-{name}": float(v) * 100.0 for name, v in zip(valid_names, iou)})
    metrics.update({f"ACC-{name}": float(v) * 100.0 for name, v in zip(valid_names, acc)})
    return metrics


def _mean_iou(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> float:
    denom = tp + fp + fn
    valid = denom > 0
    return float((tp[valid] / denom[valid]).mean()) * 100.0 if valid.any() else 0.0


def cityscapes_metrics_from_confusion(conf: np.ndarray) -> dict[str, float]:
    """Cityscapes' `IoU` (class mean) and `IoU_sup` (category mean), percent, from a 19-class
    train-id [gt, pred] matrix. cityscapesscripts averages every class with any TP, FP or FN, so a
    class predicted but absent from the ground truth counts as 0 here (it is skipped by mIoU).
    The instance-weighted iIoU needs instance maps and is not computed."""
    conf = np.asarray(conf, dtype=np.float64)
    if conf.shape != (19, 19):
        raise ValueError(
            f"Cityscapes metrics need the 19-class train-id confusion matrix, got shape {conf.shape}"
        )
    tp = np.diag(conf)
    class_iou = _mean_iou(tp, conf.sum(axis=0) - tp, conf.sum(axis=1) - tp)
    cat_tp, cat_fp, cat_fn = [], [], []
    for ids in CITYSCAPES_CATEGORIES.values():
        ids = list(ids)
        inside = conf[np.ix_(ids, ids)].sum()
        cat_tp.append(inside)
        cat_fn.append(conf[ids, :].sum() - inside)
        cat_fp.append(conf[:, ids].sum() - inside)
    category_iou = _mean_iou(np.array(cat_tp), np.array(cat_fp), np.array(cat_fn))
    return {"IoU": class_iou, "IoU_sup": category_iou}


def _read_labels(path: Path) -> np.ndarray:
    labels = np.array(Image.open(path))
    if labels.ndim != 2:
        raise ValueError(f"{path} must be a single-channel label PNG, got shape {labels.shape}")
    return labels.astype(np.int64)


def evaluate_semantic(
    pred_png_dir: str | Path,
    gt_png_dir: str | Path,
    num_classes: int,
    ignore_label: int = 255,
    reduce_zero_label: bool = False,
    class_names: Sequence[str] | None = None,
    cityscapes: bool = False,
    show_progress: bool = True,
) -> dict[str, float]:
    """Semantic metrics of label PNGs against ground-truth label PNGs, in percent.

    Files pair by path relative to their folder (`a/b.png` with `a/b.png`). Predictions hold class
    indices 0..num_classes-1. `reduce_zero_label` reads ground truth the ADE20K way: 0 is ignored and
    every other label drops by one. `cityscapes` adds `IoU` and `IoU_sup` as cityscapesscripts reports
    them. Returns the keys of `semantic_metrics_from_confusion`.
    """
    gt_dir, pred_dir = Path(gt_png_dir), Path(pred_png_dir)
    for role, folder in (("ground-truth", gt_dir), ("prediction", pred_dir)):
        if not folder.is_dir():
            raise FileNotFoundError(f"{role} folder not found: {folder}")
    if 0 <= ignore_label < num_classes:
        raise ValueError(f"ignore_label {ignore_label} collides with class indices 0..{num_classes - 1}")
    gt_files = sorted(path.relative_to(gt_dir) for path in gt_dir.rglob("*.png"))
    pred_files = {path.relative_to(pred_dir) for path in pred_dir.rglob("*.png")}
    if not gt_files:
        raise ValueError(f"no ground-truth PNG under {gt_dir}")
    missing = [str(f) for f in gt_files if f not in pred_files]
    if missing:
        raise ValueError(
            f"{len(missing)} ground-truth images have no prediction in {pred_dir}: {missing[:5]}"
        )
    extra = sorted(str(f) for f in pred_files - set(gt_files))
    if extra:
        raise ValueError(
            f"{pred_dir} has predictions for images with no ground truth in {gt_dir}: {extra[:5]}"
        )

    conf = np.zeros((num_classes, num_classes), dtype=np.int64)
    for relative in tqdm(gt_files, desc="mIoU", disable=not show_progress):
        gt = _read_labels(gt_dir / relative)
        if reduce_zero_label:
            gt = np.where(gt == 0, ignore_label, gt - 1)
        pred = _read_labels(pred_dir / relative)
        try:
            conf += confusion_matrix(pred, gt, num_classes, ignore_label)
        except ValueError as err:
            raise ValueError(f"{pred_dir / relative} vs {gt_dir / relative}: {err}") from None
    metrics = semantic_metrics_from_confusion(conf, class_names)
    if cityscapes:
        metrics.update(cityscapes_metrics_from_confusion(conf))
    return metrics
