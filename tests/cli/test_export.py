"""`maskdino export` fails clearly on bad weights and options (a successful export and its verification:
tests/export, which run the command once for the whole session)."""

from __future__ import annotations


def test_missing_weights_and_weights_of_another_preset(tmp_path, maskdino, weights):
    code, _, err = maskdino(
        "export", "--weights", tmp_path / "nope.safetensors", "--output", tmp_path / "x.onnx"
    )
    assert code == 2 and "weights file not found" in err
    code, _, err = maskdino(
        "export", "--config", "r50_ins_4s", "--weights", weights, "--output", tmp_path / "x.onnx"
    )
    assert code == 2 and "holds weights of preset 'demo' but the config is 'r50_ins_4s'" in err
    code, _, err = maskdino(
        "export", "--weights", weights, "--format", "torch", "--fp16", "--output", tmp_path / "x.pt2"
    )
    assert code == 2 and "--fp16 applies to --format onnx only" in err
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "x.pt2").exists()
