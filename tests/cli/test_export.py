"""`maskdino export --format onnx`: writes the model, verifies it with onnxruntime, fails clearly on bad weights."""

from __future__ import annotations

import re

import onnx

from tests.test_predictor import ASTRONAUT


def test_export_writes_an_onnx_model_verified_on_a_real_image(tmp_path, maskdino, weights):
    output = tmp_path / "demo.onnx"
    code, out, _ = maskdino(
        "export", "--weights", weights, "--format", "onnx", "--output", output, "--image", ASTRONAUT
    )
    assert code == 0, out
    assert "input 'images' [1, 3, 128, 192]" in out  # the stored config's test sizes, rounded up to 32
    errors = [float(x) for x in re.findall(r"pred_\w+ ([0-9.e+-]+)", out)]
    assert len(errors) == 3 and max(errors) <= 1e-3
    (image,) = onnx.load(str(output)).graph.input
    assert [d.dim_value for d in image.type.tensor_type.shape.dim] == [1, 3, 128, 192]


def test_missing_weights_and_weights_of_another_preset(tmp_path, maskdino, weights):
    code, _, err = maskdino(
        "export", "--weights", tmp_path / "nope.safetensors", "--output", tmp_path / "x.onnx"
    )
    assert code == 2 and "weights file not found" in err
    code, _, err = maskdino(
        "export", "--config", "r50_ins_4s", "--weights", weights, "--output", tmp_path / "x.onnx"
    )
    assert code == 2 and "holds weights of preset 'demo' but the config is 'r50_ins_4s'" in err
    assert not (tmp_path / "x.onnx").exists()
