"""`maskdino export --weights ... --format onnx --output model.onnx`: the network with dynamic batch, height
and width, as ONNX (float32 or `--fp16`) or a `torch.export` program (`--format torch`, a .pt2 file),
checked against PyTorch on a real photo at three input shapes (see `maskdino.export.verify`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from maskdino.assets import demo_assets
from maskdino.checkpoints.pretrained import load_model
from maskdino.data.image_io import load_rgb_image
from maskdino.export import export_onnx, export_program, min_side, verification_batches
from maskdino.export.onnx import MAX_SIDE
from maskdino.export.verify import compare, compare_with_pytorch, pytorch_outputs
from maskdino.model import MaskDINO
from maskdino.utils.file_access import check_output_file

TOLERANCE = {"fp32": 1e-3, "fp16": 1e-2}
MAX_UNMATCHED = 0.05  # fp16: share of queries that may be selected differently (top-k boundary ties)
DEFAULT_PHOTO = "images/000000000802.jpg"  # a bundled COCO photo (landscape)


def register(sub) -> None:
    parser = sub.add_parser(
        "export", help="export the network (dynamic batch/height/width) to ONNX or torch.export and verify it"
    )
    parser.add_argument(
        "--config", help="preset name or official YAML path (default: the one stored in --weights)"
    )
    parser.add_argument(
        "--weights", help="official .pth or our .safetensors (none: random weights, with a warning)"
    )
    parser.add_argument(
        "--format",
        default="onnx",
        choices=("onnx", "torch"),
        help="onnx (default) or torch (a torch.export program saved with torch.export.save, .pt2)",
    )
    parser.add_argument("--output", required=True, help="output file (.onnx or .pt2)")
    parser.add_argument("--fp16", action="store_true", help="ONNX: float16 weights and compute (I/O float32)")
    parser.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's)")
    parser.add_argument("--image", help="verify on this photo (default: a bundled COCO photo)")
    parser.add_argument("--no-verify", action="store_true", help="skip the comparison with PyTorch")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.fp16 and args.format != "onnx":
        raise ValueError("--fp16 applies to --format onnx only")
    check_output_file(args.output)
    cfg, model = load_model(args.config, args.weights)
    if not isinstance(model, MaskDINO):
        raise ValueError(
            f"{cfg.name} is a {type(model).__name__}; export supports the Mask DINO and DI-MaskDINO presets "
            "(`maskdino presets` lists them)"
        )
    program = export_program(model)
    if args.format == "torch":
        path = Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.export.save(program, str(path))
    else:
        path = export_onnx(model, args.output, args.opset, args.fp16, program, args.verbose)
    divisor = model.size_divisibility
    print(
        f"wrote {path}: input 'images' [batch, 3, height, width] float32, height and width multiples of "
        f"{divisor} in [{min_side(model)}, {MAX_SIDE}] (normalised, zero-padded RGB; see docs/export.md)"
    )
    if args.no_verify:
        return 0
    photo, _ = load_rgb_image(args.image or demo_assets() / DEFAULT_PHOTO)
    batches = verification_batches(photo, cfg, divisor)
    precision = "fp16" if args.fp16 else "fp32"
    if args.format == "torch":
        exported = torch.export.load(str(path)).module()
        with torch.no_grad():
            errors = [
                compare([o.numpy() for o in exported(torch.from_numpy(b))], pytorch_outputs(model, b))
                for b in batches
            ]
        runtime = "torch.export"
    else:
        errors = compare_with_pytorch(path, model, batches, match=args.fp16)
        runtime = "onnxruntime"
    worst, unmatched_share = 0.0, 0.0
    for batch, error in zip(batches, errors):
        unmatched = error.pop("unmatched_queries", None)
        worst = max(worst, *error.values())
        shown = ", ".join(f"{k} {v:.2e}" for k, v in error.items())
        if unmatched is not None:  # fp16: compared on the queries both runs selected
            queries = batch.shape[0] * model.cfg.decoder.num_queries
            unmatched_share = max(unmatched_share, unmatched / queries)
            shown += f" ({unmatched:.0f} of {queries} queries selected differently)"
        print(f"{runtime} vs PyTorch at {list(batch.shape)}, relative L2: {shown}")
    if not np.isfinite(worst) or worst > TOLERANCE[precision] or unmatched_share > MAX_UNMATCHED:
        print(
            f"maskdino export: error: outputs differ by more than {TOLERANCE[precision]} ({precision})"
            + (f" or over {MAX_UNMATCHED:.0%} of the queries differ" if args.fp16 else ""),
            file=sys.stderr,
        )
        return 1
    return 0
