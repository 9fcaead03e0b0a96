"""save_pretrained -> from_pretrained, Predictor, --weights: the folder loads back bit-exactly, with its
config, classes and model card; `maskdino convert` writes the same folder from an official .pth."""

from __future__ import annotations

import json

import pytest
import torch

from maskdino import Predictor, build_model, from_pretrained, get_config, load_weights
from maskdino.checkpoints import load_model, weights_config
from maskdino.cli.main import main as cli_main
from tests.test_predictor import demo_config, official_layout

CLASSES = ("bottle", "chair", "sink")


def custom_model() -> torch.nn.Module:
    """A demo model fine-tuned (here: seeded at random) on three classes, BatchNorm statistics included."""
    cfg = demo_config("model.num_classes=3", "model.thing_classes=[0,1]", f"data.class_names={list(CLASSES)}")
    torch.manual_seed(3)
    model = build_model(cfg)
    for name, buffer in model.named_buffers():
        if name.endswith("running_var"):
            buffer.uniform_(0.5, 1.5)
    return model


def assert_bit_exact(model: torch.nn.Module, other: torch.nn.Module) -> None:
    a, b = model.state_dict(), other.state_dict()
    assert a.keys() == b.keys()
    assert all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


def test_save_pretrained_round_trips_bit_exactly_everywhere(tmp_path):
    model = custom_model()
    model.last_evaluation = {
        "bbox/AP": 12.345,
        "segm/AP": 10.5,
        "segm/AP50": 20.0,
    }  # as evaluate_model sets it
    folder = model.save_pretrained(tmp_path / "bottles")
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "classes.json",
        "config.json",
        "model.safetensors",
    ]
    loaded = from_pretrained(folder)
    assert not loaded.training and loaded.config == model.config
    assert_bit_exact(model, loaded)
    assert json.loads((folder / "classes.json").read_text()) == [
        {"id": 0, "name": "bottle", "isthing": True},
        {"id": 1, "name": "chair", "isthing": True},
        {"id": 2, "name": "sink", "isthing": False},
    ]
    card = (folder / "README.md").read_text()
    assert (
        "3 classes (bottle, chair, sink" in card
        and "| bbox/AP | 12.35 |" in card
        and "| segm/AP | 10.50 |" in card
    )
    # what --weights DIR does in predict / export (load_model) and in eval / train (weights_config + load_weights)
    cfg, by_cli = load_model(None, folder)
    assert cfg == model.config
    assert_bit_exact(model, by_cli)
    assert weights_config(folder) == model.config
    assert_bit_exact(model, load_weights(build_model(weights_config(folder)), str(folder)))
    predictor = Predictor(str(folder))  # a folder alone names the model
    assert_bit_exact(model, predictor.model)


def test_convert_writes_a_folder_from_an_official_checkpoint(tmp_path):
    torch.manual_seed(5)
    source = build_model(demo_config())
    official = tmp_path / "model_final.pth"
    torch.save({"model": official_layout(source.state_dict())}, official)
    code = cli_main(
        ["convert", str(official), str(tmp_path / "demo"), "input.min_size_test=128", "--config", "demo"]
    )
    assert code == 0
    loaded = from_pretrained(tmp_path / "demo")
    assert_bit_exact(source, loaded)
    assert loaded.config.input.min_size_test == 128 and loaded.config.name == "demo"
    coco = json.loads((tmp_path / "demo" / "classes.json").read_text())
    assert (coco[0], coco[-1]["id"]) == ({"id": 1, "name": "person", "isthing": True}, 90)  # COCO's own ids
    assert "No evaluation of these weights is recorded." in (tmp_path / "demo" / "README.md").read_text()


def test_an_official_file_needs_a_config_and_a_plain_folder_is_not_a_model(tmp_path):
    official = tmp_path / "model_final.pth"
    torch.save({"model": official_layout(build_model(demo_config()).state_dict())}, official)
    with pytest.raises(ValueError, match="does not say which model it holds: pass a preset name"):
        from_pretrained(official)
    assert from_pretrained(official, config=demo_config()).config.name == "demo"
    with pytest.raises(FileNotFoundError, match="not a save_pretrained folder: it has no config.json"):
        from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="has no .config"):
        from maskdino.checkpoints import save_pretrained

        save_pretrained(build_model(get_config("demo").model), tmp_path / "x")
