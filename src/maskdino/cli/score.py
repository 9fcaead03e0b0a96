"""`maskdino score coco|panoptic|semantic`: score results files from any source, print tables, write JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from maskdino.cli.report import coco_tables, panoptic_table, semantic_tables
from maskdino.data.semantic import read_classes_file
from maskdino.evaluation.coco import BACKENDS, IOU_TYPES, evaluate_coco
from maskdino.evaluation.panoptic import evaluate_panoptic
from maskdino.evaluation.semantic import evaluate_semantic


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `score` command (with its coco / panoptic / semantic tasks) to a CLI's subparsers."""
    parser = subparsers.add_parser(
        "score",
        help="score results files: COCO box/mask AP, panoptic PQ, semantic mIoU",
        description="Score results files written by any model with the standard metrics. "
        "All numbers are percentages.",
    )
    tasks = parser.add_subparsers(dest="task", required=True, metavar="{coco,panoptic,semantic}")

    coco = tasks.add_parser("coco", help="COCO box and mask AP (pycocotools)")
    coco.add_argument("--gt", required=True, type=Path, help="COCO instances json (ground truth)")
    coco.add_argument("--results", required=True, type=Path, help="COCO results json (list of detections)")
    coco.add_argument("--iou-types", nargs="+", choices=IOU_TYPES, default=list(IOU_TYPES))
    coco.add_argument(
        "--backend", choices=BACKENDS, default="auto", help="auto: faster-coco-eval if installed"
    )
    coco.add_argument("--per-category", action="store_true", help="also print the AP of every category")

    panoptic = tasks.add_parser("panoptic", help="panoptic quality PQ / SQ / RQ (COCO panoptic API rules)")
    panoptic.add_argument("--gt-json", required=True, type=Path, help="COCO panoptic ground-truth json")
    panoptic.add_argument("--gt-dir", required=True, type=Path, help="folder of ground-truth panoptic PNGs")
    panoptic.add_argument("--pred-json", required=True, type=Path, help="panoptic predictions json")
    panoptic.add_argument("--pred-dir", required=True, type=Path, help="folder of predicted panoptic PNGs")

    semantic = tasks.add_parser("semantic", help="mIoU, fwIoU, mACC, pACC from label PNGs")
    semantic.add_argument("--pred-dir", required=True, type=Path, help="predicted label PNGs (0..C-1)")
    semantic.add_argument(
        "--gt-dir", required=True, type=Path, help="ground-truth label PNGs, same file names"
    )
    semantic.add_argument("--num-classes", required=True, type=int)
    semantic.add_argument("--ignore-label", type=int, default=255)
    semantic.add_argument(
        "--reduce-zero-label", action="store_true", help="ADE20K ground truth: 0 is ignored, labels drop by 1"
    )
    semantic.add_argument(
        "--class-names", type=Path, help="classes.txt: one class name per line, line i naming class i"
    )
    semantic.add_argument("--cityscapes", action="store_true", help="also report Cityscapes IoU and IoU_sup")
    semantic.add_argument("--per-class", action="store_true", help="also print the IoU of every class")

    for task in (coco, panoptic, semantic):
        task.add_argument("--output", type=Path, help="write the metrics to this JSON file")
    parser.set_defaults(func=run)


def _score_coco(args: argparse.Namespace) -> tuple[dict, str]:
    metrics = evaluate_coco(args.gt, args.results, iou_types=args.iou_types, backend=args.backend)
    return metrics, "\n\n".join(coco_tables(metrics, args.iou_types, args.per_category))


def _score_panoptic(args: argparse.Namespace) -> tuple[dict, str]:
    metrics = evaluate_panoptic(args.gt_json, args.gt_dir, args.pred_json, args.pred_dir)
    return metrics, panoptic_table(metrics)


def _score_semantic(args: argparse.Namespace) -> tuple[dict, str]:
    names = None
    if args.class_names is not None:
        names = list(read_classes_file(args.class_names))
    metrics = evaluate_semantic(
        args.pred_dir,
        args.gt_dir,
        args.num_classes,
        ignore_label=args.ignore_label,
        reduce_zero_label=args.reduce_zero_label,
        class_names=names,
        cityscapes=args.cityscapes,
    )
    tables = semantic_tables(metrics, per_class=args.per_class, cityscapes=args.cityscapes)
    return metrics, "\n\n".join(tables)


def run(args: argparse.Namespace) -> int:
    """Score, print the tables and optionally write JSON; 0 on success, 2 on bad input."""
    scorers = {"coco": _score_coco, "panoptic": _score_panoptic, "semantic": _score_semantic}
    try:
        metrics, text = scorers[args.task](args)
    except (ValueError, FileNotFoundError) as err:
        print(f"maskdino score {args.task}: error: {err}", file=sys.stderr)
        return 2
    print(text)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(metrics, indent=1) + "\n")
        print(f"metrics written to {args.output}")
    return 0
