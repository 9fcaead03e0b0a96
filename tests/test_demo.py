"""`maskdino demo`: generates the shapes data, trains the `demo` preset on its panoptic annotations,
evaluates every task on the held-out split, draws and plots."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from maskdino.demo.shapes import HEADLINE, SHEET_IMAGES, TASKS, run_synthetic_demo
from maskdino.presets import get_config
from maskdino.visualize import read_metrics

ITERATIONS = 40
LOG_PERIOD = 5
NUM_VAL = 2


def test_demo_trains_one_model_and_evaluates_every_task(tmp_path, single_thread):
    overrides = [
        f"solver.max_iter={ITERATIONS}",
        f"solver.log_period={LOG_PERIOD}",
        "solver.eval_period=0",
        "solver.checkpoint_period=0",
        "data.num_workers=0",
    ]
    summary = run_synthetic_demo(tmp_path, overrides, num_train=8, num_val=NUM_VAL)

    rows = [r for r in read_metrics(tmp_path / "metrics.jsonl") if "loss" in r]
    assert [r["iter"] for r in rows] == list(range(LOG_PERIOD, ITERATIONS + 1, LOG_PERIOD))
    first, last = rows[0], np.mean([r["loss"] for r in rows[-2:]])
    assert last < 0.75 * first["loss"], [round(r["loss"], 1) for r in rows]
    assert np.mean([r["loss_ce"] for r in rows[-2:]]) < first["loss_ce"]

    # trained on the panoptic json: its 3 things and 3 stuff classes, with all three outputs on
    saved = get_config(tmp_path / "config.yaml")
    assert saved.data.class_names == ("circle", "square", "triangle", "sky", "grass", "water")
    assert saved.model.thing_classes == (0, 1, 2)
    assert saved.model.test.panoptic_on and saved.model.test.instance_on and saved.model.test.semantic_on

    assert summary["iterations"] == ITERATIONS
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    held_out = summary["held_out"]
    assert set(held_out) == {key for keys in HEADLINE.values() for key in keys}
    assert all(0 <= value <= 100 for value in held_out.values())
    for task in ("instance", "panoptic", "semantic"):
        stored = json.loads((tmp_path / "eval_heldout" / task / "metrics.json").read_text())
        assert all(round(stored[key], 1) == held_out[key] for key in HEADLINE[task])

    # the picture: one row per held-out image, input then one panel per task
    sheet = Image.open(tmp_path / "held_out.jpg")
    rows_shown = min(SHEET_IMAGES, NUM_VAL)
    assert sheet.height == rows_shown * 256 + (rows_shown - 1) * 4 and sheet.width > (1 + len(TASKS)) * 256
    predictions = tmp_path / "predictions" / "held_out"
    assert len(list((predictions / "overlays").glob("*.png"))) == NUM_VAL
    assert len(list((predictions / "panoptic").glob("*.png"))) == NUM_VAL
    assert len(list((predictions / "semantic").glob("*.png"))) == NUM_VAL
    assert (tmp_path / "training_curves.png").stat().st_size > 0


def test_demo_preset_stays_small():
    cfg = get_config("demo")
    assert cfg.model.backbone.resnet.norm == "BN"  # trained from scratch: batch statistics
    assert cfg.solver.max_iter >= max(cfg.solver.steps, default=0)
