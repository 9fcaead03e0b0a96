"""Training checkpoints: atomic writes, keep-last-K, the pointer file, weights_only loading, RNG state."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from maskdino.engine.checkpointer import Checkpointer, capture_rng_state, restore_rng_state, seed_all
from maskdino.engine.ema import ModelEMA


def test_keeps_the_last_k_and_points_at_the_newest(tmp_path: Path) -> None:
    checkpointer = Checkpointer(tmp_path, keep_last=2)
    assert checkpointer.last() is None
    for iteration in (10, 20, 30):
        checkpointer.save(iteration, {"iteration": iteration, "w": torch.full((2,), float(iteration))})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint_0000020.pt",
        "checkpoint_0000030.pt",
        "last_checkpoint",
    ]  # no temporary files left behind
    assert checkpointer.last() == tmp_path / "checkpoint_0000030.pt"
    assert Checkpointer.load(checkpointer.last())["w"].tolist() == [30.0, 30.0]


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path: Path) -> None:
    checkpointer = Checkpointer(tmp_path, keep_last=0)
    checkpointer.save(1, {"iteration": 1})
    with pytest.raises(Exception):  # noqa: B017 (pickling a lambda fails inside torch.save)
        checkpointer.save(2, {"bad": lambda: None})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_0000001.pt", "last_checkpoint"]
    assert checkpointer.last().name == "checkpoint_0000001.pt"


def test_unsafe_or_broken_files_are_refused(tmp_path: Path) -> None:
    torch.save({"obj": Path("x")}, tmp_path / "unsafe.pt")  # arbitrary objects would run code on load
    with pytest.raises(ValueError, match="cannot read training checkpoint"):
        Checkpointer.load(tmp_path / "unsafe.pt")
    (tmp_path / "last_checkpoint").write_text("checkpoint_0000005.pt\n")
    with pytest.raises(FileNotFoundError, match="checkpoint_0000005.pt"):
        Checkpointer(tmp_path, 1).last()


def test_rng_state_round_trips_through_a_weights_only_file(tmp_path: Path) -> None:
    seed_all(3)
    torch.rand(5), np.random.rand(5), random.random()
    Checkpointer(tmp_path, 1).save(1, {"rng": capture_rng_state()})
    expected = (torch.rand(3), np.random.rand(3), random.random())
    seed_all(99)
    restore_rng_state(Checkpointer.load(tmp_path / "checkpoint_0000001.pt")["rng"])
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], got[0]) and np.array_equal(expected[1], got[1]) and expected[2] == got[2]


def test_ema_averages_floats_and_copies_integers() -> None:
    model = torch.nn.Linear(2, 1)
    model.register_buffer("count", torch.tensor(0))
    ema = ModelEMA(model, decay=0.75)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(4.0)
        model.count += 3
    ema.update(model)
    assert torch.allclose(ema.module.weight, start + 1.0)  # 0.75 * w + 0.25 * (w + 4)
    assert ema.module.count.item() == 3
    assert not ema.module.weight.requires_grad
    with pytest.raises(ValueError, match="ema_decay"):
        ModelEMA(model, decay=1.0)
