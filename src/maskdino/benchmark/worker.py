"""One workload in a fresh process: build, warm up, time the calls, measure peak memory."""

from __future__ import annotations

import importlib
import json
import re
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from maskdino.benchmark.workloads import MB, SkipWorkload, demo_photos, mixed_photos, synchronize


class PeakMemory:
    """Peak memory of everything run between `start()` and `stop()` (see the module docstring)."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.method = ""
        self.baseline = 0

    def start(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.baseline = torch.cuda.memory_allocated()
            self.method = "torch.cuda.max_memory_allocated (weights, inputs and activations)"
            return
        self.baseline = _current_rss()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets the peak RSS (VmHWM) to the current RSS
            self.method = "peak RSS (VmHWM reset via /proc/self/clear_refs before the first call)"
        except OSError:
            self.method = "peak RSS (ru_maxrss over the process lifetime: includes model construction)"

    def stop(self) -> tuple[int, int]:
        """(peak bytes, bytes in use at `start()`)."""
        if self.cuda:
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated(), self.baseline
        if "clear_refs" in self.method:
            return _status_kb("VmHWM") * 1024, self.baseline
        scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, self.baseline


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{key}:\s+(\d+)", f.read(), re.MULTILINE).group(1))


def _current_rss() -> int:
    try:
        return _status_kb("VmRSS") * 1024
    except OSError:
        return 0


def _import(reference: str) -> Callable:
    module, name = reference.split(":")
    return getattr(importlib.import_module(module), name)


def run_worker(spec: dict) -> dict:
    """Build and measure one workload in this process; returns its result row."""
    torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    row = {k: spec[k] for k in ("name", "source", "kind", "batch", "device", "threads")}
    images, files = [], []
    if spec["kind"] == "inference":
        if spec.get("mixed_sizes"):
            images, files = mixed_photos(spec["batch"], spec["height"], spec["width"])
        else:
            images, files = demo_photos(spec["batch"], spec["height"], spec["width"])
        row["image_sizes"] = [list(image.shape[-2:]) for image in images]
    try:
        prepared = _import(spec["builder"])(spec, images)
    except SkipWorkload as err:
        return {**row, "status": "skipped", "reason": str(err)}
    if spec["kind"] == "inference":
        row["photos"] = files
    else:
        row["train_size"] = spec["train_size"]

    def sync() -> None:
        synchronize(device)

    weights = sum(
        t.numel() * t.element_size() for t in (*prepared.module.parameters(), *prepared.module.buffers())
    )
    memory = PeakMemory(device)
    grad = torch.enable_grad() if spec["kind"] == "train" else torch.inference_mode()
    with grad:
        memory.start()
        warmup = [_timed(prepared.step, sync)[0] for _ in range(spec["warmup"])]
        timed = [_timed(prepared.step, sync) for _ in range(spec["repeats"])]
        peak, baseline = memory.stop()
        stages = []
        if spec.get("stages") and prepared.stages is not None:
            stages = [prepared.stages() for _ in range(spec["stage_repeats"])]
    wall = [t[0] for t in timed]
    cpu = [t[1] for t in timed]
    items = prepared.items
    row.update(
        status="ok",
        notes=prepared.notes,
        warmup=spec["warmup"],
        repeats=spec["repeats"],
        warmup_wall_s=warmup,
        wall_s=wall,
        cpu_s=cpu,
        median_s=statistics.median(wall),
        median_s_per_image=statistics.median(wall) / items,
        images_per_s=items / statistics.median(wall),
        median_cpu_s_per_image=statistics.median(cpu) / items,
    )
    activation = peak - baseline
    row["memory"] = {
        "method": memory.method,
        "peak_mb": peak / MB,
        "baseline_mb": baseline / MB,
        "activation_mb": activation / MB,
        "weights_mb": weights / MB,
        "mem_mb": (peak if memory.cuda else weights + activation) / MB,
    }
    if stages:
        row["stages"] = {
            "repeats": len(stages),
            "median_s": {k: statistics.median(s[k] for s in stages) for k in stages[0]},
            "all_s": {k: [s[k] for s in stages] for k in stages[0]},
        }
    return row


def _timed(step: Callable[[], Any], sync: Callable[[], None]) -> tuple[float, float]:
    sync()
    wall, cpu = time.perf_counter(), time.process_time()
    step()
    sync()
    return time.perf_counter() - wall, time.process_time() - cpu


# ------------------------------------------------------------------------------------------ the parent


def worker_main(spec_file: str) -> int:
    spec = json.loads(Path(spec_file).read_text())
    row = run_worker(spec)
    Path(spec["result"]).write_text(json.dumps(row))
    return 0
