"""The dataset flags of `maskdino train` and `maskdino eval`: one flag per `DataConfig` field, so the
command line and Python (`get_config(..., ["data.train_masks=labels/"])`) describe data the same way.

    --train-json / --val-json        COCO instances or panoptic json          data.train_json / val_json
    --train-images / --val-images    image folder                             data.train_images / val_images
    --train-masks / --val-masks      panoptic PNGs or semantic label PNGs     data.train_masks / val_masks
    --classes                        classes.txt of a semantic folder         data.classes_file
    --data-root                      folder of the standard datasets          data.root
"""

from __future__ import annotations

import argparse

from maskdino.config import Config

SPLIT_FLAGS = {
    "json": "COCO instances or panoptic json",
    "images": "image folder (file names of the json are relative to it)",
    "masks": "folder of the panoptic PNGs of a panoptic json, or of the label PNGs of a semantic dataset",
}


def add_dataset_arguments(parser: argparse.ArgumentParser, splits: tuple[str, ...]) -> None:
    """--data-root, --{split}-json/-images/-masks for each of `splits` ("train", "val") and --classes."""
    parser.add_argument(
        "--data-root", help="folder holding the standard datasets (default: $MASKDINO_DATASETS)"
    )
    for split in splits:
        role = "training" if split == "train" else "validation"
        for what, text in SPLIT_FLAGS.items():
            parser.add_argument(f"--{split}-{what}", help=f"{role} data: {text}")
    parser.add_argument(
        "--classes",
        help="classes.txt of a semantic dataset: one class name per line, line i naming label value i",
    )


def apply_dataset_arguments(cfg: Config, args: argparse.Namespace, splits: tuple[str, ...]) -> None:
    """Set the data fields of the given flags in `cfg`. The files of a split are replaced together: a
    split given on the command line drops the json/images/masks the config had for it."""
    data = cfg.data
    if getattr(args, "data_root", None):
        data.root = args.data_root
    for split in splits:
        given = {what: getattr(args, f"{split}_{what}", None) for what in SPLIT_FLAGS}
        if any(given.values()):
            for what, value in given.items():
                setattr(data, f"{split}_{what}", value)
    if getattr(args, "classes", None):
        data.classes_file = args.classes
