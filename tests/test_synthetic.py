"""The synthetic shapes dataset: deterministic, occlusion-correct, and readable by our loaders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as mask_util

from maskdino.cli.main import main as cli_main
from maskdino.data import (
    DatasetInfo,
    load_coco_instances,
    load_coco_panoptic,
    load_label_map,
    load_semantic_folder,
)
from maskdino.data.image_io import load_panoptic_ids
from maskdino.data.synthetic import (
    CLASS_NAMES,
    THING_CLASSES,
    SynthConfig,
    generate_image,
    write_synthetic_dataset,
)

NUM_TRAIN, NUM_VAL = 6, 3


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    write_synthetic_dataset(root, NUM_TRAIN, NUM_VAL, seed=3)
    return root


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_and_other_seeds_differ(dataset, tmp_path):
    assert (
        cli_main(
            [
                "synth",
                "--output",
                str(tmp_path / "a"),
                "--num-images",
                "6",
                "--num-val-images",
                "3",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    again = _files(tmp_path / "a")
    assert again == _files(dataset)
    assert (
        len(again) == 1 + 2 * 2 + (NUM_TRAIN + NUM_VAL) * 3
    )  # classes.txt, 2 json per split, 3 files per image

    def pixels(seed, split, index):
        return generate_image(np.random.default_rng([seed, split, index])).image

    assert np.array_equal(pixels(3, 0, 1), pixels(3, 0, 1))
    assert not np.array_equal(pixels(3, 0, 1), pixels(4, 0, 1))
    assert not np.array_equal(pixels(3, 0, 1), pixels(3, 1, 1))  # held-out images are not training images
    train_image = (dataset / "train" / "images" / "000000.jpg").read_bytes()
    assert train_image != (dataset / "val" / "images" / "000000.jpg").read_bytes()


def test_masks_respect_occlusion_and_agree_with_the_semantic_map():
    cfg = SynthConfig()
    seen_overlap = False
    for index in range(20):
        sample = generate_image(np.random.default_rng([0, 0, index]), cfg)
        masks = sample.thing_masks
        assert masks.shape[0] == len(sample.thing_labels) >= 1
        # visible masks are disjoint and each keeps enough pixels
        assert masks.sum(0).max() <= 1
        assert masks.sum((1, 2)).min() >= cfg.min_visible_pixels
        # the semantic map shows each thing's class exactly where its visible mask is
        for label, mask in zip(sample.thing_labels, masks):
            assert (sample.semantic[mask] == label).all()
        things = sample.semantic < len(THING_CLASSES)
        assert np.array_equal(things, masks.any(0))
        assert set(np.unique(sample.semantic[~things])) == set(sample.stuff_labels)
        seen_overlap |= _has_occlusion(masks)
    assert seen_overlap, "20 images without a single occluded shape: the generator lost its overlaps"


def _has_occlusion(masks):
    """Whether some mask's bounding box holds pixels of another mask (one shape partly hides another)."""
    for i, mask in enumerate(masks):
        ys, xs = np.nonzero(mask)
        box = np.zeros_like(mask)
        box[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = True
        others = np.delete(masks, i, axis=0).any(0)
        if (box & others).sum() > 50:
            return True
    return False


def test_instances_json_boxes_areas_and_masks_match(dataset):
    data = json.loads((dataset / "train" / "instances.json").read_text())
    assert [c["name"] for c in data["categories"]] == list(THING_CLASSES)
    assert len(data["images"]) == NUM_TRAIN
    for ann in data["annotations"]:
        mask = mask_util.decode(ann["segmentation"]).astype(bool)
        ys, xs = np.nonzero(mask)
        x, y, w, h = ann["bbox"]
        assert (x, y, x + w, y + h) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert ann["area"] == mask.sum()
        # the visible mask is where the panoptic PNG has this thing and the semantic PNG its class
        stem = f"{ann['image_id']:06d}"
        semantic = load_label_map(dataset / "train" / "semantic" / f"{stem}.png")
        assert (semantic[mask] == ann["category_id"] - 1).all()
        ids = load_panoptic_ids(dataset / "train" / "panoptic" / f"{stem}.png")
        assert len(np.unique(ids[mask])) == 1 and (ids == ids[mask][0]).sum() == mask.sum()


def test_our_loaders_read_every_format(dataset):
    train = dataset / "train"
    instances = load_coco_instances(train / "instances.json", train / "images")
    assert len(instances) == NUM_TRAIN and instances.info.class_names == THING_CLASSES
    assert sum(r["annotations"] != [] for r in instances.records) == NUM_TRAIN
    assert not instances.bad_input

    panoptic = load_coco_panoptic(train / "panoptic.json", train / "images", train / "panoptic")
    assert panoptic.info.class_names == CLASS_NAMES
    assert panoptic.info.isthing == (True,) * 3 + (False,) * 3
    for pan, inst in zip(panoptic.records, instances.records):
        things = [s for s in pan["segments_info"] if s["label"] < len(THING_CLASSES)]
        assert [s["label"] for s in things] == [a["label"] for a in inst["annotations"]]
        assert any(s["label"] >= len(THING_CLASSES) for s in pan["segments_info"])  # sky is always there

    names = tuple((dataset / "classes.txt").read_text().split())
    info = DatasetInfo("synth", "semantic", names, tuple(range(len(names))), (False,) * len(names))
    semantic = load_semantic_folder(train / "images", train / "semantic", info, "contiguous")
    assert names == CLASS_NAMES and len(semantic) == NUM_TRAIN
