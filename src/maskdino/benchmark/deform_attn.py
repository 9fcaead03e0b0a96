"""Micro-benchmark of the deformable-attention implementations at Mask DINO's sizes.

Runs the encoder call (every pixel of the four feature maps queries them: Q = S) and the decoder call
(Q = 300) of an input image, checks each implementation against the reference (relative L2) and times it.
Implementations run round-robin within each repeat, so load from other processes hits them alike; a
speed-up is the median of the per-repeat ratios, of wall time and of process CPU time (all threads; less
sensitive to a shared machine). Prints a table and writes JSON.

    python -m maskdino.benchmark.deform_attn --threads 2 --output benchmarks/out/deform_attn.json
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from maskdino.layers.ms_deform_attn import ms_deform_attn_dispatch

STRIDES = (8, 16, 32, 64)  # the pixel decoder's four levels
HEADS, CHANNELS, POINTS = 8, 32, 4  # d_model 256
DECODER_QUERIES = 300


def level_shapes(height: int, width: int) -> list[tuple[int, int]]:
    return [(math.ceil(height / s), math.ceil(width / s)) for s in STRIDES]


def random_inputs(
    shapes: list[tuple[int, int]], queries: int, batch: int, device: str, requires_grad: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Value, locations (a few pixels around uniform points, some outside the map) and softmaxed weights."""
    generator = torch.Generator().manual_seed(0)
    total, levels = sum(h * w for h, w in shapes), len(shapes)
    value = torch.randn(batch, total, HEADS, CHANNELS, generator=generator)
    centres = torch.rand(batch, queries, 1, levels, 1, 2, generator=generator)
    offsets = torch.randn(batch, queries, HEADS, levels, POINTS, 2, generator=generator) * 0.02
    logits = torch.randn(batch, queries, HEADS, levels * POINTS, generator=generator)
    weights = logits.softmax(-1).view(batch, queries, HEADS, levels, POINTS)
    return tuple(t.to(device).requires_grad_(requires_grad) for t in (value, centres + offsets, weights))


def _synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_round_robin(
    calls: dict[str, Callable[[], object]], repeats: int, device: str
) -> dict[str, list[tuple[float, float]]]:
    """(wall, process CPU) seconds per call of each entry, one call of each per repeat, after a warm-up
    call each. CPU time counts all threads and is not inflated by other processes taking the cores."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in calls}
    for round_index in range(repeats + 1):
        for name, call in calls.items():
            _synchronize(device)
            wall, cpu = time.perf_counter(), time.process_time()
            call()
            _synchronize(device)
            if round_index:
                times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return times


def benchmark_case(
    name: str,
    shapes: list[tuple[int, int]],
    queries: int,
    args: argparse.Namespace,
    impls: list[str],
) -> list[dict]:
    value, locations, weights = random_inputs(shapes, queries, args.batch, args.device, args.backward)
    grad_out = torch.randn(args.batch, queries, HEADS * CHANNELS, device=args.device)

    def run(impl: str) -> torch.Tensor:
        out = ms_deform_attn_dispatch(value, shapes, locations, weights, impl)
        if args.backward:
            torch.autograd.grad(out, (value, locations, weights), grad_out)
        return out

    with torch.no_grad():
        expected = ms_deform_attn_dispatch(value, shapes, locations, weights, "reference").double()
    errors = {}
    for impl in impls:
        with torch.no_grad():
            out = ms_deform_attn_dispatch(value, shapes, locations, weights, impl).double()
        errors[impl] = ((out - expected).norm() / expected.norm()).item()

    with torch.set_grad_enabled(args.backward):
        times = time_round_robin(
            {impl: (lambda impl=impl: run(impl)) for impl in impls}, args.repeats, args.device
        )
    rows = []
    for impl in impls:
        wall, cpu = zip(*times[impl])
        reference_wall, reference_cpu = zip(*times["reference"])
        rows.append(
            {
                "case": name,
                "impl": impl,
                "queries": queries,
                "pixels": sum(h * w for h, w in shapes),
                "median_ms": 1e3 * statistics.median(wall),
                "min_ms": 1e3 * min(wall),
                "median_cpu_ms": 1e3 * statistics.median(cpu),
                "speedup_vs_reference": statistics.median(r / t for r, t in zip(reference_wall, wall)),
                "cpu_speedup_vs_reference": statistics.median(r / t for r, t in zip(reference_cpu, cpu)),
                "relative_l2_vs_reference": errors[impl],
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--height", type=int, default=800, help="input image height")
    parser.add_argument("--width", type=int, default=1216, help="input image width")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--backward", action="store_true", help="time forward + backward")
    parser.add_argument("--impls", nargs="+", help="default: reference, fast, and triton on CUDA")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/out/deform_attn.json"))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    impls = args.impls or ["reference", "fast"] + (["triton"] if args.device == "cuda" else [])
    if "reference" not in impls:
        impls = ["reference", *impls]  # the baseline of every ratio
    shapes = level_shapes(args.height, args.width)
    total = sum(h * w for h, w in shapes)
    rows = []
    for name, queries in (("encoder", total), ("decoder", DECODER_QUERIES)):
        rows += benchmark_case(name, shapes, queries, args, impls)

    mode = "forward+backward" if args.backward else "forward"
    print(
        f"{mode}, {args.height}x{args.width} input, levels {shapes}, batch {args.batch}, {args.device}, ",
        end="",
    )
    print(f"{args.threads} threads, median of {args.repeats}")
    header = ("case", "impl", "Q", "median ms", "min ms", "cpu ms", "speed-up", "cpu speed-up", "rel L2")
    print("{:8} {:10} {:>6} {:>10} {:>9} {:>9} {:>9} {:>13} {:>8}".format(*header))
    for row in rows:
        print(
            f"{row['case']:8} {row['impl']:10} {row['queries']:>6} {row['median_ms']:>10.2f} {row['min_ms']:>9.2f}"
            f" {row['median_cpu_ms']:>9.2f} {row['speedup_vs_reference']:>8.2f}x"
            f" {row['cpu_speedup_vs_reference']:>12.2f}x {row['relative_l2_vs_reference']:>8.1e}"
        )
    environment = {
        "torch": torch.__version__,
        "threads": args.threads,
        "device": torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu",
        "mode": mode,
        "image": [args.height, args.width],
        "levels": shapes,
        "batch": args.batch,
        "repeats": args.repeats,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"environment": environment, "results": rows}, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
