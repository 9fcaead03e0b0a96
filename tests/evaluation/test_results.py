"""Model outputs -> results formats: COCO entries that score 100 AP when exact, panoptic and label PNGs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools.coco import COCO

from maskdino.evaluation import (
    evaluate_coco,
    instances_to_coco_results,
    panoptic_to_png,
    semantic_to_png,
    write_png,
)
from maskdino.evaluation.results import rgb_to_id


@pytest.fixture(scope="module")
def coco_subset(eval_data: Path) -> tuple[COCO, dict]:
    """The fixture's ground truth restricted to its first 4 images."""
    data = json.loads((eval_data / "coco_eval_fixture" / "instances_val2014_100.json").read_text())
    keep = {img["id"] for img in data["images"][:4]}
    data["images"] = [img for img in data["images"] if img["id"] in keep]
    data["annotations"] = [ann for ann in data["annotations"] if ann["image_id"] in keep]
    coco = COCO()
    coco.dataset = data
    coco.createIndex()
    return coco, data


# pycocotools' own mask decoding (annToMask) warns under numpy 2; nothing of ours is involved.
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_exact_instances_score_100(coco_subset: tuple[COCO, dict]) -> None:
    coco, data = coco_subset
    dataset_ids = sorted(cat["id"] for cat in data["categories"])  # contiguous label k -> dataset_ids[k]
    results = []
    for image_id in coco.getImgIds():
        anns = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id)) if not a["iscrowd"]]
        xywh = torch.tensor([a["bbox"] for a in anns], dtype=torch.float64)
        prediction = {
            "boxes": torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1),
            "labels": torch.tensor([dataset_ids.index(a["category_id"]) for a in anns]),
            "scores": torch.linspace(0.9, 0.5, len(anns)),
            "masks": torch.from_numpy(np.stack([coco.annToMask(a) for a in anns])).bool(),
        }
        entries = instances_to_coco_results(image_id, prediction, dataset_ids)
        assert [e["category_id"] for e in entries] == [a["category_id"] for a in anns]
        assert np.allclose([e["bbox"] for e in entries], [a["bbox"] for a in anns], atol=1e-9)
        assert all(isinstance(e["segmentation"]["counts"], str) for e in entries)
        results.extend(entries)
    assert len(results) == 20
    results = json.loads(json.dumps(results))  # the entries are plain JSON
    metrics = evaluate_coco(data, results, backend="pycocotools")
    assert metrics["bbox/AP"] == pytest.approx(100.0)
    assert metrics["segm/AP"] == pytest.approx(100.0)


def test_instances_without_masks_and_empty() -> None:
    prediction = {
        "boxes": torch.tensor([[1.0, 2.0, 11.0, 32.0]]),
        "labels": torch.tensor([2]),
        "scores": torch.tensor([0.25]),
    }
    (entry,) = instances_to_coco_results(5, prediction, {2: 90})
    assert entry == {"image_id": 5, "category_id": 90, "bbox": [1.0, 2.0, 10.0, 30.0], "score": 0.25}
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long), "scores": torch.zeros(0)}
    assert instances_to_coco_results(5, empty, [1]) == []


def test_instances_bad_input() -> None:
    prediction = {"boxes": torch.zeros(2, 4), "labels": torch.tensor([0, 3]), "scores": torch.ones(2)}
    with pytest.raises(ValueError, match="label 3 has no dataset category id.*3 labels"):
        instances_to_coco_results(1, prediction, [1, 2, 3])
    with pytest.raises(ValueError, match=r"masks \[2, H, W\]"):
        instances_to_coco_results(
            1, {**prediction, "masks": torch.zeros(3, 4, 4, dtype=torch.bool)}, [1, 2, 3, 4]
        )
    with pytest.raises(ValueError, match="no 'scores'"):
        instances_to_coco_results(1, {"boxes": torch.zeros(1, 4), "labels": torch.zeros(1)}, [1])


def test_panoptic_png_round_trip(tmp_path: Path) -> None:
    segments = np.zeros((4, 6), dtype=np.int32)
    segments[0, :3] = 3
    segments[1:, 2:] = 70_001  # needs the G and B channels
    info = [
        {"id": 3, "category_id": 0, "isthing": True},
        {"id": 70_001, "category_id": 2, "isthing": False},
        {"id": 9, "category_id": 1, "isthing": True},  # no pixel left: dropped
    ]
    rgb, out_info = panoptic_to_png(torch.from_numpy(segments), info, [1, 5, 17])
    assert rgb.dtype == np.uint8 and rgb.shape == (4, 6, 3)
    assert rgb[1, 2].tolist() == [70_001 % 256, 70_001 // 256 % 256, 70_001 // 65536]
    assert out_info == [{"id": 3, "category_id": 1, "area": 3}, {"id": 70_001, "category_id": 17, "area": 12}]
    write_png(rgb, tmp_path / "pan" / "x.png")
    assert np.array_equal(rgb_to_id(np.array(Image.open(tmp_path / "pan" / "x.png"))), segments)


def test_panoptic_png_bad_input() -> None:
    segments = np.array([[0, 4], [4, 5]])
    with pytest.raises(ValueError, match=r"segment ids \[5\] that segments_info does not list"):
        panoptic_to_png(segments, [{"id": 4, "category_id": 0}], [1])
    with pytest.raises(ValueError, match=r"must lie in \[0, 16777215\]"):
        panoptic_to_png(-segments, [], [1])


def test_semantic_png(tmp_path: Path) -> None:
    labels = torch.tensor([[0, 149], [3, 7]])
    png = semantic_to_png(labels)
    assert png.dtype == np.uint8 and png.tolist() == [[0, 149], [3, 7]]
    write_png(png, tmp_path / "a.png")
    assert np.array_equal(np.array(Image.open(tmp_path / "a.png")), png)
    wide = semantic_to_png(np.array([[300, 1]]))
    assert wide.dtype == np.uint16
    write_png(wide, tmp_path / "b.png")
    assert np.array(Image.open(tmp_path / "b.png")).tolist() == [[300, 1]]
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        semantic_to_png(np.zeros((1, 2, 2)))
