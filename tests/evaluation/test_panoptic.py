"""PQ on the real COCO panoptic samples: identity, a perturbed copy against a plain per-segment
reference written from the panoptic API's rules, images without segments, bad input."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskdino.evaluation import evaluate_panoptic
from maskdino.evaluation.results import id_to_rgb, rgb_to_id


@pytest.fixture(scope="module")
def samples(eval_data: Path) -> tuple[dict, Path]:
    folder = eval_data.parent / "pipeline" / "coco_panoptic"
    return json.loads((folder / "panoptic_val2017.json").read_text()), folder / "panoptic_val2017"


def _ids(folder: Path, name: str) -> np.ndarray:
    return rgb_to_id(np.array(Image.open(folder / name))).astype(np.int64)


def _perturb(gt: dict, gt_dir: Path, pred_dir: Path) -> dict:
    """A prediction made from the ground truth by growing, shrinking, relabelling, dropping and
    splitting segments and adding new ones, so that every rule of PQ changes the result."""
    pred_dir.mkdir()
    things = [c["id"] for c in gt["categories"] if c["isthing"]]
    annotations = []
    for ann in gt["annotations"]:
        ids = _ids(gt_dir, ann["file_name"])
        pred = ids.copy()
        segments = []
        next_id = int(ids.max()) + 1
        for k, seg in enumerate(ann["segments_info"]):
            mask = ids == seg["id"]
            rows, cols = np.nonzero(mask)
            entry = {"id": seg["id"], "category_id": seg["category_id"]}
            action = k % 5
            if seg["iscrowd"]:  # kept as is, plus a new segment of its category on its top half
                pred[mask & (np.arange(ids.shape[0]) < np.median(rows))[:, None]] = next_id
                segments.append({"id": next_id, "category_id": seg["category_id"]})
                next_id += 1
            elif action == 0:  # grow over the void pixels of its bounding box
                box = np.zeros_like(mask)
                box[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = True
                pred[box & (ids == 0)] = seg["id"]
            elif action == 1:  # lose the right 30% of the segment to void
                pred[
                    mask & (np.arange(ids.shape[1]) > cols.min() + 0.7 * (cols.max() - cols.min()))[None]
                ] = 0
            elif action == 2:  # right pixels, wrong class
                cat = seg["category_id"]
                entry["category_id"] = things[(things.index(cat) + 1) % len(things)] if cat in things else 1
            elif action == 3 and k % 2:  # missed entirely
                pred[mask] = 0
                continue
            elif action == 4:  # split in a top and a bottom part
                pred[mask & (np.arange(ids.shape[0]) > np.median(rows))[:, None]] = next_id
                segments.append({"id": next_id, "category_id": seg["category_id"]})
                next_id += 1
            segments.append(entry)
        # A person box pasted over the middle, across several segments.
        h, w = ids.shape
        pred[h // 3 : h // 2, w // 3 : w // 2] = next_id
        segments.append({"id": next_id, "category_id": 1})
        # A segment on void pixels only: ignored, not a false positive.
        void = np.flatnonzero((ids == 0).ravel())[:50]
        pred.ravel()[void] = next_id + 1
        segments.append({"id": next_id + 1, "category_id": 1})
        present = set(np.unique(pred).tolist())
        segments = [s for s in segments if s["id"] in present]
        Image.fromarray(id_to_rgb(pred)).save(pred_dir / ann["file_name"])
        annotations.append(
            {"image_id": ann["image_id"], "file_name": ann["file_name"], "segments_info": segments}
        )
    return {"annotations": annotations}


def _reference_pq(gt: dict, gt_dir: Path, pred: dict, pred_dir: Path) -> tuple[dict, dict]:
    """PQ by the panoptic API's rules, one boolean mask per segment (slow, but obviously literal)."""
    totals = {c["id"]: {"iou": 0.0, "tp": 0, "fp": 0, "fn": 0} for c in gt["categories"]}
    preds = {a["image_id"]: a for a in pred["annotations"]}
    for gt_ann in gt["annotations"]:
        pred_ann = preds[gt_ann["image_id"]]
        gt_ids, pred_ids = _ids(gt_dir, gt_ann["file_name"]), _ids(pred_dir, pred_ann["file_name"])
        pred_masks = {p["id"]: pred_ids == p["id"] for p in pred_ann["segments_info"]}
        void = gt_ids == 0
        matched_gt, matched_pred = set(), set()
        for g in gt_ann["segments_info"]:
            if g["iscrowd"]:
                continue
            g_mask = gt_ids == g["id"]
            for p in pred_ann["segments_info"]:
                if p["category_id"] != g["category_id"]:
                    continue
                p_mask = pred_masks[p["id"]]
                inter = np.sum(g_mask & p_mask)
                union = np.sum(p_mask) + g["area"] - inter - np.sum(void & p_mask)
                if inter / union > 0.5:
                    totals[g["category_id"]]["tp"] += 1
                    totals[g["category_id"]]["iou"] += inter / union
                    matched_gt.add(g["id"])
                    matched_pred.add(p["id"])
        crowd = {}
        for g in gt_ann["segments_info"]:
            if g["iscrowd"]:
                crowd[g["category_id"]] = g["id"]
            elif g["id"] not in matched_gt:
                totals[g["category_id"]]["fn"] += 1
        for p in pred_ann["segments_info"]:
            if p["id"] in matched_pred:
                continue
            p_mask = pred_masks[p["id"]]
            ignored = np.sum(void & p_mask)
            if p["category_id"] in crowd:
                ignored += np.sum((gt_ids == crowd[p["category_id"]]) & p_mask)
            if ignored / np.sum(p_mask) <= 0.5:
                totals[p["category_id"]]["fp"] += 1
    isthing = {c["id"]: c["isthing"] for c in gt["categories"]}
    result = {}
    for suffix, keep in (
        ("", lambda c: True),
        ("_th", lambda c: isthing[c] == 1),
        ("_st", lambda c: isthing[c] == 0),
    ):
        pq, sq, rq = [], [], []
        for cat, t in totals.items():
            counted = t["tp"] + 0.5 * t["fp"] + 0.5 * t["fn"]
            if keep(cat) and counted > 0:
                pq.append(t["iou"] / counted)
                sq.append(t["iou"] / t["tp"] if t["tp"] else 0.0)
                rq.append(t["tp"] / counted)
        result.update(
            {
                "PQ" + suffix: np.mean(pq) * 100,
                "SQ" + suffix: np.mean(sq) * 100,
                "RQ" + suffix: np.mean(rq) * 100,
            }
        )
        result["N" + suffix] = len(pq)
    return result, totals


def test_ground_truth_against_itself(samples: tuple[dict, Path]) -> None:
    gt, gt_dir = samples
    metrics = evaluate_panoptic(gt, gt_dir, gt, gt_dir, show_progress=False)
    for key in ("PQ", "SQ", "RQ", "PQ_th", "SQ_th", "RQ_th", "PQ_st", "SQ_st", "RQ_st"):
        assert metrics[key] == pytest.approx(100.0), key
    categories = {s["category_id"] for a in gt["annotations"] for s in a["segments_info"] if not s["iscrowd"]}
    assert metrics["N"] == len(categories) == 8
    assert metrics["N_th"] + metrics["N_st"] == 8


def test_perturbed_prediction_matches_reference(samples: tuple[dict, Path], tmp_path: Path) -> None:
    gt, gt_dir = samples
    pred = _perturb(gt, gt_dir, tmp_path / "pred")
    metrics = evaluate_panoptic(gt, gt_dir, pred, tmp_path / "pred", show_progress=False)
    expected, totals = _reference_pq(gt, gt_dir, pred, tmp_path / "pred")
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, abs=1e-9), key
    # The perturbation is not trivial: every kind of count occurs and PQ is far from both ends.
    assert all(sum(t[kind] for t in totals.values()) >= 3 for kind in ("tp", "fp", "fn"))
    assert 20.0 < metrics["PQ"] < 80.0
    person = totals[1]
    assert metrics["PQ-person"] == pytest.approx(
        100 * person["iou"] / (person["tp"] + 0.5 * person["fp"] + 0.5 * person["fn"]), abs=1e-9
    )


def _write_ids(path: Path, ids: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(id_to_rgb(ids)).save(path)


def _tiny(tmp_path: Path, gt_segments: list[dict], gt_ids: np.ndarray) -> dict:
    _write_ids(tmp_path / "gt" / "1.png", gt_ids)
    return {
        "images": [{"id": 1, "file_name": "1.jpg", "height": gt_ids.shape[0], "width": gt_ids.shape[1]}],
        "annotations": [{"image_id": 1, "file_name": "1.png", "segments_info": gt_segments}],
        "categories": [
            {"id": 1, "name": "person", "isthing": 1},
            {"id": 2, "name": "car", "isthing": 1},
            {"id": 3, "name": "sky", "isthing": 0},
        ],
    }


def test_images_without_segments_score_zero(tmp_path: Path) -> None:
    gt = _tiny(tmp_path, [], np.zeros((4, 4), dtype=np.int64))
    pred = {"annotations": [{"image_id": 1, "file_name": "1.png", "segments_info": []}]}
    metrics = evaluate_panoptic(gt, tmp_path / "gt", pred, tmp_path / "gt", show_progress=False)
    assert {k: metrics[k] for k in ("PQ", "SQ", "RQ", "N", "PQ_th", "PQ_st", "N_st")} == {
        "PQ": 0.0,
        "SQ": 0.0,
        "RQ": 0.0,
        "N": 0,
        "PQ_th": 0.0,
        "PQ_st": 0.0,
        "N_st": 0,
    }


def test_things_without_stuff(tmp_path: Path) -> None:
    ids = np.zeros((4, 4), dtype=np.int64)
    ids[:2] = 5
    gt = _tiny(tmp_path, [{"id": 5, "category_id": 2, "iscrowd": 0, "area": 8}], ids)
    pred_ids = ids.copy()
    pred_ids[1, :] = 0  # 4 of 8 pixels predicted: IoU 0.5 is not a match
    _write_ids(tmp_path / "pred" / "1.png", pred_ids)
    pred = {
        "annotations": [{"image_id": 1, "file_name": "1.png", "segments_info": [{"id": 5, "category_id": 2}]}]
    }
    metrics = evaluate_panoptic(gt, tmp_path / "gt", pred, tmp_path / "pred", show_progress=False)
    assert (metrics["PQ_th"], metrics["N_th"], metrics["PQ_st"], metrics["N_st"]) == (0.0, 1, 0.0, 0)
    pred_ids[1, :2] = 5  # 6 of 8: IoU 0.75
    _write_ids(tmp_path / "pred" / "1.png", pred_ids)
    metrics = evaluate_panoptic(gt, tmp_path / "gt", pred, tmp_path / "pred", show_progress=False)
    assert (metrics["PQ"], metrics["SQ"], metrics["RQ"]) == pytest.approx((75.0, 75.0, 100.0))


def test_bad_predictions(samples: tuple[dict, Path], tmp_path: Path) -> None:
    gt, gt_dir = samples
    pred = copy.deepcopy(gt)
    pred["annotations"][0]["image_id"] = 12345
    with pytest.raises(ValueError, match="image ids not in the ground truth: \\[12345\\]"):
        evaluate_panoptic(gt, gt_dir, pred, gt_dir, show_progress=False)
    pred = {"annotations": gt["annotations"][:1]}
    with pytest.raises(ValueError, match="no prediction for ground-truth image ids \\[439180\\]"):
        evaluate_panoptic(gt, gt_dir, pred, gt_dir, show_progress=False)
    pred = copy.deepcopy(gt)
    pred["annotations"][0]["segments_info"].append({"id": 77, "category_id": 1})
    with pytest.raises(ValueError, match="\\[77\\] are in segments_info but not in the PNG"):
        evaluate_panoptic(gt, gt_dir, pred, gt_dir, show_progress=False)
    pred = copy.deepcopy(gt)
    dropped = pred["annotations"][0]["segments_info"].pop()
    with pytest.raises(ValueError, match=f"\\[{dropped['id']}\\] are in the PNG but not in segments_info"):
        evaluate_panoptic(gt, gt_dir, pred, gt_dir, show_progress=False)
    pred = copy.deepcopy(gt)
    pred["annotations"][1]["segments_info"][0]["category_id"] = 999
    with pytest.raises(ValueError, match="category ids \\[999\\] are not among the ground-truth categories"):
        evaluate_panoptic(gt, gt_dir, pred, gt_dir, show_progress=False)
    _write_ids(tmp_path / gt["annotations"][0]["file_name"], np.zeros((5, 5), dtype=np.int64))
    with pytest.raises(ValueError, match="but its ground truth is \\(427, 640\\)"):
        evaluate_panoptic(gt, gt_dir, {"annotations": gt["annotations"]}, tmp_path, show_progress=False)
