"""Presets: every one builds, is found by our name or its official config path, and takes typed overrides."""

from __future__ import annotations

import pytest
import torch

from maskdino.build import build_model
from maskdino.config import Config
from maskdino.presets import PRESETS, get_config

OFFICIAL = [(name, info.official_yaml) for name, info in PRESETS.items() if info.official_yaml]


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_builds_on_the_meta_device(name: str):
    cfg = get_config(name)
    with torch.device("meta"):
        model = build_model(cfg)
    assert cfg.name == name
    assert sum(p.numel() for p in model.parameters()) > 0
    assert Config.from_dict(cfg.to_dict()) == cfg  # what a run saves reads back as the same config


@pytest.mark.parametrize(("name", "path"), OFFICIAL)
def test_official_config_paths_find_their_preset(name: str, path: str):
    for spec in (path, f"configs/{path}", f"./configs/{path}"):
        cfg = get_config(spec)
        assert (cfg.name, cfg.official_yaml) == (name, path)
    assert get_config(path) == get_config(name)


def test_unknown_names_and_keys_suggest_close_ones():
    with pytest.raises(KeyError, match="Did you mean: mimdet_vit_b_sr05"):
        get_config("mimdet_vit_b_sr5")
    with pytest.raises(KeyError, match=r"Did you mean: .*mimdet/mimdet_vit_base_mask_rcnn_fpn_sr_0p5"):
        get_config("mimdet/mimdet_vit_base_mask_rcnn_fpn_sr_0p5_800_1333_coco_3x.py")
    with pytest.raises(KeyError, match=r"Did you mean: model\.backbone\.mimdet\.sample_ratio"):
        get_config("mimdet_vit_b_sr05", ["model.backbone.mimdet.sample_rate=0.3"])
    with pytest.raises(KeyError, match=r"Did you mean: .*solver\.lr_multiplier"):
        get_config("demo", ["solver.lr_multiplyer=2"])
    with pytest.raises(KeyError, match="is a section"):
        get_config("demo", ["model.mask_rcnn=1"])


def test_overrides_parse_to_the_field_types():
    cfg = get_config(
        "mimdet_vit_b_sr05",
        [
            "solver.max_iter=1e3",
            "solver.base_lr=2.5e-4",
            "solver.amp=off",
            "model.backbone.mimdet.use_checkpoint=False",
            "input.min_size_train=(512, 640)",
            "model.mask_rcnn.anchor_aspect_ratios=[1, 2]",
            "model.mask_rcnn.mask_conv_dims=()",
            "data.root=None",
            "data.train_json=/data/train.json",
            "model.backbone.mimdet.dropped_tokens=mask_token",
        ],
    )
    assert cfg.solver.max_iter == 1000 and isinstance(cfg.solver.max_iter, int)
    assert cfg.solver.base_lr == 2.5e-4
    assert cfg.solver.amp is False and cfg.model.backbone.mimdet.use_checkpoint is False
    assert cfg.input.min_size_train == (512, 640)
    assert cfg.model.mask_rcnn.anchor_aspect_ratios == (1.0, 2.0)
    assert cfg.model.mask_rcnn.mask_conv_dims == ()
    assert cfg.data.root is None and cfg.data.train_json == "/data/train.json"
    assert cfg.model.backbone.mimdet.dropped_tokens == "mask_token"
    with pytest.raises(ValueError, match="expects an integer"):
        get_config("demo", ["solver.max_iter=12.5"])
    with pytest.raises(ValueError, match="expects true/false"):
        get_config("demo", ["solver.amp=maybe"])
    with pytest.raises(ValueError, match="key=value"):
        get_config("demo", ["solver.amp"])


def test_mimdet_presets_follow_the_official_lazy_configs():
    """The official formulas (configs/mimdet/*_sr_*.py at batch 64, configs/benchmarking/*.py)."""
    epoch = 120000 / 64
    b, large = get_config("mimdet_vit_b_sr05"), get_config("mimdet_vit_l_sr05")
    assert (b.solver.max_iter, b.solver.steps) == (int(epoch * 36), (int(epoch * 27), int(epoch * 33)))
    assert b.solver.warmup_iters == int(0.25 / 36 * b.solver.max_iter) and b.solver.warmup_factor == 0.0
    assert b.solver.base_lr == pytest.approx(8e-5 * 64 / 16) and b.solver.ims_per_batch == 64
    assert (b.solver.lr_multiplier, large.solver.lr_multiplier) == (2.0, 3.5)
    assert get_config("mimdet_vit_b_sr025").model.backbone.mimdet.sample_ratio == 0.25
    assert b.input.min_size_train == (480, 512, 544, 576, 608, 640, 736, 768, 800)
    assert (b.input.crop_prob, b.input.crop_pre_sizes, b.input.crop_size_range) == (
        0.5,
        (400, 500, 600),
        (384, 600),
    )
    assert (large.model.backbone.mimdet.embed_dim, large.model.backbone.mimdet.drop_path_rate) == (1024, 0.4)
    for epochs in (25, 50, 100):
        bench = get_config(f"benchmarking_vit_b_{epochs}ep")
        assert bench.solver.max_iter == 184375 // (100 // epochs)
        # the warm-up fraction scales with the schedule: always ~461 iterations
        assert bench.solver.warmup_iters == round(0.25 / epochs * bench.solver.max_iter)
        assert (bench.input.dataset_mapper, bench.input.image_size, bench.input.max_size_test) == (
            "coco_instance_lsj",
            1024,
            1024,
        )
