"""`maskdino predict`: overlays and COCO/PNG results for files, folders and globs; every bad input gets a
clear message, the other images are still processed and failures are counted."""

from __future__ import annotations

import json
import shutil

import numpy as np
import torch
from PIL import Image
from pycocotools import mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from safetensors.torch import load_file

from maskdino.data.class_names import COCO_PANOPTIC_IDS, COCO_THING_IDS
from tests.test_predictor import ASTRONAUT, COCO_IMAGES, demo_config, official_layout, save_demo_weights

COCO_JSON = COCO_IMAGES[0].parent / "instances.json"


def test_bundled_coco_images_give_overlays_and_a_scorable_results_json(tmp_path, maskdino, weights):
    pattern = str(COCO_IMAGES[0].parent / "*.jpg")
    code, out, _ = maskdino("predict", pattern, "--weights", weights, "--output", tmp_path, "--top-k", "10")
    assert code == 0 and "processed 6 image(s), 0 failed" in out
    assert sorted(p.name for p in (tmp_path / "overlays").iterdir()) == [p.stem + ".png" for p in COCO_IMAGES]
    with Image.open(tmp_path / "overlays" / "000000037777.png") as overlay:
        assert overlay.size == (352, 230)
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results) == 60 and {r["category_id"] for r in results} <= set(COCO_THING_IDS)
    first = next(r for r in results if r["image_id"] == 37777)
    assert mask_util.decode(first["segmentation"]).shape == (230, 352)
    images = json.loads((tmp_path / "images.json").read_text())
    assert [i["id"] for i in images["images"]] == [int(p.stem) for p in COCO_IMAGES]
    assert len(images["categories"]) == 80 and images["failed"] == []
    ground_truth = COCO(str(COCO_JSON))
    for iou_type in ("bbox", "segm"):  # the file is valid COCO results (random weights: AP ~ 0)
        evaluator = COCOeval(ground_truth, ground_truth.loadRes(str(tmp_path / "results.json")), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()


def test_folder_with_bad_files_processes_the_rest_and_counts_failures(tmp_path, maskdino, weights):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(COCO_IMAGES[0], folder / "good.jpg")
    shutil.copy(ASTRONAUT, folder / "astronaut.PNG")
    (folder / "truncated.jpg").write_bytes(COCO_IMAGES[1].read_bytes()[:3000])
    (folder / "text.jpg").write_text("not an image at all\n")
    (folder / "readme.txt").write_text("ignored: not an image extension\n")
    out_dir = tmp_path / "out"
    code, out, err = maskdino(
        "predict",
        folder,
        "--weights",
        weights,
        "--output",
        out_dir,
        "--batch-size",
        "2",
        "--score-threshold",
        "0.3",
    )
    assert code == 1
    assert "processed 2 image(s), 2 failed" in out
    assert "truncated.jpg" in out and "text.jpg" in out and "readme.txt" not in out + err
    assert "skipped" in err and "cannot decode image" in err
    assert sorted(p.name for p in (out_dir / "overlays").iterdir()) == ["astronaut.png", "good.png"]
    results = json.loads((out_dir / "results.json").read_text())
    assert results and min(r["score"] for r in results) >= 0.3
    images = json.loads((out_dir / "images.json").read_text())
    assert [i["id"] for i in images["images"]] == [1, 2]  # not COCO file names: positions
    assert len(images["failed"]) == 2


def test_empty_folder_missing_input_and_glob_without_match(tmp_path, maskdino, weights):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = maskdino("predict", empty, "--weights", weights, "--output", tmp_path / "out")
    assert code == 2 and "folder holds no images" in err and "empty" in err
    assert not (tmp_path / "out").exists()
    code, out, _ = maskdino(
        "predict", ASTRONAUT, tmp_path / "nope.jpg", str(tmp_path / "*.webp"), empty, "--weights", weights,
        "--output", tmp_path / "out",
    )  # fmt: skip
    assert code == 1 and "processed 1 image(s), 3 failed" in out
    assert "nope.jpg: no such file or folder" in out and "pattern matches no files" in out


def test_missing_weights_and_weights_of_another_preset(tmp_path, maskdino, weights):
    code, _, err = maskdino("predict", ASTRONAUT, "--weights", tmp_path / "nope.pth", "--output", tmp_path)
    assert code == 2 and "weights file not found" in err and "nope.pth" in err
    official = tmp_path / "demo_official.pth"
    state = official_layout(load_file(weights))
    torch.save({"model": state}, official)
    code, _, err = maskdino(
        "predict", ASTRONAUT, "--config", "r50_ins_4s", "--weights", official, "--output", tmp_path
    )
    assert code == 2 and "does not match the model" in err and "most likely fits the preset 'demo'" in err


def test_converted_inputs_are_noted(tmp_path, maskdino, weights):
    rgb = np.asarray(Image.open(ASTRONAUT).convert("RGB").resize((80, 64)))
    Image.fromarray(rgb).convert("L").save(tmp_path / "gray.png")
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])).save(tmp_path / "rgba.png")
    Image.fromarray(rgb).save(tmp_path / "plain.webp")
    Image.fromarray(rgb[..., 1].astype(np.uint16) * 257).save(tmp_path / "deep.png")
    exif = Image.Exif()
    exif[274] = 8
    Image.fromarray(rgb).save(tmp_path / "rotated.jpg", exif=exif)
    Image.fromarray(rgb).save(tmp_path / "plain.bmp")
    code, out, err = maskdino(
        "predict", tmp_path, "--weights", weights, "--output", tmp_path / "out", "--no-overlays"
    )
    assert code == 0 and "processed 6 image(s), 0 failed" in out
    for note in ("grayscale replicated", "alpha channel", "16-bit", "EXIF orientation 8"):
        assert note in err
    sizes = {
        i["file_name"].rsplit("/", 1)[-1]: (i["height"], i["width"])
        for i in json.loads((tmp_path / "out" / "images.json").read_text())["images"]
    }
    assert sizes["rotated.jpg"] == (80, 64) and sizes["plain.bmp"] == sizes["plain.webp"] == (64, 80)
    assert not (tmp_path / "out" / "overlays").exists()


def test_panoptic_preset_writes_pngs_and_panoptic_json(tmp_path, maskdino):
    cfg = demo_config(
        "model.num_classes=133",
        f"model.thing_classes=[{','.join(map(str, range(80)))}]",
        "model.test.panoptic_on=true",
        "model.test.semantic_on=true",
        "model.decoder.initialize_box_type=no",
        "data.test=coco_2017_val_panoptic_with_sem_seg",
    )
    weights = save_demo_weights(tmp_path / "panoptic.safetensors", cfg)
    code, out, _ = maskdino(
        "predict",
        COCO_IMAGES[0],
        "--weights",
        weights,
        "--output",
        tmp_path / "out",
        "--overlay-threshold",
        "0",
    )
    assert code == 0, out
    with Image.open(tmp_path / "out" / "panoptic" / "000000037777.png") as png:
        assert png.mode == "RGB" and png.size == (352, 230)
        ids = np.asarray(png).astype(np.int64) @ np.array([1, 256, 65536])
    panoptic = json.loads((tmp_path / "out" / "panoptic.json").read_text())
    (annotation,) = panoptic["annotations"]
    assert annotation["image_id"] == 37777 and len(panoptic["categories"]) == 133
    assert {s["id"] for s in annotation["segments_info"]} == set(np.unique(ids).tolist()) - {0}
    assert {s["category_id"] for s in annotation["segments_info"]} <= set(COCO_PANOPTIC_IDS)
    with Image.open(tmp_path / "out" / "semantic" / "000000037777.png") as png:
        assert png.size == (352, 230) and np.asarray(png).max() < 133
    with Image.open(tmp_path / "out" / "overlays" / "000000037777.png") as overlay:
        assert overlay.size[0] > 352  # panoptic colour map with its legend
    assert (tmp_path / "out" / "results.json").exists()  # panoptic presets also give instances


def test_batch_size_does_not_change_the_results(tmp_path, maskdino, weights):
    """Landscape, portrait and square photos: `--batch-size 3` writes what `--batch-size 1` writes (same
    instances, scores within 1e-4, boxes within 0.05 px, identical masks)."""
    photos = [COCO_IMAGES[0], COCO_IMAGES[2], ASTRONAUT]
    written = {}
    for batch_size in (1, 3):
        out_dir = tmp_path / f"batch{batch_size}"
        code, out, _ = maskdino(
            "predict", *photos, "--weights", weights, "--output", out_dir, "--top-k", "10",
            "--batch-size", batch_size, "--no-overlays",
        )  # fmt: skip
        assert code == 0 and "processed 3 image(s), 0 failed" in out
        written[batch_size] = json.loads((out_dir / "results.json").read_text())
    single, batched = written[1], written[3]
    assert len(single) == len(batched) == 30
    assert [(r["image_id"], r["category_id"]) for r in single] == [
        (r["image_id"], r["category_id"]) for r in batched
    ]
    np.testing.assert_allclose([r["score"] for r in batched], [r["score"] for r in single], atol=1e-4, rtol=0)
    np.testing.assert_allclose([r["bbox"] for r in batched], [r["bbox"] for r in single], atol=0.05, rtol=0)
    assert [r["segmentation"] for r in batched] == [r["segmentation"] for r in single]
