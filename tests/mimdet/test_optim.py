"""Optimizer parameter groups of the official MIMDet and Benchmarking configs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from maskdino.build import build_model
from maskdino.engine.optim import build_optimizer
from maskdino.mimdet.optim import optimizer_param_groups
from maskdino.presets import get_config
from tests.mimdet.tiny import TINY_BENCHMARKING, tiny_config, tiny_detector


def group_of(groups: list[dict], model, name: str) -> tuple[float, float]:
    param = model.get_parameter(name)
    (match,) = [g for g in groups if any(p is param for p in g["params"])]
    return match["lr"], match["weight_decay"]


def test_mimdet_groups_split_learning_rates_and_skip_decay_on_1d():
    model = tiny_detector()
    groups = optimizer_param_groups(model, base_lr=1e-4, weight_decay=0.1, lr_multiplier=2.0)
    assert group_of(groups, model, "backbone.blocks.0.attn.qkv.weight") == (
        5e-5,
        0.1,
    )  # pretrained ViT: base/m
    assert group_of(groups, model, "backbone.blocks.0.attn.qkv.bias") == (5e-5, 0.0)
    assert group_of(groups, model, "backbone.norm.weight") == (5e-5, 0.0)
    assert group_of(groups, model, "backbone.stem.stages.0.0.weight") == (1e-4, 0.1)  # conv stem: base
    assert group_of(groups, model, "backbone.decoder.blocks.0.mlp.fc1.weight") == (
        2e-4,
        0.1,
    )  # the rest: base*m
    assert group_of(groups, model, "fpn.inner_blocks.0.1.weight") == (2e-4, 0.0)
    assert group_of(groups, model, "roi_heads.box_head.fc1.weight") == (2e-4, 0.1)
    # the frozen sin-cos tables are left out
    grouped = {id(p) for g in groups for p in g["params"]}
    assert id(model.backbone.pos_embed) not in grouped and id(model.backbone.decoder.pos_embed) not in grouped
    assert len(grouped) == sum(1 for p in model.parameters() if p.requires_grad)


def test_detectron2_default_groups_decay_biases_but_not_norms_or_tables():
    model = tiny_detector()
    groups = optimizer_param_groups(model, base_lr=1.6e-4, weight_decay=0.2, decay_biases=True)
    assert group_of(groups, model, "roi_heads.box_head.fc1.bias") == (1.6e-4, 0.2)
    assert group_of(groups, model, "backbone.blocks.1.norm2.weight") == (1.6e-4, 0.0)
    assert group_of(groups, model, "roi_heads.mask_head.mask_fcn1.norm.bias") == (1.6e-4, 0.0)


def test_the_trainer_optimizer_uses_the_detector_groups_of_the_preset():
    cfg = tiny_config()
    model = build_model(cfg)
    groups = {
        g["name"]: (g["lr"], g["weight_decay"]) for g in build_optimizer(model, cfg.solver).param_groups
    }
    # mimdet_vit_b_sr05: lr 3.2e-4 split by 2, weight decay 0.1, none on 1-D tensors
    assert groups["vit/decay"] == (1.6e-4, 0.1) and groups["vit/no_decay"] == (1.6e-4, 0.0)
    assert groups["stem/decay"] == (3.2e-4, 0.1)
    assert groups["others/decay"] == (6.4e-4, 0.1) and groups["others/no_decay"] == (6.4e-4, 0.0)
    with pytest.raises(ValueError, match="solver.lr_multiplier"):
        build_optimizer(model, replace(cfg.solver, backbone_multiplier=0.1))
    # benchmarking_vit_b_100ep: detectron2's default groups, biases decayed, no multiplier
    model = build_model(tiny_config(*TINY_BENCHMARKING))
    groups = build_optimizer(model, get_config("benchmarking_vit_b_100ep").solver).param_groups
    assert {g["name"] for g in groups} == {"all/decay", "all/no_decay"}
    assert group_of(groups, model, "roi_heads.box_head.fc1.bias") == (1.6e-4, 0.2)
    assert group_of(groups, model, "backbone.pos_embed") == (1.6e-4, 0.0)
