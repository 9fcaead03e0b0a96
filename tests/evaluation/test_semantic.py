"""Semantic metrics: a hand-worked example, the real ADE20K samples against per-class set counting,
Cityscapes' class / category IoU, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskdino.evaluation import (
    cityscapes_metrics_from_confusion,
    confusion_matrix,
    evaluate_semantic,
    semantic_metrics_from_confusion,
)

GT = np.array([[0, 0, 1], [1, 2, 255]])
PRED = np.array([[0, 1, 1], [1, 2, 0]])


def test_hand_worked_example() -> None:
    conf = confusion_matrix(PRED, GT, num_classes=3, ignore_label=255)
    # Rows are ground truth, columns prediction; the pixel under the ignore label is gone.
    assert conf.tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 1]]
    metrics = semantic_metrics_from_confusion(conf, ["a", "b", "c"])
    # IoU: a 1/(2+1-1) = 1/2, b 2/(2+3-2) = 2/3, c 1; accuracy: a 1/2, b 1, c 1; 4 of 5 pixels right.
    assert metrics["IoU-a"] == pytest.approx(50.0)
    assert metrics["IoU-b"] == pytest.approx(200 / 3)
    assert metrics["mIoU"] == pytest.approx(100 * (1 / 2 + 2 / 3 + 1) / 3)
    assert metrics["fwIoU"] == pytest.approx(100 * (2 * 1 / 2 + 2 * 2 / 3 + 1 * 1) / 5)
    assert metrics["mACC"] == pytest.approx(100 * (1 / 2 + 1 + 1) / 3)
    assert metrics["pACC"] == pytest.approx(80.0)


def test_classes_without_ground_truth_are_left_out() -> None:
    pred = PRED.copy()
    pred[0, 0] = 3  # class 3 is predicted once but never in the ground truth
    metrics = semantic_metrics_from_confusion(confusion_matrix(pred, GT, num_classes=4))
    assert "IoU-3" not in metrics
    # a loses its only hit: IoU 0; b 2/3, c 1 -> mean over the 3 classes with ground truth.
    assert metrics["mIoU"] == pytest.approx(100 * (0 + 2 / 3 + 1) / 3)


def test_cityscapes_class_and_category_iou() -> None:
    conf = np.zeros((19, 19), dtype=np.int64)
    conf[0, 0], conf[0, 1] = 8, 2  # road, 2 pixels taken for sidewalk
    conf[13, 13], conf[13, 14] = 5, 5  # car, half taken for truck
    metrics = cityscapes_metrics_from_confusion(conf)
    # Classes with any TP/FP/FN: road 8/10, sidewalk 0, car 5/10, truck 0 (sidewalk and truck have
    # no ground truth, which mIoU skips); categories flat and vehicle are perfect.
    assert metrics["IoU"] == pytest.approx(100 * (0.8 + 0 + 0.5 + 0) / 4)
    assert metrics["IoU_sup"] == pytest.approx(100.0)
    assert semantic_metrics_from_confusion(conf)["mIoU"] == pytest.approx(100 * (0.8 + 0.5) / 2)
    with pytest.raises(ValueError, match="19-class"):
        cityscapes_metrics_from_confusion(np.eye(3))


def _ade_predictions(gt_dir: Path, pred_dir: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Predictions from the ADE20K labels: class = label - 1, with a checkerboard of blocks moved to
    the next class and the unlabelled pixels predicted as class 0. Returns (gt, pred) in 0-based
    classes with 255 for ignore."""
    pairs = []
    for path in sorted(gt_dir.glob("*.png")):
        raw = np.array(Image.open(path)).astype(np.int64)
        gt = np.where(raw == 0, 255, raw - 1)
        rows, cols = np.indices(raw.shape)
        pred = np.where((rows // 37 + cols // 53) % 4 == 0, (gt + 1) % 150, gt)
        pred[raw == 0] = 0
        (pred_dir / path.name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pred.astype(np.uint8)).save(pred_dir / path.name)
        pairs.append((gt, pred))
    return pairs


def test_ade20k_samples_against_per_class_counting(eval_data: Path, tmp_path: Path) -> None:
    gt_dir = eval_data.parent / "pipeline" / "ade20k" / "annotations" / "validation"
    pairs = _ade_predictions(gt_dir, tmp_path)
    metrics = evaluate_semantic(
        tmp_path, gt_dir, num_classes=150, reduce_zero_label=True, show_progress=False
    )
    gt = np.concatenate([g.ravel() for g, _ in pairs])
    pred = np.concatenate([p.ravel() for _, p in pairs])
    valid = gt != 255
    ious, accs, weights = [], [], []
    for c in np.unique(gt[valid]):
        inter = np.sum((gt == c) & (pred == c) & valid)
        union = np.sum(((gt == c) | (pred == c)) & valid)
        ious.append(inter / union)
        accs.append(inter / np.sum(gt == c))
        weights.append(np.sum(gt == c) / valid.sum())
    assert len(ious) == 15  # distinct classes in the three label maps
    assert metrics["mIoU"] == pytest.approx(100 * np.mean(ious), abs=1e-9)
    assert metrics["fwIoU"] == pytest.approx(100 * np.dot(ious, weights), abs=1e-9)
    assert metrics["mACC"] == pytest.approx(100 * np.mean(accs), abs=1e-9)
    assert metrics["pACC"] == pytest.approx(100 * np.mean(gt[valid] == pred[valid]), abs=1e-9)
    assert 50.0 < metrics["mIoU"] < 90.0
    # Read without reduce_zero_label, 0..150 are 151 classes and 0 is no longer ignored: other numbers.
    raw = evaluate_semantic(tmp_path, gt_dir, num_classes=151, show_progress=False)
    assert raw["mIoU"] != pytest.approx(metrics["mIoU"])


def test_bad_input(eval_data: Path, tmp_path: Path) -> None:
    gt_dir = eval_data.parent / "pipeline" / "ade20k" / "annotations" / "validation"
    _ade_predictions(gt_dir, tmp_path)
    with pytest.raises(
        ValueError, match=r"ground-truth labels \[.*\] are neither classes 0..102.*reduce_zero_label"
    ):
        evaluate_semantic(tmp_path, gt_dir, num_classes=103, show_progress=False)
    bad = np.array(Image.open(tmp_path / "ADE_val_00000002.png"))
    bad[0, 0] = 200
    Image.fromarray(bad).save(tmp_path / "ADE_val_00000002.png")
    with pytest.raises(ValueError, match=r"ADE_val_00000002.png vs .*predicted labels \[200\] are outside"):
        evaluate_semantic(tmp_path, gt_dir, num_classes=150, reduce_zero_label=True, show_progress=False)
    with pytest.raises(ValueError, match="collides"):
        evaluate_semantic(tmp_path, gt_dir, num_classes=150, ignore_label=0, show_progress=False)
    Image.fromarray(np.zeros((3, 3), dtype=np.uint8)).save(tmp_path / "extra.png")
    with pytest.raises(ValueError, match=r"predictions for images with no ground truth .*\['extra.png'\]"):
        evaluate_semantic(tmp_path, gt_dir, num_classes=150, reduce_zero_label=True, show_progress=False)
    (tmp_path / "extra.png").unlink()
    Image.fromarray(np.zeros((3, 3), dtype=np.uint8)).save(tmp_path / "ADE_val_00000001.png")
    with pytest.raises(
        ValueError, match=r"prediction shape \(3, 3\) differs from ground-truth shape \(512, 683\)"
    ):
        evaluate_semantic(tmp_path, gt_dir, num_classes=150, reduce_zero_label=True, show_progress=False)
    (tmp_path / "ADE_val_00000001.png").unlink()
    with pytest.raises(ValueError, match=r"1 ground-truth images have no prediction.*ADE_val_00000001.png"):
        evaluate_semantic(tmp_path, gt_dir, num_classes=150, reduce_zero_label=True, show_progress=False)
    with pytest.raises(ValueError, match="no ground-truth pixel"):
        semantic_metrics_from_confusion(np.zeros((3, 3)))
