"""ONNX export of the raw network: onnxruntime matches PyTorch on a real image, with standard ONNX ops only."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from maskdino.export import compare_with_pytorch, default_input_size, export_onnx, prepare_input
from maskdino.layers.ms_deform_attn import MSDeformAttn
from maskdino.postprocess import instance_inference
from tests.export.conftest import ASTRONAUT, HEIGHT, WIDTH

DOCS = Path(__file__).resolve().parents[2] / "docs" / "export.md"


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory, demo_model) -> Path:
    return export_onnx(demo_model, tmp_path_factory.mktemp("onnx") / "demo.onnx", HEIGHT, WIDTH)


def test_onnxruntime_matches_pytorch_on_a_real_image(onnx_path, demo_model, astronaut_batch):
    errors = compare_with_pytorch(onnx_path, demo_model, astronaut_batch)
    assert set(errors) == {"pred_logits", "pred_boxes", "pred_masks"}
    assert max(errors.values()) <= 1e-3, errors  # measured: about 1e-6 or less
    # export switched deformable attention to the reference path only while tracing
    assert {m.impl for m in demo_model.modules() if isinstance(m, MSDeformAttn)} == {"auto"}


def test_graph_uses_standard_ops_at_a_fixed_size(onnx_path):
    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model)
    ops = {node.op_type for node in model.graph.node}
    assert "GridSample" in ops and "TopK" in ops  # deformable sampling and query selection
    assert {node.domain for node in model.graph.node} <= {""}  # no custom operators
    (image,) = model.graph.input
    assert [d.dim_value for d in image.type.tensor_type.shape.dim] == [1, 3, HEIGHT, WIDTH]
    shapes = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output}
    assert shapes == {
        "pred_logits": [1, 50, 80],
        "pred_boxes": [1, 50, 4],
        "pred_masks": [1, 50, HEIGHT // 4, WIDTH // 4],
    }


def test_input_size_must_fit_the_size_divisibility(tmp_path, demo_model, demo_cfg):
    assert default_input_size(demo_cfg, 32) == (128, 192)
    with pytest.raises(ValueError, match="multiple of the model's size divisibility 32"):
        export_onnx(demo_model, tmp_path / "x.onnx", 100, 192)


def test_prepare_input_resizes_normalises_and_pads_like_the_model(demo_cfg, demo_model):
    portrait = np.random.default_rng(0).integers(0, 256, (300, 200, 3), dtype=np.uint8)
    batch, (h, w) = prepare_input(portrait, demo_cfg, HEIGHT, WIDTH)
    assert (h, w) == (128, 85)  # test resize gives 192x128 (too tall for the canvas): fitted inside
    assert batch.shape == (1, 3, HEIGHT, WIDTH) and not batch[..., h:, :].any() and not batch[..., w:].any()
    resized = np.array(Image.fromarray(portrait).resize((w, h), Image.BILINEAR))
    ours, _ = demo_model.preprocess([torch.from_numpy(resized).permute(2, 0, 1).float() / 255])
    assert torch.allclose(ours[0, :, :h, :w], torch.from_numpy(batch[0, :, :h, :w]), atol=1e-4)


def test_docs_example_runs_and_agrees_with_our_post_processing(onnx_path, demo_cfg, astronaut_batch):
    """The onnxruntime example of docs/export.md, run as written on the exported demo model."""
    code = re.search(r"```python\n(.*?)```", DOCS.read_text(), re.S).group(1)
    for old, new in [
        ('"maskdino.onnx"', repr(str(onnx_path))),
        ('"photo.jpg"', repr(str(ASTRONAUT))),
        ("SHORT, LONG = 800, 1333", f"SHORT, LONG = {HEIGHT}, {WIDTH}"),
        ("THRESHOLD = 100, 0.5", "THRESHOLD = 100, 0.0"),
        ("print(", "str("),
    ]:
        assert old in code, old
        code = code.replace(old, new)
    docs: dict = {}
    exec(compile(code, str(DOCS), "exec"), docs)
    assert np.array_equal(docs["canvas"], astronaut_batch)  # same input as maskdino.export.prepare_input
    logits, boxes, masks = (torch.from_numpy(x[0]) for x in (docs["logits"], docs["boxes"], docs["masks"]))
    ours = instance_inference(
        logits, masks, boxes, (HEIGHT, WIDTH), (128, 128), (512, 512), demo_cfg.model.test
    )
    # same (query, class) pairs, so the same boxes; ours re-ranks by mask confidence and resizes with torch
    order = lambda b: b[np.lexsort(b.T[::-1])]  # noqa: E731
    assert np.allclose(order(docs["xyxy"]), order(ours["boxes"].numpy()), atol=1e-3)
    ious = []
    for box, mask in zip(docs["xyxy"], docs["instance_masks"]):
        j = int(np.abs(ours["boxes"].numpy() - box).sum(1).argmin())
        theirs = ours["masks"][j].numpy()
        union = (mask | theirs).sum()
        ious.append((mask & theirs).sum() / union if union else 1.0)  # both empty: they agree
    assert np.mean(ious) > 0.95, np.mean(ious)
