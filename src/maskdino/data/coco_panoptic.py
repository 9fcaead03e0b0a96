"""COCO panoptic format: a json with `segments_info` per image plus RGB-encoded segment-id PNGs.

Things and stuff share one contiguous label range in ascending category-id order (Mask2Former's
registration of COCO panoptic, 133 classes); `isthing` comes from the json's categories. Crowd segments
are kept in the record and left out of the training targets by the mapper (official
`COCOPanopticNewBaselineDatasetMapper`). Images without any segment are kept, as detectron2 only filters
datasets that carry instance `annotations`. A PNG holding a segment id its json entry does not list is a
`SegmentIdError` naming the file (the PNG folder and the json do not belong together).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from maskdino.data.coco import check_unique_image_ids, coco_info_from_categories, read_json
from maskdino.data.image_io import ImageReadError, load_panoptic_ids
from maskdino.data.records import BadInputTally, LoadedDataset


class SegmentIdError(ImageReadError):
    """A panoptic PNG holds segment ids that its json entry does not list."""

    kind = "bad_labels"


def is_panoptic_json(data: dict[str, Any]) -> bool:
    """Whether a parsed COCO json is in the panoptic format (its annotations carry `segments_info`)."""
    annotations = data.get("annotations")
    return isinstance(annotations, list) and any(
        isinstance(ann, dict) and "segments_info" in ann for ann in annotations
    )


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
    json_path = Path(json_path)
    data = read_json(json_path)
    return coco_panoptic_from_data(data, json_path, image_root, panoptic_root, name, categories)


def coco_panoptic_from_data(
    data: dict[str, Any],
    json_path: str | Path,
    image_root: str | Path,
    panoptic_root: str | Path,
    name: str | None = None,
    categories: list[dict[str, Any]] | None = None,
) -> LoadedDataset:
    """`load_coco_panoptic` of the already parsed content `data` of `json_path`."""
    json_path, image_root, panoptic_root = Path(json_path), Path(image_root), Path(panoptic_root)
    name = name or json_path.stem
    for key in ("images", "annotations"):
        if key not in data:
            raise ValueError(
                f"{json_path} has no {key!r} list; a COCO panoptic json needs images, annotations"
            )
    categories = categories if categories is not None else data.get("categories")
    if not categories:
        raise ValueError(
            f"{json_path} lists no categories; add them to the json (each with id, name and isthing: 1 for "
            f"countable things, 0 for stuff) or pass categories="
        )
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
        segments, void_ids = [], []
        for segment in ann.get("segments_info", []):
            if segment["category_id"] not in label_of:
                tally.add("unknown_category", f"segment {segment['id']} of image {ann['image_id']}")
                void_ids.append(int(segment["id"]))
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
                "void_ids": void_ids,
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
    """Segment-id map [H, W] (0 = void, which the record's `void_ids` become) and the record's segments."""
    ids = load_panoptic_ids(record["pan_seg_file_name"])
    segments = record["segments_info"]
    listed = np.array([0, *record.get("void_ids", ()), *(s["id"] for s in segments)], dtype=np.int64)
    unlisted = np.setdiff1d(np.unique(ids), listed)
    if unlisted.size:
        shown = ", ".join(str(v) for v in unlisted[:6].tolist()) + (", ..." if unlisted.size > 6 else "")
        raise SegmentIdError(
            f"panoptic PNG {record['pan_seg_file_name']} holds segment ids {shown} that the json does not "
            f"list for image {record['image_id']} ({len(segments)} segments listed); the PNG folder and the "
            f"json must come from the same export: pass the json's own PNG folder (--train-masks / "
            f"--val-masks), or add the missing segments to its segments_info"
        )
    void_ids = record.get("void_ids", ())
    if void_ids:
        ids = np.where(np.isin(ids, void_ids), 0, ids)
    return ids, segments
