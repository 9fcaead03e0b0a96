"""`maskdino score`: parses, prints the tables, writes the same numbers as the library, fails clearly."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskdino.cli import score
from maskdino.evaluation import evaluate_coco


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="maskdino")
    score.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_coco(eval_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    fixture = eval_data / "coco_eval_fixture"
    gt, results = (
        fixture / "instances_val2014_100.json",
        fixture / "instances_val2014_fakesegm100_results.json",
    )
    output = tmp_path / "out" / "coco.json"
    args = _parse(
        [
            "score",
            "coco",
            "--gt",
            str(gt),
            "--results",
            str(results),
            "--iou-types",
            "segm",
            "--output",
            str(output),
        ]
    )
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "| segm | 31.955 | 56.229 | 29.893 | 38.737 | 31.018 | 32.693 |" in printed
    assert json.loads(output.read_text()) == evaluate_coco(gt, results, iou_types=("segm",))


def test_coco_bad_results(eval_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"image_id": 1, "category_id": 1, "score": 0.5, "bbox": [0, 0, 1, 1]}]))
    gt = eval_data / "coco_eval_fixture" / "instances_val2014_100.json"
    args = _parse(["score", "coco", "--gt", str(gt), "--results", str(results), "--iou-types", "bbox"])
    assert args.func(args) == 2
    assert "maskdino score coco: error:" in capsys.readouterr().err


def test_panoptic(eval_data: Path, capsys: pytest.CaptureFixture) -> None:
    folder = eval_data.parent / "pipeline" / "coco_panoptic"
    json_file, pngs = str(folder / "panoptic_val2017.json"), str(folder / "panoptic_val2017")
    args = _parse(
        [
            "score",
            "panoptic",
            "--gt-json",
            json_file,
            "--gt-dir",
            pngs,
            "--pred-json",
            json_file,
            "--pred-dir",
            pngs,
        ]
    )
    assert args.func(args) == 0
    assert "| All    | 100.000 | 100.000 | 100.000 | 8 |" in capsys.readouterr().out


def test_semantic(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for folder, labels in (("gt", [[0, 0, 1], [1, 2, 255]]), ("pred", [[0, 1, 1], [1, 2, 0]])):
        (tmp_path / folder).mkdir()
        Image.fromarray(np.array(labels, dtype=np.uint8)).save(tmp_path / folder / "x.png")
    names = tmp_path / "names.txt"
    names.write_text("road\nsky\ncar\n")
    dirs = ["--pred-dir", str(tmp_path / "pred"), "--gt-dir", str(tmp_path / "gt")]
    options = [
        "--num-classes",
        "3",
        "--class-names",
        str(names),
        "--per-class",
        "--output",
        str(tmp_path / "m.json"),
    ]
    args = _parse(["score", "semantic", *dirs, *options])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "| semantic | 72.222 | 66.667 | 83.333 | 80.000 |" in printed
    assert "| sky   |  66.667 | 100.000 |" in printed
    assert json.loads((tmp_path / "m.json").read_text())["IoU-road"] == pytest.approx(50.0)
