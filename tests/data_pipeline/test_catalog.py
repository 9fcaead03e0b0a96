"""Standard names resolve under --data-root / $MASKDINO_DATASETS; wrong roots are errors naming what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from maskdino.config import Config
from maskdino.data import build_dataset, datasets_root, load_standard_dataset, standard_info
from maskdino.data.catalog import ENV_VAR


@pytest.fixture
def data_root(tmp_path: Path, coco_dir: Path, pipeline_data: Path) -> Path:
    """A data root in the official layout, linking the bundled fixtures."""
    (tmp_path / "coco" / "annotations").mkdir(parents=True)
    (tmp_path / "coco" / "annotations" / "instances_val2017.json").symlink_to(coco_dir / "instances.json")
    (tmp_path / "coco" / "val2017").symlink_to(coco_dir)
    panoptic = pipeline_data / "coco_panoptic"
    (tmp_path / "coco" / "annotations" / "panoptic_val2017.json").symlink_to(
        panoptic / "panoptic_val2017.json"
    )
    (tmp_path / "coco" / "panoptic_val2017").symlink_to(panoptic / "panoptic_val2017")
    (tmp_path / "ADEChallengeData2016").symlink_to(pipeline_data / "ade20k")
    return tmp_path


def test_standard_names_load_from_the_root(data_root: Path, tmp_path: Path) -> None:
    coco = load_standard_dataset("coco_2017_val", data_root)
    assert len(coco) == 6 and coco.info.num_classes == 80 and coco.records[0]["dataset"] == "coco_2017_val"
    ade = load_standard_dataset("ade20k_sem_seg_val", data_root)
    assert len(ade) == 3 and ade.info.task == "semantic"
    # the panoptic json's images are under coco/val2017 in the official layout; ours are elsewhere
    with pytest.raises(FileNotFoundError, match="none of the 2 images"):
        load_standard_dataset("coco_2017_val_panoptic", data_root)


def test_environment_variable_is_the_fallback(data_root: Path, monkeypatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(data_root))
    assert datasets_root(None) == data_root
    assert len(load_standard_dataset("coco_2017_val")) == 6


def test_wrong_root_errors_name_what_was_looked_for(data_root: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(FileNotFoundError, match=r"--data-root .*\$MASKDINO_DATASETS"):
        datasets_root(None)
    with pytest.raises(FileNotFoundError, match=r"dataset root .*nowhere \(from --data-root\)"):
        datasets_root(tmp_path / "nowhere")
    with pytest.raises(
        FileNotFoundError, match=r"'coco_2017_train' not found under .*instances_train2017.json"
    ):
        load_standard_dataset("coco_2017_train", data_root)
    with pytest.raises(KeyError, match="unknown dataset 'coco_2017_tran'.*coco_2017_train"):
        load_standard_dataset("coco_2017_tran", data_root)


def test_build_dataset_from_config(data_root: Path, coco_dir: Path) -> None:
    cfg = Config()
    cfg.data.root = str(data_root)
    cfg.data.test = "coco_2017_val"
    assert len(build_dataset(cfg, "test")) == 6
    custom = Config()
    custom.data.train_json = str(coco_dir / "instances.json")
    custom.data.train_images = str(coco_dir)
    train = build_dataset(custom, "train")
    assert train.info.name == "instances" and len(train) == 6
    custom.data.train_images = None
    with pytest.raises(
        ValueError, match=r"needs the folder of its images: pass --train-images \(data.train_images\)"
    ):
        build_dataset(custom, "train")


def test_standard_info_without_files() -> None:
    assert standard_info("coco_2017_val").num_classes == 80
    panoptic = standard_info("coco_2017_val_panoptic_with_sem_seg")
    assert panoptic.num_classes == 133 and panoptic.class_names[-1] == "rug-merged"
    assert standard_info("ade20k_sem_seg_val").class_names[:3] == ("wall", "building", "sky")
    assert standard_info("cityscapes_fine_instance_seg_val").class_names == (
        "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
    )  # fmt: skip
    assert standard_info("cityscapes_fine_panoptic_train").num_classes == 19
