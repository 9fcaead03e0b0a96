"""Panoptic quality (PQ, SQ, RQ; all / things / stuff) computed as the COCO panoptic API does.

Per image, a ground-truth and a predicted segment of the same category match when IoU > 0.5, where
the union leaves out the predicted pixels that fall on void (id 0). Crowd ground truth is never matched
and never a false negative; an unmatched prediction is a false positive unless more than half of it lies
on void or on the crowd region of its category. Per-category PQ = sum IoU / (TP + FP/2 + FN/2), averaged
over categories with any TP, FP or FN. Unlike the API, a split with no such category (e.g. no stuff at
all) scores 0 instead of dividing by zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from maskdino.evaluation.results import read_json, rgb_to_id

VOID = 0
OFFSET = 256**3  # gt_id * OFFSET + pred_id packs a (gt, pred) segment pair into one integer


@dataclass
class PQStats:
    """Per-category sums over images: matched IoU, true / false positives, false negatives ([K] each)."""

    iou: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray

    @classmethod
    def zeros(cls, num_categories: int) -> PQStats:
        counts = [np.zeros(num_categories, dtype=np.int64) for _ in range(3)]
        return cls(np.zeros(num_categories, dtype=np.float64), *counts)

    def __iadd__(self, other: PQStats) -> PQStats:
        self.iou += other.iou
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        return self


def _lookup(ids: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index in `ids` (unique, any order) of each query, and whether the query is there at all."""
    if len(ids) == 0:
        return np.zeros(len(queries), dtype=np.int64), np.zeros(len(queries), dtype=bool)
    order = np.argsort(ids)
    index = order[np.searchsorted(ids[order], queries).clip(max=len(ids) - 1)]
    return index, ids[index] == queries


def pq_image_stats(
    gt_ids: np.ndarray,
    gt_segments: Sequence[Mapping],
    pred_ids: np.ndarray,
    pred_segments: Sequence[Mapping],
    category_index: Mapping[int, int],
) -> PQStats:
    """PQ statistics of one image.

    `gt_ids` / `pred_ids` are [H, W] segment id maps (0 = void), the segment lists hold {"id",
    "category_id", and for ground truth "iscrowd" (default 0) and "area" (default: pixel count)};
    `category_index` maps dataset category id -> row of the returned stats. Inputs are assumed
    consistent (`evaluate_panoptic` checks files before calling this).
    """
    stats = PQStats.zeros(len(category_index))
    # Every (gt segment, predicted segment) pair that overlaps, with its intersection in pixels.
    pairs, inter = np.unique(
        gt_ids.astype(np.uint64) * OFFSET + pred_ids.astype(np.uint64), return_counts=True
    )
    pair_gt, pair_pred = (pairs // OFFSET).astype(np.int64), (pairs % OFFSET).astype(np.int64)

    gt_seg_ids = np.array([s["id"] for s in gt_segments], dtype=np.int64)
    gt_cat = np.array([category_index[s["category_id"]] for s in gt_segments], dtype=np.int64)
    gt_crowd = np.array([s.get("iscrowd", 0) == 1 for s in gt_segments], dtype=bool)
    pred_seg_ids = np.array([s["id"] for s in pred_segments], dtype=np.int64)
    pred_cat = np.array([category_index[s["category_id"]] for s in pred_segments], dtype=np.int64)
    gi, g_found = _lookup(gt_seg_ids, pair_gt)
    pi, p_found = _lookup(pred_seg_ids, pair_pred)

    # The API takes ground-truth areas from the json and predicted areas from the PNG.
    gt_pixels = np.bincount(gi[g_found], weights=inter[g_found], minlength=len(gt_seg_ids))
    gt_area = np.array([s.get("area", gt_pixels[k]) for k, s in enumerate(gt_segments)], dtype=np.float64)
    pred_area = np.bincount(pi[p_found], weights=inter[p_found], minlength=len(pred_seg_ids))
    on_void = p_found & (pair_gt == VOID)
    void_inter = np.bincount(pi[on_void], weights=inter[on_void], minlength=len(pred_seg_ids))

    # From here on only pairs of two listed segments: g, p index the segment lists.
    both = g_found & p_found
    g, p, inter = gi[both], pi[both], inter[both]
    same_cat = gt_cat[g] == pred_cat[p]
    candidate = same_cat & ~gt_crowd[g]
    union = pred_area[p] + gt_area[g] - inter - void_inter[p]
    iou = np.divide(inter, union, out=np.zeros(len(inter)), where=candidate)
    match = candidate & (iou > 0.5)  # IoU > 0.5 makes every match one-to-one
    np.add.at(stats.tp, gt_cat[g[match]], 1)
    np.add.at(stats.iou, gt_cat[g[match]], iou[match])
    gt_matched = np.zeros(len(gt_seg_ids), dtype=bool)
    gt_matched[g[match]] = True
    pred_matched = np.zeros(len(pred_seg_ids), dtype=bool)
    pred_matched[p[match]] = True
    np.add.at(stats.fn, gt_cat[~gt_matched & ~gt_crowd], 1)

    # The API keeps one crowd region per category: the last crowd segment listed for it.
    crowd_of_category = np.full(len(category_index), -1, dtype=np.int64)
    for k in np.flatnonzero(gt_crowd):
        crowd_of_category[gt_cat[k]] = k
    on_crowd = same_cat & (g == crowd_of_category[gt_cat[g]])
    crowd_inter = np.bincount(p[on_crowd], weights=inter[on_crowd], minlength=len(pred_seg_ids))
    ignored = (void_inter + crowd_inter) / np.maximum(pred_area, 1) > 0.5
    np.add.at(stats.fp, pred_cat[~pred_matched & ~ignored], 1)
    return stats


def pq_summary(stats: PQStats, categories: Sequence[Mapping]) -> dict[str, float]:
    """PQ / SQ / RQ in percent for all, things (`_th`) and stuff (`_st`) categories, with the count of
    categories averaged (`N`, `N_th`, `N_st`) and per-category `PQ-`, `SQ-`, `RQ-{name}` for every
    category that has a TP, FP or FN. `categories` are in the row order of `stats`."""
    counted = stats.tp + 0.5 * stats.fp + 0.5 * stats.fn
    valid = counted > 0
    pq = np.divide(stats.iou, counted, out=np.zeros_like(stats.iou), where=valid)
    sq = np.divide(stats.iou, stats.tp, out=np.zeros_like(stats.iou), where=stats.tp > 0)
    rq = np.divide(stats.tp, counted, out=np.zeros_like(stats.iou), where=valid)
    is_thing = np.array([cat["isthing"] == 1 for cat in categories], dtype=bool)
    metrics: dict[str, float] = {}
    for suffix, subset in (("", np.ones_like(is_thing)), ("_th", is_thing), ("_st", ~is_thing)):
        chosen = valid & subset
        n = int(chosen.sum())
        for name, values in (("PQ", pq), ("SQ", sq), ("RQ", rq)):
            metrics[name + suffix] = float(values[chosen].mean()) * 100.0 if n else 0.0
        metrics["N" + suffix] = n
    for k in np.flatnonzero(valid):
        name = categories[k]["name"]
        metrics[f"PQ-{name}"] = float(pq[k]) * 100.0
        metrics[f"SQ-{name}"] = float(sq[k]) * 100.0
        metrics[f"RQ-{name}"] = float(rq[k]) * 100.0
    return metrics


def _read_ids(path: Path, height_width: tuple[int, int] | None) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"panoptic PNG not found: {path}")
    rgb = np.array(Image.open(path))
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(
            f"{path} must be an RGB PNG of segment ids (COCO panoptic format), got shape {rgb.shape}"
        )
    if height_width is not None and rgb.shape[:2] != height_width:
        raise ValueError(f"{path} is {rgb.shape[:2]} (H, W) but its ground truth is {height_width}")
    return rgb_to_id(rgb)


def _check_prediction(
    ids: np.ndarray, segments: Sequence[Mapping], where: str, category_index: Mapping
) -> None:
    listed = [s["id"] for s in segments]
    if len(set(listed)) != len(listed):
        raise ValueError(f"{where}: segments_info lists an id twice")
    in_png = set(np.unique(ids).tolist()) - {VOID}
    if in_png - set(listed):
        raise ValueError(
            f"{where}: segment ids {sorted(in_png - set(listed))} are in the PNG but not in segments_info"
        )
    if set(listed) - in_png:
        raise ValueError(
            f"{where}: segment ids {sorted(set(listed) - in_png)} are in segments_info but not in the PNG"
        )
    unknown = {s["category_id"] for s in segments} - set(category_index)
    if unknown:
        raise ValueError(f"{where}: category ids {sorted(unknown)} are not among the ground-truth categories")


def _annotations_by_image(data: Mapping, name: str) -> dict[int, Mapping]:
    if not isinstance(data, Mapping) or "annotations" not in data:
        raise ValueError(f"{name} is not a COCO panoptic file: it needs an 'annotations' list")
    by_image = {}
    for ann in data["annotations"]:
        if ann["image_id"] in by_image:
            raise ValueError(f"{name} has two annotations for image id {ann['image_id']}")
        by_image[ann["image_id"]] = ann
    return by_image


def evaluate_panoptic(
    gt_json: str | Path | Mapping,
    gt_png_dir: str | Path,
    pred_json: str | Path | Mapping,
    pred_png_dir: str | Path,
    show_progress: bool = True,
) -> dict[str, float]:
    """PQ of predictions in COCO panoptic format (json + RGB id PNGs) against the ground truth, in percent.

    Keys: `PQ`, `SQ`, `RQ`, the same with `_th` (things) and `_st` (stuff), `N*` (categories averaged)
    and per-category values (see `pq_summary`). Every ground-truth image needs a prediction; predictions
    for other images, unknown categories and json/PNG disagreements raise ValueError.
    """
    gt_data, gt_name = read_json(gt_json, "panoptic ground-truth")
    pred_data, pred_name = read_json(pred_json, "panoptic prediction")
    gt_by_image = _annotations_by_image(gt_data, gt_name)
    pred_by_image = _annotations_by_image(pred_data, pred_name)
    categories = gt_data.get("categories")
    if not categories or any("isthing" not in cat for cat in categories):
        raise ValueError(f"{gt_name} needs 'categories' with an 'isthing' flag each (COCO panoptic format)")
    category_index = {cat["id"]: k for k, cat in enumerate(categories)}
    extra = set(pred_by_image) - set(gt_by_image)
    if extra:
        raise ValueError(
            f"{pred_name} has predictions for image ids not in the ground truth: {sorted(extra)[:5]}"
        )
    missing = set(gt_by_image) - set(pred_by_image)
    if missing:
        raise ValueError(f"{pred_name} has no prediction for ground-truth image ids {sorted(missing)[:5]}")

    stats = PQStats.zeros(len(categories))
    for image_id, gt_ann in tqdm(gt_by_image.items(), desc="PQ", disable=not show_progress):
        pred_ann = pred_by_image[image_id]
        unknown = {s["category_id"] for s in gt_ann["segments_info"]} - set(category_index)
        if unknown:
            raise ValueError(
                f"{gt_name}: image {image_id} uses category ids {sorted(unknown)} missing from its categories"
            )
        gt_ids = _read_ids(Path(gt_png_dir) / gt_ann["file_name"], None)
        pred_path = Path(pred_png_dir) / pred_ann["file_name"]
        pred_ids = _read_ids(pred_path, gt_ids.shape)
        _check_prediction(
            pred_ids,
            pred_ann["segments_info"],
            f"{pred_name}, image {image_id} ({pred_path})",
            category_index,
        )
        stats += pq_image_stats(
            gt_ids, gt_ann["segments_info"], pred_ids, pred_ann["segments_info"], category_index
        )
    return pq_summary(stats, categories)
