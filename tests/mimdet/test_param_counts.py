"""Parameter counts of the MIMDet presets against hustvl/MIMDet's README "#params" column.

"#params" counts every `nn.Parameter`, frozen ones included (MIMDet's fixed sin-cos position tables
are frozen parameters). With that definition:
- Benchmarking-ViT-B matches the README (118.67M) as released.
- MIMDet-ViT-B (127.56M) and ViT-L (345.27M) match the README only for the decoder of MIMDet's first
  code release, which filled unsampled positions with MAE's learned `mask_token` (512 parameters)
  instead of the current `conv_feat_proj` (a Linear(D, 512): 0.39M for ViT-B, 0.52M for ViT-L), with the
  position tables at the grid of the config the row was counted on: 50 x 50 (img_size 800, `*_sr_*`
  configs) for ViT-B, 14 x 14 (img_size 224, the earlier `*_mr_*` configs) for ViT-L.
- The released `*_sr_*` models (conv_feat_proj, img_size 800) have 127.95M and 349.33M parameters.
Models are built on the meta device, so no weights are allocated.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from maskdino.mimdet.presets import PRESETS, MIMDetPreset, build_model

MIMDET_B = "mimdet_vit_base_mask_rcnn_fpn_sr_0p5_800_1333_4xdec_coco_3x"
MIMDET_B_025 = "mimdet_vit_base_mask_rcnn_fpn_sr_0p25_800_1333_4xdec_coco_3x"
MIMDET_L = "mimdet_vit_large_mask_rcnn_fpn_sr_0p5_800_1333_4xdec_coco_3x"
BENCHMARKING = "benchmarking_mask_rcnn_base_FPN_100ep_LSJ_mae"


def millions(preset: MIMDetPreset, trainable_only: bool = False) -> float:
    with torch.device("meta"):
        model = build_model(preset)
    params: list[nn.Parameter] = [p for p in model.parameters() if p.requires_grad or not trainable_only]
    return round(sum(p.numel() for p in params) / 1e6, 2)


def readme_variant(preset: MIMDetPreset, pretrain_img_size: int) -> MIMDetPreset:
    return replace(
        preset,
        backbone=replace(preset.backbone, pretrain_img_size=pretrain_img_size),
        decoder=replace(preset.decoder, dropped_tokens="mask_token"),
    )


@pytest.mark.parametrize(
    ("name", "pretrain_img_size", "readme"),
    [(MIMDET_B, 800, 127.56), (MIMDET_B_025, 800, 127.56), (MIMDET_L, 224, 345.27)],
)
def test_mimdet_counts_equal_the_readme(name: str, pretrain_img_size: int, readme: float):
    preset = PRESETS[name]
    assert preset.readme_params_m == readme
    assert millions(readme_variant(preset, pretrain_img_size)) == readme


def test_benchmarking_counts_equal_the_readme():
    for epochs in (25, 50, 100):
        preset = PRESETS[f"benchmarking_mask_rcnn_base_FPN_{epochs}ep_LSJ_mae"]
        assert preset.readme_params_m == 118.67
        assert millions(preset) == 118.67
        assert millions(preset, trainable_only=True) == 118.67  # its position table is trained


@pytest.mark.parametrize(
    ("name", "total", "trainable"), [(MIMDET_B, 127.95, 124.75), (MIMDET_L, 349.33, 345.49)]
)
def test_released_mimdet_counts(name: str, total: float, trainable: float):
    assert millions(PRESETS[name]) == total
    assert millions(PRESETS[name], trainable_only=True) == trainable


@pytest.mark.parametrize("name", [MIMDET_B, MIMDET_L, BENCHMARKING])
def test_counts_equal_the_official_inventory(name: str, official_keys):
    """Our parameters are exactly the official state dict minus its buffers (BN statistics, indices)."""
    buffers = ("running_mean", "running_var", "num_batches_tracked", "relative_position_index")
    official = sum(
        torch.Size(shape).numel() for key, shape, _ in official_keys[name] if not key.endswith(buffers)
    )
    with torch.device("meta"):
        model = build_model(PRESETS[name])
    assert sum(p.numel() for p in model.parameters()) == official
