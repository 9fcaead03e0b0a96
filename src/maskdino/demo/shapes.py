"""`maskdino demo`: generate the synthetic shapes dataset, train the small `demo` preset on its panoptic
annotations from scratch, and evaluate that one model on the held-out split for every task: instance
(mask and box AP on the COCO instances json), panoptic (PQ on the panoptic json) and semantic (mIoU on the
label PNGs). It then draws held-out images (input | instances | panoptic | semantic), plots the training
curves and writes a summary, all on CPU and offline.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from maskdino.build import build_model
from maskdino.checkpoints.load import load_weights
from maskdino.cli.main import main as cli_main
from maskdino.config import Config
from maskdino.data.catalog import build_dataset
from maskdino.data.synthetic import write_synthetic_dataset
from maskdino.demo.pictures import picture_sheet
from maskdino.engine.evaluator import evaluate_model
from maskdino.engine.trainer import train
from maskdino.predictor import Predictor
from maskdino.presets import get_config
from maskdino.visualize import draw_result, plot_training_curves, read_metrics

logger = logging.getLogger("maskdino.demo")

SYNTH_TRAIN_IMAGES = 600
SYNTH_VAL_IMAGES = 50
EVAL_PERIOD = 250  # held-out PQ during training, for the curves
SHEET_IMAGES = 4  # held-out images in the README's picture
PREDICTED_IMAGES = 8  # held-out images written by `maskdino predict` (results files and overlays)
OVERLAY_THRESHOLD = 0.3  # instance scores (class x mask confidence) of the small model stay below ~0.6
TASKS = ("instances", "panoptic", "semantic")
HEADLINE = {  # the numbers the demo reports, by task
    "instance": ("segm/AP", "segm/AP50", "bbox/AP", "bbox/AP50"),
    "panoptic": ("PQ", "PQ_th", "PQ_st", "SQ", "RQ"),
    "semantic": ("sem_seg/mIoU", "sem_seg/pACC"),
}


def panoptic_data_overrides(data_root: Path) -> list[str]:
    """Config overrides that train on the generated panoptic annotations and evaluate on the held-out ones."""
    overrides = []
    for split, prefix in (("train", "train"), ("val", "val")):
        folder = data_root / split
        overrides += [
            f"data.{prefix}_json={folder / 'panoptic.json'}",
            f"data.{prefix}_images={folder / 'images'}",
            f"data.{prefix}_masks={folder / 'panoptic'}",
        ]
    return overrides


def run_synthetic_demo(
    output: str | Path,
    overrides: list[str] | None = None,
    device: str = "cpu",
    num_train: int = SYNTH_TRAIN_IMAGES,
    num_val: int = SYNTH_VAL_IMAGES,
    seed: int = 0,
) -> dict:
    """Generate the data, train, evaluate every task on the held-out split, draw and plot; returns the
    summary (also written to `output/summary.json`)."""
    output = Path(output)
    started = time.time()
    data_root = output / "data"
    write_synthetic_dataset(data_root, num_train, num_val, seed)
    logger.info("generated %d training and %d held-out images in %s", num_train, num_val, data_root)
    cfg = get_config(
        "demo",
        [
            *panoptic_data_overrides(data_root),
            "model.test.semantic_on=true",  # one panoptic model gives all three outputs
            f"solver.eval_period={EVAL_PERIOD}",
            f"output_dir={output}",
            *(overrides or []),
        ],
    )
    generated = time.time()
    result = train(cfg, device=device, overwrite=True)  # a new demo replaces the previous one
    trained = time.time()
    run_config = get_config(output / "config.yaml")  # with the classes the training read from the data
    model = load_weights(build_model(run_config), result.final_weights).to(device).eval()
    held_out = evaluate_every_task(model, run_config, data_root / "val", output / "eval_heldout")
    sheet = draw_held_out(run_config, result.final_weights, data_root / "val", output, device)
    predictions = output / "predictions" / "held_out"
    val_images = sorted((data_root / "val" / "images").glob("*.jpg"))[:PREDICTED_IMAGES]
    cli_main(
        [
            "predict",
            *map(str, val_images),
            "--weights",
            str(result.final_weights),
            "--output",
            str(predictions),
        ]
        + ["--overlay-threshold", str(OVERLAY_THRESHOLD), "--device", device]
    )
    curves = plot_training_curves(output / "metrics.jsonl", output / "training_curves.png")
    summary = {
        "minutes": round((time.time() - started) / 60, 1),
        "data_minutes": round((generated - started) / 60, 1),
        "train_minutes": round((trained - generated) / 60, 1),  # with the periodic held-out evaluations
        "threads": torch.get_num_threads(),
        "iterations": result.iterations,
        "seconds_per_iteration": _median_step_time(output / "metrics.jsonl"),
        "weights": str(result.final_weights),
        "held_out": held_out,
        "metrics": str(output / "eval_heldout"),
        "curves": str(curves),
        "pictures": str(sheet),
        "predictions": str(predictions),
    }
    (output / "summary.json").write_text(json.dumps(summary, indent=2))
    print(_report(summary, output, num_train, num_val))
    return summary


def evaluate_every_task(model: torch.nn.Module, cfg: Config, val: Path, output: Path) -> dict[str, float]:
    """The held-out metrics of one model on the three annotation formats of the split folder `val`
    (COCO instances json, COCO panoptic json + PNGs, semantic label PNGs); each evaluation's files go to
    `output/<task>`."""
    described = {
        "instance": {"val_json": val / "instances.json", "val_images": val / "images"},
        "panoptic": {"val_json": val / "panoptic.json", "val_images": val / "images", "val_masks": val / "panoptic"},
        "semantic": {"val_images": val / "images", "val_masks": val / "semantic", "classes_file": val.parent / "classes.txt"},
    }  # fmt: skip
    metrics: dict[str, float] = {}
    for task, files in described.items():
        task_cfg = copy.deepcopy(cfg)
        data = task_cfg.data
        data.val_json = data.val_images = data.val_masks = data.classes_file = None
        for key, path in files.items():
            setattr(data, key, str(path))
        dataset = build_dataset(task_cfg, "test")
        results = evaluate_model(model, task_cfg, dataset=dataset, output_dir=output / task)
        metrics.update({key: round(float(results[key]), 1) for key in HEADLINE[task] if key in results})
    return metrics


def draw_held_out(cfg: Config, weights: Path, val: Path, output: Path, device: str) -> Path:
    """`output/held_out.jpg`: one row per held-out image: the input, then its instances (score >=
    OVERLAY_THRESHOLD), panoptic and semantic results."""
    predictor = Predictor(cfg, weights, device=device)
    rows = []
    for path in sorted((val / "images").glob("*.jpg"))[:SHEET_IMAGES]:
        image = np.asarray(Image.open(path).convert("RGB"))
        result = predictor(image)
        drawn = [
            draw_result(image, result, predictor.class_names, OVERLAY_THRESHOLD, kind=task) for task in TASKS
        ]
        rows.append([image, *drawn])
    return picture_sheet(rows, output / "held_out.jpg")


def _median_step_time(metrics_jsonl: Path) -> float:
    """Median seconds of one training iteration (as logged: window means of `step_time`)."""
    times = [row["step_time"] for row in read_metrics(metrics_jsonl) if "step_time" in row]
    return round(float(np.median(times)), 2) if times else float("nan")


def _report(summary: dict, output: Path, num_train: int, num_val: int) -> str:
    held = summary["held_out"]

    def shown(*keys: str) -> str:
        return ", ".join(f"{key} {held[key]:.1f}" for key in keys if key in held)

    return "\n".join(
        [
            "",
            f"maskdino demo finished in {summary['minutes']} min: {num_train} + {num_val} images generated in "
            f"{summary['data_minutes']} min, {summary['iterations']} training iterations in "
            f"{summary['train_minutes']} min (median step {summary['seconds_per_iteration']} s, "
            f"{summary['threads']} CPU threads).",
            f"held-out ({num_val} images it never saw), one model for every task:",
            f"  instance:  {shown(*HEADLINE['instance'])}",
            f"  panoptic:  {shown(*HEADLINE['panoptic'])}",
            f"  semantic:  {shown(*HEADLINE['semantic'])}",
            f"  pictures:  {summary['pictures']} (input | instances >= {OVERLAY_THRESHOLD} | panoptic | semantic)",
            f"  curves:    {summary['curves']}",
            f"  metrics:   {summary['metrics']}/<task>/metrics.json, {output / 'metrics.jsonl'}",
            f"  results:   {summary['predictions']} (results.json, panoptic and semantic PNGs, overlays)",
            f"  weights:   {summary['weights']} (maskdino predict IMAGE --weights ...)",
            f"  data:      {output / 'data'} (COCO instances + panoptic json, panoptic and semantic PNGs)",
        ]
    )
