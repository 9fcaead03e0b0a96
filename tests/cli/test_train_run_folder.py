"""`maskdino train` keeps one run per output folder: a second run is refused unless it resumes or
overwrites; resuming skips a damaged newest checkpoint and removes what killed writes left behind."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tests.engine.conftest import TINY

COCO = Path(__file__).resolve().parents[1] / "data" / "pipeline" / "coco"
CHECKPOINT_EVERY_ITERATION = ("solver.checkpoint_period=1", "solver.keep_last_checkpoints=0")


@pytest.fixture(autouse=True)
def one_thread(single_thread: None) -> None:
    """Tiny models on one intra-op thread (see tests/conftest.py)."""


def _train(maskdino, out: Path, *extra: str) -> tuple[int, str, str]:
    """`maskdino train` on the 6-image fixture; `extra` holds flags (--resume...) and overrides."""
    flags = [e for e in extra if e.startswith("--")]
    overrides = [e for e in extra if not e.startswith("--")]
    return maskdino(
        "train", "--config", "demo", "--output", out, "--train-json", COCO / "instances.json",
        "--train-images", COCO, "--no-progress", *flags, *TINY, *CHECKPOINT_EVERY_ITERATION, *overrides,
    )  # fmt: skip


def _logged_iterations(out: Path) -> list[int]:
    return [json.loads(line)["iter"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_a_second_run_is_refused_then_resumed_past_a_damaged_checkpoint_then_overwritten(
    tmp_path: Path, maskdino, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "run"
    assert _train(maskdino, out, "solver.max_iter=2", "solver.log_period=1")[0] == 0
    final = (out / "model_final.safetensors").read_bytes()

    code, _, err = _train(maskdino, out, "solver.max_iter=2")
    assert code == 2 and "Traceback" not in err
    assert f"output folder {out} holds a previous run (checkpoint_0000001.pt, checkpoint_0000002.pt" in err
    assert "Pass --resume to continue it, --overwrite to delete its files and start over" in err
    assert (out / "model_final.safetensors").read_bytes() == final  # the first run is untouched
    assert _logged_iterations(out) == [1, 2]

    # the newest checkpoint was cut short and a killed write left a temporary file
    newest = out / "checkpoint_0000002.pt"
    newest.write_bytes(newest.read_bytes()[:1000])
    (out / "checkpoint_0000003.pt.0badf00d.tmp").write_bytes(b"partial")
    with caplog.at_level(logging.INFO, logger="maskdino"):
        code, _, _ = _train(maskdino, out, "--resume", "solver.max_iter=3", "solver.log_period=1")
    assert code == 0
    assert "skipping" in caplog.text and "checkpoint_0000002.pt" in caplog.text and "damaged" in caplog.text
    assert "falling back to checkpoint_0000001.pt" in caplog.text
    assert (
        "removed 1 unfinished file(s) of an interrupted write: checkpoint_0000003.pt.0badf00d.tmp"
        in caplog.text
    )
    assert not list(out.glob("*.tmp"))
    assert _logged_iterations(out) == [1, 2, 3]  # iteration 2 logged once: by the resumed run

    code, _, err = _train(maskdino, out, "--resume", "--overwrite")
    assert code == 2 and "give only one" in err

    # --overwrite deletes only once the new run is ready: a run that fails to start leaves the old one
    code, _, err = maskdino(
        "train", "--config", "demo", "--output", out, "--train-json", COCO / "instances.json",
        "--train-images", COCO, "--overwrite", "--weights", tmp_path / "nope.safetensors", *TINY,
    )  # fmt: skip
    assert code == 2 and "weights file not found" in err
    assert _logged_iterations(out) == [1, 2, 3] and (out / "model_final.safetensors").is_file()

    (out / "notes.txt").write_text("the user's own file")
    assert _train(maskdino, out, "--overwrite", "solver.max_iter=1", "solver.log_period=1")[0] == 0
    assert sorted(p.name for p in out.glob("checkpoint_*.pt")) == ["checkpoint_0000001.pt"]
    assert _logged_iterations(out) == [1]
    assert len(list(out.glob("events.out.tfevents.*"))) == 1
    assert (out / "notes.txt").read_text() == "the user's own file"
