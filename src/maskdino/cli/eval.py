"""`maskdino eval`: predict a test set with given weights and print/write the standard metrics."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from maskdino.build import build_model
from maskdino.checkpoints.load import load_weights, weights_config
from maskdino.engine.evaluator import evaluate_model
from maskdino.presets import get_config


def register(sub) -> None:
    parser = sub.add_parser("eval", help="evaluate weights on a dataset (COCO AP / PQ / mIoU)")
    parser.add_argument(
        "--config", help="preset or official YAML path (default: the config that comes with --weights)"
    )
    parser.add_argument(
        "--weights",
        required=True,
        help="registry name (`maskdino zoo`), save_pretrained folder, our .safetensors, a training checkpoint "
        "or an official .pth",
    )
    parser.add_argument("--data-root", help="folder with the standard datasets (default $MASKDINO_DATASETS)")
    parser.add_argument("--val-json", help="custom COCO-format annotation json")
    parser.add_argument("--val-images", help="image folder of --val-json")
    parser.add_argument("--output", default="runs/eval", help="where metrics.json and results files go")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("overrides", nargs="*", help="config overrides key=value")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = weights_config(args.weights) if args.config is None else get_config(args.config)
    if cfg is None:
        raise ValueError(f"{args.weights} does not say which model it holds: pass --config <preset>")
    overrides = list(args.overrides)
    if args.data_root:
        overrides.append(f"data.root={args.data_root}")
    if args.val_json:
        overrides += [
            f"data.val_json={args.val_json}",
            f"data.val_images={args.val_images or Path(args.val_json).parent}",
        ]
    cfg = cfg.apply_overrides(overrides)
    model = load_weights(build_model(cfg), args.weights).to(args.device)
    evaluate_model(model, cfg, output_dir=args.output, batch_size=args.batch_size)  # logs the table
    print(f"metrics written to {Path(args.output) / 'metrics.json'}")
    return 0
