"""build_backbone: name -> backbone, with the common interface every backbone exposes."""

from __future__ import annotations

import pytest
import torch

from maskdino.backbones import ResNet, SwinTransformer, build_backbone
from maskdino.config import BackboneConfig, ResNetConfig, SwinConfig

TINY_RESNET = ResNetConfig(stem_out_channels=8, res2_out_channels=16, width_per_group=4)
TINY_SWIN = SwinConfig(embed_dim=24, depths=(1, 1, 1, 1), num_heads=(1, 2, 3, 4), window_size=4)


@pytest.mark.parametrize(
    ("name", "kind", "divisibility", "shapes"),
    [
        ("resnet", ResNet, 0, {"res3": (32, 8), "res4": (64, 16), "res5": (128, 32)}),
        ("swin", SwinTransformer, 32, {"res3": (48, 8), "res4": (96, 16), "res5": (192, 32)}),
    ],
)
def test_build_backbone_by_name(name, kind, divisibility, shapes):
    cfg = BackboneConfig(name=name, out_features=("res3", "res4", "res5"), resnet=TINY_RESNET, swin=TINY_SWIN)
    backbone = build_backbone(cfg).eval()
    assert isinstance(backbone, kind)
    assert backbone.size_divisibility == divisibility
    assert backbone.output_shape() == shapes
    with torch.no_grad():
        out = backbone(torch.randn(1, 3, 64, 96))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        k: (1, channels, 64 // stride, 96 // stride) for k, (channels, stride) in shapes.items()
    }


def test_unknown_backbone_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown backbone name 'vit'.*valid names: resnet, swin"):
        build_backbone(BackboneConfig(name="vit"))
