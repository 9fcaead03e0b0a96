"""The numpy pre- and post-processing of the exported network equal maskdino's own, and the onnxruntime
example of docs/export.md runs as written without torch, from a JPEG to drawn boxes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional as F

from maskdino.export import numpy_processing
from maskdino.predictor import Predictor
from tests.test_predictor import COCO_IMAGES

DOCS = Path(__file__).resolve().parents[2] / "docs" / "export.md"
PHOTO = COCO_IMAGES[0]  # 352x230 JPEG -> 192x125 after the demo test resize (128 / 192)


def docs_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)


def assert_same_instances(ours: dict, theirs: dict) -> None:
    """Same instances in the same order: labels equal, scores within 1e-4, boxes within 0.05 px, masks
    equal up to pixels whose mask logit is within float rounding of 0."""
    assert np.array_equal(np.asarray(ours["labels"]), np.asarray(theirs["labels"]))
    np.testing.assert_allclose(np.asarray(ours["scores"]), np.asarray(theirs["scores"]), atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.asarray(ours["boxes"]), np.asarray(theirs["boxes"]), atol=0.05, rtol=0)
    differ = np.asarray(ours["masks"]) != np.asarray(theirs["masks"])
    assert differ.mean() < 1e-4, differ.mean()


@pytest.fixture(scope="module")
def predictor(demo_weights) -> Predictor:
    return Predictor(weights=demo_weights)


def test_the_docs_carry_the_module_verbatim():
    source = Path(numpy_processing.__file__).read_text()
    assert docs_blocks()[0] == source


def test_preprocess_equals_the_predictors_resize_and_the_models_normalisation(predictor):
    cfg, model = predictor.cfg, predictor.model
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))
    ours, image_size = numpy_processing.preprocess(
        photo, cfg.input.min_size_test, cfg.input.max_size_test, cfg.model.pixel_mean, cfg.model.pixel_std
    )
    batch = model.preprocess([predictor.resize(photo)])
    assert image_size == (125, 192) and batch.image_sizes == [image_size]
    assert ours.shape == tuple(batch.pixels.shape) == (1, 3, 128, 192)
    np.testing.assert_allclose(ours, batch.pixels.numpy(), atol=1e-4, rtol=0)


def test_resize_bilinear_equals_torch_interpolate():
    x = np.random.default_rng(0).normal(size=(3, 13, 17)).astype(np.float32)
    for size in [(52, 68), (10, 9), (13, 40)]:
        theirs = F.interpolate(torch.from_numpy(x)[None], size=size, mode="bilinear", align_corners=False)[0]
        np.testing.assert_allclose(numpy_processing.resize_bilinear(x, size), theirs.numpy(), atol=1e-5)


def test_postprocess_equals_the_models(predictor):
    model = predictor.model
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))
    batch = model.preprocess([predictor.resize(photo)])
    with torch.no_grad():
        outputs = model.network(batch.pixels)
        theirs = model.postprocess(outputs, batch, [photo.shape[:2]])[0]
    ours = numpy_processing.postprocess(
        outputs.pred_logits[0].numpy(),
        outputs.pred_boxes[0].numpy(),
        outputs.pred_masks[0].numpy(),
        batch.image_sizes[0],
        photo.shape[:2],
    )
    assert ours["masks"].shape == (100, 230, 352)
    assert_same_instances(ours, {k: v.numpy() for k, v in theirs.items()})


def test_docs_example_runs_without_torch_and_matches_the_predictor(exported, predictor, tmp_path):
    module, example = docs_blocks()
    (tmp_path / "numpy_processing.py").write_text(module)
    output = tmp_path / "boxes.jpg"
    for old, new in [
        ('"maskdino.onnx"', repr(str(exported[0]))),
        ('"photo.jpg"', repr(str(PHOTO))),
        ('"photo_boxes.jpg"', repr(str(output))),
        ("SHORT, LONG = 800, 1333", "SHORT, LONG = 128, 192"),  # the demo weights' test size
        ("THRESHOLD = 0.5", "THRESHOLD = 0.0"),
    ]:
        assert old in example, old
        example = example.replace(old, new)
    runner = (
        "import sys\n"
        "sys.modules['torch'] = None  # any import of torch fails\n"
        "import numpy as np\n"
        f"namespace = {{'__name__': '__main__'}}\n"
        f"exec(compile({example!r}, 'docs/export.md', 'exec'), namespace)\n"
        f"np.savez({str(tmp_path / 'result.npz')!r}, **namespace['result'])\n"
    )
    done = subprocess.run([sys.executable, "-c", runner], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "100 instances >= 0.0, drawn in" in done.stdout
    drawn = np.asarray(Image.open(output))
    assert drawn.shape == (230, 352, 3) and not np.array_equal(drawn, np.asarray(Image.open(PHOTO)))
    ours = dict(np.load(tmp_path / "result.npz"))
    theirs = {k: v.numpy() for k, v in predictor(PHOTO).items()}
    assert_same_instances(ours, theirs)
