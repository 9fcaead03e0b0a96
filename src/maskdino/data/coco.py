"""COCO-format instance annotations (the official COCO json or any custom json with its own categories).

Categories are remapped to contiguous labels in ascending id order, names kept (detectron2's
`load_coco_json`). The whole json is checked before any training or inference: image ids that repeat
are an error (the annotations of one image would be given to the other). An annotation without
`segmentation` is kept as a box-only target (`segmentation` None): a json of boxes trains a detector, a
mixed json trains each annotation on what it has. Annotations that cannot be used are dropped and counted
per kind instead of raising: polygons with fewer than 3 points or no area, RLE masks whose size is not
their image's, zero-area or out-of-image boxes, unknown category ids, and image ids that no image has.
Crowd annotations are kept (the evaluator needs them) but flagged; the mapper leaves them out of the
training targets, as the official mapper does.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_util

from maskdino.data.image_io import ImageReadError, image_size
from maskdino.data.records import BadInputTally, DatasetInfo, LoadedDataset
from maskdino.data.transforms import polygon_area


def load_coco_instances(
    json_path: str | Path,
    image_root: str | Path,
    name: str | None = None,
    filter_empty: bool = False,
    class_names: tuple[str, ...] = (),
) -> LoadedDataset:
    """Records of a COCO instances json whose `file_name`s are relative to `image_root`.

    `filter_empty` drops images without any non-crowd annotation (official training behaviour with
    DATALOADER.FILTER_EMPTY_ANNOTATIONS); evaluation keeps every image. `class_names`, when given,
    replaces the json's category names (one per category, in ascending id order).
    """
    json_path = Path(json_path)
    data = read_json(json_path)
    return coco_instances_from_data(data, json_path, image_root, name, filter_empty, class_names)


def coco_instances_from_data(
    data: dict[str, Any],
    json_path: str | Path,
    image_root: str | Path,
    name: str | None = None,
    filter_empty: bool = False,
    class_names: tuple[str, ...] = (),
) -> LoadedDataset:
    """`load_coco_instances` of the already parsed content `data` of `json_path`."""
    json_path, image_root = Path(json_path), Path(image_root)
    name = name or json_path.stem
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise ValueError(
                f"{json_path} has no {key!r} list; COCO instances need images, annotations and categories"
            )
    if not data["categories"]:
        raise ValueError(f"{json_path} lists no categories; add at least one {{'id': ..., 'name': ...}}")
    info = coco_info_from_categories(name, data["categories"], "instance")
    if class_names:
        if len(class_names) != info.num_classes:
            raise ValueError(
                f"data.class_names has {len(class_names)} names but {json_path} has {info.num_classes} "
                f"categories; give one name per category in ascending id order, or none to keep the json's"
            )
        info = dataclasses.replace(info, class_names=tuple(class_names))
    label_of = info.contiguous_ids()
    check_unique_image_ids(data["images"], json_path)

    tally = BadInputTally()
    image_ids = {image["id"] for image in data["images"]}
    annotations_by_image: dict[Any, list[dict]] = {}
    for ann in data["annotations"]:
        if ann.get("image_id") not in image_ids:
            tally.add("orphan_annotation", f"annotation {ann.get('id')}: image_id {ann.get('image_id')}")
            continue
        annotations_by_image.setdefault(ann.get("image_id"), []).append(ann)
    records = []
    for image in data["images"]:
        file_name = image_root / image["file_name"]
        if not file_name.is_file():
            tally.add("missing_file", str(file_name))
            continue
        try:
            height, width = _image_hw(image, file_name)
        except ImageReadError as err:
            tally.add("unreadable_image", str(err))
            continue
        annotations = []
        for ann in annotations_by_image.get(image["id"], []):
            kept = _parse_annotation(ann, height, width, label_of, tally)
            if kept is not None:
                annotations.append(kept)
        if not any(not a["iscrowd"] for a in annotations):
            tally.add("no_annotations", str(file_name))
            if filter_empty:
                continue
        records.append(
            {
                "file_name": str(file_name),
                "image_id": image["id"],
                "height": height,
                "width": width,
                "dataset": name,
                "annotations": annotations,
            }
        )
    tally.log(name)
    if not records and tally.counts["missing_file"]:
        example = tally.examples["missing_file"][0]
        raise FileNotFoundError(
            f"none of the {len(data['images'])} images listed in {json_path} exist under {image_root} "
            f"(e.g. {example}); point the image folder (--data-root or data.train_images/val_images) at them"
        )
    box_only = sum(1 for ann in data["annotations"] if not ann.get("segmentation"))
    return LoadedDataset(
        info, records, tally.counts, annotation_file=str(json_path), box_only_annotations=box_only
    )


def check_unique_image_ids(images: list[dict[str, Any]], json_path: Path) -> None:
    """Two images with one id would share (and mislabel) each other's annotations: refuse the json."""
    files_of: dict[Any, list[str]] = {}
    for image in images:
        if "id" not in image:
            raise ValueError(f"{json_path}: image {image.get('file_name', image)!r} has no 'id'")
        files_of.setdefault(image["id"], []).append(str(image.get("file_name")))
    repeated = {i: files for i, files in files_of.items() if len(files) > 1}
    if repeated:
        shown = "; ".join(f"id {i}: {', '.join(files)}" for i, files in list(repeated.items())[:5])
        more = f" (and {len(repeated) - 5} more ids)" if len(repeated) > 5 else ""
        raise ValueError(
            f"{json_path} gives one image id to several images ({shown}){more}; their annotations cannot be "
            f"told apart. Give every image its own id and point each annotation's image_id at the right one"
        )


def read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"annotation json not found: {path}")
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err


def _image_hw(image: dict[str, Any], file_name: Path) -> tuple[int, int]:
    """The json's height/width; read from the file header when a custom json omits them."""
    if image.get("height") and image.get("width"):
        return int(image["height"]), int(image["width"])
    return image_size(file_name)


def _parse_annotation(
    ann: dict[str, Any], height: int, width: int, label_of: dict[int, int], tally: BadInputTally
) -> dict[str, Any] | None:
    where = f"annotation {ann.get('id')} of image {ann.get('image_id')}"
    if ann.get("category_id") not in label_of:
        tally.add("unknown_category", f"{where}: category_id {ann.get('category_id')}")
        return None
    segmentation = None
    raw = ann.get("segmentation")
    if raw:  # without one the annotation trains the box and class only
        if isinstance(raw, dict) and list(raw.get("size", [])) != [height, width]:
            tally.add("rle_size_mismatch", f"{where}: RLE size {raw.get('size')}, image [{height}, {width}]")
            return None
        segmentation = _parse_segmentation(raw, height, width)
        if segmentation is None:
            tally.add("empty_polygon", where)
            return None
    elif ann.get("bbox") is None:
        tally.add("no_geometry", where)
        return None
    box = _parse_box(ann.get("bbox"), segmentation, height, width)
    if box is None:
        tally.add("zero_area_box", f"{where}: bbox {ann.get('bbox')}")
        return None
    x0, y0, x1, y1 = box
    if x0 >= width or y0 >= height or x1 <= 0 or y1 <= 0:
        tally.add("out_of_image_box", f"{where}: bbox {ann.get('bbox')} in a {width}x{height} image")
        return None
    iscrowd = int(ann.get("iscrowd", 0))
    if iscrowd:
        tally.add("crowd", where)
    clipped = [max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height))]
    return {
        "label": label_of[ann["category_id"]],
        "bbox": clipped,
        "segmentation": segmentation,
        "iscrowd": iscrowd,
    }


def _parse_segmentation(segmentation: Any, height: int, width: int) -> list[list[float]] | dict | None:
    """Valid polygons (>= 3 points, non-zero area) or a compressed RLE of the image's size, else None."""
    if isinstance(segmentation, dict):
        if isinstance(segmentation.get("counts"), list):
            return mask_util.frPyObjects(segmentation, height, width)
        return segmentation
    polygons = [
        [float(v) for v in poly]
        for poly in segmentation
        if len(poly) % 2 == 0
        and len(poly) >= 6
        and polygon_area(np.asarray(poly, dtype=np.float64).reshape(-1, 2)) > 0
    ]
    return polygons or None


def _parse_box(
    bbox: Any, segmentation: list[list[float]] | dict | None, height: int, width: int
) -> list[float] | None:
    """xyxy from the xywh `bbox`, or from the segmentation's extent when the json has no bbox (then a
    segmentation is there: an annotation with neither is dropped before)."""
    if bbox is None:
        if isinstance(segmentation, dict):
            bbox = [float(v) for v in mask_util.toBbox(segmentation)]
        else:
            points = np.concatenate([np.asarray(p).reshape(-1, 2) for p in segmentation])
            (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
            bbox = [x0, y0, x1 - x0, y1 - y0]
    if len(bbox) != 4:
        return None
    x, y, w, h = (float(v) for v in bbox)
    if not (w > 0 and h > 0):
        return None
    return [x, y, x + w, y + h]


def coco_info_from_categories(name: str, categories: list[dict[str, Any]], task: str) -> DatasetInfo:
    """DatasetInfo of a COCO-style `categories` list (ids ascending; `isthing` defaults to 1 = thing)."""
    ordered = sorted(categories, key=lambda c: c["id"])
    return DatasetInfo(
        name,
        task,
        tuple(str(c["name"]) for c in ordered),
        tuple(int(c["id"]) for c in ordered),
        tuple(bool(c.get("isthing", 1)) for c in ordered),
    )
