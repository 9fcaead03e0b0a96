"""The quick start: generate the synthetic shapes dataset, train the small `demo` preset on it from scratch,
evaluate on the held-out split and draw its predictions, all on CPU and offline.

`run_demo(..., coco=True)` runs the older demo on the bundled COCO images instead: the same pipeline on
real photos, which eight CPU minutes cannot teach.
"""

from __future__ import annotations

import json
import logging
import time
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from maskdino.build import build_model
from maskdino.checkpoints.load import load_weights
from maskdino.cli.main import main as cli_main
from maskdino.data.coco import load_coco_instances
from maskdino.data.synthetic import write_synthetic_dataset
from maskdino.engine.evaluator import evaluate_model
from maskdino.engine.trainer import train
from maskdino.presets import get_config
from maskdino.visualize import plot_training_curves, read_metrics

logger = logging.getLogger("maskdino.demo")

SYNTH_TRAIN_IMAGES = 600
SYNTH_VAL_IMAGES = 50
OVERLAY_IMAGES = 8  # held-out images drawn; the first 4 also go into one contact sheet
OVERLAY_THRESHOLD = 0.5
EVAL_PERIOD = 250  # held-out AP during training, for the curves
METRIC_KEYS = ("bbox/AP", "bbox/AP50", "segm/AP", "segm/AP50")

COCO_NOTE = """\
What this run can and cannot show: the `demo` preset is Mask DINO at a fraction of the real size,
trained from random weights for a few CPU minutes on 24 COCO photos. Its losses fall, but it cannot
generalise to COCO: AP on the 8 held-out images stays near zero. The overlays show each image's 5
best-scoring instances above 0.05, however low their scores. For real results, predict with the official
weights (`maskdino predict ... --weights maskdino-r50-coco-instance` downloads them once; `maskdino zoo`
lists the others) or train the real recipe on a GPU (see docs/training.md)."""


def run_demo(
    output: str | Path, overrides: list[str] | None = None, device: str = "cpu", coco: bool = False
) -> dict:
    """Train, evaluate and predict into `output` (synthetic shapes, or the bundled COCO images with `coco`)."""
    if coco:
        return run_coco_demo(output, overrides, device)
    return run_synthetic_demo(output, overrides, device)


def synthetic_data_overrides(data_root: Path) -> list[str]:
    """Config overrides that point training at the generated train split and evaluation at the held-out one."""
    train, val = data_root / "train", data_root / "val"
    return [
        f"data.train_json={train / 'instances.json'}",
        f"data.train_images={train / 'images'}",
        f"data.val_json={val / 'instances.json'}",
        f"data.val_images={val / 'images'}",
    ]


def run_synthetic_demo(
    output: str | Path,
    overrides: list[str] | None = None,
    device: str = "cpu",
    num_train: int = SYNTH_TRAIN_IMAGES,
    num_val: int = SYNTH_VAL_IMAGES,
    seed: int = 0,
) -> dict:
    """Generate the data, train, evaluate on the held-out split, draw and plot; returns the summary."""
    output = Path(output)
    started = time.time()
    data_root = output / "data"
    write_synthetic_dataset(data_root, num_train, num_val, seed)
    logger.info("generated %d training and %d held-out images in %s", num_train, num_val, data_root)
    cfg = get_config(
        "demo",
        [
            *synthetic_data_overrides(data_root),
            f"solver.eval_period={EVAL_PERIOD}",
            f"output_dir={output}",
            *(overrides or []),
        ],
    )
    generated = time.time()
    result = train(cfg, device=device, overwrite=True)  # a new demo replaces the previous one
    train_minutes = (time.time() - generated) / 60
    held_out = result.eval_results  # the trainer evaluates the held-out split at its last iteration
    if not held_out:  # evaluation switched off with solver.eval_period=0
        model = load_weights(build_model(cfg), result.final_weights).to(device)
        held_out = evaluate_model(model, cfg, output_dir=output / f"eval_{result.iterations:07d}")
    val_images = sorted((data_root / "val" / "images").glob("*.jpg"))[:OVERLAY_IMAGES]
    predictions = output / "predictions" / "held_out"
    cli_main(
        [
            "predict",
            *map(str, val_images),
            "--weights",
            str(result.final_weights),
            "--output",
            str(predictions),
        ]
        + ["--dataset-json", cfg.data.val_json, "--overlay-threshold", str(OVERLAY_THRESHOLD)]
        + ["--device", device]
    )
    sheet = contact_sheet(
        sorted((predictions / "overlays").glob("*.png"))[:4], output / "held_out_overlays.jpg"
    )
    curves = plot_training_curves(output / "metrics.jsonl", output / "training_curves.png")
    summary = {
        "minutes": round((time.time() - started) / 60, 1),
        "data_minutes": round((generated - started) / 60, 1),
        "train_minutes": round(train_minutes, 1),  # with the periodic held-out evaluations
        "iterations": result.iterations,
        "seconds_per_iteration": _median_step_time(output / "metrics.jsonl"),
        "weights": str(result.final_weights),
        "held_out": {k: round(held_out[k], 1) for k in METRIC_KEYS},
        "metrics": str(output / f"eval_{result.iterations:07d}" / "metrics.json"),
        "curves": str(curves),
        "overlays": str(predictions / "overlays"),
        "contact_sheet": str(sheet),
    }
    (output / "summary.json").write_text(json.dumps(summary, indent=2))
    print(_synthetic_report(summary, output, num_train, num_val))
    return summary


def _median_step_time(metrics_jsonl: Path) -> float:
    """Median seconds of one training iteration (as logged: window means of `step_time`)."""
    times = [row["step_time"] for row in read_metrics(metrics_jsonl) if "step_time" in row]
    return round(float(np.median(times)), 2) if times else float("nan")


def contact_sheet(pictures: list[Path], out_jpg: Path, quality: int = 90) -> Path:
    """The pictures side by side (all at the first one's height) as one JPEG."""
    images = [Image.open(p).convert("RGB") for p in pictures]
    height = images[0].height
    images = [im.resize((round(im.width * height / im.height), height)) for im in images]
    gap = 4
    sheet = Image.new(
        "RGB", (sum(im.width for im in images) + gap * (len(images) - 1), height), (255, 255, 255)
    )
    x = 0
    for im in images:
        sheet.paste(im, (x, 0))
        x += im.width + gap
    sheet.save(out_jpg, quality=quality)
    return out_jpg


def _synthetic_report(summary: dict, output: Path, num_train: int, num_val: int) -> str:
    held = summary["held_out"]
    return "\n".join(
        [
            "",
            f"maskdino demo finished in {summary['minutes']} min: {num_train} + {num_val} images generated in "
            f"{summary['data_minutes']} min, {summary['iterations']} training iterations in "
            f"{summary['train_minutes']} min (median step {summary['seconds_per_iteration']} s, "
            f"{torch.get_num_threads()} CPU threads).",
            f"  held-out ({num_val} images it never saw): mask AP50 {held['segm/AP50']:.1f}, "
            f"mask AP {held['segm/AP']:.1f}, box AP50 {held['bbox/AP50']:.1f}, box AP {held['bbox/AP']:.1f}",
            f"  pictures:  {summary['overlays']}/*.png (instances scoring >= {OVERLAY_THRESHOLD}), "
            f"{summary['contact_sheet']}",
            f"  curves:    {summary['curves']}",
            f"  metrics:   {summary['metrics']}, {output / 'metrics.jsonl'}",
            f"  weights:   {summary['weights']}",
            f"  data:      {output / 'data'} (COCO instances + panoptic json, panoptic and semantic PNGs)",
        ]
    )


def coco_demo_assets() -> Path:
    return Path(str(resources.files("maskdino") / "assets" / "coco_demo"))


def run_coco_demo(output: str | Path, overrides: list[str] | None = None, device: str = "cpu") -> dict:
    """The demo preset on the 24 bundled COCO images, evaluated on them and on 8 held-out ones."""
    output = Path(output)
    assets = coco_demo_assets()
    started = time.time()
    cfg = get_config(
        "demo",
        [
            f"data.train_json={assets / 'instances_train.json'}",
            f"data.train_images={assets}",
            f"data.val_json={assets / 'instances_val.json'}",
            f"data.val_images={assets}",
            # the COCO demo's own schedule: 448 px photos, 600 iterations
            "input.image_size=448",
            "input.min_size_test=448",
            "input.max_size_test=704",
            "solver.max_iter=600",
            "solver.steps=[500]",
            f"output_dir={output}",
            *(overrides or []),
        ],
    )
    result = train(cfg, device=device, overwrite=True)  # a new demo replaces the previous one in `output`
    model = load_weights(build_model(cfg), result.final_weights).to(device)
    held_out = evaluate_model(model, cfg, output_dir=output / "eval_heldout")
    seen = load_coco_instances(cfg.data.train_json, cfg.data.train_images)
    training_set = evaluate_model(model, cfg, dataset=seen, output_dir=output / "eval_train")
    predictions = output / "predictions"
    for split, dataset_json, count in (
        ("held_out", cfg.data.val_json, None),
        ("seen", cfg.data.train_json, 4),
    ):
        listed = json.loads(Path(dataset_json).read_text())["images"][:count]
        images = [str(assets / image["file_name"]) for image in listed]
        cli_main(
            ["predict", *images, "--weights", str(result.final_weights), "--output", str(predictions / split)]
            + ["--dataset-json", dataset_json, "--overlay-threshold", "0.05", "--top-k", "5"]
            + ["--device", device]
        )
    curves = plot_training_curves(output / "metrics.jsonl", output / "training_curves.png")
    summary = {
        "minutes": round((time.time() - started) / 60, 1),
        "iterations": result.iterations,
        "weights": str(result.final_weights),
        "held_out": {k: held_out[k] for k in ("bbox/AP", "segm/AP", "segm/AP50")},
        "training_images": {k: training_set[k] for k in ("bbox/AP", "segm/AP", "segm/AP50")},
        "curves": str(curves),
        "overlays": [str(predictions / split / "overlays") for split in ("held_out", "seen")],
    }
    (output / "summary.json").write_text(json.dumps(summary, indent=2))
    print(_coco_report(summary, output))
    return summary


def _coco_report(summary: dict, output: Path) -> str:
    seen, held = summary["training_images"], summary["held_out"]
    return "\n".join(
        [
            "",
            f"maskdino demo --coco finished in {summary['minutes']} min ({summary['iterations']} iterations, "
            f"{torch.get_num_threads()} CPU threads).",
            f"  pictures:  {summary['overlays'][0]}/*.png (held out), {summary['overlays'][1]}/*.png (seen)",
            f"  curves:    {summary['curves']}",
            f"  metrics:   {output / 'eval_train' / 'metrics.json'}, {output / 'eval_heldout' / 'metrics.json'}",
            f"  weights:   {summary['weights']}",
            f"  mask AP on the 24 training images: {seen['segm/AP']:.1f} (AP50 {seen['segm/AP50']:.1f}); "
            f"on the 8 held-out images: {held['segm/AP']:.1f} (AP50 {held['segm/AP50']:.1f})",
            "",
            COCO_NOTE,
        ]
    )
