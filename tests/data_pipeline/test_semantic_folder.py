"""Your own semantic folder (images + label PNGs + classes.txt), on real CamVid frames: pairing by stem,
the ignore value, ADE-style labels, and every kind of bad input named with its fix."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskdino.config import Config, InputConfig
from maskdino.data import DatasetMapper, build_dataset, load_label_map, read_classes_file
from maskdino.data.semantic import LabelValueError, read_sem_seg

CAMVID_NAMES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car")
FRAME = "0016E5_07959"


@pytest.fixture(scope="session")
def camvid(pipeline_data: Path) -> Path:
    return pipeline_data / "camvid"


def _config(images: Path, labels: Path, classes: Path, *overrides: str) -> Config:
    cfg = Config().apply_overrides(
        [
            f"data.train_images={images}",
            f"data.train_masks={labels}",
            f"data.classes_file={classes}",
            *overrides,
        ]
    )
    return cfg


def _copy(camvid: Path, tmp_path: Path) -> tuple[Path, Path]:
    images, labels = tmp_path / "images", tmp_path / "labels"
    shutil.copytree(camvid / "images", images)
    shutil.copytree(camvid / "labels", labels)
    return images, labels


def test_camvid_folder_with_its_ignore_value(camvid: Path) -> None:
    cfg = _config(camvid / "images", camvid / "labels", camvid / "classes.txt", "data.ignore_label=11")
    dataset = build_dataset(cfg, "train")
    info = dataset.info
    assert info.name == "camvid" and info.task == "semantic" and info.class_names[:9] == CAMVID_NAMES
    assert info.num_classes == 11 and info.dataset_ids == tuple(range(11)) and not any(info.isthing)
    assert [r["image_id"] for r in dataset.records] == [FRAME, "0016E5_08023", "0016E5_08087"]
    assert (dataset.records[0]["height"], dataset.records[0]["width"]) == (360, 480)
    raw = load_label_map(camvid / "labels" / f"{FRAME}.png")
    cfg_input = dataclasses.replace(InputConfig(), min_size_test=360, max_size_test=480)  # no resize
    sample = DatasetMapper(cfg_input, info, is_train=False, with_targets=True)(
        dataset.records[0], np.random.default_rng(0)
    )
    sem_seg = sample["target"]["sem_seg"].numpy()
    np.testing.assert_array_equal(sem_seg[raw == 11], 255)  # Unlabelled -> ignored
    np.testing.assert_array_equal(sem_seg[raw < 11], raw[raw < 11])
    assert sample["target"]["labels"].tolist() == list(range(11))


def test_images_of_any_format_pair_by_stem_and_unpaired_files_are_counted_skips(
    camvid: Path, tmp_path: Path, caplog
) -> None:
    images, labels = _copy(camvid, tmp_path)
    photo = Image.open(images / f"{FRAME}.png")
    for suffix in ("jpg", "webp", "bmp"):
        photo.save(images / f"copy{suffix}.{suffix}")
        shutil.copy(labels / f"{FRAME}.png", labels / f"copy{suffix}.png")
    photo.save(images / "no_label.jpg")
    shutil.copy(labels / f"{FRAME}.png", labels / "no_image.png")
    cfg = _config(images, labels, camvid / "classes.txt", "data.ignore_label=11")
    with caplog.at_level(logging.WARNING, logger="maskdino.data"):
        dataset = build_dataset(cfg, "train")
    assert sorted(r["image_id"] for r in dataset.records) == sorted(
        [FRAME, "0016E5_08023", "0016E5_08087", "copyjpg", "copywebp", "copybmp"]
    )
    assert dataset.bad_input == {"image_without_label": 1, "label_without_image": 1}
    assert "no_label.jpg" in caplog.text and "no_image.png" in caplog.text


def test_ade_style_labels_with_reduce_zero_label(pipeline_data: Path, tmp_path: Path) -> None:
    ade = pipeline_data / "ade20k"
    rows = (ade / "objectInfo150.csv").read_text().splitlines()[1:]
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(row.split(",")[-1].split(";")[0] for row in rows) + "\n")
    images, labels = ade / "images" / "validation", ade / "annotations" / "validation"
    dataset = build_dataset(_config(images, labels, classes, "data.reduce_zero_label=true"), "train")
    info = dataset.info
    assert info.num_classes == 150 and info.class_names[:2] == ("wall", "building")
    assert info.dataset_ids[:2] == (1, 2)  # the value of each class in the label PNGs
    record = dataset.records[0]
    raw = load_label_map(record["sem_seg_file_name"])
    decoded = read_sem_seg(record, 150, 255)
    np.testing.assert_array_equal(decoded[raw == 0], 255)
    np.testing.assert_array_equal(decoded[raw > 0], raw[raw > 0] - 1)


def test_label_values_beyond_the_classes_name_the_file_and_the_fix(camvid: Path) -> None:
    cfg = _config(camvid / "images", camvid / "labels", camvid / "classes.txt")  # 11 = Unlabelled not ignored
    message = rf"{FRAME}.png holds values 11 that are neither classes \(11 classes: values 0..10\) nor the "
    with pytest.raises(ValueError, match=message + r"ignore value 255; set data.ignore_label=11 if 11 marks"):
        build_dataset(cfg, "train")  # checked on the first labels when the folder is loaded
    good = build_dataset(
        _config(camvid / "images", camvid / "labels", camvid / "classes.txt", "data.ignore_label=11"), "train"
    )
    record = dict(good.records[0], sem_seg_ignore=255)
    with pytest.raises(
        LabelValueError, match=message
    ) as err:  # a later label, in training: replaced, counted
        read_sem_seg(record, 11, 255)
    assert err.value.kind == "bad_labels"
    ignore_a_class = _config(
        camvid / "images", camvid / "labels", camvid / "classes.txt", "data.ignore_label=3"
    )
    with pytest.raises(ValueError, match=r"ignore_label=3 is also the label value of class 'Road'"):
        build_dataset(ignore_a_class, "train")


def test_label_of_another_size_is_a_counted_named_skip(camvid: Path, tmp_path: Path, caplog) -> None:
    images, labels = _copy(camvid, tmp_path)
    with Image.open(labels / f"{FRAME}.png") as label:
        label.crop((0, 0, 240, 180)).save(labels / f"{FRAME}.png")
    with caplog.at_level(logging.WARNING, logger="maskdino.data"):
        dataset = build_dataset(
            _config(images, labels, camvid / "classes.txt", "data.ignore_label=11"), "train"
        )
    assert len(dataset) == 2 and dataset.bad_input == {"label_size_mismatch": 1}
    assert f"{FRAME}.png is 240x180 but {FRAME}.png is 480x360" in caplog.text


def test_colour_label_png_asks_for_the_palette_conversion(camvid: Path, tmp_path: Path) -> None:
    images, labels = _copy(camvid, tmp_path)
    palette = np.array(
        [[128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128]] + [[0, 0, 0]] * 8, np.uint8
    )
    raw = load_label_map(labels / f"{FRAME}.png")
    Image.fromarray(palette[raw]).save(labels / f"{FRAME}.png")  # the label drawn in colours
    with pytest.raises(
        ValueError, match=rf"{FRAME}.png is a colour image \(mode RGB\) holding colours"
    ) as err:
        build_dataset(_config(images, labels, camvid / "classes.txt", "data.ignore_label=11"), "train")
    assert "(0, 0, 0), (128, 0, 0), (128, 64, 128)" in str(err.value) and "(5 colours)" in str(err.value)
    assert "palette, colour -> class index" in str(err.value) and "mode L or P" in str(err.value)


def test_classes_file_errors(tmp_path: Path, camvid: Path) -> None:
    empty = tmp_path / "classes.txt"
    empty.write_text("\n\n")
    with pytest.raises(
        ValueError, match=r"classes file .*classes.txt is empty: write one class name per line"
    ):
        build_dataset(_config(camvid / "images", camvid / "labels", empty), "train")
    gap = tmp_path / "gap.txt"
    gap.write_text("sky\n\nroad\n")
    with pytest.raises(ValueError, match=r"gap.txt: line 2 is empty"):
        read_classes_file(gap)
    assert read_classes_file(camvid / "classes.txt")[-1] == "Bicyclist"
    no_classes = Config().apply_overrides(
        [f"data.train_images={camvid / 'images'}", f"data.train_masks={camvid / 'labels'}"]
    )
    with pytest.raises(ValueError, match=r"needs its class names: pass --classes classes.txt"):
        build_dataset(no_classes, "train")
