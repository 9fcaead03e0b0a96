"""Where one inference call of a preset spends its time: stages, modules inside them, and top operators.

In one process (for time, not memory; `maskdino bench` measures memory in fresh processes): after warm-up,
`repeats` passes timed stage by stage (`maskdino.benchmark.stage_times`), with forward hooks summing the
time spent inside groups of modules (the encoder's deformable attention and FFN, the decoder layers and
their deformable attention); with `--profile`, one more pass under `torch.profiler`, its operators ranked by
self time. Prints tables and writes JSON.

    python -m maskdino.benchmark.stages --preset r50_ins_4s --profile
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch import nn

from maskdino import build_model, get_config
from maskdino.benchmark import STAGES, demo_photos, stage_times, synchronize, system_info
from maskdino.evaluation.table import format_table
from maskdino.layers.ms_deform_attn import MSDeformAttn


class ModuleClock:
    """Wall seconds spent inside groups of modules, summed over their calls, via forward hooks.

    Times are taken at module boundaries, so on CUDA they only mean something with CUDA_LAUNCH_BLOCKING=1.
    """

    def __init__(self, groups: dict[str, list[nn.Module]]) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._started: dict[int, float] = {}
        self._handles = []
        for name, modules in groups.items():
            for module in modules:
                self._handles.append(module.register_forward_pre_hook(self._enter))
                self._handles.append(
                    module.register_forward_hook(lambda m, i, o, name=name: self._exit(m, name))
                )

    def _enter(self, module: nn.Module, inputs) -> None:
        self._started[id(module)] = time.perf_counter()

    def _exit(self, module: nn.Module, name: str) -> None:
        self.seconds[name] += time.perf_counter() - self._started.pop(id(module))

    def take(self) -> dict[str, float]:
        seconds, self.seconds = dict(self.seconds), defaultdict(float)
        return seconds

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def module_groups(model: nn.Module) -> dict[str, list[nn.Module]]:
    """Groups worth separating in Mask DINO: the deformable encoder, its attention and FFN, the decoder."""
    encoder = model.pixel_decoder.encoder
    decoder = model.predictor.decoder
    return {
        "encoder layers": [encoder],
        "encoder deformable attention": [m for m in encoder.modules() if isinstance(m, MSDeformAttn)],
        "encoder FFN linears": [m for n, m in encoder.named_modules() if n.endswith(("linear1", "linear2"))],
        "decoder layers": [decoder],
        "decoder deformable attention": [m for m in decoder.modules() if isinstance(m, MSDeformAttn)],
        "mask embedding MLP": [model.predictor.mask_embed],
    }


def top_operators(model: nn.Module, images: list[torch.Tensor], top: int) -> list[dict]:
    """The `top` operators of one full call by self CPU time (ms), with their share of the call."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if images[0].is_cuda else [])
    with profile(activities=activities) as prof:
        model(images)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    ranked = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    return [
        {
            "op": e.key,
            "calls": e.count,
            "self_cpu_ms": e.self_cpu_time_total / 1e3,
            "share": e.self_cpu_time_total / total,
        }
        for e in ranked
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m maskdino.benchmark.stages",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--preset", default="r50_ins_4s")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--height", type=int, default=800)
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="also rank operators with torch.profiler")
    parser.add_argument("--top", type=int, default=20, help="operators to list with --profile")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/out/stages.json"))
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = build_model(get_config(args.preset)).eval().to(args.device)
    images, photos = demo_photos(args.batch, args.height, args.width)
    images = [image.to(args.device) for image in images]
    passes, modules = [], []
    group_modules = module_groups(model)
    with torch.inference_mode():
        for _ in range(args.warmup):
            stage_times(model, images)
        clock = ModuleClock(group_modules)
        for _ in range(args.repeats):
            passes.append(stage_times(model, images))
            modules.append(clock.take())
        clock.remove()
        operators = top_operators(model, images, args.top) if args.profile else []
    synchronize(args.device)

    stages = {k: statistics.median(p[k] for p in passes) for k in STAGES}
    groups = {k: statistics.median(m.get(k, 0.0) for m in modules) for k in group_modules}
    total = sum(stages.values())
    print(
        f"{args.preset}, batch {args.batch}, {args.height}x{args.width}, {args.device}, {args.threads} threads, "
        f"median of {args.repeats} passes after {args.warmup} warm-up"
    )
    print(format_table(["stage", "s", "share"], [[k, v, f"{v / total:.0%}"] for k, v in stages.items()]))
    print()
    print(
        format_table(
            ["inside modules", "s", "share"], [[k, v, f"{v / total:.0%}"] for k, v in groups.items()]
        )
    )
    if operators:
        print()
        body = [[o["op"], o["calls"], o["self_cpu_ms"], f"{o['share']:.0%}"] for o in operators]
        print(format_table(["operator (one full call)", "calls", "self CPU ms", "share"], body, ".1f"))
    report = {
        "system": system_info(args.threads, args.device),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "photos": photos,
        "stages_median_s": stages,
        "stages_all_s": {k: [p[k] for p in passes] for k in STAGES},
        "modules_median_s": groups,
        "top_operators": operators,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
