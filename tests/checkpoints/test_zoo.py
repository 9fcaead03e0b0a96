"""The registry: every entry names a real preset of the right task, names resolve every way a user
writes them, and `maskdino zoo` lists every entry."""

from __future__ import annotations

import pytest

from maskdino.checkpoints.zoo import ENTRIES, MASKDINO_RELEASE, ZOO, close_names, find_entry
from maskdino.cli.main import main as cli_main
from maskdino.presets import get_config

# (task of the preset, classes): what each kind of release was trained for
TASKS = {
    "coco-instance": ("instance", 80),
    "coco-panoptic": ("panoptic", 133),
    "ade20k-semantic": ("semantic", 150),
    "cityscapes-semantic": ("semantic", 19),
    "coco": ("instance", 80),  # MIMDet / Benchmarking Mask R-CNN
}


def task_of(preset: str) -> tuple[str, int]:
    cfg = get_config(preset)
    test = cfg.model.test
    task = "panoptic" if test.panoptic_on else "instance" if test.instance_on else "semantic"
    return task, cfg.model.num_classes


def test_every_model_entry_loads_into_a_preset_of_its_task():
    assert len(ZOO) == len(ENTRIES) == 22 and len({e.file_name for e in ZOO}) == 22
    models = [e for e in ZOO if e.kind == "model"]
    assert len(models) == 8 + 3 + 6  # Mask DINO README, DI-MaskDINO README, MIMDet README
    for entry in models:
        dataset = next(key for key in TASKS if key in entry.name)
        assert task_of(entry.preset) == TASKS[dataset], entry.name
        if entry.name.startswith("maskdino-"):
            assert entry.url == MASKDINO_RELEASE + entry.file_name
            assert entry.metrics.reported() and entry.licence.startswith("Apache-2.0")
    for entry in ZOO:
        if not entry.manual_download:
            assert entry.url.startswith("https://") and entry.url.endswith("/" + entry.file_name)


def test_names_resolve_by_registry_name_spelling_and_release_file_name():
    r50 = ENTRIES["maskdino-r50-coco-instance"]
    assert find_entry("maskdino_r50_coco_instance") is r50
    assert find_entry(" MaskDINO-R50-COCO-Instance ") is r50
    assert (
        find_entry("maskdino_r50_50ep_300q_hid2048_3sd1_instance_maskenhanced_mask46.3ap_box51.7ap.pth")
        is r50
    )
    assert find_entry("r50_ins_4s") is None  # a preset is not a set of weights
    assert close_names("maskdino-r50-coco-panoptc")[0] == "maskdino-r50-coco-panoptic"
    assert close_names("mimdet_vit_base_mask_rcnn_fpn_sr_0p5_800_1333_4xdec_coco_3x.pt")[0] == (
        "mimdet_vit_base_mask_rcnn_fpn_sr_0p5_800_1333_4xdec_coco_3x.pth"
    )


def test_the_zoo_command_lists_every_entry_and_details_one(capsys):
    assert cli_main(["zoo"]) == 0
    out = capsys.readouterr().out
    assert all(entry.name in out for entry in ZOO)
    assert "maskdino-r50-coco-panoptic                    model     r50_pan" in out
    assert cli_main(["zoo", "--urls"]) == 0
    assert ENTRIES["mae-vit-base-full"].url in capsys.readouterr().out  # no mirror set in this test
    assert cli_main(["zoo", "maskdino-swinl-coco-panoptic"]) == 0
    details = capsys.readouterr().out
    assert "maskdino_swinl_50ep_300q_hid2048_3sd1_panoptic_58.3pq.pth" in details
    assert "box AP 56.2, mask AP 50.6, PQ 58.3, mIoU 67.5" in details


@pytest.fixture(autouse=True)
def no_mirror(monkeypatch):
    monkeypatch.delenv("MASKDINO_MIRROR")
