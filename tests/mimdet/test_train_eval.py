"""MIMDet through the shared path: `maskdino.train(cfg)` with the multi-scale + crop pipeline, the
detector's own optimizer groups, periodic evaluation, then `maskdino eval` on the saved weights."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from maskdino import train
from maskdino.cli.main import main
from maskdino.cli.train import build_config
from tests.mimdet.test_detector import LOSSES
from tests.mimdet.tiny import TINY, tiny_config

# images of 128-160 px (half of them cropped to 96-128 px first), 3 iterations of 2 images
SMALL_RUN = (
    "input.min_size_train=128,160", "input.max_size_train=256", "input.crop_pre_sizes=120,140",
    "input.crop_size_range=96,128", "input.min_size_test=160", "input.max_size_test=256",
    "data.num_workers=0", "solver.ims_per_batch=2", "solver.max_iter=3", "solver.warmup_iters=1",
    "solver.log_period=1", "solver.checkpoint_period=0", "solver.eval_period=3", "solver.amp=false",
    "model.mask_rcnn.score_thresh=0",  # keep the untrained detector's low scores: results to encode and score
)  # fmt: skip


def test_train_evaluate_and_eval_cli(data_dir: Path, tmp_path: Path):
    coco = data_dir / "mimdet" / "coco4"
    files = (f"{coco / 'instances.json'}", f"{coco}")
    cfg = tiny_config(
        *SMALL_RUN,
        f"data.train_json={files[0]}", f"data.train_images={files[1]}",
        f"data.val_json={files[0]}", f"data.val_images={files[1]}",
        f"output_dir={tmp_path / 'run'}",
    )  # fmt: skip
    assert cfg.input.dataset_mapper == "multiscale_crop"
    torch.manual_seed(0)
    result = train(cfg, progress=False)
    assert result.iterations == 3
    # the last logged step (iteration 3, past the 1-iteration warm-up): the "others" group at lr 3.2e-4 x 2
    assert set(result.last_metrics) >= LOSSES and result.last_metrics["lr"] == pytest.approx(6.4e-4)
    evaluated = result.eval_results  # the trainer's evaluation after the last iteration
    assert {"bbox/AP", "bbox/AP50", "segm/AP", "segm/AR100"} <= set(evaluated)
    assert all(0.0 <= evaluated[k] <= 100.0 for k in ("bbox/AP", "segm/AP"))

    out = tmp_path / "eval"
    rc = main(
        ["eval", "--weights", str(result.final_weights), "--val-json", files[0], "--val-images", files[1],
         "--output", str(out), "--device", "cpu"]
    )  # fmt: skip
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics.keys() == evaluated.keys()
    detections = json.loads((out / "coco_instances_results.json").read_text())
    assert detections and {"image_id", "category_id", "bbox", "score", "segmentation"} <= set(detections[0])

    predicted = tmp_path / "predict"
    image = sorted(coco.glob("*.jpg"))[0]
    rc = main(["predict", str(image), "--weights", str(result.final_weights), "--output", str(predicted)])
    assert rc == 0 and (predicted / "overlays" / f"{image.stem}.png").is_file()
    assert {r["image_id"] for r in json.loads((predicted / "results.json").read_text())} == {int(image.stem)}


def test_train_cli_takes_a_mimdet_preset_by_name_or_official_path(tmp_path: Path):
    for spec in (
        "mimdet_vit_b_sr05",
        "configs/mimdet/mimdet_vit_base_mask_rcnn_fpn_sr_0p5_800_1333_4xdec_coco_3x.py",
    ):
        args = argparse.Namespace(
            config=spec, output=str(tmp_path), resume=False, data_root=None, train_json="train.json",
            train_images="images", val_json=None, val_images=None, backbone_weights=None,
            overrides=[*TINY, "solver.max_iter=7"],
        )  # fmt: skip
        cfg = build_config(args)
        assert (cfg.name, cfg.model.architecture, cfg.model.backbone.name) == (
            "mimdet_vit_b_sr05",
            "mimdet_mask_rcnn",
            "mimdet",
        )
        assert (cfg.data.train_json, cfg.solver.max_iter, cfg.model.backbone.mimdet.embed_dim) == (
            "train.json",
            7,
            64,
        )
