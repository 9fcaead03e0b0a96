"""Tiny MIMDet configurations: a real preset shrunk by overrides to widths that run in milliseconds."""

from __future__ import annotations

from dataclasses import replace

from maskdino.build import build_model
from maskdino.config import Config, MIMDetBackboneConfig
from maskdino.mimdet.detector import MIMDetMaskRCNN
from maskdino.presets import get_config

_MIM = "model.backbone.mimdet."
_RCNN = "model.mask_rcnn."
TINY = (
    f"{_MIM}embed_dim=64", f"{_MIM}depth=2", f"{_MIM}num_heads=2", f"{_MIM}pretrain_img_size=64",
    f"{_MIM}drop_path_rate=0", f"{_MIM}conv_stem_dims=16,32,64", f"{_MIM}use_checkpoint=false",
    f"{_MIM}decoder_embed_dim=32", f"{_MIM}decoder_depth=1", f"{_MIM}decoder_num_heads=2",
    f"{_RCNN}fpn_channels=32", f"{_RCNN}box_conv_dims=32", f"{_RCNN}box_fc_dim=64",
    f"{_RCNN}mask_conv_dims=32", f"{_RCNN}mask_deconv_dim=32",
    f"{_RCNN}rpn_batch_size_per_image=64", f"{_RCNN}roi_batch_size_per_image=64",
    f"{_RCNN}rpn_pre_nms_top_n_train=300", f"{_RCNN}rpn_post_nms_top_n_train=100",
    f"{_RCNN}rpn_pre_nms_top_n_test=300", f"{_RCNN}rpn_post_nms_top_n_test=100",
)  # fmt: skip

# the Benchmarking ViT at the same scale: a 4 x 4 token grid in 2 x 2 windows
TINY_BENCHMARKING = (
    "model.backbone.name=benchmarking_vit",
    "model.backbone.benchmarking_vit.img_size=64",
    "model.backbone.benchmarking_vit.embed_dim=64",
    "model.backbone.benchmarking_vit.depth=4",
    "model.backbone.benchmarking_vit.num_heads=2",
    "model.backbone.benchmarking_vit.window_size=2",
)


def tiny_config(*overrides: str) -> Config:
    """`mimdet_vit_b_sr05` (sample ratio 0.5) at a 64-d ViT, 32-d decoder and 32-channel FPN."""
    return get_config("mimdet_vit_b_sr05", [*TINY, *overrides])


def tiny_backbone_config(**changes) -> MIMDetBackboneConfig:
    return replace(tiny_config().model.backbone.mimdet, **changes)


def tiny_detector(*overrides: str) -> MIMDetMaskRCNN:
    return build_model(tiny_config(*overrides))
