"""The training loop's outputs and its failure modes; fine-tuning onto another class count; the CLI."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import pytest
import torch
import yaml

from maskdino.build import build_model
from maskdino.checkpoints.load import load_weights
from maskdino.checkpoints.native import read_weights, save_weights
from maskdino.checkpoints.official import CheckpointMismatchError
from maskdino.cli.train import register
from maskdino.engine import train
from maskdino.model import MaskDINO

from .conftest import TINY, tiny_config

CLASS_HEADS = ["predictor.class_embed.bias", "predictor.class_embed.weight", "predictor.label_enc.weight"]


def _three_class_json(coco_dir: Path, path: Path) -> Path:
    """The fixture reduced to bottle, chair and sink (ids 44, 62, 81)."""
    data = json.loads((coco_dir / "instances.json").read_text())
    keep = {44, 62, 81}
    data["categories"] = [c for c in data["categories"] if c["id"] in keep]
    data["annotations"] = [a for a in data["annotations"] if a["category_id"] in keep]
    path.write_text(json.dumps(data))
    return path


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["train", *argv])
    return args.func(args)


def test_fine_tuning_load_reinitialises_only_the_class_heads(
    coco_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg80 = tiny_config(coco_dir, tmp_path)
    pretrained = build_model(cfg80)
    save_weights(tmp_path / "coco.safetensors", pretrained, cfg80)
    cfg3 = tiny_config(coco_dir, tmp_path, "model.num_classes=3")
    model = build_model(cfg3)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    with caplog.at_level(logging.WARNING, logger="maskdino.checkpoints"):
        load_weights(model, tmp_path / "coco.safetensors", reinit_class_heads=True)
    assert f"re-initialised {', '.join(CLASS_HEADS)};" in caplog.text
    loaded, source = model.state_dict(), pretrained.state_dict()
    for key in loaded:
        expected = fresh[key] if key in CLASS_HEADS else source[key]
        assert torch.equal(loaded[key], expected), key
    # anything else that differs is still an error naming the tensor
    other = build_model(tiny_config(coco_dir, tmp_path, "model.num_classes=3", "model.decoder.hidden_dim=32"))
    with pytest.raises(CheckpointMismatchError, match=r"shape mismatch(.|\n)*predictor\.bbox_embed"):
        load_weights(other, tmp_path / "coco.safetensors", reinit_class_heads=True)


def test_custom_dataset_fine_tune_and_resume_through_the_cli(
    coco_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg80 = tiny_config(coco_dir, tmp_path)
    save_weights(tmp_path / "coco.safetensors", build_model(cfg80), cfg80)
    train_json = _three_class_json(coco_dir, tmp_path / "three.json")
    out = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="maskdino"):
        rc = _cli(
            "--config", "demo", "--output", str(out), "--train-json", str(train_json),
            "--train-images", str(coco_dir), "--weights", str(tmp_path / "coco.safetensors"), "--no-progress",
            *TINY, "solver.max_iter=2", "solver.log_period=1",
        )  # fmt: skip
    assert rc == 0
    assert "3 classes from the json (bottle, chair, sink)" in caplog.text
    assert (
        "re-initialised predictor.class_embed.bias, predictor.class_embed.weight, predictor.label_enc.weight"
        in caplog.text
    )
    assert "global batch 1 = 1 process x 1 image x 1 accumulation step" in caplog.text
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["model"]["num_classes"] == 3 and saved["data"]["class_names"] == ["bottle", "chair", "sink"]
    assert saved["model"]["thing_classes"] == [0, 1, 2] and saved["solver"]["max_iter"] == 2
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["iter"] for line in lines] == [1, 2]
    assert {"loss", "lr", "loss_ce", "loss_mask_dn", "data_time", "step_time"} <= set(lines[0])
    assert lines[0]["loss"] == pytest.approx(sum(v for k, v in lines[0].items() if k.startswith("loss_")))
    assert list(out.glob("events.out.tfevents.*"))
    weights, stored_cfg = read_weights(out / "model_final.safetensors")
    assert weights["predictor.class_embed.weight"].shape[0] == 3 and stored_cfg.model.num_classes == 3

    # --resume without --config reads the run's config.yaml; one more iteration on top of the checkpoint
    assert _cli("--output", str(out), "--resume", "--no-progress", "solver.max_iter=3") == 0
    assert [json.loads(line)["iter"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [
        1,
        2,
        3,
    ]


def test_non_finite_loss_names_the_iteration_and_the_last_checkpoint(
    coco_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forward = MaskDINO.forward
    calls = []

    def nan_on_third_call(self, images, targets=None, output_sizes=None):
        losses = forward(self, images, targets, output_sizes)
        calls.append(1)
        if len(calls) == 3:
            losses["loss_dice_1"] = losses["loss_dice_1"] * float("nan")
        return losses

    monkeypatch.setattr(MaskDINO, "forward", nan_on_third_call)
    cfg = tiny_config(coco_dir, tmp_path, "solver.max_iter=5", "solver.checkpoint_period=2")
    with pytest.raises(FloatingPointError, match=r"iteration 3: loss_dice_1 .*checkpoint_0000002\.pt"):
        train(cfg, progress=False)


def test_wrong_data_root_is_an_error_naming_what_was_looked_for(coco_dir: Path, tmp_path: Path) -> None:
    cfg = tiny_config(
        coco_dir,
        tmp_path / "out",
        "data.train_json=none",
        "data.train_images=none",
        f"data.root={tmp_path / 'nowhere'}",
    )
    with pytest.raises(FileNotFoundError, match="nowhere"):
        train(cfg, progress=False)
    cfg.data.root = str(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"coco/annotations/instances_train2017\.json"):
        train(cfg, progress=False)


def test_periodic_evaluation_reports_ap_and_leaves_training_unchanged(coco_dir: Path, tmp_path: Path) -> None:
    val = (f"data.val_json={coco_dir / 'instances.json'}", f"data.val_images={coco_dir}")
    steps = ("solver.max_iter=4", "solver.log_period=2", "input.min_size_test=96", "input.max_size_test=160")
    evaluated = train(
        tiny_config(coco_dir, tmp_path / "eval", *steps, *val, "solver.eval_period=2"), progress=False
    )
    plain = train(tiny_config(coco_dir, tmp_path / "plain", *steps), progress=False)
    assert "bbox/AP" in evaluated.eval_results and "segm/AP" in evaluated.eval_results
    lines = [json.loads(line) for line in (tmp_path / "eval" / "metrics.jsonl").read_text().splitlines()]
    assert [line["iter"] for line in lines if "eval/segm/AP" in line] == [2, 4]
    assert (tmp_path / "eval" / "eval_0000002" / "metrics.json").is_file()
    # evaluating draws from the RNG (data loader seeds) but restores it: the training is the same
    a, _ = read_weights(evaluated.final_weights)
    b, _ = read_weights(plain.final_weights)
    assert all(torch.equal(a[k], b[k]) for k in a)
