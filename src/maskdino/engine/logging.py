"""Training metrics out: `metrics.jsonl`, TensorBoard scalars and a tqdm bar (main process only).

Every `log_period` iterations one JSON object is appended to `<output>/metrics.jsonl`: `iter` (optimiser
steps done), `loss` (total), `lr` (of the head groups), every weighted loss term, `grad_norm`
(before clipping), `data_time` (waiting for data) and `step_time` (the whole iteration), in seconds, each
averaged over the iterations since the previous line.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

logger = logging.getLogger(__name__)


class MetricWindow:
    """Running sums of scalar metrics between two log lines."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.count = 0

    def add(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.sums[key] += value
        self.count += 1

    def mean_and_reset(self) -> dict[str, float]:
        means = {k: v / max(self.count, 1) for k, v in self.sums.items()}
        self.sums.clear()
        self.count = 0
        return means


class TrainingLogger:
    """Writes metrics of the main process; every method is a no-op on other ranks (`enabled=False`)."""

    def __init__(
        self, output_dir: str | Path, start_iter: int, max_iter: int, enabled: bool, progress: bool = True
    ) -> None:
        self.enabled = enabled
        self.output_dir = Path(output_dir)
        self.writer = None
        self.bar = None
        if not enabled:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.metrics_path = self.output_dir / "metrics.jsonl"
        _drop_records_after(self.metrics_path, start_iter)
        self.writer = _tensorboard_writer(self.output_dir)
        if progress:
            self.bar = tqdm(
                total=max_iter, initial=start_iter, desc="train", dynamic_ncols=True, smoothing=0.1
            )

    def log(self, iteration: int, metrics: dict[str, float]) -> None:
        """Append one metrics.jsonl line, write TensorBoard scalars and refresh the bar's postfix."""
        if not self.enabled:
            return
        record: dict[str, Any] = {"iter": iteration, **{k: _json_number(v) for k, v in metrics.items()}}
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(key, value, iteration)
        if "loss" not in metrics:  # an evaluation record: the evaluator logs its own table
            return
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{metrics['loss']:.3f}", lr=f"{metrics.get('lr', 0):.2e}")
        else:
            logger.info(
                "iter %d: loss %.4f, lr %.3g, step %.3fs",
                iteration,
                metrics["loss"],
                metrics.get("lr", 0.0),
                metrics.get("step_time", 0.0),
            )

    def advance(self, steps: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(steps)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()


def flat_metrics(prefix: str, values: dict[str, Any]) -> dict[str, float]:
    """{"bbox": {"AP": 1.0}} -> {"eval/bbox/AP": 1.0} for prefix "eval", keeping numbers only."""
    flat: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}/{key}"
        if isinstance(value, dict):
            flat.update(flat_metrics(name, value))
        elif isinstance(value, int | float):
            flat[name] = float(value)
    return flat


def _json_number(value: float) -> float | str:
    """JSON has no NaN/inf: write them as strings so the file stays standard JSON."""
    return value if math.isfinite(value) else str(value)


def _tensorboard_writer(output_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        logger.info("tensorboard is not installed: no TensorBoard events (pip install tensorboard)")
        return None
    return SummaryWriter(log_dir=str(output_dir))


def _drop_records_after(path: Path, start_iter: int) -> None:
    """Keep only the metrics of iterations <= `start_iter`: a fresh run (0) starts a new file, a resumed run
    drops what the interrupted one logged after its last checkpoint, so no iteration appears twice."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines()
    kept = [line for line in lines if line.strip() and json.loads(line).get("iter", 0) <= start_iter]
    if len(kept) != len(lines):
        logger.info("%s: dropped %d records after iteration %d", path, len(lines) - len(kept), start_iter)
    path.write_text("".join(line + "\n" for line in kept))
