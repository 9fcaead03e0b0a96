"""Parameter counts of the MIMDet presets: the released configurations, and hustvl/MIMDet's README.

"#params" counts every `nn.Parameter`, frozen ones included (MIMDet's fixed sin-cos position tables
are frozen parameters). With that definition:
- The released configurations (`*_sr_*`: conv_feat_proj decoder, position tables on the img_size 800
  grid) have 127.95M (ViT-B) and 349.33M (ViT-L) parameters: our presets, which load them strictly.
- The README's MIMDet figures (127.56M, 345.27M) describe the decoder of MIMDet's first code release,
  which filled unsampled positions with MAE's learned `mask_token` (512 parameters) instead of the
  `conv_feat_proj` Linear(D, 512) (0.39M for ViT-B, 0.52M for ViT-L), with the position tables on the
  grid of the config the row was counted on: 50 x 50 (img_size 800) for ViT-B, 14 x 14 (img_size 224,
  the earlier `*_mr_*` configs) for ViT-L. `README_VARIANTS` are those overrides.
- Benchmarking-ViT-B is 118.67M as released, equal to the README.
Models are built on the meta device, so no weights are allocated.
"""

from __future__ import annotations

import pytest
import torch

from maskdino.build import build_model
from maskdino.presets import get_config

MIM = "model.backbone.mimdet."
README_VARIANTS = {
    "mimdet_vit_b_sr025": (127.56, [f"{MIM}dropped_tokens=mask_token"]),
    "mimdet_vit_b_sr05": (127.56, [f"{MIM}dropped_tokens=mask_token"]),
    "mimdet_vit_l_sr05": (345.27, [f"{MIM}dropped_tokens=mask_token", f"{MIM}pretrain_img_size=224"]),
}
# (all parameters, trainable parameters) in millions of the released configurations
RELEASED = {
    "mimdet_vit_b_sr025": (127.95, 124.75),
    "mimdet_vit_b_sr05": (127.95, 124.75),
    "mimdet_vit_l_sr05": (349.33, 345.49),
    "benchmarking_vit_b_25ep": (118.67, 118.67),  # its position table is trained
    "benchmarking_vit_b_50ep": (118.67, 118.67),
    "benchmarking_vit_b_100ep": (118.67, 118.67),
}


def millions(name: str, overrides: list[str] = (), trainable_only: bool = False) -> float:
    with torch.device("meta"):
        model = build_model(get_config(name, overrides))
    return round(sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only) / 1e6, 2)


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_presets_count_what_the_released_configurations_give(name: str):
    total, trainable = RELEASED[name]
    assert millions(name) == total
    assert millions(name, trainable_only=True) == trainable


@pytest.mark.parametrize("name", sorted(README_VARIANTS))
def test_readme_counts_are_the_first_release_decoder(name: str):
    readme, overrides = README_VARIANTS[name]
    assert millions(name, overrides) == readme


@pytest.mark.parametrize(
    ("name", "official"),
    [
        ("mimdet_vit_b_sr05", "mimdet_vit_base_mask_rcnn_fpn_sr_0p5_800_1333_4xdec_coco_3x"),
        ("mimdet_vit_l_sr05", "mimdet_vit_large_mask_rcnn_fpn_sr_0p5_800_1333_4xdec_coco_3x"),
        ("benchmarking_vit_b_100ep", "benchmarking_mask_rcnn_base_FPN_100ep_LSJ_mae"),
    ],
)
def test_counts_equal_the_official_inventory(name: str, official: str, official_keys):
    """Our parameters are exactly the official state dict minus its buffers (BN statistics, indices)."""
    buffers = ("running_mean", "running_var", "num_batches_tracked", "relative_position_index")
    count = sum(
        torch.Size(shape).numel() for key, shape, _ in official_keys[official] if not key.endswith(buffers)
    )
    with torch.device("meta"):
        model = build_model(get_config(name))
    assert sum(p.numel() for p in model.parameters()) == count
