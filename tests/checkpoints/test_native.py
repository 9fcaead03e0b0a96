"""Our safetensors format: weights + config round trip, atomic writes, configs from other versions."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from safetensors.torch import save_file

from maskdino import build_model, get_config
from maskdino.checkpoints import UnreadableCheckpointError, load_model, load_weights, weights_config
from maskdino.checkpoints.native import read_weights, save_weights


def test_round_trip_keeps_weights_and_config(tmp_path):
    cfg = get_config("demo", ["model.decoder.num_queries=40"])
    torch.manual_seed(0)
    model = build_model(cfg)
    path = save_weights(tmp_path / "w.safetensors", model, cfg)
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no temporary file left behind
    assert weights_config(path) == cfg
    other = load_weights(build_model(cfg), path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))


def test_config_from_another_version_loads_without_its_unknown_keys(tmp_path, caplog):
    cfg = get_config("demo")
    data = cfg.to_dict()
    data["model"]["backbone"]["mimdet"]["out_channels"] = 256  # a key an older version had
    path = tmp_path / "old.safetensors"
    save_file({"x": torch.zeros(1)}, str(path), metadata={"format": "maskdino", "config": json.dumps(data)})
    with caplog.at_level(logging.WARNING, logger="maskdino.config"):
        _, loaded = read_weights(path)
    assert loaded == cfg
    assert "model.backbone.mimdet.out_channels" in caplog.text
    with pytest.raises(KeyError, match="out_channels"):
        type(cfg).from_dict(data)


def test_truncated_file_is_a_clear_error(tmp_path):
    path = save_weights(tmp_path / "w.safetensors", build_model(get_config("demo")), get_config("demo"))
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(UnreadableCheckpointError, match="w.safetensors.*complete"):
        read_weights(path)


def test_training_checkpoint_gives_its_config_and_weights(tmp_path):
    cfg = get_config("demo", ["model.decoder.num_queries=30"])
    torch.manual_seed(1)
    model = build_model(cfg)
    path = tmp_path / "checkpoint_0000100.pt"
    torch.save({"model": model.state_dict(), "iteration": 100, "config": cfg.to_dict()}, path)
    assert weights_config(path) == cfg
    other = load_weights(build_model(cfg), path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))
    loaded_cfg, predictor_model = load_model(None, path)  # what `maskdino predict/eval` do without --config
    assert loaded_cfg == cfg
    assert all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), predictor_model.state_dict().values())
    )
    torch.save({"model": model.state_dict()}, tmp_path / "official_like.pth")  # no config inside
    assert weights_config(tmp_path / "official_like.pth") is None
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    assert weights_config(tmp_path / "broken.pt") is None
