"""Build the backbone named by `BackboneConfig.name`.

Every backbone takes an image batch [B, 3, H, W] and returns {"res2": ..., "res5": ...} restricted to
`out_features`, and exposes `output_shape()` -> {name: (channels, stride)} and `size_divisibility`.
"benchmarking_vit" is the exception: it returns all four levels and takes only its fixed square input,
so it is for MIMDet's Mask R-CNN, which pads every batch to that square.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from maskdino.backbones.mimdet import MIMDetBackbone
from maskdino.backbones.resnet import ResNet
from maskdino.backbones.swin import SwinTransformer
from maskdino.config import BackboneConfig
from maskdino.mimdet.benchmarking_vit import BenchmarkingViT

BUILDERS: dict[str, Callable[[BackboneConfig], nn.Module]] = {
    "resnet": lambda cfg: ResNet(cfg.resnet, cfg.out_features),
    "swin": lambda cfg: SwinTransformer(cfg.swin, cfg.out_features),
    "mimdet": lambda cfg: MIMDetBackbone(cfg.mimdet, cfg.out_features),
    "benchmarking_vit": lambda cfg: BenchmarkingViT(cfg.benchmarking_vit),
}


def build_backbone(cfg: BackboneConfig) -> nn.Module:
    """The backbone for `cfg.name`, configured by the matching sub-config (`cfg.resnet`, `cfg.swin`, ...)."""
    if cfg.name not in BUILDERS:
        raise ValueError(
            f"unknown backbone name {cfg.name!r} (model.backbone.name); valid names: {', '.join(BUILDERS)}"
        )
    return BUILDERS[cfg.name](cfg)
