"""`maskdino train --config PRESET --output DIR [key=value ...]`: train on a standard or a custom dataset.

Standard datasets are found under `--data-root` (or $MASKDINO_DATASETS) in the official layouts; a custom
COCO-format dataset is `--train-json FILE --train-images DIR` (classes from the json), optionally with
`--val-json FILE --val-images DIR` for periodic evaluation. Under `torchrun` every process runs this.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from maskdino.config import Config
from maskdino.presets import get_config, resolve_preset


def register(sub) -> None:
    parser = sub.add_parser("train", help="train a model (one process, or many under torchrun)")
    parser.add_argument(
        "--config",
        help="preset name, official YAML path, or a config.yaml written by an earlier run "
        "(default with --resume: <output>/config.yaml)",
    )
    parser.add_argument(
        "--output", required=True, help="output folder: config.yaml, checkpoints, metrics, events"
    )
    parser.add_argument(
        "--data-root", help="folder holding the standard datasets (default: $MASKDINO_DATASETS)"
    )
    parser.add_argument("--train-json", help="custom COCO-format training annotations")
    parser.add_argument("--train-images", help="image folder of --train-json")
    parser.add_argument("--val-json", help="custom COCO-format validation annotations")
    parser.add_argument("--val-images", help="image folder of --val-json")
    parser.add_argument("--weights", help="initial weights: official .pth or our .safetensors (fine-tuning)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --output from its newest checkpoint that loads",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the previous run's files in --output and start over (without it, or --resume, "
        "a folder holding a run is refused)",
    )
    parser.add_argument("--device", help="torch device (default: this process's GPU, else CPU)")
    parser.add_argument("--no-progress", action="store_true", help="log lines instead of a progress bar")
    parser.add_argument("overrides", nargs="*", help="config overrides key=value, e.g. solver.max_iter=200")
    parser.set_defaults(func=run)


def load_config(spec: str, overrides: list[str]) -> Config:
    """A preset (our name or official YAML path), else a config.yaml file written by `maskdino train`."""
    path = Path(spec)
    try:
        resolve_preset(spec)
    except KeyError:
        if not path.is_file():
            raise
    else:
        return get_config(spec, overrides)
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a config mapping (a config.yaml written by maskdino train)")
    return Config.from_dict(data).apply_overrides(overrides)


def build_config(args: argparse.Namespace) -> Config:
    spec = args.config
    if spec is None:
        saved = Path(args.output) / "config.yaml"
        if not (args.resume and saved.is_file()):
            raise ValueError(
                "--config is required (a preset name or a config.yaml), except with --resume "
                f"when {saved} exists"
            )
        spec = str(saved)
    cfg = load_config(spec, list(args.overrides))
    cfg.output_dir = args.output
    if args.data_root:
        cfg.data.root = args.data_root
    if bool(args.train_json) != bool(args.train_images):
        raise ValueError("--train-json and --train-images go together (annotations and their image folder)")
    if bool(args.val_json) != bool(args.val_images):
        raise ValueError("--val-json and --val-images go together (annotations and their image folder)")
    if args.train_json:
        cfg.data.train_json, cfg.data.train_images = args.train_json, args.train_images
    if args.val_json:
        cfg.data.val_json, cfg.data.val_images = args.val_json, args.val_images
    return cfg


def run(args: argparse.Namespace) -> int:
    from maskdino.engine.trainer import train

    cfg = build_config(args)
    try:
        result = train(
            cfg,
            resume=args.resume,
            overwrite=args.overwrite,
            weights=args.weights,
            device=args.device,
            progress=not args.no_progress,
        )
    except FloatingPointError as err:
        print(f"maskdino train: {err}", file=sys.stderr)
        return 1
    if result.final_weights is not None:
        print(f"trained {result.iterations} iterations; weights: {result.final_weights}")
    return 0
