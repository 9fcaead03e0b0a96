"""`maskdino demo`: generates the shapes data, trains the `demo` preset on it, evaluates, draws and plots."""

from __future__ import annotations

import json

import numpy as np

from maskdino.demo import METRIC_KEYS, run_synthetic_demo
from maskdino.presets import get_config
from maskdino.visualize import read_metrics

ITERATIONS = 40
LOG_PERIOD = 5


def test_demo_preset_loss_falls_on_a_few_generated_images(tmp_path, single_thread):
    overrides = [
        f"solver.max_iter={ITERATIONS}",
        f"solver.log_period={LOG_PERIOD}",
        "solver.eval_period=0",
        "solver.checkpoint_period=0",
        "data.num_workers=0",
    ]
    summary = run_synthetic_demo(tmp_path, overrides, num_train=8, num_val=2)

    rows = [r for r in read_metrics(tmp_path / "metrics.jsonl") if "loss" in r]
    assert [r["iter"] for r in rows] == list(range(LOG_PERIOD, ITERATIONS + 1, LOG_PERIOD))
    first, last = rows[0], np.mean([r["loss"] for r in rows[-2:]])
    assert last < 0.75 * first["loss"], [round(r["loss"], 1) for r in rows]
    assert np.mean([r["loss_ce"] for r in rows[-2:]]) < first["loss_ce"]

    assert summary["iterations"] == ITERATIONS
    assert set(summary["held_out"]) == set(METRIC_KEYS)
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    held_out = json.loads((tmp_path / "eval_heldout" / "metrics.json").read_text())
    assert all(0 <= held_out[k] <= 100 for k in METRIC_KEYS)
    assert len(list((tmp_path / "predictions" / "held_out" / "overlays").glob("*.png"))) == 2
    for picture in ("held_out_overlays.jpg", "training_curves.png", "model_final.safetensors"):
        assert (tmp_path / picture).stat().st_size > 0
    assert (tmp_path / "data" / "val" / "panoptic.json").is_file()  # every format is written for later tasks


def test_demo_preset_stays_small():
    cfg = get_config("demo")
    assert cfg.model.backbone.resnet.norm == "BN"  # trained from scratch: batch statistics
    assert cfg.solver.max_iter >= max(cfg.solver.steps, default=0)
