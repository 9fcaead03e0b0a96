"""Tiny MIMDet configurations: the real architecture at widths that run in milliseconds on a CPU."""

from __future__ import annotations

from maskdino.backbones.mimdet import MIMDetBackbone, MIMDetDecoderConfig
from maskdino.config import MIMDetBackboneConfig
from maskdino.mimdet.detector import MaskRCNNConfig, MIMDetMaskRCNN


def tiny_backbone_config(**changes) -> MIMDetBackboneConfig:
    values = dict(
        embed_dim=64,
        depth=2,
        num_heads=2,
        pretrain_img_size=64,
        drop_path_rate=0.0,
        sample_ratio=0.5,
        conv_stem_dims=(16, 32, 64),
    )
    return MIMDetBackboneConfig(**{**values, **changes})


def tiny_decoder_config(**changes) -> MIMDetDecoderConfig:
    return MIMDetDecoderConfig(**{**dict(embed_dim=32, depth=1, num_heads=2), **changes})


def tiny_detector_config(**changes) -> MaskRCNNConfig:
    values = dict(
        num_classes=80,
        fpn_channels=32,
        box_conv_dims=(32,),
        box_fc_dim=64,
        mask_conv_dims=(32,),
        mask_deconv_dim=32,
        rpn_batch_size_per_image=64,
        roi_batch_size_per_image=64,
        rpn_pre_nms_top_n_train=300,
        rpn_post_nms_top_n_train=100,
        rpn_pre_nms_top_n_test=300,
        rpn_post_nms_top_n_test=100,
        min_size_test=160,
        max_size_test=256,
    )
    return MaskRCNNConfig(**{**values, **changes})


def tiny_detector(**changes) -> MIMDetMaskRCNN:
    return MIMDetMaskRCNN(
        MIMDetBackbone(tiny_backbone_config(), tiny_decoder_config()), tiny_detector_config(**changes)
    )
