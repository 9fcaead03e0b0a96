"""Exact resume: 20 iterations straight == 10 iterations, a kill, then `--resume` for 10 more."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
import torch

from maskdino.checkpoints.native import read_weights
from maskdino.engine import train
from maskdino.engine.checkpointer import Checkpointer

from .conftest import tiny_config

# denoising on (it draws from torch's global RNG), EMA on, warm-up and an lr step inside the run
RESUME = (
    "model.decoder.dn=seg",
    "solver.max_iter=20",
    "solver.checkpoint_period=10",
    "solver.warmup_iters=4",
    "solver.warmup_factor=0.1",
    "solver.steps=(15,)",
    "solver.ema=true",
    "solver.ema_decay=0.9",
    "solver.keep_last_checkpoints=1",
)


class Killed(Exception):
    """Stands for the process dying right after the checkpoint at iteration 10 was written."""


def test_resume_after_kill_matches_straight_run(coco_dir: Path, tmp_path: Path, monkeypatch) -> None:
    straight = train(tiny_config(coco_dir, tmp_path / "straight", *RESUME), progress=False)
    assert straight.iterations == 20

    original_save = Checkpointer.save

    def save_then_die(self, iteration, state):
        path = original_save(self, iteration, state)
        if iteration == 10:
            raise Killed
        return path

    cfg = tiny_config(coco_dir, tmp_path / "resumed", *RESUME)
    with monkeypatch.context() as patch:
        patch.setattr(Checkpointer, "save", save_then_die)
        with pytest.raises(Killed):
            train(cfg, progress=False)
    gc.collect()  # nothing of the first half survives in memory: the model, optimiser etc. are gone
    assert (tmp_path / "resumed" / "last_checkpoint").read_text().strip() == "checkpoint_0000010.pt"
    torch.manual_seed(1234)  # a different global RNG state: resuming must restore the saved one
    resumed = train(cfg, resume=True, progress=False)
    assert resumed.iterations == 20

    for name in ("model_final.safetensors", "model_final_ema.safetensors"):
        expected, _ = read_weights(tmp_path / "straight" / name)
        got, _ = read_weights(tmp_path / "resumed" / name)
        assert expected.keys() == got.keys()
        for key in expected:
            assert torch.equal(expected[key], got[key]), f"{name}: {key} differs after resuming"
    # the optimiser state and the lr schedule continued too
    a = Checkpointer.load(tmp_path / "straight" / "checkpoint_0000020.pt")
    b = Checkpointer.load(tmp_path / "resumed" / "checkpoint_0000020.pt")
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 20
    for state_a, state_b in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(state_a["exp_avg_sq"], state_b["exp_avg_sq"])
    # keep_last_checkpoints=1: only the newest file remains
    assert sorted(p.name for p in (tmp_path / "resumed").glob("checkpoint_*.pt")) == ["checkpoint_0000020.pt"]
    lines = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4  # iterations 5, 10 (first run), 15, 20 (resumed run)
