"""`maskdino eval`: predict a test set with given weights and print/write the standard metrics."""

from __future__ import annotations

import argparse
from pathlib import Path

from maskdino.build import build_model
from maskdino.checkpoints.load import load_weights, stored_config
from maskdino.config_validation import validate_config
from maskdino.devices import resolve_device
from maskdino.engine.evaluator import evaluate_model
from maskdino.presets import get_config
from maskdino.utils.file_access import check_output_dir, check_readable


def register(sub) -> None:
    parser = sub.add_parser("eval", help="evaluate weights on a dataset (COCO AP / PQ / mIoU)")
    parser.add_argument(
        "--config", help="preset or official YAML path (default: the config stored in --weights)"
    )
    parser.add_argument(
        "--weights", required=True, help="our .safetensors, an official .pth or a training checkpoint"
    )
    parser.add_argument("--data-root", help="folder with the standard datasets (default $MASKDINO_DATASETS)")
    parser.add_argument("--val-json", help="custom COCO-format annotation json")
    parser.add_argument("--val-images", help="image folder of --val-json")
    parser.add_argument("--output", default="runs/eval", help="where metrics.json and results files go")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: the GPU if there is one, else cpu)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("overrides", nargs="*", help="config overrides key=value")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    check_readable(args.weights, "weights file")
    check_output_dir(args.output)
    cfg = stored_config(args.weights) if args.config is None else get_config(args.config)
    if cfg is None:
        raise ValueError(f"{args.weights} does not store a config: pass --config <preset>")
    overrides = list(args.overrides)
    if args.data_root:
        overrides.append(f"data.root={args.data_root}")
    if args.val_json:
        overrides += [
            f"data.val_json={args.val_json}",
            f"data.val_images={args.val_images or Path(args.val_json).parent}",
        ]
    cfg = validate_config(cfg.apply_overrides(overrides), training=False)
    model = load_weights(build_model(cfg), args.weights).to(device)
    evaluate_model(model, cfg, output_dir=args.output, batch_size=args.batch_size)  # logs the table
    print(f"metrics written to {Path(args.output) / 'metrics.json'}")
    return 0
