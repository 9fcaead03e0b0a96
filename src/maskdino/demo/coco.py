"""`maskdino demo --coco`: the `demo` preset on the 24 bundled COCO photos, evaluated on them and on 8
held-out ones. The pipeline runs on real photos; a few CPU minutes from random weights cannot make it
generalise to COCO (`COCO_NOTE`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from maskdino.assets import demo_assets
from maskdino.build import build_model
from maskdino.checkpoints.load import load_weights
from maskdino.cli.main import main as cli_main
from maskdino.data.coco import load_coco_instances
from maskdino.engine.evaluator import evaluate_model
from maskdino.engine.trainer import train
from maskdino.presets import get_config
from maskdino.visualize import plot_training_curves

COCO_NOTE = """\
What this run can and cannot show: the `demo` preset is Mask DINO at a fraction of the real size,
trained from random weights for a few CPU minutes on 24 COCO photos. Its losses fall, but it cannot
generalise to COCO: AP on the 8 held-out images stays near zero. The overlays show each image's 5
best-scoring instances above 0.05, however low their scores. For real results, predict with the official
weights (`maskdino predict ... --weights maskdino-r50-coco-instance` downloads them once; `maskdino zoo`
lists the others) or train the real recipe on a GPU (see docs/training.md). `maskdino demo` without
--coco shows the same model learning synthetic shapes it can master in minutes."""


def run_coco_demo(output: str | Path, overrides: list[str] | None = None, device: str = "cpu") -> dict:
    """Train on the bundled COCO photos, evaluate on them and on the held-out ones, draw both; returns the
    summary."""
    output = Path(output)
    assets = demo_assets()
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
