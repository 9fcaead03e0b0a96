"""Ratios against the peers, the issue's target check, the printed tables and the system record."""

from __future__ import annotations

import importlib
import os
import platform
import re
import subprocess
from pathlib import Path

import torch

from maskdino.benchmark.workloads import STAGES, TARGET_PRESET, TARGETS
from maskdino.evaluation.table import format_table


def add_ratios(rows: list[dict]) -> None:
    """Give each of our inference rows `ratios[peer] = {time, memory}`: ours / the peer's, per image, at
    the same batch size and device (above 1: we are slower / use more)."""
    peers = {
        (r["name"], r["batch"], r["device"]): r for r in rows if r["source"] == "peer" and r["status"] == "ok"
    }
    for row in rows:
        if row["source"] != "maskdino" or row["kind"] != "inference" or row["status"] != "ok":
            continue
        row["ratios"] = {}
        for (key, batch, device), peer in peers.items():
            if batch == row["batch"] and device == row["device"]:
                row["ratios"][key] = {
                    "time": row["median_s_per_image"] / peer["median_s_per_image"],
                    "cpu_time": row["median_cpu_s_per_image"] / peer["median_cpu_s_per_image"],
                    "memory": row["memory"]["mem_mb"] / peer["memory"]["mem_mb"],
                }


def check_targets(rows: list[dict]) -> list[dict]:
    """The issue's acceptance ratios for R50 4-scale instance inference at batch 1 on CPU, where measured."""
    checks = []
    for row in rows:
        if (row["name"], row["kind"], row["batch"], row["device"]) != (TARGET_PRESET, "inference", 1, "cpu"):
            continue
        for peer, metric, limit in TARGETS:
            ratio = row.get("ratios", {}).get(peer, {}).get(metric)
            if ratio is not None:
                checks.append(
                    {"peer": peer, "metric": metric, "ratio": ratio, "limit": limit, "met": ratio <= limit}
                )
    return checks


def format_report(rows: list[dict], checks: list[dict]) -> str:
    """The printed tables: inference (with ratios to each peer), per-stage seconds, training steps."""
    ok = [r for r in rows if r["status"] == "ok"]
    peer_keys = list(dict.fromkeys(r["name"] for r in ok if r["source"] == "peer"))
    parts = []
    inference = [r for r in ok if r["kind"] == "inference"]
    if inference:
        headers = ["inference", "batch", "device", "s/img", "img/s", "cpu s/img", "mem MB", "peak RSS MB"]
        metrics = {"time": "time", "cpu_time": "cpu", "memory": "mem"}
        headers += [f"{short} vs {k}" for short in metrics.values() for k in peer_keys]
        body = []
        for r in inference:
            ratios = r.get("ratios", {})
            body.append(
                [r.get("label", r["name"]), r["batch"], r["device"], r["median_s_per_image"], r["images_per_s"],
                 r["median_cpu_s_per_image"], r["memory"]["mem_mb"], _peak_rss(r)]
                + [_ratio(ratios, k, metric) for metric in metrics for k in peer_keys]
            )  # fmt: skip
        parts.append(format_table(headers, body, ".2f"))
    staged = [r for r in ok if "stages" in r]
    if staged:
        headers = ["stages (s)", "batch", *STAGES, "sum", "full call"]
        body = []
        for r in staged:
            medians = r["stages"]["median_s"]
            body.append(
                [r["name"], r["batch"], *(medians[s] for s in STAGES), sum(medians.values()), r["median_s"]]
            )
        parts.append(format_table(headers, body, ".2f"))
    training = [r for r in ok if r["kind"] == "train"]
    if training:
        headers = [
            "training step",
            "batch",
            "crop",
            "device",
            "s/step",
            "img/s",
            "cpu s/step",
            "mem MB",
            "peak RSS MB",
        ]
        body = [
            [r["name"], r["batch"], r["train_size"], r["device"], r["median_s"], r["images_per_s"],
             r["median_cpu_s_per_image"] * r["batch"], r["memory"]["mem_mb"], _peak_rss(r)]
            for r in training
        ]  # fmt: skip
        parts.append(format_table(headers, body, ".2f"))
    lines = [
        f"{r['status']}: {r['kind']} {r['name']} batch {r['batch']}: {r['reason']}"
        for r in rows
        if r["status"] != "ok"
    ]
    lines += [
        f"target {TARGET_PRESET} batch 1 cpu: {c['metric']} vs {c['peer']} {c['ratio']:.2f}x (<= {c['limit']:.2f}x): "
        + ("met" if c["met"] else "NOT met")
        for c in checks
    ]
    if lines:
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _ratio(ratios: dict, key: str, metric: str) -> str:
    return f"{ratios[key][metric]:.2f}x" if key in ratios else ""


def _peak_rss(row: dict) -> float | None:
    return None if row["device"] == "cuda" else row["memory"]["peak_mb"]


def system_info(threads: int, device: str) -> dict:
    """What the numbers were measured on."""
    info = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "threads": threads,
        "device": device,
        "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
        "load_average_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "code": _code_version(),
    }
    for name in ("torchvision", "transformers"):
        try:
            info[name] = importlib.import_module(name).__version__
        except ImportError:
            info[name] = None
    return info


def _code_version() -> dict | None:
    """The git commit of the measured source and whether the source differs from it (read-only git
    calls; None outside a git checkout)."""
    source = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        changed = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "."], cwd=source, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "source_modified": changed.returncode != 0}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            match = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.MULTILINE)
        if match:
            return match.group(1).strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
