"""`maskdino eval`: predict a test set with given weights and print/write the standard metrics.

The data is a standard test set (`--data-root`) or your own files, with the flags of `maskdino train`:
COCO instances (`--val-json --val-images`: box and mask AP, or box AP alone for boxes-only annotations;
`--iou-types` chooses), COCO panoptic (`--val-json --val-images --val-masks`: PQ, SQ, RQ for things and
stuff) or a semantic folder (`--val-images --val-masks [--classes]`: mIoU, fwIoU, pixel accuracy and
per-class IoU). Results carry the dataset's own category ids.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from maskdino.build import build_model
from maskdino.checkpoints.download import resolve_weights
from maskdino.checkpoints.load import load_weights, weights_config
from maskdino.cli.dataset_flags import add_dataset_arguments, apply_dataset_arguments
from maskdino.cli.report import metric_tables
from maskdino.config_validation import validate_config
from maskdino.data.catalog import build_dataset
from maskdino.data.task import adopt_dataset
from maskdino.devices import resolve_device
from maskdino.engine.evaluator import evaluate_model
from maskdino.evaluation.coco import IOU_TYPES
from maskdino.presets import get_config
from maskdino.utils.file_access import check_output_dir


def register(sub) -> None:
    parser = sub.add_parser("eval", help="evaluate weights on a dataset (COCO AP / PQ / mIoU)")
    parser.add_argument(
        "--config",
        help="preset, official YAML path or a run's config.yaml (default: the config that comes with --weights)",
    )
    parser.add_argument(
        "--weights",
        required=True,
        help="registry name (`maskdino zoo`), save_pretrained folder, our .safetensors, a training checkpoint "
        "or an official .pth",
    )
    add_dataset_arguments(parser, ("val",))
    parser.add_argument(
        "--iou-types",
        nargs="+",
        choices=IOU_TYPES,
        help="COCO AP to report for instance data (default: bbox and segm, or bbox alone for boxes-only data)",
    )
    parser.add_argument("--output", default="runs/eval", help="where metrics.json and results files go")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: the GPU if there is one, else cpu)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("overrides", nargs="*", help="config overrides key=value")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    check_output_dir(args.output)
    resolve_weights(args.weights)  # a missing file or failed download stops here, before any work
    cfg = weights_config(args.weights) if args.config is None else get_config(args.config)
    if cfg is None:
        raise ValueError(f"{args.weights} does not say which model it holds: pass --config <preset>")
    cfg = cfg.apply_overrides(list(args.overrides))
    apply_dataset_arguments(cfg, args, ("val",))
    validate_config(cfg, training=False)
    dataset = build_dataset(cfg, "test")
    adopt_dataset(cfg, dataset, "test")  # post-processing of the dataset's task, class count checked
    model = load_weights(build_model(cfg), args.weights).to(device)
    metrics = evaluate_model(
        model, cfg, dataset, output_dir=args.output, batch_size=args.batch_size, iou_types=args.iou_types
    )
    print(metric_tables(metrics))
    print(f"metrics written to {Path(args.output) / 'metrics.json'}")
    return 0
