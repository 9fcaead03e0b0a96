"""COCO-format instance loading: official json, custom categories, and bad input counted per kind."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_util

from maskdino.data import LoadedDataset, load_coco_instances
from maskdino.data.class_names import COCO_THING_IDS, COCO_THING_NAMES
from maskdino.utils.shared_data import shared_data_path

from .conftest import record_of


def test_official_json_loads_with_contiguous_labels(coco_dataset: LoadedDataset) -> None:
    assert len(coco_dataset) == 6
    assert sum(len(r["annotations"]) for r in coco_dataset.records) == 78
    assert dict(coco_dataset.bad_input) == {"crowd": 1}
    info = coco_dataset.info
    assert info.num_classes == 80 and info.task == "instance"
    assert info.dataset_ids == COCO_THING_IDS and info.class_names == COCO_THING_NAMES
    assert info.contiguous_ids()[90] == 79 and info.contiguous_ids()[13] == 11  # ids 12 missing

    record = record_of(coco_dataset, 37777)
    assert (record["height"], record["width"]) == (230, 352)
    fridge = next(a for a in record["annotations"] if a["label"] == info.contiguous_ids()[82])
    # official bbox [301.84, 74.94, 49.62, 151.44] (xywh) -> xyxy
    assert fridge["bbox"] == pytest.approx([301.84, 74.94, 351.46, 226.38])
    assert fridge["iscrowd"] == 0 and isinstance(fridge["segmentation"], list)


def test_crowd_is_kept_and_flagged(coco_dataset: LoadedDataset) -> None:
    crowd = [a for a in record_of(coco_dataset, 159269)["annotations"] if a["iscrowd"]]
    assert len(crowd) == 1
    assert crowd[0]["label"] == 8  # boat (id 9)
    assert isinstance(crowd[0]["segmentation"], dict)  # RLE, compressed
    assert crowd[0]["bbox"] == pytest.approx([132, 320, 331, 356])


def _write_custom(tmp_path: Path, coco_dir: Path) -> Path:
    """A custom json on a real image: 3 own categories with gapped ids, and one annotation of each bad kind."""
    square = [100.0, 50.0, 200.0, 50.0, 200.0, 150.0, 100.0, 150.0]
    data = {
        "images": [
            {"id": 1, "file_name": "000000037777.jpg", "height": 230, "width": 352},
            {"id": 2, "file_name": "missing.jpg", "height": 100, "width": 100},
            {"id": 3, "file_name": "000000117645.jpg", "height": 480, "width": 640},
        ],
        "categories": [{"id": 17, "name": "cat"}, {"id": 5, "name": "airplane"}, {"id": 40, "name": "glove"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 17,
                "bbox": [100, 50, 100, 100],
                "segmentation": [square],
            },
            {"id": 2, "image_id": 1, "category_id": 5, "bbox": [10, 10, 20, 20], "segmentation": [[]]},
            {
                "id": 3,
                "image_id": 1,
                "category_id": 5,
                "bbox": [10, 10, 20, 20],
                "segmentation": [[1, 2, 3, 4]],
            },
            {"id": 4, "image_id": 1, "category_id": 40, "bbox": [10, 10, 0, 20], "segmentation": [square]},
            {"id": 5, "image_id": 1, "category_id": 99, "bbox": [10, 10, 20, 20], "segmentation": [square]},
            {"id": 6, "image_id": 1, "category_id": 40, "bbox": [400, 10, 20, 20], "segmentation": [square]},
            {"id": 7, "image_id": 1, "category_id": 40, "bbox": [10, 10, 20, 20]},
            {"id": 8, "image_id": 2, "category_id": 17, "bbox": [10, 10, 20, 20], "segmentation": [square]},
            {"id": 9, "image_id": 1, "category_id": 40, "segmentation": [[5, 5, 45, 5, 45, 25, 5, 25]]},
            # collinear points: a polygon of zero area
            {
                "id": 10,
                "image_id": 1,
                "category_id": 5,
                "bbox": [0, 0, 9, 9],
                "segmentation": [[0, 0, 5, 5, 9, 9]],
            },
        ],
    }
    path = tmp_path / "custom.json"
    path.write_text(json.dumps(data))
    return path


def test_custom_json_remaps_ids_and_counts_bad_input(tmp_path: Path, coco_dir: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="maskdino.data"):
        dataset = load_coco_instances(_write_custom(tmp_path, coco_dir), coco_dir, name="custom")
    assert dataset.info.class_names == ("airplane", "cat", "glove")  # ascending id order 5, 17, 40
    assert dataset.info.dataset_ids == (5, 17, 40)
    assert dict(dataset.bad_input) == {
        "empty_polygon": 3,  # empty list, 2 points, zero area
        "zero_area_box": 1,
        "unknown_category": 1,
        "out_of_image_box": 1,
        "missing_file": 1,
        "no_annotations": 1,  # image 3 has none
    }
    # one log record naming every kind with its count
    records = [r for r in caplog.records if r.name == "maskdino.data"]
    assert len(records) == 1
    assert "missing_file: 1" in records[0].getMessage() and "missing.jpg" in records[0].getMessage()

    assert [r["image_id"] for r in dataset.records] == [1, 3]
    annotations = dataset.records[0]["annotations"]
    assert [a["label"] for a in annotations] == [1, 2, 2]
    assert annotations[0]["bbox"] == [100.0, 50.0, 200.0, 150.0]
    # no segmentation: kept as a box-only annotation (it trains class and box)
    assert annotations[1]["segmentation"] is None and annotations[1]["bbox"] == [10.0, 10.0, 30.0, 30.0]
    assert dataset.box_only_annotations == 1
    assert annotations[2]["bbox"] == [5.0, 5.0, 45.0, 25.0]  # no bbox in the json: from the polygon


def test_filter_empty_drops_images_without_annotations(tmp_path: Path, coco_dir: Path) -> None:
    dataset = load_coco_instances(_write_custom(tmp_path, coco_dir), coco_dir, filter_empty=True)
    assert [r["image_id"] for r in dataset.records] == [1]


def test_class_names_override_and_its_check(tmp_path: Path, coco_dir: Path) -> None:
    path = _write_custom(tmp_path, coco_dir)
    dataset = load_coco_instances(path, coco_dir, class_names=("plane", "kitty", "mitt"))
    assert dataset.info.class_names == ("plane", "kitty", "mitt")
    with pytest.raises(ValueError, match="2 names but .* 3 categories"):
        load_coco_instances(path, coco_dir, class_names=("a", "b"))


def test_wrong_paths_are_clear_errors(tmp_path: Path, coco_dir: Path) -> None:
    with pytest.raises(FileNotFoundError, match="annotation json not found: .*nope.json"):
        load_coco_instances(tmp_path / "nope.json", coco_dir)
    with pytest.raises(FileNotFoundError, match=r"none of the 6 images .* exist under .*elsewhere"):
        load_coco_instances(coco_dir / "instances.json", tmp_path / "elsewhere")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_coco_instances(tmp_path / "bad.json", coco_dir)


def test_full_shared_subset_when_available() -> None:
    """The 207-image dev subset of ../shared/data (skipped in a clean clone)."""
    try:
        root = shared_data_path("coco_subset", "dev")
    except FileNotFoundError as err:
        pytest.skip(f"shared data not available: {err}")
    dataset = load_coco_instances(root / "instances.json", root, filter_empty=True)
    assert len(dataset) == 207  # every dev image has a non-crowd annotation
    assert sum(len(r["annotations"]) for r in dataset.records) == 1814
    assert dict(dataset.bad_input) == {"crowd": 18}


def _fixture_json(coco_dir: Path) -> dict:
    return json.loads((coco_dir / "instances.json").read_text())


def test_repeated_image_ids_are_an_error_naming_the_ids_and_the_file(tmp_path: Path, coco_dir: Path) -> None:
    data = _fixture_json(coco_dir)
    data["images"][1]["id"] = data["images"][0]["id"]  # 117645 now claims 37777's id (and annotations)
    path = tmp_path / "repeated.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"repeated\.json gives one image id to several images") as err:
        load_coco_instances(path, coco_dir)
    assert "id 37777: 000000037777.jpg, 000000117645.jpg" in str(err.value)
    assert "Give every image its own id" in str(err.value)


def test_orphan_annotations_and_rle_of_the_wrong_size_are_counted_by_kind(
    tmp_path: Path, coco_dir: Path, caplog
) -> None:
    data = _fixture_json(coco_dir)
    template = next(a for a in data["annotations"] if a["image_id"] == 37777 and not a["iscrowd"])
    mask = np.zeros((230, 352), dtype=np.uint8, order="F")
    mask[50:100, 60:120] = 1

    def rle(m: np.ndarray) -> dict:
        encoded = mask_util.encode(np.asfortranarray(m))
        return {"size": encoded["size"], "counts": encoded["counts"].decode()}

    data["annotations"] += [
        {**template, "id": 9001, "image_id": 424242},  # points to no image
        {**template, "id": 9002, "image_id": 55555},
        {**template, "id": 9003, "segmentation": rle(mask[:200])},  # RLE 200 rows, image 230
        {**template, "id": 9004, "segmentation": rle(mask), "bbox": [60, 50, 60, 50]},  # right size: kept
    ]
    path = tmp_path / "defects.json"
    path.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING, logger="maskdino.data"):
        dataset = load_coco_instances(path, coco_dir)
    assert dict(dataset.bad_input) == {"crowd": 1, "orphan_annotation": 2, "rle_size_mismatch": 1}
    assert sum(len(r["annotations"]) for r in dataset.records) == 78 + 1
    assert "orphan_annotation: 2" in caplog.text and "image_id 424242" in caplog.text
    assert "annotation 9003 of image 37777: RLE size [200, 352], image [230, 352]" in caplog.text
