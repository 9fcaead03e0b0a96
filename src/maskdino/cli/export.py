"""`maskdino export --config ... --weights ... --format onnx --output model.onnx`: the raw network as ONNX,
checked against PyTorch with onnxruntime (relative L2 of every output <= 1e-3)."""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from maskdino.checkpoints.official import CheckpointMismatchError
from maskdino.data.image_io import load_rgb_image
from maskdino.export.onnx import compare_with_pytorch, default_input_size, export_onnx, prepare_input
from maskdino.predictor import load_model
from maskdino.utils.file_access import check_output_file

TOLERANCE = 1e-3


def register(sub) -> None:
    parser = sub.add_parser("export", help="export the network to ONNX (fixed input size) and verify it")
    parser.add_argument(
        "--config", help="preset name or official YAML path (default: the one stored in --weights)"
    )
    parser.add_argument(
        "--weights", help="official .pth or our .safetensors (none: random weights, with a warning)"
    )
    parser.add_argument("--format", default="onnx", choices=("onnx",), help="export format (default: onnx)")
    parser.add_argument("--output", required=True, help="output .onnx file")
    parser.add_argument("--height", type=int, help="input height (default: min_size_test rounded up to 32)")
    parser.add_argument("--width", type=int, help="input width (default: max_size_test rounded up to 32)")
    parser.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's)")
    parser.add_argument("--image", help="verify on this image (default: a seeded random input)")
    parser.add_argument("--no-verify", action="store_true", help="skip the onnxruntime comparison")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_output_file(args.output)
    try:
        cfg, model = load_model(args.config, args.weights)
    except CheckpointMismatchError as err:
        print(f"maskdino export: error: {err}", file=sys.stderr)
        return 2
    default_height, default_width = default_input_size(cfg, model.size_divisibility)
    height, width = args.height or default_height, args.width or default_width
    path = export_onnx(model, args.output, height, width, args.opset)
    print(f"wrote {path}: input 'images' [1, 3, {height}, {width}] (normalised, zero-padded RGB)")
    if args.no_verify:
        return 0
    if args.image:
        image, _ = load_rgb_image(args.image)
        batch, _ = prepare_input(image, cfg, height, width)
    else:
        batch = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(0)).numpy()
    errors = compare_with_pytorch(path, model, batch.astype(np.float32))
    print("onnxruntime vs PyTorch, relative L2: " + ", ".join(f"{k} {v:.2e}" for k, v in errors.items()))
    if max(errors.values()) > TOLERANCE:
        print(f"maskdino export: error: outputs differ by more than {TOLERANCE}", file=sys.stderr)
        return 1
    return 0
