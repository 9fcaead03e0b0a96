"""MAE-pretrained ViTs through `load_backbone_weights`: into MIMDet's backbone (encoder, final norm and the
first MAE decoder blocks, position tables resampled) and into the Benchmarking ViT (encoder only)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytest
import torch
from torch import nn

from maskdino import build_model, load_backbone_weights
from maskdino.backbones.mimdet import MIMDetBackbone
from maskdino.config import BenchmarkingViTConfig
from maskdino.mimdet.benchmarking_vit import BenchmarkingViT
from tests.mimdet.tiny import tiny_backbone_config, tiny_config


class Holder(nn.Module):
    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone


def mae_state(dim: int, depth: int, grid: int, decoder: bool, dec_dim: int = 32, dec_depth: int = 3) -> dict:
    """A random MAE checkpoint in facebookresearch/mae `models_mae.py` layout (ViT dim/depth, 16 px patches)."""

    def block(prefix: str, d: int) -> dict:
        shapes = {
            "norm1.weight": (d,), "norm1.bias": (d,), "attn.qkv.weight": (3 * d, d), "attn.qkv.bias": (3 * d,),
            "attn.proj.weight": (d, d), "attn.proj.bias": (d,), "norm2.weight": (d,), "norm2.bias": (d,),
            "mlp.fc1.weight": (4 * d, d), "mlp.fc1.bias": (4 * d,), "mlp.fc2.weight": (d, 4 * d), "mlp.fc2.bias": (d,),
        }  # fmt: skip
        return {f"{prefix}.{k}": torch.randn(s) for k, s in shapes.items()}

    state = {
        "cls_token": torch.randn(1, 1, dim),
        "pos_embed": torch.randn(1, 1 + grid * grid, dim),
        "patch_embed.proj.weight": torch.randn(dim, 3, 16, 16),
        "patch_embed.proj.bias": torch.randn(dim),
        "norm.weight": torch.randn(dim),
        "norm.bias": torch.randn(dim),
    }
    for i in range(depth):
        state |= block(f"blocks.{i}", dim)
    if decoder:
        state |= {
            "mask_token": torch.randn(1, 1, dec_dim),
            "decoder_embed.weight": torch.randn(dec_dim, dim),
            "decoder_embed.bias": torch.randn(dec_dim),
            "decoder_pos_embed": torch.full((1, 1 + grid * grid, dec_dim), 0.5),
            "decoder_norm.weight": torch.randn(dec_dim),
            "decoder_norm.bias": torch.randn(dec_dim),
            "decoder_pred.weight": torch.randn(16 * 16 * 3, dec_dim),
            "decoder_pred.bias": torch.randn(16 * 16 * 3),
        }
        for i in range(dec_depth):
            state |= block(f"decoder_blocks.{i}", dec_dim)
    return {"model": state}


def saved(tmp_path: Path, name: str, checkpoint: dict) -> Path:
    torch.save(checkpoint, tmp_path / name)
    return tmp_path / name


def test_full_mae_checkpoint_initialises_the_mimdet_backbone_through_the_config(tmp_path):
    checkpoint = mae_state(dim=64, depth=2, grid=2, decoder=True)
    mae = checkpoint["model"]
    # MAE's training checkpoints also pickle their options (argparse.Namespace): read without trusting code
    path = saved(tmp_path, "mae_full.pth", {**checkpoint, "args": argparse.Namespace(model="mae_vit_base")})
    torch.manual_seed(0)
    fresh = build_model(tiny_config()).backbone
    torch.manual_seed(0)
    backbone = build_model(
        tiny_config(f"model.backbone.weights={path}")
    ).backbone  # grid 4x4, decoder depth 1

    torch.testing.assert_close(backbone.blocks[1].attn.qkv.weight, mae["blocks.1.attn.qkv.weight"])
    torch.testing.assert_close(backbone.norm.bias, mae["norm.bias"])
    torch.testing.assert_close(backbone.decoder.embed.weight, mae["decoder_embed.weight"])
    torch.testing.assert_close(
        backbone.decoder.blocks[0].mlp.fc2.weight, mae["decoder_blocks.0.mlp.fc2.weight"]
    )
    torch.testing.assert_close(backbone.decoder.norm.weight, mae["decoder_norm.weight"])
    # 2x2 MAE tables resampled to the backbone's 4x4 grid, class-token row kept, still frozen
    assert backbone.pos_embed.shape == (1, 17, 64) and not backbone.pos_embed.requires_grad
    torch.testing.assert_close(backbone.pos_embed[:, 0], mae["pos_embed"][:, 0])
    torch.testing.assert_close(backbone.decoder.pos_embed, torch.full((1, 17, 32), 0.5))
    # the conv stem and the conv-feature projection are not in MAE: untouched
    torch.testing.assert_close(backbone.stem.stages[0][0].weight, fresh.stem.stages[0][0].weight)
    torch.testing.assert_close(backbone.decoder.conv_feat_proj.weight, fresh.decoder.conv_feat_proj.weight)

    report = load_backbone_weights(Holder(MIMDetBackbone(tiny_backbone_config())), path)
    assert {"cls_token", "mask_token", "patch_embed.proj.weight", "decoder_pred.bias"} <= set(report.skipped)
    assert (
        "decoder_blocks.1.norm1.weight" in report.skipped
        and "decoder_blocks.0.norm1.weight" not in report.skipped
    )
    assert {name.split(".")[0] for name in report.untouched} == {"stem", "decoder"}
    assert all(n.startswith(("stem.", "decoder.conv_feat_proj.")) for n in report.untouched)


def test_encoder_only_mae_leaves_mimdet_decoder_random_and_says_so(tmp_path, caplog):
    encoder_only = mae_state(dim=64, depth=2, grid=4, decoder=False)
    path = saved(tmp_path, "mae_pretrain_vit_base.pth", encoder_only)
    holder = Holder(MIMDetBackbone(tiny_backbone_config()))
    decoder_before = holder.backbone.decoder.embed.weight.clone()
    with caplog.at_level(logging.WARNING, logger="maskdino.checkpoints.backbone_weights"):
        report = load_backbone_weights(holder, path)
    assert "no MAE decoder in the file" in caplog.text
    torch.testing.assert_close(
        holder.backbone.blocks[0].norm1.weight, encoder_only["model"]["blocks.0.norm1.weight"]
    )
    torch.testing.assert_close(holder.backbone.decoder.embed.weight, decoder_before)
    assert "mae_pretrain_vit_base_full.pth" in report.untouched["decoder.embed.weight"]


def test_mae_checkpoint_of_another_vit_is_refused(tmp_path):
    holder = Holder(MIMDetBackbone(tiny_backbone_config(depth=3)))
    shallower = saved(tmp_path, "mae_depth2.pth", mae_state(dim=64, depth=2, grid=4, decoder=True))
    with pytest.raises(
        ValueError,
        match=r"(?s)mae_depth2\.pth holds an MAE ViT \(width 64, 2 blocks.*missing in the file \(12\)",
    ):
        load_backbone_weights(holder, shallower)
    narrower = saved(tmp_path, "mae_width32.pth", mae_state(dim=32, depth=3, grid=4, decoder=True))
    with pytest.raises(ValueError, match=r"shape mismatch"):
        load_backbone_weights(holder, narrower)


def test_mae_encoder_initialises_the_benchmarking_vit(tmp_path):
    vit = BenchmarkingViT(
        BenchmarkingViTConfig(img_size=64, embed_dim=64, depth=4, num_heads=2, window_size=2)
    )
    pos_before = vit.pos_embed.clone()
    mae = mae_state(dim=64, depth=4, grid=4, decoder=False)["model"]
    report = load_backbone_weights(Holder(vit), saved(tmp_path, "mae.pth", {"model": mae}))
    torch.testing.assert_close(vit.patch_embed.proj.weight, mae["patch_embed.proj.weight"])
    torch.testing.assert_close(vit.blocks[3].mlp.fc1.weight, mae["blocks.3.mlp.fc1.weight"])
    torch.testing.assert_close(vit.pos_embed, pos_before)  # the sin-cos table replaces MAE's, as official
    assert set(report.skipped) == {"cls_token", "pos_embed", "norm.weight", "norm.bias"}


def test_a_pth_pickling_other_objects_is_refused(tmp_path):
    path = saved(
        tmp_path,
        "mae_trainer_state.pth",
        {**mae_state(dim=64, depth=2, grid=4, decoder=True), "log": Path(".")},
    )
    with pytest.raises(ValueError, match=r"cannot read .*mae_trainer_state\.pth .*weights_only=True"):
        load_backbone_weights(Holder(MIMDetBackbone(tiny_backbone_config())), path)
