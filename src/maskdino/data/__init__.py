"""Datasets, augmentation and loading for training and evaluation (see each module's docstring)."""

from maskdino.data.catalog import (
    STANDARD_DATASETS,
    build_dataset,
    datasets_root,
    load_standard_dataset,
    standard_info,
)
from maskdino.data.cityscapes import load_cityscapes_segments, load_cityscapes_semantic
from maskdino.data.coco import load_coco_instances
from maskdino.data.coco_panoptic import load_coco_panoptic
from maskdino.data.custom import dataset_files, load_dataset_files
from maskdino.data.image_io import ImageReadError, image_size, load_label_map, load_rgb_image
from maskdino.data.loader import build_test_loader, build_train_loader, collate_samples, pad_images
from maskdino.data.mapper import DatasetMapper
from maskdino.data.records import DatasetInfo, LoadedDataset
from maskdino.data.semantic import load_ade20k, load_semantic_folder, read_classes_file
from maskdino.data.task import adopt_dataset

__all__ = [
    "STANDARD_DATASETS",
    "DatasetInfo",
    "DatasetMapper",
    "ImageReadError",
    "LoadedDataset",
    "adopt_dataset",
    "build_dataset",
    "build_test_loader",
    "build_train_loader",
    "collate_samples",
    "dataset_files",
    "datasets_root",
    "image_size",
    "load_ade20k",
    "load_cityscapes_segments",
    "load_cityscapes_semantic",
    "load_coco_instances",
    "load_coco_panoptic",
    "load_dataset_files",
    "load_label_map",
    "load_rgb_image",
    "load_semantic_folder",
    "load_standard_dataset",
    "pad_images",
    "read_classes_file",
    "standard_info",
]
