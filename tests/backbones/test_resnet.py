"""ResNet: official names/shapes, parity with the official R50 stage outputs, detectron2 build rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from maskdino.backbones.resnet import ResNet
from maskdino.config import ResNetConfig
from maskdino.layers.frozen_batchnorm import FrozenBatchNorm2d
from tests.backbones.inventory import float_numel, state_dict_inventory
from tests.reference_fill import fill

PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)
TINY = ResNetConfig(stem_out_channels=8, res2_out_channels=16, width_per_group=4)


def _is_conv_weight(name: str) -> bool:
    return name.endswith(("conv1.weight", "conv2.weight", "conv3.weight", "shortcut.weight"))


def _trainable_numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _relative_l2(ours: np.ndarray, reference: np.ndarray) -> float:
    reference = reference.astype(np.float64)
    return float(np.linalg.norm(ours.astype(np.float64) - reference) / np.linalg.norm(reference))


def test_r50_state_dict_equals_official_inventory(official_backbone_keys):
    official = official_backbone_keys["r50_ins_4s"]
    model = ResNet(ResNetConfig())
    assert state_dict_inventory(model) == official
    assert len(official) == 265
    # FrozenBN statistics and affine terms are buffers: only the 53 conv weights train.
    assert _trainable_numel(model) == float_numel(official, _is_conv_weight) == 23_454_912
    assert all(_is_conv_weight(name) for name, _ in model.named_parameters())


def test_cityscapes_syncbn_state_dict_has_num_batches_tracked(official_backbone_keys):
    official = official_backbone_keys["r50_city_sem"]
    model = ResNet(ResNetConfig(norm="SyncBN"))
    assert state_dict_inventory(model) == official
    assert sum(name.endswith("num_batches_tracked") for name, _, _ in official) == 53
    # conv weights + BatchNorm weight/bias (trainable with SyncBN); running statistics are buffers
    not_running = lambda name: "running_" not in name  # noqa: E731
    assert _trainable_numel(model) == float_numel(official, not_running) == 23_508_032


def test_r50_matches_official_stage_outputs_on_astronaut(data_dir: Path):
    """Official fill.py weights, official preprocessing; reference tensors from the official R50 run."""
    model = ResNet(ResNetConfig()).eval()
    state = {
        name: torch.from_numpy(fill("backbone." + name, tensor.shape))
        for name, tensor in model.state_dict().items()
    }
    model.load_state_dict(state)
    image = np.array(Image.open(data_dir / "astronaut.png").convert("RGB"))
    assert image.shape == (512, 512, 3)  # a multiple of 32: no padding
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()  # [1, 3, 512, 512], 0..255 RGB
    x = (x - torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1)) / torch.tensor(PIXEL_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        out = {name: feature.numpy() for name, feature in model(x).items()}
    reference = dict(np.load(data_dir / "backbones" / "r50_ins_4s_astronaut_backbone.npz"))

    assert {name: f.shape for name, f in out.items()} == {
        "res2": (1, 256, 128, 128),
        "res3": (1, 512, 64, 64),
        "res4": (1, 1024, 32, 32),
        "res5": (1, 2048, 16, 16),
    }
    # float16 references: their own rounding is ~2e-4 of the norm
    assert _relative_l2(out["res5"], reference["res5"]) <= 1e-3
    assert _relative_l2(out["res4"][:, :64], reference["res4__ch0_63"]) <= 1e-3
    assert _relative_l2(out["res3"][:, :8], reference["res3__ch0_7"]) <= 1e-3
    assert _relative_l2(out["res2"][:, :4], reference["res2__ch0_3"]) <= 1e-3
    # per-channel spatial means of all channels: float32 from the official run (res4: from its float16 tensor)
    for name, tolerance in (("res2", 1e-5), ("res3", 1e-5), ("res4", 1e-3)):
        assert _relative_l2(out[name].mean((2, 3)), reference[f"{name}__chmean"]) <= tolerance
        assert _relative_l2(np.abs(out[name]).mean((2, 3)), reference[f"{name}__chabsmean"]) <= tolerance


def test_tiny_resnet_shapes_on_odd_input():
    model = ResNet(TINY).eval()
    assert model.output_shape() == {"res2": (16, 4), "res3": (32, 8), "res4": (64, 16), "res5": (128, 32)}
    assert model.size_divisibility == 0
    with torch.no_grad():
        out = model(torch.randn(2, 3, 97, 130))
    # conv/pool arithmetic of detectron2's ResNet: ceil(H / stride) for each stride-2 step
    assert {name: tuple(f.shape) for name, f in out.items()} == {
        "res2": (2, 16, 25, 33),
        "res3": (2, 32, 13, 17),
        "res4": (2, 64, 7, 9),
        "res5": (2, 128, 4, 5),
    }
    assert all((f >= 0).all() for f in out.values())  # every stage ends with a ReLU


def test_stride_goes_on_the_3x3_conv_unless_stride_in_1x1():
    default = ResNet(TINY)
    assert default.res3[0].conv1.stride == (1, 1) and default.res3[0].conv2.stride == (2, 2)
    msra = ResNet(
        ResNetConfig(stem_out_channels=8, res2_out_channels=16, width_per_group=4, stride_in_1x1=True)
    )
    assert msra.res3[0].conv1.stride == (2, 2) and msra.res3[0].conv2.stride == (1, 1)
    assert default.res3[0].shortcut.stride == (2, 2) and default.res3[1].shortcut is None
    assert default.res2[0].shortcut.stride == (1, 1)  # 8 -> 16 channels: projection without stride


def test_out_features_builds_only_the_needed_stages():
    model = ResNet(TINY, out_features=("res3",))
    assert not hasattr(model, "res4") and not hasattr(model, "res5")
    assert model.output_shape() == {"res3": (32, 8)}
    assert list(model(torch.randn(1, 3, 64, 64))) == ["res3"]


def test_res5_dilation_keeps_stride_16():
    cfg = ResNetConfig(stem_out_channels=8, res2_out_channels=16, width_per_group=4, res5_dilation=2)
    model = ResNet(cfg).eval()
    assert model.output_shape()["res5"] == (128, 16)
    assert model.res5[0].conv2.dilation == (2, 2) and model.res5[0].conv2.padding == (2, 2)
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    assert out["res5"].shape[-2:] == out["res4"].shape[-2:] == (4, 4)


def test_freeze_at_freezes_stem_and_stages_and_converts_batchnorm():
    cfg = ResNetConfig(stem_out_channels=8, res2_out_channels=16, width_per_group=4, norm="BN", freeze_at=2)
    model = ResNet(cfg)
    assert isinstance(model.stem.conv1.norm, FrozenBatchNorm2d)
    assert isinstance(model.res2[0].conv1.norm, FrozenBatchNorm2d)
    assert isinstance(model.res3[0].conv1.norm, nn.BatchNorm2d)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith(("stem.", "res2.")) for n in frozen)
    assert all(
        p.requires_grad for n, p in model.named_parameters() if n.startswith(("res3.", "res4.", "res5."))
    )
    assert all(p.requires_grad for p in ResNet(TINY).parameters())  # freeze_at 0: nothing frozen


def test_r101_block_count():
    model = ResNet(ResNetConfig(depth=101, stem_out_channels=8, res2_out_channels=16, width_per_group=4))
    assert [len(getattr(model, name)) for name in ("res2", "res3", "res4", "res5")] == [3, 4, 23, 3]


@pytest.mark.parametrize(
    ("cfg", "out_features", "message"),
    [
        (ResNetConfig(depth=34), ("res5",), "depth 34"),
        (ResNetConfig(norm="GN"), ("res5",), "norm 'GN'"),
        (ResNetConfig(), ("res6",), "res6"),
        (ResNetConfig(res5_dilation=4), ("res5",), "res5_dilation"),
    ],
)
def test_bad_config_is_rejected_with_a_precise_message(cfg, out_features, message):
    with pytest.raises(ValueError, match=message):
        ResNet(cfg, out_features)
