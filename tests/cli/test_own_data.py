"""Your own data end to end through the command line, with the `demo` preset shrunk to 128 px: a semantic
folder, a COCO panoptic json and a box-only COCO json with its own category ids each train two iterations
and evaluate with the flags of docs/datasets.md; the class identity travels with the weights into
predictions made from an unrelated folder; a run's config.yaml is a config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from maskdino import Predictor, get_config
from maskdino.cli import main as cli_main

DATA = Path(__file__).resolve().parents[1] / "data" / "pipeline"
CAMVID, PANOPTIC, COCO = DATA / "camvid", DATA / "coco_panoptic", DATA / "coco"
TINY = (
    "input.image_size=128", "input.min_size_test=128", "input.max_size_test=192",
    "model.pixel_decoder.num_encoder_layers=1", "model.decoder.num_layers=2", "model.decoder.num_queries=20",
    "model.decoder.dn_num=40", "model.loss.num_points=256", "data.num_workers=0", "solver.ims_per_batch=1",
    "solver.max_iter=2", "solver.checkpoint_period=0", "solver.log_period=1",
)  # fmt: skip
OWN_IDS = {9: (3, "boat"), 62: (17, "chair"), 44: (44, "bottle")}  # COCO id -> (our id, name)


@pytest.fixture(autouse=True)
def one_thread(single_thread: None) -> None:
    """Tiny models run faster on one thread of a shared CPU."""


def _train(output: Path, *args: object) -> Path:
    code = cli_main.main(
        ["train", "--config", "demo", "--output", str(output), "--no-progress", *map(str, args)]
    )
    assert code == 0
    return output


def _box_only_json(path: Path, keep_masks: bool = False) -> Path:
    """The COCO fixture reduced to boat, chair and bottle under the ids 3, 17, 44, without masks (unless
    `keep_masks`)."""
    data = json.loads((COCO / "instances.json").read_text())
    data["categories"] = [{"id": new, "name": name} for new, name in OWN_IDS.values()]
    data["annotations"] = [
        {
            k: v
            for k, v in dict(a, category_id=OWN_IDS[a["category_id"]][0]).items()
            if keep_masks or k != "segmentation"
        }
        for a in data["annotations"]
        if a["category_id"] in OWN_IDS
    ]
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="module")
def box_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("boxes")
    boxes = _box_only_json(root / "boxes.json")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the per-test single-thread one
    try:
        return _train(root / "run", "--train-json", boxes, "--train-images", COCO, *TINY)
    finally:
        torch.set_num_threads(threads)


def test_semantic_folder_trains_evaluates_at_the_end_and_through_eval(tmp_path, maskdino) -> None:
    flags = ("--val-images", CAMVID / "images", "--val-masks", CAMVID / "labels")
    run = _train(
        tmp_path / "run", "--train-images", CAMVID / "images", "--train-masks", CAMVID / "labels",
        "--classes", CAMVID / "classes.txt", *flags, "data.ignore_label=11", *TINY,
    )  # fmt: skip
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["test"]["semantic_on"] and not saved["model"]["test"]["instance_on"]
    assert saved["model"]["decoder"]["semantic_ce_loss"] and saved["model"]["num_classes"] == 11
    assert saved["data"]["class_names"][-1] == "Bicyclist" and saved["data"]["class_ids"] == list(range(11))
    assert "sem_seg/mIoU" in json.loads((run / "eval_0000002" / "metrics.json").read_text())  # eval_period 0

    code, out, _ = maskdino(
        "eval", "--weights", run / "model_final.safetensors", *flags, "--output", tmp_path / "e"
    )
    assert code == 0
    for column in ("mIoU", "fwIoU", "mACC", "pACC"):
        assert column in out
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    per_class = [metrics[f"sem_seg/IoU-{name}"] for name in saved["data"]["class_names"]]
    assert metrics["sem_seg/mIoU"] == pytest.approx(sum(per_class) / 11)  # every class has pixels
    rows = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ")]
    assert set(saved["data"]["class_names"]) <= set(rows)  # the per-class IoU table


def test_panoptic_json_trains_and_reports_pq_of_things_and_stuff(tmp_path, maskdino) -> None:
    flags = ("--train-json", PANOPTIC / "panoptic_val2017.json", "--train-images", PANOPTIC / "images")
    run = _train(tmp_path / "run", *flags, "--train-masks", PANOPTIC / "panoptic_val2017", *TINY)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["test"]["panoptic_on"] and saved["model"]["thing_classes"] == list(range(80))
    code, out, _ = maskdino(
        "eval", "--weights", run / "model_final.safetensors", "--output", tmp_path / "e",
        "--val-json", PANOPTIC / "panoptic_val2017.json", "--val-images", PANOPTIC / "images",
        "--val-masks", PANOPTIC / "panoptic_val2017",
    )  # fmt: skip
    assert code == 0
    assert "PQ" in out and "| Things |" in out and "| Stuff  |" in out
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert {"PQ", "SQ", "RQ", "PQ_th", "PQ_st"} <= set(metrics) and metrics["N_th"] + metrics[
        "N_st"
    ] == metrics["N"]


def test_box_only_json_trains_a_detector_and_reports_box_ap(box_run, tmp_path, maskdino) -> None:
    saved = yaml.safe_load((box_run / "config.yaml").read_text())
    assert (
        saved["model"]["decoder"]["dn"] == "standard"
        and saved["model"]["decoder"]["initialize_box_type"] == "no"
        and saved["model"]["test"]["mask_on"] is False  # its mask head is untrained: no masks in results
    )
    lines = [json.loads(line) for line in (box_run / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["loss_mask"] == 0.0 and lines[0]["loss_bbox"] > 0 and lines[0]["loss_bbox_dn"] > 0
    boxes = _box_only_json(tmp_path / "boxes.json")
    weights = box_run / "model_final.safetensors"
    common = ("--weights", weights, "--val-json", boxes, "--val-images", COCO, "--output", tmp_path / "e")
    code, out, _ = maskdino("eval", *common)
    assert code == 0 and "| bbox |" in out and "segm" not in out
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    stats = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
    assert all(f"bbox/{s}" in metrics for s in stats) and not any(k.startswith("segm/") for k in metrics)
    code, _, err = maskdino("eval", *common, "model.test.mask_on=true", "--iou-types", "segm")
    assert code == 2
    count = len(json.loads(boxes.read_text())["annotations"])
    assert f"boxes.json has {count} annotations without 'segmentation'" in err and "--iou-types bbox" in err
    # data with masks: still box AP only, the model gives none
    masks = _box_only_json(tmp_path / "masks.json", keep_masks=True)
    common = ("--weights", weights, "--val-json", masks, "--val-images", COCO, "--output", tmp_path / "m")
    code, out, _ = maskdino("eval", *common)
    assert code == 0 and "| bbox |" in out and "segm" not in out
    code, _, err = maskdino("eval", *common, "--iou-types", "bbox", "segm")
    assert code == 2 and "the model gives no masks (model.test.mask_on=false" in err


def test_predictions_from_any_folder_carry_the_original_ids_and_names(box_run, tmp_path, maskdino) -> None:
    photos = tmp_path / "photos"  # unrelated to the training data's folder, and no dataset json around
    photos.mkdir()
    shutil.copy(COCO / "000000159269.jpg", photos / "harbour.jpg")
    shutil.copy(DATA.parent / "astronaut.png", photos / "astronaut.png")
    weights = box_run / "model_final.safetensors"
    code, out, _ = maskdino(
        "predict", photos, "--weights", weights, "--output", tmp_path / "out", "--no-overlays"
    )
    assert code == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results and {r["category_id"] for r in results} <= {3, 17, 44}
    categories = json.loads((tmp_path / "out" / "images.json").read_text())["categories"]
    assert [(c["id"], c["name"]) for c in categories] == [(3, "boat"), (17, "chair"), (44, "bottle")]
    # --dataset-json still overrides them
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"categories": [{"id": i, "name": f"n{i}"} for i in (5, 6, 7)]}))
    out_dir = tmp_path / "o2"
    code, _, _ = maskdino(
        "predict", photos, "--weights", weights, "--output", out_dir, "--dataset-json", other,
        "--top-k", "1", "--overlay-threshold", "0",
    )  # fmt: skip
    assert code == 0
    results = json.loads((out_dir / "results.json").read_text())
    assert len(results) == 2 and {r["category_id"] for r in results} <= {5, 6, 7}
    # a detector: boxes without segmentation; overlays draw the box and its tag, nothing else
    assert all(sorted(r) == ["bbox", "category_id", "image_id", "score"] for r in results)
    harbour = json.loads((out_dir / "images.json").read_text())["images"][1]
    assert harbour["file_name"].endswith("harbour.jpg")
    drawn = np.asarray(Image.open(out_dir / "overlays" / "harbour.png").convert("RGB"))
    photo = np.asarray(Image.open(photos / "harbour.jpg").convert("RGB"))
    x, y, w, h = next(r["bbox"] for r in results if r["image_id"] == harbour["id"])
    untouched = np.ones(photo.shape[:2], bool)  # left of the box, above its tag, below it
    untouched[max(int(y) - 30, 0) : int(y + h) + 3, max(int(x) - 3, 0) :] = False
    assert not np.array_equal(drawn, photo) and np.array_equal(drawn[untouched], photo[untouched])


def test_a_runs_config_yaml_is_a_config(box_run, tmp_path) -> None:
    cfg = get_config(box_run / "config.yaml", ["solver.max_iter=7"])
    assert cfg.name == "demo" and cfg.model.num_classes == 3 and cfg.solver.max_iter == 7
    assert cfg.data.class_ids == (3, 17, 44)
    predictor = Predictor(str(box_run / "config.yaml"), box_run / "model_final.safetensors")
    assert predictor.info.dataset_ids == (3, 17, 44) and predictor.class_names == ("boat", "chair", "bottle")
    result = predictor(COCO / "000000159269.jpg")
    assert result["boxes"].shape[1] == 4 and sorted(result) == ["boxes", "labels", "scores"]
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match=r"list.yaml does not hold a config mapping"):
        get_config(tmp_path / "list.yaml")
    (tmp_path / "typo.yaml").write_text("solver:\n  max_iters: 3\n")
    with pytest.raises(KeyError, match=r"unknown config key 'solver.max_iters'.*solver.max_iter"):
        get_config(tmp_path / "typo.yaml")
    with pytest.raises(KeyError, match=r"unknown preset .*nope.yaml.*a run's config.yaml"):
        get_config(tmp_path / "nope.yaml")
