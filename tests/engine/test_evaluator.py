"""The model-level evaluator: ground truth fed back as predictions scores 100, a real model run writes
the metrics and results files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from pycocotools import mask as mask_util

from maskdino import build_model, get_config
from maskdino.data.coco import load_coco_instances
from maskdino.data.coco_panoptic import load_coco_panoptic, read_coco_panoptic
from maskdino.data.semantic import load_ade20k, read_sem_seg
from maskdino.engine.evaluator import _Collector, _metrics, evaluate_model

DATA = Path(__file__).resolve().parents[1] / "data" / "pipeline"
ASSETS = Path(__file__).resolve().parents[2] / "src" / "maskdino" / "assets" / "coco_demo"


def _instances_from_ground_truth(dataset, record) -> dict:
    masks, labels, boxes = [], [], []
    h, w = record["height"], record["width"]
    for ann in record["annotations"]:
        if ann["iscrowd"]:
            continue
        seg = ann["segmentation"]
        rles = mask_util.frPyObjects(seg, h, w) if isinstance(seg, list) else seg
        masks.append(mask_util.decode(mask_util.merge(rles) if isinstance(rles, list) else rles).astype(bool))
        labels.append(ann["label"])
        boxes.append(ann["bbox"])
    return {
        "boxes": torch.tensor(np.array(boxes), dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "scores": torch.ones(len(labels)),
        "masks": torch.from_numpy(np.stack(masks)) if masks else torch.zeros((0, h, w), dtype=torch.bool),
    }


def test_ground_truth_as_predictions_scores_100():
    dataset = load_coco_instances(DATA / "coco" / "instances.json", DATA / "coco")
    cfg = get_config("r50_ins_4s")
    collector = _Collector(dataset.info, cfg, {r["image_id"]: r for r in dataset.records})
    for record in dataset.records:
        collector.add({"image_id": record["image_id"]}, _instances_from_ground_truth(dataset, record))
    metrics = _metrics(collector, dataset, None)
    assert metrics["bbox/AP"] > 99.0 and metrics["segm/AP"] > 99.0


def test_panoptic_and_semantic_ground_truth_score_100():
    root = DATA / "coco_panoptic"
    panoptic = load_coco_panoptic(root / "panoptic_val2017.json", root / "images", root / "panoptic_val2017")
    cfg = get_config("r50_pan")
    collector = _Collector(panoptic.info, cfg, {r["image_id"]: r for r in panoptic.records})
    for record in panoptic.records:
        ids, segments = read_coco_panoptic(record)
        info = [
            {"id": s["id"], "category_id": s["label"], "isthing": panoptic.info.isthing[s["label"]]}
            for s in segments
            if not s.get("iscrowd")
        ]
        kept = np.isin(ids, [s["id"] for s in info])
        result = {
            "panoptic": {
                "segments": torch.from_numpy(np.where(kept, ids, 0).astype(np.int32)),
                "segments_info": info,
            }
        }
        collector.add({"image_id": record["image_id"]}, result)
    assert _metrics(collector, panoptic, None)["PQ"] == 100.0

    ade = load_ade20k(DATA / "ade20k", "validation")
    cfg = get_config("r50_ade_sem")
    collector = _Collector(ade.info, cfg, {r["image_id"]: r for r in ade.records})
    for record in ade.records:
        gt = read_sem_seg(record, ade.info.num_classes, cfg.input.ignore_value)
        scores = torch.zeros(ade.info.num_classes, *gt.shape)
        scores.scatter_(0, torch.from_numpy(np.where(gt == 255, 0, gt)).long()[None], 1.0)
        collector.add({"image_id": record["image_id"]}, {"semantic": scores})
    assert _metrics(collector, ade, None)["sem_seg/mIoU"] == 100.0


def test_evaluate_model_writes_metrics_and_results(tmp_path):
    cfg = get_config(
        "demo",
        [f"data.val_json={ASSETS / 'instances_val.json'}", f"data.val_images={ASSETS}", "data.num_workers=0"],
    )
    dataset = load_coco_instances(cfg.data.val_json, cfg.data.val_images)
    dataset.records = dataset.records[:2]
    torch.manual_seed(0)
    metrics = evaluate_model(build_model(cfg), cfg, dataset, output_dir=tmp_path, show_progress=False)
    assert {f"{t}/{k}" for t in ("bbox", "segm") for k in ("AP", "AP50", "APl")} <= set(metrics)
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    results = json.loads((tmp_path / "coco_instances_results.json").read_text())
    assert len(results) == 200 and {r["image_id"] for r in results} == {
        r["image_id"] for r in dataset.records
    }
    assert all(r["category_id"] in dataset.info.dataset_ids for r in results)


def test_an_image_missing_on_disk_does_not_count_its_ground_truth(tmp_path):
    """Perfect predictions for the 5 images that exist score 100, as on the full set of 6 (the missing
    image's ground truth counted as missed detections gave 91.3 segm AP)."""
    cfg = get_config("r50_ins_4s")
    full = load_coco_instances(DATA / "coco" / "instances.json", DATA / "coco")
    for image in (DATA / "coco").glob("*.jpg"):
        if image.name != "000000117645.jpg":  # 7 annotations that the predictions cannot match
            (tmp_path / image.name).symlink_to(image)
    partial = load_coco_instances(DATA / "coco" / "instances.json", tmp_path)
    assert len(partial) == 5 and partial.bad_input["missing_file"] == 1
    scores = {}
    for name, dataset in (("full", full), ("partial", partial)):
        collector = _Collector(dataset.info, cfg, {r["image_id"]: r for r in dataset.records})
        for record in dataset.records:
            collector.add({"image_id": record["image_id"]}, _instances_from_ground_truth(dataset, record))
        scores[name] = _metrics(collector, dataset, None)
    for key in ("bbox/AP", "segm/AP"):
        assert scores["full"][key] == scores["partial"][key] == 100.0
