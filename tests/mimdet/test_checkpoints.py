"""Checkpoint conversion against the official inventories, and MAE weight loading."""

from __future__ import annotations

import argparse

import pytest
import torch

from maskdino.backbones.mimdet import MIMDetBackbone
from maskdino.build import build_model
from maskdino.checkpoints import CheckpointMismatchError, load_weights
from maskdino.config import BenchmarkingViTConfig
from maskdino.mimdet.benchmarking_vit import BenchmarkingViT
from maskdino.mimdet.checkpoints import convert_mimdet_state_dict, load_mae_weights
from maskdino.presets import get_config
from tests.mimdet.tiny import TINY_BENCHMARKING, tiny_backbone_config, tiny_detector

DTYPES = {"float32": torch.float32, "int64": torch.int64}


def official_model(name: str) -> torch.nn.Module:
    """The preset of an official config name (its `configs/.../<name>.py` path), built on the meta device."""
    folder = "benchmarking" if name.startswith("benchmarking") else "mimdet"
    with torch.device("meta"):
        return build_model(get_config(f"configs/{folder}/{name}.py"))


def meta_state(inventory: list[tuple[str, tuple[int, ...], str]]) -> dict[str, torch.Tensor]:
    return {name: torch.empty(shape, dtype=DTYPES[dtype], device="meta") for name, shape, dtype in inventory}


@pytest.mark.parametrize(
    "name",
    [
        "mimdet_vit_base_mask_rcnn_fpn_sr_0p5_800_1333_4xdec_coco_3x",
        "mimdet_vit_large_mask_rcnn_fpn_sr_0p5_800_1333_4xdec_coco_3x",
        "benchmarking_mask_rcnn_base_FPN_100ep_LSJ_mae",
    ],
)
def test_official_inventory_converts_strictly(name: str, official_keys):
    official = meta_state(official_keys[name])
    model = official_model(name)
    converted = convert_mimdet_state_dict(official)
    ours = model.state_dict()
    assert set(converted) == set(ours)  # zero missing, zero unexpected
    assert {k: tuple(v.shape) for k, v in converted.items()} == {k: tuple(v.shape) for k, v in ours.items()}
    # only the relative position indices (rebuilt from the window sizes) are dropped
    dropped = len(official) - len(converted)
    assert dropped == (2 if name.startswith("benchmarking") else 0)
    load_weights(model, official)


def test_renames_land_on_the_matching_modules():
    official = {
        "backbone.bottom_up.encoder.patch_embed.proj.3.3.bias": 0,
        "backbone.bottom_up.encoder.blocks.11.attn.qkv.weight": 1,
        "backbone.bottom_up.decoder.decoder_blocks.2.norm1.bias": 2,
        "backbone.bottom_up.decoder.conv_feat_proj.weight": 3,
        "backbone.fpn_lateral3.norm.running_var": 4,
        "backbone.fpn_output5.weight": 5,
        "proposal_generator.rpn_head.conv.conv1.bias": 6,
        "proposal_generator.rpn_head.anchor_deltas.weight": 7,
        "roi_heads.box_head.conv4.norm.weight": 8,
        "roi_heads.mask_head.deconv.weight": 9,
        "roi_heads.mask_head.mask_fcn2.weight": 10,
    }
    converted = convert_mimdet_state_dict({k: torch.tensor(v) for k, v in official.items()})
    assert {k: int(v) for k, v in converted.items()} == {
        "backbone.stem.stages.3.3.bias": 0,
        "backbone.blocks.11.attn.qkv.weight": 1,
        "backbone.decoder.blocks.2.norm1.bias": 2,
        "backbone.decoder.conv_feat_proj.weight": 3,
        "fpn.inner_blocks.1.1.running_var": 4,
        "fpn.layer_blocks.3.0.weight": 5,
        "rpn.head.conv.1.0.bias": 6,
        "rpn.head.bbox_pred.weight": 7,
        "roi_heads.box_head.conv4.norm.weight": 8,
        "roi_heads.mask_predictor.deconv.weight": 9,
        "roi_heads.mask_head.mask_fcn2.weight": 10,
    }


def test_unknown_and_missing_keys_are_reported(official_keys):
    name = "mimdet_vit_base_mask_rcnn_fpn_sr_0p5_800_1333_4xdec_coco_3x"
    model = official_model(name)
    official = meta_state(official_keys[name])
    with pytest.raises(KeyError, match="roi_heads.keypoint_head.x"):
        convert_mimdet_state_dict({**official, "roi_heads.keypoint_head.x": torch.zeros(1)})
    incomplete = {k: v for k, v in official.items() if k != "backbone.bottom_up.encoder.norm.weight"}
    with pytest.raises(
        CheckpointMismatchError, match=r"missing in checkpoint \(1\):\n +backbone.norm.weight\n"
    ):
        load_weights(model, incomplete)
    large = meta_state(official_keys["mimdet_vit_large_mask_rcnn_fpn_sr_0p5_800_1333_4xdec_coco_3x"])
    with pytest.raises(CheckpointMismatchError, match="shape mismatch(.|\n)*'mimdet_vit_l_sr05'"):
        load_weights(model, large)


def test_a_saved_detectron2_checkpoint_loads_with_its_values(tmp_path):
    model = tiny_detector(*TINY_BENCHMARKING)
    official = {_official_name(k): torch.randn(v.shape).to(v.dtype) for k, v in model.state_dict().items()}
    path = tmp_path / "model_final.pth"
    torch.save({"model": official, "iteration": 7}, path)
    load_weights(model, path)
    ours = model.state_dict()
    torch.testing.assert_close(
        ours["fpn.inner_blocks.2.1.weight"], official["backbone.fpn_lateral4.norm.weight"]
    )
    torch.testing.assert_close(
        ours["rpn.head.conv.1.0.weight"], official["proposal_generator.rpn_head.conv.conv1.weight"]
    )
    torch.testing.assert_close(
        ours["backbone.global_rel_pos_bias.relative_position_bias_table"],
        official["backbone.bottom_up.global_rel_pos_bias.relative_position_bias_table"],
    )


def _official_name(ours: str) -> str:
    """Our name -> detectron2's, spelled out independently of the converter for this test."""
    for stage in range(4):
        for kind, official in (("inner_blocks", "fpn_lateral"), ("layer_blocks", "fpn_output")):
            prefix = f"fpn.{kind}.{stage}."
            if ours.startswith(prefix):
                leaf = ours.removeprefix(prefix)
                return f"backbone.{official}{stage + 2}." + (
                    "weight" if leaf == "0.weight" else "norm." + leaf[2:]
                )
    if ours.startswith("backbone."):
        return "backbone.bottom_up." + ours.removeprefix("backbone.")
    if ours.startswith("rpn.head.conv."):
        index, leaf = ours.removeprefix("rpn.head.conv.").split(".0.")
        return f"proposal_generator.rpn_head.conv.conv{index}.{leaf}"
    renames = {
        "rpn.head.cls_logits.": "proposal_generator.rpn_head.objectness_logits.",
        "rpn.head.bbox_pred.": "proposal_generator.rpn_head.anchor_deltas.",
        "roi_heads.mask_predictor.": "roi_heads.mask_head.",
    }
    for mine, theirs in renames.items():
        if ours.startswith(mine):
            return theirs + ours.removeprefix(mine)
    return ours


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


def test_mae_full_checkpoint_initialises_the_mimdet_backbone():
    backbone = MIMDetBackbone(tiny_backbone_config())  # grid 4x4, decoder depth 1
    stem_before = backbone.stem.stages[0][0].weight.clone()
    proj_before = backbone.decoder.conv_feat_proj.weight.clone()
    checkpoint = mae_state(dim=64, depth=2, grid=2, decoder=True)
    mae = checkpoint["model"]
    skipped = load_mae_weights(backbone, checkpoint)

    torch.testing.assert_close(backbone.blocks[1].attn.qkv.weight, mae["blocks.1.attn.qkv.weight"])
    torch.testing.assert_close(backbone.norm.bias, mae["norm.bias"])
    torch.testing.assert_close(backbone.decoder.embed.weight, mae["decoder_embed.weight"])
    torch.testing.assert_close(
        backbone.decoder.blocks[0].mlp.fc2.weight, mae["decoder_blocks.0.mlp.fc2.weight"]
    )
    torch.testing.assert_close(backbone.decoder.norm.weight, mae["decoder_norm.weight"])
    # 2x2 MAE tables resampled to the backbone's 4x4 grid, class-token row kept
    assert backbone.pos_embed.shape == (1, 17, 64)
    torch.testing.assert_close(backbone.pos_embed[:, 0], mae["pos_embed"][:, 0])
    torch.testing.assert_close(backbone.decoder.pos_embed, torch.full((1, 17, 32), 0.5))
    assert not backbone.pos_embed.requires_grad
    # the conv stem and the conv-feature projection are not in MAE: untouched
    torch.testing.assert_close(backbone.stem.stages[0][0].weight, stem_before)
    torch.testing.assert_close(backbone.decoder.conv_feat_proj.weight, proj_before)
    assert {"cls_token", "mask_token", "patch_embed.proj.weight", "decoder_pred.bias"} <= set(skipped)
    assert "decoder_blocks.1.norm1.weight" in skipped and "decoder_blocks.0.norm1.weight" not in skipped


def test_mae_without_decoder_needs_consent():
    backbone = MIMDetBackbone(tiny_backbone_config())
    encoder_only = mae_state(dim=64, depth=2, grid=4, decoder=False)
    with pytest.raises(ValueError, match="mae_pretrain_vit_base_full.pth"):
        load_mae_weights(backbone, encoder_only)
    decoder_before = backbone.decoder.embed.weight.clone()
    load_mae_weights(backbone, encoder_only, require_decoder=False)
    torch.testing.assert_close(
        backbone.blocks[0].norm1.weight, encoder_only["model"]["blocks.0.norm1.weight"]
    )
    torch.testing.assert_close(backbone.decoder.embed.weight, decoder_before)


def test_mae_checkpoint_of_another_vit_is_rejected():
    backbone = MIMDetBackbone(tiny_backbone_config(depth=3))
    with pytest.raises(ValueError, match=r"missing \(12\)"):
        load_mae_weights(backbone, mae_state(dim=64, depth=2, grid=4, decoder=True))
    with pytest.raises(ValueError, match="shape mismatch"):
        load_mae_weights(backbone, mae_state(dim=32, depth=3, grid=4, decoder=True))


def test_mae_encoder_initialises_the_benchmarking_vit():
    backbone = BenchmarkingViT(
        BenchmarkingViTConfig(img_size=64, embed_dim=64, depth=4, num_heads=2, window_size=2)
    )
    pos_before = backbone.pos_embed.clone()
    mae = mae_state(dim=64, depth=4, grid=4, decoder=False)["model"]
    skipped = load_mae_weights(backbone, mae)
    torch.testing.assert_close(backbone.patch_embed.proj.weight, mae["patch_embed.proj.weight"])
    torch.testing.assert_close(backbone.blocks[3].mlp.fc1.weight, mae["blocks.3.mlp.fc1.weight"])
    torch.testing.assert_close(
        backbone.pos_embed, pos_before
    )  # the sin-cos table replaces MAE's, as official
    assert set(skipped) == {"cls_token", "pos_embed", "norm.weight", "norm.bias"}


def test_pickled_training_state_needs_explicit_trust(tmp_path):
    backbone = MIMDetBackbone(tiny_backbone_config())
    path = tmp_path / "mae_pretrain_full.pth"
    checkpoint = mae_state(dim=64, depth=2, grid=4, decoder=True)
    torch.save({**checkpoint, "args": argparse.Namespace(model="mae_vit_base_patch16")}, path)  # as MAE saves
    with pytest.raises(RuntimeError, match="trust_pickle=True"):
        load_mae_weights(backbone, path)
    load_mae_weights(backbone, path, trust_pickle=True)
    torch.testing.assert_close(backbone.blocks[0].mlp.fc1.bias, checkpoint["model"]["blocks.0.mlp.fc1.bias"])
