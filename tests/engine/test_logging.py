"""metrics.jsonl never holds an iteration twice: a fresh run starts a new file, a resumed run drops what
the interrupted run logged after its checkpoint."""

from __future__ import annotations

import json

from maskdino.engine.logging import TrainingLogger


def _write(path, iterations):
    path.write_text("".join(json.dumps({"iter": i, "loss": float(i)}) + "\n" for i in iterations))


def test_resume_keeps_records_up_to_the_checkpoint(tmp_path):
    _write(tmp_path / "metrics.jsonl", [10, 20, 30, 40])
    log = TrainingLogger(tmp_path, start_iter=20, max_iter=50, enabled=True, progress=False)
    log.log(30, {"loss": 3.5})
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records] == [10, 20, 30] and records[-1]["loss"] == 3.5


def test_fresh_run_starts_a_new_file(tmp_path):
    _write(tmp_path / "metrics.jsonl", [10, 20])
    TrainingLogger(tmp_path, start_iter=0, max_iter=50, enabled=True, progress=False)
    assert (tmp_path / "metrics.jsonl").read_text() == ""


def test_evaluation_records_are_written_but_not_logged_as_training_lines(tmp_path, caplog):
    log = TrainingLogger(tmp_path, start_iter=0, max_iter=50, enabled=True, progress=False)
    with caplog.at_level("INFO", logger="maskdino.engine.logging"):
        log.log(10, {"loss": 2.5, "lr": 1e-4, "step_time": 0.5})
        log.log(10, {"eval/segm/AP": 12.5})
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records == [
        {"iter": 10, "loss": 2.5, "lr": 1e-4, "step_time": 0.5},
        {"iter": 10, "eval/segm/AP": 12.5},
    ]
    assert [r.getMessage() for r in caplog.records] == ["iter 10: loss 2.5000, lr 0.0001, step 0.500s"]
