"""COCO AP: the reference numbers of the cocoapi fixture, detectron2's mask-area rule, bad input."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_util
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from maskdino.evaluation import evaluate_coco
from maskdino.evaluation.coco import STAT_NAMES

RESULT_FILES = {
    "bbox": "instances_val2014_fakebbox100_results.json",
    "segm": "instances_val2014_fakesegm100_results.json",
}


@pytest.fixture(scope="module")
def fixture_dir(eval_data: Path) -> Path:
    return eval_data / "coco_eval_fixture"


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_fixture_matches_reference_numbers(fixture_dir: Path, iou_type: str) -> None:
    expected = json.loads((fixture_dir / "expected_ap.json").read_text())[iou_type]["stats"]
    metrics = evaluate_coco(
        fixture_dir / "instances_val2014_100.json",
        fixture_dir / RESULT_FILES[iou_type],
        iou_types=(iou_type,),
        backend="pycocotools",
    )
    assert list(expected) == list(STAT_NAMES)
    for name, value in expected.items():
        assert metrics[f"{iou_type}/{name}"] / 100 == pytest.approx(value, abs=1e-12), name
    assert metrics["bbox/AP" if iou_type == "bbox" else "segm/AP"] == pytest.approx(
        {"bbox": 50.45806987249628, "segm": 31.95452758576433}[iou_type], abs=1e-10
    )
    # Every category with ground truth has all its precision entries defined, so their mean is AP.
    per_category = [v for k, v in metrics.items() if k.startswith(f"{iou_type}/AP-")]
    assert len(per_category) == 70  # categories present in the 100 images
    assert np.mean(per_category) == pytest.approx(metrics[f"{iou_type}/AP"], abs=1e-9)


def test_faster_coco_eval_gives_identical_numbers(
    fixture_dir: Path, tiny_gt: dict, tiny_results: list
) -> None:
    pytest.importorskip("faster_coco_eval")
    tiny = evaluate_coco(tiny_gt, tiny_results, backend="faster_coco_eval")
    assert tiny["segm/APs"] == pytest.approx(50.0)  # mask-area rule holds with this backend too
    for iou_type, results in RESULT_FILES.items():
        args = (fixture_dir / "instances_val2014_100.json", fixture_dir / results, (iou_type,))
        ours = evaluate_coco(*args, backend="pycocotools")
        fast = evaluate_coco(*args, backend="faster_coco_eval")
        assert ours.keys() == fast.keys()
        assert max(abs(ours[k] - fast[k]) for k in ours) < 1e-10


def _rle(mask: np.ndarray) -> dict:
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def _square(top: int, left: int, size: int) -> np.ndarray:
    mask = np.zeros((100, 100), dtype=bool)
    mask[top : top + size, left : left + size] = True
    return mask


@pytest.fixture()
def tiny_gt() -> dict:
    """One 100x100 image with one small (20x20) object of category 7."""
    return {
        "images": [{"id": 1, "height": 100, "width": 100}],
        "categories": [{"id": 7, "name": "thing"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 7,
                "segmentation": _rle(_square(10, 10, 20)),
                "area": 400.0,
                "bbox": [10.0, 10.0, 20.0, 20.0],
                "iscrowd": 0,
            }
        ],
    }


@pytest.fixture()
def tiny_results() -> list[dict]:
    """An exact hit (score 0.5) and a higher-scored small false-positive mask whose box is huge."""
    return [
        {
            "image_id": 1,
            "category_id": 7,
            "score": 0.5,
            "bbox": [10.0, 10.0, 20.0, 20.0],
            "segmentation": _rle(_square(10, 10, 20)),
        },
        {
            "image_id": 1,
            "category_id": 7,
            "score": 0.9,
            "bbox": [0.0, 0.0, 100.0, 100.0],
            "segmentation": _rle(_square(60, 60, 10)),
        },
    ]


def test_mask_ap_uses_mask_area_for_size_ranges(tiny_gt: dict, tiny_results: list[dict]) -> None:
    metrics = evaluate_coco(tiny_gt, tiny_results, backend="pycocotools")
    # The false positive ranks first: precision 1/2 at every recall level.
    assert metrics["segm/AP"] == pytest.approx(50.0)
    assert metrics["bbox/AP"] == pytest.approx(50.0)
    # Its mask (100 px) is small, so it counts against APs; its box (10000 px) would hide it there.
    assert metrics["segm/APs"] == pytest.approx(50.0)
    assert metrics["segm/APm"] == -1.0 and metrics["segm/APl"] == -1.0  # no medium / large ground truth
    # The same results given to pycocotools with their boxes kept: the false positive leaves APs.
    gt = COCO()
    gt.dataset = copy.deepcopy(tiny_gt)
    gt.createIndex()
    raw = COCOeval(gt, gt.loadRes(copy.deepcopy(tiny_results)), "segm")
    raw.evaluate()
    raw.accumulate()
    raw.summarize()
    assert raw.stats[3] == pytest.approx(1.0)
    # The caller's results are left untouched (pycocotools writes into what it is given).
    assert sorted(tiny_results[0]) == ["bbox", "category_id", "image_id", "score", "segmentation"]


def test_empty_results_score_zero(fixture_dir: Path) -> None:
    metrics = evaluate_coco(fixture_dir / "instances_val2014_100.json", [], backend="pycocotools")
    assert {metrics[f"{t}/{name}"] for t in ("bbox", "segm") for name in STAT_NAMES} == {0.0}


def test_unknown_image_id_is_an_error(tiny_gt: dict, tiny_results: list[dict]) -> None:
    tiny_results[1]["image_id"] = 999
    with pytest.raises(ValueError, match="image ids not in the ground truth: 999"):
        evaluate_coco(tiny_gt, tiny_results)


def test_unknown_category_is_an_error(tiny_gt: dict, tiny_results: list[dict]) -> None:
    tiny_results[0]["category_id"] = 0
    with pytest.raises(ValueError, match="category ids not in the ground truth: 0 .*contiguous"):
        evaluate_coco(tiny_gt, tiny_results)


def test_ground_truth_without_masks(tiny_gt: dict, tiny_results: list[dict]) -> None:
    del tiny_gt["annotations"][0]["segmentation"]
    with pytest.raises(ValueError, match=r"no 'segmentation'.*iou_types=\('bbox',\)"):
        evaluate_coco(tiny_gt, tiny_results)
    assert evaluate_coco(tiny_gt, tiny_results, iou_types=("bbox",))["bbox/AP"] == pytest.approx(50.0)


def test_ground_truth_without_iscrowd_counts_as_not_crowd(tiny_gt: dict, tiny_results: list[dict]) -> None:
    del tiny_gt["annotations"][0]["iscrowd"]
    assert evaluate_coco(tiny_gt, tiny_results)["segm/AP"] == pytest.approx(50.0)


def test_results_without_masks_or_boxes(tiny_gt: dict, tiny_results: list[dict]) -> None:
    boxes_only = [{k: v for k, v in r.items() if k != "segmentation"} for r in tiny_results]
    with pytest.raises(ValueError, match=r"detection 0 has no 'segmentation'"):
        evaluate_coco(tiny_gt, boxes_only)
    masks_only = [{k: v for k, v in r.items() if k != "bbox"} for r in tiny_results]
    with pytest.raises(ValueError, match=r"detection 0 has no 'bbox'.*\('segm',\)"):
        evaluate_coco(tiny_gt, masks_only)
    assert evaluate_coco(tiny_gt, masks_only, iou_types=("segm",))["segm/APs"] == pytest.approx(50.0)


def test_mask_of_wrong_size_is_an_error(tiny_gt: dict, tiny_results: list[dict]) -> None:
    tiny_results[1]["segmentation"] = _rle(np.zeros((50, 100), dtype=bool))
    with pytest.raises(ValueError, match=r"detection 1 has a mask of size \[50, 100\].*\[100, 100\]"):
        evaluate_coco(tiny_gt, tiny_results)


def test_bad_arguments(tiny_gt: dict, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="iou_types"):
        evaluate_coco(tiny_gt, [], iou_types=("keypoints",))
    with pytest.raises(ValueError, match="unknown COCO backend"):
        evaluate_coco(tiny_gt, [], backend="fast")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        evaluate_coco(tiny_gt, tmp_path / "missing.json")
    with pytest.raises(ValueError, match="not a COCO instances file"):
        evaluate_coco({"images": []}, [])
