"""`maskdino train --config PRESET --output DIR [key=value ...]`: train on a standard dataset or your own.

Standard datasets are found under `--data-root` (or $MASKDINO_DATASETS) in the official layouts; your
own data is described by its files, and its format is recognised from them (docs/datasets.md): COCO
instances (`--train-json --train-images`, boxes only or mixed too), COCO panoptic (`--train-json
--train-images --train-masks`) or a semantic folder (`--train-images --train-masks --classes`), with the
same `--val-*` flags for evaluation during and at the end of training. Under `torchrun` every process runs
this.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from maskdino.cli.dataset_flags import add_dataset_arguments, apply_dataset_arguments
from maskdino.config import Config
from maskdino.presets import get_config


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
    add_dataset_arguments(parser, ("train", "val"))
    parser.add_argument(
        "--weights",
        help="initial weights (fine-tuning; class heads re-initialised if the class count differs): registry "
        "name (`maskdino zoo`), save_pretrained folder, our .safetensors or an official .pth",
    )
    parser.add_argument(
        "--backbone-weights",
        help="pretrained backbone file the recipe starts from (R-50.pkl, torchvision/Swin/MAE .pth); "
        "sets model.backbone.weights (--weights and --resume replace it)",
    )
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
    cfg = get_config(spec, list(args.overrides))
    cfg.output_dir = args.output
    if args.backbone_weights is not None:
        cfg.model.backbone.weights = args.backbone_weights
    apply_dataset_arguments(cfg, args, ("train", "val"))
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
