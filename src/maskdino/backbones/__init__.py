"""Image backbones: detectron2-style ResNet, Mask2Former/MaskDINO Swin."""

from maskdino.backbones.build import build_backbone
from maskdino.backbones.resnet import ResNet
from maskdino.backbones.swin import SwinTransformer

__all__ = ["ResNet", "SwinTransformer", "build_backbone"]
