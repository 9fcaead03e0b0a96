"""Plan the workloads, run each in its own worker process, collect the rows."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from maskdino.benchmark.peers import PEERS
from maskdino.benchmark.report import add_ratios, check_targets, format_report, system_info
from maskdino.benchmark.workloads import FULL_PRESETS, QUICK_PRESETS, Peer
from maskdino.image_batch import BATCHING_MODES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `maskdino bench`."""
    parser.add_argument(
        "--quick", action="store_true", help=f"only {QUICK_PRESETS[0]} at batch 1, fewer training repeats"
    )
    parser.add_argument("--presets", nargs="+", help=f"inference presets (default {' '.join(FULL_PRESETS)})")
    parser.add_argument(
        "--batches", nargs="+", type=int, help="inference batch sizes (default 1 4; quick: 1)"
    )
    parser.add_argument(
        "--peers", nargs="*", help="peer keys to run beside ours (default: all; none: no argument)"
    )
    parser.add_argument("--height", type=int, default=800, help="inference image height (default 800)")
    parser.add_argument("--width", type=int, default=1200, help="inference image width (default 1200)")
    parser.add_argument(
        "--mixed-sizes",
        action="store_true",
        help="photos at their own sizes, landscape and portrait in turn: short side --height, long side at "
        "most --width (the test resize), instead of all resized to --height x --width",
    )
    parser.add_argument(
        "--batching",
        nargs="+",
        choices=BATCHING_MODES,
        default=["exact"],
        help="how our model batches (exact: one network pass per image, the default; grouped: images that "
        "pad to one size share a pass); several: one row each, named '<preset> grouped' for grouped",
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls before the timed ones")
    parser.add_argument("--repeats", type=int, default=3, help="timed inference calls (median reported)")
    parser.add_argument("--no-stages", dest="stages", action="store_false", help="skip the per-stage split")
    parser.add_argument("--stage-repeats", type=int, help="per-stage passes at batch 1 (default 3; quick: 1)")
    parser.add_argument(
        "--train-presets", nargs="*", help=f"training presets (default {QUICK_PRESETS[0]}; none: no argument)"
    )
    parser.add_argument("--train-batch", type=int, default=2, help="images per training step (default 2)")
    parser.add_argument("--train-size", type=int, default=1024, help="LSJ crop size (default 1024)")
    parser.add_argument("--train-warmup", type=int, default=1)
    parser.add_argument("--train-repeats", type=int, help="timed training steps (default 3; quick: 1)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights and LSJ crops")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed to each workload")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/out/results.json"))
    parser.add_argument("--report", type=Path, help="print the tables of an earlier run's JSON; run nothing")


def plan(args: argparse.Namespace, peers: dict[str, Peer] = PEERS) -> list[dict]:
    """The workload specs of a run, in order: each preset at each batch then the peers at that batch,
    then the training steps."""
    device = _device(args.device)
    presets = args.presets or (QUICK_PRESETS if args.quick else FULL_PRESETS)
    batches = args.batches or ((1,) if args.quick else (1, 4))
    peer_keys = list(peers) if args.peers is None else args.peers
    unknown = [k for k in peer_keys if k not in peers]
    if unknown:
        raise ValueError(f"unknown peer(s) {unknown}; available: {sorted(peers)}")
    train_presets = QUICK_PRESETS if args.train_presets is None else args.train_presets
    stage_repeats = args.stage_repeats if args.stage_repeats is not None else (1 if args.quick else 3)
    train_repeats = args.train_repeats if args.train_repeats is not None else (1 if args.quick else 3)
    common = {
        "threads": args.threads,
        "device": device,
        "seed": args.seed,
        "height": args.height,
        "width": args.width,
        "mixed_sizes": args.mixed_sizes,
    }
    specs = []
    for batch in batches:
        for preset in presets:
            for mode in args.batching:
                specs.append(
                    {**common, "name": preset if mode == "exact" else f"{preset} {mode}", "source": "maskdino",
                     "kind": "inference", "batch": batch, "preset": preset, "batching": mode,
                     "builder": "maskdino.benchmark.workloads:maskdino_inference",
                     "warmup": args.warmup, "repeats": args.repeats,
                     "stages": args.stages and batch == 1 and mode == args.batching[0],
                     "stage_repeats": stage_repeats}
                )  # fmt: skip
        for key in peer_keys:
            specs.append(
                {**common, "name": key, "source": "peer", "kind": "inference", "batch": batch,
                 "builder": peers[key].builder, "label": peers[key].label,
                 "warmup": args.warmup, "repeats": args.repeats}
            )  # fmt: skip
    for preset in train_presets:
        specs.append(
            {**common, "name": preset, "source": "maskdino", "kind": "train", "batch": args.train_batch,
             "preset": preset, "builder": "maskdino.benchmark.workloads:maskdino_training", "train_size": args.train_size,
             "warmup": args.train_warmup, "repeats": train_repeats}
        )  # fmt: skip
    return specs


def _device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda, but torch sees no CUDA device")
    return name


def run_spec(spec: dict, timeout: float) -> dict:
    """Run one workload in a fresh interpreter and return its row (status error with the reason if the
    worker failed or ran out of time)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"]), "MKL_NUM_THREADS": str(spec["threads"])}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")  # peers are built locally, never downloaded
    row = {k: spec[k] for k in ("name", "source", "kind", "batch", "device", "threads")}
    with tempfile.TemporaryDirectory() as tmp:
        spec_file, result_file = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        spec_file.write_text(json.dumps({**spec, "result": str(result_file)}))
        command = [sys.executable, "-m", "maskdino.benchmark", str(spec_file)]
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {**row, "status": "error", "reason": f"timed out after {timeout:.0f} s (--timeout)"}
        if done.returncode != 0 or not result_file.is_file():
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            return {
                **row,
                "status": "error",
                "reason": f"worker exit {done.returncode}: {tail[0]}",
                "stderr": done.stderr[-4000:],
            }
        result = json.loads(result_file.read_text())
    if "label" in spec:
        result["label"] = spec["label"]
    return result


def run_benchmarks(args: argparse.Namespace, peers: dict[str, Peer] = PEERS) -> int:
    """Run every planned workload, print the tables and write the JSON; returns the exit code (1 if a
    workload failed; skipped peers are not failures)."""
    if args.report:
        rows = json.loads(args.report.read_text())["results"]
        add_ratios(rows)
        print(format_report(rows, check_targets(rows)))
        return 0
    specs = plan(args, peers)
    info = system_info(args.threads, specs[0]["device"] if specs else _device(args.device))
    print(
        f"{info['device']} ({info['gpu'] or info['cpu']}), {args.threads} threads, torch {info['torch']}, "
        f"load average {info['load_average_start']}",
        file=sys.stderr,
    )
    rows = []
    for i, spec in enumerate(specs, 1):
        print(
            f"[{i}/{len(specs)}] {spec['kind']} {spec['name']} batch {spec['batch']} ...",
            end=" ",
            file=sys.stderr,
            flush=True,
        )
        start = time.perf_counter()
        row = run_spec(spec, args.timeout)
        rows.append(row)
        outcome = f"{row['median_s_per_image']:.2f} s/img" if row["status"] == "ok" else row["status"]
        print(f"{outcome} ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    add_ratios(rows)
    checks = check_targets(rows)
    info["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    print(format_report(rows, checks))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"}
    args.output.write_text(
        json.dumps({"system": info, "settings": settings, "results": rows, "targets": checks}, indent=2)
    )
    print(f"wrote {args.output}")
    return 1 if any(r["status"] == "error" for r in rows) else 0
