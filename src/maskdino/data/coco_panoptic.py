"""COCO panoptic format: a json with `segments_info` per image plus RGB-encoded segment-id PNGs.

Things and stuff share one contiguous label range in ascending category-id order (Mask2Former's
registration of COCO panoptic, 133 classes). Crowd segments are kept in the record and left out of the
training targets by the mapper (official `COCOPanopticNewBaselineDatasetMapper`). Images without any
segment are kept, as detectron2 only filters datasets that carry instance `annotations`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from maskdino.data.coco import check_unique_image_ids, coco_info_from_categories, read_json
from maskdino.data.image_io import load_panoptic_ids
from maskdino.data.records import BadInputTally, LoadedDataset


def load_coco_panoptic(
    json_path: str | Path,
    image_root: str | Path,
    panoptic_root: str | Path,
    name: str | None = None,
    categories: list[dict[str, Any]] | None = None,
) -> LoadedDataset:
    """Records of a panoptic json; PNG `file_name`s are relative to `panoptic_root`, images to `image_root`.

    `categories` (each with `id`, `name`, `isthing`) overrides the json's list, e.g. the official
    `panoptic_coco_categories.json`.
    """
    json_path, image_root, panoptic_root = Path(json_path), Path(image_root), Path(panoptic_root)
    name = name or json_path.stem
    data = read_json(json_path)
    for key in ("images", "annotations"):
        if key not in data:
            raise ValueError(
                f"{json_path} has no {key!r} list; a COCO panoptic json needs images, annotations"
            )
    categories = categories if categories is not None else data.get("categories")
    if not categories:
        raise ValueError(f"{json_path} lists no categories; pass categories= (each with id, name, isthing)")
    info = coco_info_from_categories(name, categories, "panoptic")
    label_of = info.contiguous_ids()
    check_unique_image_ids(data["images"], json_path)
    images = {image["id"]: image for image in data["images"]}

    tally = BadInputTally()
    records = []
    for ann in data["annotations"]:
        image = images.get(ann["image_id"])
        if image is None:
            tally.add("orphan_annotation", f"annotation {ann['file_name']}: image_id {ann['image_id']}")
            continue
        file_name, pan_file = image_root / image["file_name"], panoptic_root / ann["file_name"]
        missing = [str(p) for p in (file_name, pan_file) if not p.is_file()]
        if missing:
            tally.add("missing_file", missing[0])
            continue
        segments = []
        for segment in ann.get("segments_info", []):
            if segment["category_id"] not in label_of:
                tally.add("unknown_category", f"segment {segment['id']} of image {ann['image_id']}")
                continue
            if segment.get("iscrowd", 0):
                tally.add("crowd", f"segment {segment['id']} of image {ann['image_id']}")
            segments.append(
                {
                    "id": int(segment["id"]),
                    "label": label_of[segment["category_id"]],
                    "iscrowd": int(segment.get("iscrowd", 0)),
                }
            )
        records.append(
            {
                "file_name": str(file_name),
                "image_id": ann["image_id"],
                "height": int(image["height"]),
                "width": int(image["width"]),
                "dataset": name,
                "pan_seg_file_name": str(pan_file),
                "segments_info": segments,
            }
        )
    tally.log(name)
    if not records and data["annotations"]:
        raise FileNotFoundError(
            f"none of the {len(data['annotations'])} images of {json_path} were found "
            f"(images under {image_root}, PNGs under {panoptic_root}; "
            f"e.g. missing {tally.examples['missing_file'][0]})"
        )
    return LoadedDataset(info, records, tally.counts)


def read_coco_panoptic(record: dict[str, Any]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Segment-id map [H, W] (0 = void) and the record's segments."""
    return load_panoptic_ids(record["pan_seg_file_name"]), record["segments_info"]
