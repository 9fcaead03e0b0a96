"""Visualisation: instance overlays, panoptic/semantic colour maps with legends, training curves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from maskdino.visualize import (
    color,
    draw_instances,
    draw_panoptic,
    draw_result,
    draw_semantic,
    plot_training_curves,
)

ASTRONAUT = Path(__file__).resolve().parent / "data" / "astronaut.png"


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.asarray(Image.open(ASTRONAUT).convert("RGB").resize((160, 120)))


def instance_result() -> dict:
    masks = torch.zeros(3, 120, 160, dtype=torch.bool)
    masks[0, 10:50, 10:60] = True
    masks[1, 60:110, 80:150] = True
    masks[2, 0:5, 0:5] = True
    return {
        "boxes": torch.tensor([[10.0, 10, 60, 50], [80, 60, 150, 110], [0, 0, 5, 5]]),
        "labels": torch.tensor([0, 2, 1]),
        "scores": torch.tensor([0.9, 0.7, 0.2]),
        "masks": masks,
    }


def test_distinct_colours():
    colours = [color(i) for i in range(30)]
    assert len(set(colours)) == 30
    nearest = min(
        np.abs(np.subtract(a, b)).sum() for i, a in enumerate(colours[:10]) for b in colours[i + 1 : 10]
    )
    assert nearest > 60  # the first ten are easy to tell apart


def test_instances_masks_boxes_and_threshold(image):
    drawn = draw_instances(image, instance_result(), ["person", "bicycle", "car"], score_threshold=0.5)
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    inside_first, inside_second = drawn[30, 35].astype(int), drawn[85, 115].astype(int)
    blend = lambda rgb, px: px * 0.55 + np.array(rgb) * 0.45  # noqa: E731
    assert np.abs(inside_first - blend(color(0), image[30, 35])).max() <= 1
    assert np.abs(inside_second - blend(color(1), image[85, 115])).max() <= 1
    assert np.array_equal(drawn[:5, :5], image[:5, :5])  # the third instance is below the threshold
    assert np.array_equal(drawn[115:, :70], image[115:, :70])  # untouched away from instances and tags
    assert drawn[30, 10].tolist() == list(color(0))  # box outline / mask edge in the instance colour
    below = draw_instances(image, instance_result(), score_threshold=0.95)
    assert np.array_equal(below, image)


def test_instances_without_masks_and_numpy_input(image):
    result = {k: v.numpy() for k, v in instance_result().items() if k != "masks"}
    drawn = draw_instances(image, result, score_threshold=0.0)
    assert drawn[80, 80].tolist() == list(color(1))  # left edge of the second box
    with pytest.raises(ValueError, match="draw at the same size"):
        draw_instances(image[:60], instance_result())


def test_panoptic_colours_outlines_and_legend(image):
    segments = torch.zeros(120, 160, dtype=torch.int32)
    segments[:60] = 1  # stuff "sky" (class 2)
    segments[60:, :80] = 2  # thing "person" (class 0)
    segments[60:, 80:] = 3  # another person
    info = [
        {"id": 1, "category_id": 2, "isthing": False},
        {"id": 2, "category_id": 0, "isthing": True},
        {"id": 3, "category_id": 0, "isthing": True},
    ]
    drawn = draw_panoptic(image, {"segments": segments, "segments_info": info}, ["person", "car", "sky"])
    assert drawn.shape[0] == 120 and drawn.shape[1] > 160  # legend panel on the right
    assert np.abs(drawn[30, 40].astype(int) - (image[30, 40] * 0.4 + np.array(color(2)) * 0.6)).max() <= 1
    assert drawn[90, 79].tolist() == [255, 255, 255]  # outline between the two persons
    legend = drawn[:, 160:].reshape(-1, 3)
    for cls in (0, 2):
        assert (legend == color(cls)).all(1).any()  # a swatch per class present
    assert not (legend == color(1)).all(1).any()


def test_semantic_scores_or_labels_and_long_legends(image):
    scores = torch.zeros(30, 120, 160)
    for c in range(30):
        scores[c, (c * 4) : (c * 4 + 4)] = 1.0
    drawn = draw_semantic(image, scores)
    assert drawn.shape[1] > 160 and drawn.shape[0] >= 120
    assert np.array_equal(draw_semantic(image, scores.argmax(0).numpy()), drawn)
    legend = drawn[:, 160:].reshape(-1, 3)
    assert (legend == color(0)).all(1).any() and not (legend == color(25)).all(
        1
    ).any()  # 20 shown, "+10 more"


def test_draw_result_chooses_by_keys(image):
    result = instance_result()
    assert np.array_equal(draw_result(image, result), draw_instances(image, result))
    semantic = {"semantic": torch.rand(3, 120, 160)}
    assert np.array_equal(draw_result(image, semantic), draw_semantic(image, semantic["semantic"]))
    with pytest.raises(ValueError, match="cannot draw 'panoptic'"):
        draw_result(image, result, kind="panoptic")


def test_training_curves_png(tmp_path):
    lines = []
    for it in range(0, 200, 10):
        lines.append(
            {
                "iter": it,
                "loss": 50 - it / 10,
                "loss_ce": 4 - it / 100,
                "loss_mask": 2.0,
                "loss_mask_0": 3.0,
                "lr": 1e-4 * min(1, (it + 1) / 50),
            }
        )
    lines += [{"iter": 100, "bbox/AP": 1.5, "bbox/AP50": 4.0, "segm/AP": 1.0}, {"iter": 199, "bbox/AP": 3.0}]
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n\n")
    out = plot_training_curves(metrics, tmp_path / "plots" / "curves.png")
    with Image.open(out) as png:
        assert png.size == (800, 900)  # three panels: loss, lr, AP
    only_loss = tmp_path / "loss.jsonl"
    only_loss.write_text(json.dumps({"iter": 1, "loss": 3.0}) + "\n")
    with Image.open(plot_training_curves(only_loss, tmp_path / "loss.png")) as png:
        assert png.size == (800, 300)
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"epoch": 1}\n')
    with pytest.raises(ValueError, match="nothing|no iter lines"):
        plot_training_curves(empty, tmp_path / "empty.png")
    with pytest.raises(FileNotFoundError, match="metrics file not found"):
        plot_training_curves(tmp_path / "missing.jsonl", tmp_path / "x.png")
