"""User errors found before any work, with one message naming the file or key and the fix, exit code 2
and no traceback (unless --debug or MASKDINO_DEBUG=1): unwritable outputs, a missing device, impossible
config values, duplicate image ids and unreadable weights."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from maskdino.cli.main import main
from maskdino.config_validation import ConfigError
from maskdino.engine import train
from tests.engine.conftest import TINY, tiny_config
from tests.test_predictor import ASTRONAUT

COCO = Path(__file__).resolve().parents[1] / "data" / "pipeline" / "coco"
TRAIN_DATA = ("--train-json", COCO / "instances.json", "--train-images", COCO)
VAL_DATA = ("--val-json", COCO / "instances.json", "--val-images", COCO)


def _message(err: str) -> str:
    """The text after `maskdino <command>: error: `; the whole stderr must be that one message."""
    assert err.startswith("maskdino ") and ": error: " in err and "Traceback" not in err, err
    return err.split(": error: ", 1)[1]


def test_unwritable_outputs_are_reported_before_any_work(tmp_path: Path, maskdino, weights: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("a file where a folder is expected")
    out = blocker / "out"
    commands = {
        "train": ("train", "--config", "demo", "--output", out, *TRAIN_DATA, *TINY, "solver.max_iter=1"),
        "eval": ("eval", "--weights", weights, *VAL_DATA, "--output", out, "--device", "cpu"),
        "predict": ("predict", ASTRONAUT, "--weights", weights, "--output", out),
        "export": ("export", "--weights", weights, "--output", out / "model.onnx"),
    }
    for name, argv in commands.items():
        code, _, err = maskdino(*argv)
        assert code == 2, name
        message = _message(err)
        assert "cannot write to" in message and str(out) in message, name
        assert "choose another" in message, name
    assert not (tmp_path / "a_file").is_dir()


def test_a_read_only_output_folder_is_reported_by_eval(tmp_path: Path, maskdino, weights: Path) -> None:
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    read_only.chmod(0o555)
    if os.access(read_only, os.W_OK):
        pytest.skip("this process writes anywhere (root with CAP_DAC_OVERRIDE)")
    code, _, err = maskdino("eval", "--weights", weights, *VAL_DATA, "--output", read_only / "eval")
    assert code == 2 and "Permission denied" in _message(err) and str(read_only / "eval") in err


def test_cuda_without_cuda_is_the_same_clear_message_everywhere(
    tmp_path: Path, maskdino, weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    commands = [
        ("train", "--config", "demo", "--output", tmp_path / "t", "--device", "cuda", *TRAIN_DATA, *TINY),
        ("eval", "--weights", weights, *VAL_DATA, "--output", tmp_path / "e", "--device", "cuda"),
        ("predict", ASTRONAUT, "--weights", weights, "--output", tmp_path / "p", "--device", "cuda"),
    ]
    messages = set()
    for argv in commands:
        code, _, err = maskdino(*argv)
        assert code == 2, argv[0]
        messages.add(_message(err))
    (message,) = messages
    assert message.startswith("--device cuda requested but CUDA is not available on this machine")
    assert "use --device cpu" in message
    assert not (tmp_path / "t").exists()


def test_impossible_config_values_are_refused_naming_each_key(
    tmp_path: Path, maskdino, weights: Path
) -> None:
    out = tmp_path / "run"
    code, _, err = maskdino(
        "train", "--config", "demo", "--output", out, *TRAIN_DATA, *TINY,
        "solver.max_iter=-5", "solver.base_lr=-0.1",
    )  # fmt: skip
    message = _message(err)
    assert code == 2 and "config 'demo' has impossible values" in message
    assert "solver.max_iter=-5: must be >= 1" in message and "solver.base_lr=-0.1: must be >= 0" in message
    assert not out.exists()  # nothing was trained or written
    code, _, err = maskdino(
        "eval",
        "--weights",
        weights,
        *VAL_DATA,
        "--output",
        tmp_path / "e",
        "model.test.detections_per_image=0",
    )
    assert code == 2 and "model.test.detections_per_image=0: must be >= 1" in _message(err)
    # the Python entry point runs the same check
    with pytest.raises(ConfigError, match=r"solver\.ims_per_batch=0: must be >= 1"):
        train(tiny_config(COCO, out, "solver.ims_per_batch=0"), progress=False)


def test_repeated_image_ids_stop_train_before_the_first_iteration(tmp_path: Path, maskdino) -> None:
    data = json.loads((COCO / "instances.json").read_text())
    data["images"][2]["id"] = data["images"][4]["id"]
    path = tmp_path / "repeated.json"
    path.write_text(json.dumps(data))
    out = tmp_path / "run"
    code, _, err = maskdino(
        "train",
        "--config",
        "demo",
        "--output",
        out,
        "--train-json",
        path,
        "--train-images",
        COCO,
        *TINY,
        "solver.max_iter=1",
    )
    assert code == 2
    assert "(id 193271: 000000122745.jpg, 000000193271.jpg)" in _message(err) and str(path) in err
    assert not (out / "metrics.jsonl").exists() and not (out / "config.yaml").exists()


def test_unreadable_weights_are_reported_as_a_permission_problem(
    tmp_path: Path, maskdino, weights: Path
) -> None:
    private = tmp_path / "private.safetensors"
    private.write_bytes(weights.read_bytes())
    private.chmod(0)
    if os.access(private, os.R_OK):
        pytest.skip("this process reads files whatever their permissions (root with CAP_DAC_OVERRIDE)")
    for command in ("eval", "predict"):
        extra = (*VAL_DATA,) if command == "eval" else (ASTRONAUT,)
        code, _, err = maskdino(command, *extra, "--weights", private, "--output", tmp_path / command)
        message = _message(err)
        assert code == 2 and f"cannot read weights file {private}: permission denied" in message, command
        assert "No such file" not in message and "complete" not in message


def test_debug_shows_the_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["train", "--config", "demo", "--output", str(tmp_path / "run"), "solver.max_iter=0"]
    with pytest.raises(ConfigError, match="solver.max_iter=0"):
        main([*argv, "--debug"])
    monkeypatch.setenv("MASKDINO_DEBUG", "1")
    with pytest.raises(ConfigError, match="solver.max_iter=0"):
        main(argv)
