"""Training checkpoints: atomic writes, keep-last-K, the pointer file, weights_only loading, RNG state."""

from __future__ import annotations

import logging
import os
import random
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from maskdino.engine.checkpointer import Checkpointer, capture_rng_state, restore_rng_state, seed_all
from maskdino.engine.ema import ModelEMA
from maskdino.utils.atomic import atomic_write


def test_keeps_the_last_k_and_points_at_the_newest(tmp_path: Path) -> None:
    checkpointer = Checkpointer(tmp_path, keep_last=2)
    assert checkpointer.load_latest() is None
    for iteration in (10, 20, 30):
        checkpointer.save(iteration, {"iteration": iteration, "w": torch.full((2,), float(iteration))})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint_0000020.pt",
        "checkpoint_0000030.pt",
        "last_checkpoint",
    ]  # no temporary files left behind
    assert (tmp_path / "last_checkpoint").read_text() == "checkpoint_0000030.pt\n"
    path, state = checkpointer.load_latest()
    assert path == tmp_path / "checkpoint_0000030.pt" and state["w"].tolist() == [30.0, 30.0]


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path: Path) -> None:
    checkpointer = Checkpointer(tmp_path, keep_last=0)
    checkpointer.save(1, {"iteration": 1})
    with pytest.raises(Exception):  # noqa: B017 (pickling a lambda fails inside torch.save)
        checkpointer.save(2, {"bad": lambda: None})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_0000001.pt", "last_checkpoint"]
    assert checkpointer.load_latest()[0].name == "checkpoint_0000001.pt"


def test_unsafe_or_broken_files_are_refused(tmp_path: Path) -> None:
    torch.save({"obj": Path("x")}, tmp_path / "unsafe.pt")  # arbitrary objects would run code on load
    with pytest.raises(ValueError, match="cannot read training checkpoint"):
        Checkpointer.load(tmp_path / "unsafe.pt")
    (tmp_path / "last_checkpoint").write_text("checkpoint_0000005.pt\n")
    with pytest.raises(ValueError, match=r"checkpoint_0000005\.pt: training checkpoint not found"):
        Checkpointer(tmp_path, 1).load_latest()


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


def _damage(path: Path) -> None:
    """What a full disk or a copy cut short leaves: the first 100 bytes of the file."""
    path.write_bytes(path.read_bytes()[:100])


def test_resume_falls_back_to_the_newest_checkpoint_that_loads(tmp_path: Path, caplog) -> None:
    checkpointer = Checkpointer(tmp_path, keep_last=0)
    for iteration in (1, 2, 3):
        checkpointer.save(iteration, {"iteration": iteration})
    _damage(tmp_path / "checkpoint_0000003.pt")
    with caplog.at_level(logging.WARNING, logger="maskdino"):
        path, state = checkpointer.load_latest()
    assert path.name == "checkpoint_0000002.pt" and state["iteration"] == 2
    assert "skipping" in caplog.text and "checkpoint_0000003.pt" in caplog.text and "damaged" in caplog.text
    assert "falling back to checkpoint_0000002.pt" in caplog.text
    # without the pointer file the newest file that loads is found all the same
    (tmp_path / "last_checkpoint").unlink()
    assert checkpointer.load_latest()[0].name == "checkpoint_0000002.pt"
    for iteration in (1, 2):
        _damage(tmp_path / f"checkpoint_000000{iteration}.pt")
    with pytest.raises(ValueError, match=r"no checkpoint in .* can be loaded(.|\n)*checkpoint_0000001\.pt"):
        checkpointer.load_latest()
    assert Checkpointer(tmp_path / "empty", keep_last=0).load_latest() is None


def test_stale_temporary_files_of_killed_writes_are_removed(tmp_path: Path) -> None:
    checkpointer = Checkpointer(tmp_path, keep_last=0)
    checkpointer.save(1, {"iteration": 1})
    stale = [
        "checkpoint_0000002.pt.3f9a01bc.tmp",
        "last_checkpoint.77aa01bc.tmp",
        "model_final.safetensorsx1y2.tmp",
    ]
    for name in [*stale, "notes.tmp"]:
        (tmp_path / name).write_bytes(b"partial")
    assert sorted(p.name for p in checkpointer.remove_stale_temporary_files()) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint_0000001.pt",
        "last_checkpoint",
        "notes.tmp",
    ]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_are_written_with_the_umask_permissions(tmp_path: Path, umask: int, mode: int) -> None:
    previous = os.umask(umask)
    try:
        path = Checkpointer(tmp_path, keep_last=0).save(1, {"iteration": 1})
        pointer = tmp_path / "last_checkpoint"
        written = atomic_write(tmp_path / "weights.bin", lambda tmp: Path(tmp).write_bytes(b"w"))
    finally:
        os.umask(previous)
    for file in (path, pointer, written):
        assert stat.S_IMODE(file.stat().st_mode) == mode, file.name


def test_an_unreadable_checkpoint_is_reported_as_a_permission_problem(tmp_path: Path) -> None:
    path = Checkpointer(tmp_path, keep_last=0).save(1, {"iteration": 1})
    path.chmod(0)
    if os.access(path, os.R_OK):
        pytest.skip("this process reads files whatever their permissions (root with CAP_DAC_OVERRIDE)")
    with pytest.raises(
        PermissionError, match=r"cannot read training checkpoint .*permission denied.*chmod a\+r"
    ):
        Checkpointer.load(path)
