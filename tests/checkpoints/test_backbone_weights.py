"""Pretrained backbone files (ImageNet ResNet-50, Swin): loaded as detectron2's loader loads them with the
official configs, and every unusable file refused with a message naming it. The files are made here."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from maskdino import build_model, get_config, load_backbone_weights
from maskdino.backbones.resnet import ResNet
from maskdino.backbones.swin import SwinTransformer
from maskdino.checkpoints.backbone_names import torchvision_to_detectron2
from maskdino.checkpoints.backbone_weights import (
    R50_TORCHVISION,
    SWIN_L_22K,
    BackboneWeightsError,
    published_weights,
    random_backbone_warning,
)
from maskdino.checkpoints.load import weights_config
from maskdino.checkpoints.native import save_weights
from maskdino.checkpoints.zoo import find_entry
from maskdino.cli.main import build_parser
from maskdino.cli.train import build_config
from maskdino.config import ResNetConfig, SwinConfig
from tests.checkpoints.pickles import write_python2_pickle

TINY_RESNET = ResNetConfig(stem_out_channels=8, res2_out_channels=16, width_per_group=4)
TINY_SWIN = SwinConfig(
    embed_dim=24, depths=(2, 2, 2, 2), num_heads=(1, 2, 3, 4), window_size=4, drop_path_rate=0.0
)
LEVELS = ("res2", "res3", "res4", "res5")


class Holder(nn.Module):
    """The part of a model `load_backbone_weights` touches: `.backbone` (no normalisation to check)."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone


@pytest.fixture(scope="module")
def torchvision_r50(tmp_path_factory) -> tuple[nn.Module, Path, Path]:
    """torchvision's resnet50 with random weights and BatchNorm statistics, saved as its state dict
    (`r50.pth`) and as detectron2's `convert-torchvision-to-d2.py` writes it (`R-50.pkl`, Python 2 style)."""
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None).eval()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.normal_(0.0, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.normal_(module.bias, 0.0, 0.1)
    folder = tmp_path_factory.mktemp("r50")
    torch.save(model.state_dict(), folder / "r50.pth")
    converted = {torchvision_to_detectron2(k): v.numpy() for k, v in model.state_dict().items()}
    payload = {"model": converted, "__author__": "torchvision", "matching_heuristics": True}
    write_python2_pickle(folder / "R-50.pkl", payload)
    return model, folder / "r50.pth", folder / "R-50.pkl"


def swin_release_state(seed: int) -> dict[str, torch.Tensor]:
    """A classification checkpoint in the microsoft/Swin-Transformer layout for TINY_SWIN: the backbone
    without the detection wrapper's norm0..norm3, plus the final `norm`, the `head` and the shifted
    blocks' `attn_mask` buffers."""
    torch.manual_seed(seed)
    swin = SwinTransformer(TINY_SWIN)
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in swin.state_dict().items()}
    state = {k: v for k, v in state.items() if not k.startswith(("norm0.", "norm1.", "norm2.", "norm3."))}
    state |= {"norm.weight": torch.randn(192), "norm.bias": torch.randn(192)}
    state |= {"head.weight": torch.randn(1000, 192), "head.bias": torch.randn(1000)}
    for stage in range(4):
        state[f"layers.{stage}.blocks.1.attn_mask"] = torch.zeros(4, 16, 16)
    return state


def test_r50_from_torchvision_pth_gives_torchvision_features(torchvision_r50):
    torchvision_model, pth, _ = torchvision_r50
    holder = Holder(ResNet(ResNetConfig()))
    report = load_backbone_weights(holder, pth)
    assert report.holds == "a ResNet-50 (torchvision names)"
    assert len(report.loaded) == 265 and report.untouched == {}
    assert report.skipped["fc.weight"] == report.skipped["fc.bias"] == "ImageNet classifier (fc)"
    assert (report.pixel_mean, report.pixel_std, report.channel_order) == (
        (123.675, 116.28, 103.53),
        (58.395, 57.12, 57.375),
        "RGB",
    )
    backbone = holder.backbone.eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        ours = backbone(x)
        t = torchvision_model
        y = t.maxpool(t.relu(t.bn1(t.conv1(x))))
        for level, layer in zip(LEVELS, (t.layer1, t.layer2, t.layer3, t.layer4)):
            y = layer(y)
            torch.testing.assert_close(ours[level], y)


def test_r50_preset_loads_the_detectron2_pickle_through_its_config(torchvision_r50):
    """`get_config("r50_ins_4s", ["model.backbone.weights=R-50.pkl"])` is all a user writes."""
    torchvision_model, _, pkl = torchvision_r50
    model = build_model(get_config("r50_ins_4s", [f"model.backbone.weights={pkl}"]))
    expected = {torchvision_to_detectron2(k): v for k, v in torchvision_model.state_dict().items()}
    backbone = model.backbone.state_dict()
    assert len(backbone) == 265  # every backbone tensor of the official model comes from the file
    for name, value in backbone.items():
        torch.testing.assert_close(value, expected[name], rtol=0, atol=0)


def test_a_registry_name_as_backbone_weights_is_downloaded_once_into_the_cache(
    torchvision_r50, server, private_cache
):
    _, _, pkl = torchvision_r50
    entry = find_entry("resnet50-imagenet")
    server.files[entry.file_name] = pkl
    by_name = build_model(get_config("r50_ins_4s", [f"model.backbone.weights={entry.name}"]))
    by_name_again = build_model(get_config("r50_ins_4s", [f"model.backbone.weights={entry.name}"]))
    assert server.requests == [entry.file_name]  # the second build reads the cache
    assert (private_cache / entry.file_name).read_bytes() == pkl.read_bytes()
    by_file = load_backbone_weights(by_name_again, pkl).loaded
    assert len(by_file) == 265
    for name, value in by_name.backbone.state_dict().items():
        assert torch.equal(value, by_name_again.backbone.state_dict()[name]), name


def test_swin_release_pth_and_detectron2_pkl_load_as_the_official_loader(tmp_path):
    release = swin_release_state(seed=1)
    pth, pkl = tmp_path / "swin_tiny_test.pth", tmp_path / "swin_tiny_test.pkl"
    torch.save({"model": release}, pth)
    with pkl.open("wb") as f:  # what Mask2Former's convert-pretrained-swin-model-to-d2.py writes
        pickle.dump({"model": release, "__author__": "third_party", "matching_heuristics": True}, f)
    for path in (pth, pkl):
        torch.manual_seed(2)
        holder = Holder(SwinTransformer(TINY_SWIN))
        output_norms = {k: v.clone() for k, v in holder.backbone.state_dict().items() if k.startswith("norm")}
        report = load_backbone_weights(holder, path)
        state = holder.backbone.state_dict()
        used = {k for k in release if not k.startswith(("head.", "norm.")) and not k.endswith("attn_mask")}
        assert sorted(report.loaded) == sorted(used)
        for name in used:
            torch.testing.assert_close(state[name], release[name], rtol=0, atol=0)
        assert set(report.untouched) == set(output_norms)  # norm0..norm3 keep their initialisation
        for name, value in output_norms.items():
            torch.testing.assert_close(state[name], value, rtol=0, atol=0)
        assert set(report.skipped) == {"head.weight", "head.bias", "norm.weight", "norm.bias"} | {
            f"layers.{i}.blocks.1.attn_mask" for i in range(4)
        }
        assert "embed_dim 24, depths (2, 2, 2, 2), window 4" in report.holds


def test_build_model_changes_only_the_backbone(tmp_path):
    torch.manual_seed(0)
    fresh = build_model(get_config("demo")).state_dict()
    source = {k[len("backbone.") :]: v + 1 for k, v in fresh.items() if k.startswith("backbone.")}
    path = tmp_path / "demo_backbone.pth"
    torch.save(source, path)
    torch.manual_seed(0)
    loaded = build_model(get_config("demo", [f"model.backbone.weights={path}"])).state_dict()
    for name, value in loaded.items():
        expected = source[name.removeprefix("backbone.")] if name.startswith("backbone.") else fresh[name]
        torch.testing.assert_close(value, expected, rtol=0, atol=0)


def test_backbone_weights_flag_sets_the_config_key_and_stored_configs_drop_it(tmp_path):
    args = build_parser().parse_args(
        ["train", "--config", "demo", "--output", str(tmp_path), "--backbone-weights", "R-50.pkl"]
    )
    cfg = build_config(args)
    assert cfg.model.backbone.weights == "R-50.pkl"
    # weights saved after training replace the backbone: their stored config must not re-read R-50.pkl
    path = save_weights(tmp_path / "w.safetensors", nn.Linear(2, 2), cfg)
    assert weights_config(path).model.backbone.weights is None


def test_random_backbone_warning_names_the_official_file():
    for preset, published in (("r50_ins_4s", R50_TORCHVISION), ("swinl_pan_5s", SWIN_L_22K)):
        backbone = get_config(preset).model.backbone
        assert published_weights(backbone) == published
        warning = random_backbone_warning(backbone)
        assert "TRAINING FROM A RANDOM BACKBONE" in warning and published.url in warning
        assert f"--backbone-weights {published.name}" in warning and published.file_name in warning
    assert (
        random_backbone_warning(get_config("r50_ins_4s", ["model.backbone.weights=R-50.pkl"]).model.backbone)
        is None
    )
    assert random_backbone_warning(get_config("demo").model.backbone) is None  # quarter width: no such file


def test_a_swin_file_for_an_r50_preset_is_refused(tmp_path):
    path = tmp_path / "swin.pth"
    torch.save({"model": swin_release_state(seed=3)}, path)
    holder = Holder(ResNet(TINY_RESNET))
    with pytest.raises(
        BackboneWeightsError, match=r"swin\.pth holds a Swin backbone \(embed_dim 24.*ResNet-50.*R-50\.pkl"
    ):
        load_backbone_weights(holder, path)


def test_truncated_and_incomplete_files_are_refused(tmp_path):
    torch.manual_seed(0)
    state = ResNet(TINY_RESNET).state_dict()
    path = tmp_path / "r50_tiny.pth"
    torch.save(state, path)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    holder = Holder(ResNet(TINY_RESNET))
    with pytest.raises(ValueError, match=r"cannot read .*truncated\.pth .*download it again"):
        load_backbone_weights(holder, truncated)
    partial = tmp_path / "partial.pth"
    torch.save({k: v for k, v in state.items() if not k.startswith("res5.")}, partial)
    with pytest.raises(
        BackboneWeightsError, match=r"(?s)partial\.pth holds a ResNet-50.*missing in the file \(50\)"
    ):
        load_backbone_weights(holder, partial)
    # the same architecture at another width: every mismatching shape is listed
    with pytest.raises(BackboneWeightsError, match=r"shape mismatch \(265\):\n    stem\.conv1\.weight"):
        load_backbone_weights(Holder(ResNet(ResNetConfig())), path)


def test_empty_or_missing_weights_path_is_an_error_naming_the_key(tmp_path):
    with pytest.raises(
        ValueError, match=r"backbone weights path is empty.*model\.backbone\.weights=R-50\.pkl"
    ):
        build_model(get_config("demo", ["model.backbone.weights="]))
    with pytest.raises(FileNotFoundError, match=r"nowhere\.pkl \(model\.backbone\.weights; registry names"):
        build_model(get_config("demo", [f"model.backbone.weights={tmp_path / 'nowhere.pkl'}"]))


def test_caffe2_msra_weights_are_refused_with_the_config_keys(tmp_path):
    import numpy as np

    blobs = {"conv1_w": np.zeros((64, 3, 7, 7), np.float32), "res_conv1_bn_s": np.ones(64, np.float32),
             "res2_0_branch2a_w": np.zeros((64, 64, 1, 1), np.float32), "fc1000_w": np.zeros((1000, 2048), np.float32)}  # fmt: skip
    path = tmp_path / "R-50-MSRA.pkl"
    write_python2_pickle(path, blobs)
    with pytest.raises(
        BackboneWeightsError,
        match=r"Caffe2 \(MSRA\).*BGR.*model\.pixel_mean.*stride_in_1x1=false.*torchvision/R-50\.pkl",
    ):
        load_backbone_weights(Holder(ResNet(TINY_RESNET)), path)


def test_other_pixel_normalisation_is_refused_before_anything_loads(tmp_path):
    path = tmp_path / "demo_backbone.pth"
    torch.save(build_model(get_config("demo")).backbone.state_dict(), path)
    with pytest.raises(BackboneWeightsError, match=r"model\.pixel_mean=\[123\.675, 116\.28, 103\.53\]"):
        build_model(get_config("demo", ["model.pixel_mean=0,0,0", f"model.backbone.weights={path}"]))
