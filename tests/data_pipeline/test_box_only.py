"""Box-only and mixed COCO jsons: annotations without `segmentation` become targets without a mask, which
the matcher and the criterion match and train on class and box only; a config trains a detector."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from maskdino.config import Config, InputConfig
from maskdino.data import DatasetMapper, adopt_dataset, build_dataset, load_coco_instances
from maskdino.losses.criterion import SetCriterion
from maskdino.losses.matcher import HungarianMatcher

from .conftest import record_of


def _strip_masks(coco_dir: Path, path: Path, keep_mask: set[int] = frozenset()) -> Path:
    """The fixture json with `segmentation` removed from every annotation not in `keep_mask`."""
    data = json.loads((coco_dir / "instances.json").read_text())
    for ann in data["annotations"]:
        if ann["id"] not in keep_mask:
            del ann["segmentation"]
    path.write_text(json.dumps(data))
    return path


def test_box_only_annotations_become_targets_without_masks(coco_dir: Path, tmp_path: Path) -> None:
    dataset = load_coco_instances(_strip_masks(coco_dir, tmp_path / "boxes.json"), coco_dir)
    assert dataset.box_only_annotations == 78 and dataset.bad_input["crowd"] == 1
    record = record_of(dataset, 37777)
    assert all(a["segmentation"] is None for a in record["annotations"])
    # evaluation size = original size: each target box is the json's box (xywh -> xyxy), clipped
    cfg = dataclasses.replace(InputConfig(), min_size_test=230, max_size_test=352)
    target = DatasetMapper(cfg, dataset.info, is_train=False, with_targets=True)(
        record, np.random.default_rng(0)
    )["target"]
    expected = torch.tensor([a["bbox"] for a in record["annotations"] if not a["iscrowd"]])
    torch.testing.assert_close(target["boxes"], expected)
    assert not target["has_mask"].any() and not target["masks"].any()
    # LSJ training: the box moves with the image as the polygon of its corners
    train = DatasetMapper(dataclasses.replace(InputConfig(), image_size=256), dataset.info, is_train=True)
    sample = train(record, np.random.default_rng(3))["target"]
    assert (
        len(sample["labels"]) > 0 and sample["has_mask"].dtype == torch.bool and not sample["has_mask"].any()
    )
    boxes = sample["boxes"]
    assert (boxes[:, 2:] > boxes[:, :2]).all() and boxes.min() >= 0 and boxes.max() <= 256


def test_mixed_json_keeps_each_annotations_mask_flag(coco_dir: Path, tmp_path: Path) -> None:
    original = json.loads((coco_dir / "instances.json").read_text())
    first_two = {a["id"] for a in original["annotations"] if a["image_id"] == 37777}
    first_two = set(sorted(first_two)[:2])
    dataset = load_coco_instances(_strip_masks(coco_dir, tmp_path / "mixed.json", first_two), coco_dir)
    record = record_of(dataset, 37777)
    cfg = dataclasses.replace(InputConfig(), min_size_test=230, max_size_test=352)
    target = DatasetMapper(cfg, dataset.info, is_train=False, with_targets=True)(
        record, np.random.default_rng(0)
    )["target"]
    has_mask = [a["segmentation"] is not None for a in record["annotations"] if not a["iscrowd"]]
    assert target["has_mask"].tolist() == has_mask and sum(has_mask) == 2
    assert (target["masks"].flatten(1).any(1) == target["has_mask"]).all()


def test_config_becomes_a_detector_for_boxes_only(coco_dir: Path, tmp_path: Path, caplog) -> None:
    boxes = _strip_masks(coco_dir, tmp_path / "boxes.json")
    cfg = Config().apply_overrides([f"data.train_json={boxes}", f"data.train_images={coco_dir}"])
    cfg.model.decoder.initialize_box_type = "mask2box"
    with caplog.at_level("INFO", logger="maskdino.data"):
        adopt_dataset(cfg, build_dataset(cfg, "train"), "train")
    assert cfg.model.decoder.initialize_box_type == "no" and cfg.model.decoder.dn == "standard"
    assert "boxes only: training Mask DINO as a detector" in caplog.text
    assert cfg.data.class_ids[:3] == (1, 2, 3) and cfg.data.class_names[0] == "person"
    # a mixed json stays a segmentation model; the log counts the annotations without a mask
    some_ids = {a["id"] for a in json.loads(boxes.read_text())["annotations"][:5]}
    mixed = _strip_masks(coco_dir, tmp_path / "mixed.json", some_ids)
    cfg = Config().apply_overrides([f"data.train_json={mixed}", f"data.train_images={coco_dir}"])
    cfg.model.decoder.initialize_box_type = "mask2box"
    caplog.clear()
    with caplog.at_level("INFO", logger="maskdino.data"):
        adopt_dataset(cfg, build_dataset(cfg, "train"), "train")
    assert cfg.model.decoder.initialize_box_type == "mask2box" and cfg.model.decoder.dn == "seg"
    assert "72 annotations without a mask train their class and box only" in caplog.text


def _criterion() -> SetCriterion:
    matcher = HungarianMatcher(4.0, 5.0, 2.0, 5.0, 5.0, num_points=64)
    return SetCriterion(num_classes=3, matcher=matcher, weight_dict={}, num_points=64)


def _outputs(queries: int = 4) -> dict:
    generator = torch.Generator().manual_seed(0)
    return {
        "pred_logits": torch.randn(1, queries, 3, generator=generator),
        "pred_boxes": torch.rand(1, queries, 4, generator=generator) * 0.5 + 0.25,
        "pred_masks": torch.randn(1, queries, 8, 8, generator=generator, requires_grad=True),
    }


def _targets(has_mask: list[bool]) -> list[dict]:
    masks = torch.zeros(len(has_mask), 32, 32, dtype=torch.bool)
    masks[0, 4:20, 4:20] = True
    boxes = torch.tensor([[0.4, 0.4, 0.5, 0.5], [0.6, 0.6, 0.2, 0.3]])[: len(has_mask)]
    labels = torch.tensor([0, 2])[: len(has_mask)]
    return [{"labels": labels, "boxes": boxes, "masks": masks, "has_mask": torch.tensor(has_mask)}]


def test_matcher_uses_no_mask_cost_for_box_only_targets() -> None:
    outputs, matcher = _outputs(), _criterion().matcher
    torch.manual_seed(0)
    mixed = matcher.cost_matrix(outputs, _targets([True, False])[0], 0)
    class_and_box = matcher.cost_matrix(outputs, _targets([True, False])[0], 0, costs=("cls", "box"))
    torch.testing.assert_close(mixed[:, 1], class_and_box[:, 1])  # the box-only column
    assert not torch.allclose(mixed[:, 0], class_and_box[:, 0])  # the masked one has its mask cost


def test_criterion_leaves_the_masks_of_box_only_targets_out() -> None:
    criterion, outputs = _criterion(), _outputs()
    indices = [(torch.tensor([2, 0]), torch.tensor([0, 1]))]
    torch.manual_seed(1)
    mixed = criterion.loss_masks(outputs, _targets([True, False]), indices, 2.0)
    only_masked = [{k: v[:1] for k, v in _targets([True, False])[0].items()}]
    torch.manual_seed(1)
    alone = criterion.loss_masks(outputs, only_masked, [(torch.tensor([2]), torch.tensor([0]))], 2.0)
    for key in ("loss_mask", "loss_dice"):
        torch.testing.assert_close(mixed[key], alone[key])
        assert mixed[key] > 0
    none = criterion.loss_masks(outputs, _targets([False, False]), indices, 2.0)
    assert none["loss_mask"].item() == 0.0 and none["loss_dice"].item() == 0.0
    none["loss_mask"].backward()  # still in the graph (every parameter gets a gradient under DDP)
    assert outputs["pred_masks"].grad is not None


@pytest.mark.parametrize("has_mask", [[True, False], [False, False]])
def test_full_criterion_runs_on_box_only_targets(has_mask: list[bool]) -> None:
    losses = _criterion()(_outputs(), _targets(has_mask))
    assert {"loss_ce", "loss_mask", "loss_dice", "loss_bbox", "loss_giou"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    assert (losses["loss_mask"] > 0) == has_mask[0]
