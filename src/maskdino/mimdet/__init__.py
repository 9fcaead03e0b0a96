"""MIMDet (hustvl/MIMDet): ConvNet-ViT hybrid backbone with token sampling under Mask R-CNN FPN."""

from maskdino.backbones.mimdet import MIMDetBackbone, MIMDetDecoderConfig
from maskdino.mimdet.benchmarking_vit import BenchmarkingViT, BenchmarkingViTConfig
from maskdino.mimdet.checkpoints import convert_mimdet_state_dict, load_mae_weights, load_mimdet_checkpoint
from maskdino.mimdet.detector import MaskRCNNConfig, MIMDetMaskRCNN
from maskdino.mimdet.optim import optimizer_param_groups
from maskdino.mimdet.presets import PRESETS, MIMDetPreset, build_model

__all__ = [
    "PRESETS",
    "BenchmarkingViT",
    "BenchmarkingViTConfig",
    "MIMDetBackbone",
    "MIMDetDecoderConfig",
    "MIMDetMaskRCNN",
    "MIMDetPreset",
    "MaskRCNNConfig",
    "build_model",
    "convert_mimdet_state_dict",
    "load_mae_weights",
    "load_mimdet_checkpoint",
    "optimizer_param_groups",
]
