"""Checkpoint conversion against the official inventories."""

from __future__ import annotations

import pytest
import torch

from maskdino.build import build_model
from maskdino.checkpoints import CheckpointMismatchError, load_weights
from maskdino.mimdet.checkpoints import convert_mimdet_state_dict
from maskdino.presets import get_config
from tests.mimdet.tiny import TINY_BENCHMARKING, tiny_detector

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
