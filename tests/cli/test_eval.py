"""`maskdino eval` on a custom COCO json: unreadable or missing images are left out, named and counted,
and the metrics score only the evaluated images; a json that repeats image ids is refused before inference."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

COCO = Path(__file__).resolve().parents[1] / "data" / "pipeline" / "coco"
GOOD = ("000000037777.jpg", "000000193271.jpg", "000000542145.jpg")
TRUNCATED = "000000117645.jpg"
MISSING = "000000159269.jpg"


@pytest.fixture(autouse=True)
def one_thread(single_thread: None) -> None:
    """Tiny models on one intra-op thread (see tests/conftest.py)."""


def _val_set(folder: Path, json_name: str = "val.json", same_id: bool = False) -> Path:
    """Five fixture images in a json; on disk three intact, one cut short, one absent."""
    folder.mkdir()
    for name in GOOD:
        shutil.copy(COCO / name, folder / name)
    (folder / TRUNCATED).write_bytes((COCO / TRUNCATED).read_bytes()[:3000])
    data = json.loads((COCO / "instances.json").read_text())
    listed = {*GOOD, TRUNCATED, MISSING}
    data["images"] = [image for image in data["images"] if image["file_name"] in listed]
    if same_id:
        data["images"][1]["id"] = data["images"][0]["id"]
    ids = {image["id"] for image in data["images"]}
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in ids]
    path = folder / json_name
    path.write_text(json.dumps(data))
    return path


def _eval(maskdino, weights: Path, val_json: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return maskdino(
        "eval", "--weights", weights, "--val-json", val_json, "--val-images", val_json.parent,
        "--output", out, "--device", "cpu", *extra, "data.num_workers=0",
    )  # fmt: skip


def test_unreadable_and_missing_images_are_left_out_named_and_counted(
    tmp_path: Path, maskdino, weights: Path, caplog: pytest.LogCaptureFixture
) -> None:
    val_json = _val_set(tmp_path / "val")
    out = tmp_path / "eval"
    with caplog.at_level(logging.WARNING, logger="maskdino"):
        code, stdout, err = _eval(maskdino, weights, val_json, out)
    assert code == 0, err
    assert f"metrics written to {out / 'metrics.json'}" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["images/evaluated"] == 3 and metrics["images/left_out"] == 2
    assert len(metrics["skipped_images"]) == 1 and TRUNCATED in metrics["skipped_images"][0]
    assert f"evaluation: skipped cannot decode image {tmp_path / 'val' / TRUNCATED}" in caplog.text
    assert "missing_file: 1" in caplog.text and MISSING in caplog.text
    assert "2 image(s) left out (1 missing or undecodable when loading, 1 unreadable during inference)" in (
        caplog.text
    )
    results = json.loads((out / "coco_instances_results.json").read_text())
    assert {r["image_id"] for r in results} == {int(name[:-4]) for name in GOOD}
    assert 0.0 <= metrics["segm/AP"] <= 100.0


def test_repeated_image_ids_are_refused_before_inference(tmp_path: Path, maskdino, weights: Path) -> None:
    val_json = _val_set(tmp_path / "val", same_id=True)
    code, _, err = _eval(maskdino, weights, val_json, tmp_path / "eval")
    assert code == 2 and "Traceback" not in err
    assert (
        "val.json gives one image id to several images (id 37777: 000000037777.jpg, 000000117645.jpg)" in err
    )
    assert not (tmp_path / "eval" / "coco_instances_results.json").exists()
