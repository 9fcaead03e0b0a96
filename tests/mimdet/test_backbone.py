"""MIMDet backbone: token sampling, restoring the token grid, shapes, train/eval behaviour."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from maskdino.backbones.mimdet import (
    MIMDetBackbone,
    resize_pos_embed,
    sample_token_indices,
    sincos_pos_embed,
)
from tests.mimdet.tiny import tiny_backbone_config


@pytest.mark.parametrize(
    ("num_tokens", "ratio", "kept"),
    [
        (4200, 0.25, 1050),  # a 50 x 84 grid (800 x 1344 input), MIMDet-ViT-B 0.25
        (4200, 0.5, 2100),
        (1225, 0.25, 306),  # 306.25
        (7, 0.5, 3),  # 3.5: truncated like the official int(L * ratio), not rounded to 4
        (10, 1.0, 10),
    ],
)
def test_sampling_keeps_int_ratio_n_distinct_tokens(num_tokens: int, ratio: float, kept: int):
    torch.manual_seed(0)
    indices = sample_token_indices(torch.ones(3, num_tokens, dtype=torch.bool), ratio)
    assert indices.shape == (3, kept)
    for row in indices:
        assert len(set(row.tolist())) == kept
        assert int(row.min()) >= 0 and int(row.max()) < num_tokens
    # different images draw different samples
    assert not torch.equal(indices[0].sort().values, indices[1].sort().values) or kept == num_tokens


def test_sampling_is_uniform_over_tokens():
    torch.manual_seed(0)
    counts = torch.zeros(20)
    for _ in range(200):
        counts += torch.bincount(
            sample_token_indices(torch.ones(1, 20, dtype=torch.bool), 0.25)[0], minlength=20
        )
    # each token is kept with probability 5/20: 50 times in expectation, std ~6
    assert counts.sum() == 1000
    assert counts.min() > 25 and counts.max() < 75


def test_sampling_never_keeps_padding_while_real_tokens_remain():
    torch.manual_seed(0)
    valid = torch.zeros(2, 16, dtype=torch.bool)
    valid[0, :10] = True  # 10 real tokens, K = 8: only real ones
    valid[1, :4] = True  # 4 real tokens, K = 8: all 4 real ones plus 4 padding
    indices = sample_token_indices(valid, 0.5)
    assert valid[0, indices[0]].all()
    assert set(range(4)) <= set(indices[1].tolist())


def test_valid_tokens_mark_the_unpadded_region():
    valid = MIMDetBackbone.valid_tokens(2, (4, 6), [(64, 96), (33, 40)], torch.device("cpu")).view(2, 4, 6)
    assert valid[0].all()
    # 33 x 40 pixels touch ceil(33/16) = 3 rows and ceil(40/16) = 3 columns of stride-16 tokens
    assert valid[1].sum() == 9 and valid[1, :3, :3].all()


def test_restored_grid_has_vit_outputs_at_sampled_positions_and_conv_features_elsewhere():
    # no transformer blocks, so every position can be predicted from the stem output alone
    backbone = MIMDetBackbone(tiny_backbone_config(depth=0, sample_ratio=0.25, decoder_depth=0))
    backbone.train()
    decoder = backbone.decoder
    decoder.norm = nn.Identity()
    images = torch.randn(2, 3, 64, 64)
    torch.manual_seed(3)
    res4 = backbone(images)["res4"]  # [2, 32, 4, 4]
    torch.manual_seed(3)
    kept = sample_token_indices(torch.ones(2, 16, dtype=torch.bool), 0.25)
    assert kept.shape == (2, 4)

    with torch.no_grad():
        stem = backbone.stem(images)[2].flatten(2).transpose(1, 2)  # [2, 16, 64]
        vit = backbone.norm(stem + backbone.pos_embed[:, 1:])
        decoder_pos = decoder.pos_embed[0, 1:]
        for b in range(2):
            for position in range(16):
                row, col = divmod(position, 4)
                if position in kept[b].tolist():
                    expected = decoder.embed(vit[b, position])
                else:
                    expected = decoder.conv_feat_proj(stem[b, position])
                torch.testing.assert_close(res4[b, :, row, col], expected + decoder_pos[position])


def test_mask_token_variant_fills_unsampled_positions_with_the_learned_token():
    backbone = MIMDetBackbone(
        tiny_backbone_config(depth=0, sample_ratio=0.5, decoder_depth=0, dropped_tokens="mask_token"),
    )
    backbone.decoder.norm = nn.Identity()
    nn.init.normal_(backbone.decoder.mask_token)
    images = torch.randn(1, 3, 64, 64)
    torch.manual_seed(1)
    res4 = backbone(images)["res4"].flatten(2)[0].T  # [16, 32]
    torch.manual_seed(1)
    kept = set(sample_token_indices(torch.ones(1, 16, dtype=torch.bool), 0.5)[0].tolist())
    token = backbone.decoder.mask_token[0, 0] + backbone.decoder.pos_embed[0, 1:]
    dropped = [p for p in range(16) if p not in kept]
    assert len(dropped) == 8
    torch.testing.assert_close(res4[dropped], token[dropped])


def test_output_shapes_match_output_shape():
    backbone = MIMDetBackbone(tiny_backbone_config())
    outputs = backbone(torch.randn(2, 3, 64, 96))
    assert backbone.output_shape() == {"res2": (32, 4), "res3": (64, 8), "res4": (32, 16), "res5": (32, 32)}
    for name, (channels, stride) in backbone.output_shape().items():
        assert outputs[name].shape == (2, channels, 64 // stride, 96 // stride)
    assert backbone.size_divisibility == 32
    subset = MIMDetBackbone(tiny_backbone_config(), out_features=("res5", "res3"))
    assert list(subset(torch.randn(1, 3, 64, 64))) == ["res3", "res5"]
    assert subset.output_shape() == {"res3": (64, 8), "res5": (32, 32)}
    with pytest.raises(ValueError, match="non-empty subset"):
        MIMDetBackbone(tiny_backbone_config(), out_features=("res6",))


def test_eval_sees_every_token_and_is_deterministic():
    backbone = MIMDetBackbone(tiny_backbone_config(sample_ratio=0.25))
    images = torch.randn(1, 3, 64, 64)
    backbone.eval()
    with torch.no_grad():
        first, second = backbone(images)["res4"], backbone(images)["res4"]
        backbone.train()
        backbone.sample_ratio = 1.0  # training forward on all tokens is the same computation
        full_train = backbone(images)["res4"]
        backbone.sample_ratio = 0.25
        sampled_a, sampled_b = backbone(images)["res4"], backbone(images)["res4"]
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    torch.testing.assert_close(first, full_train)
    assert (sampled_a - sampled_b).abs().max() > 1e-3


def test_gradients_reach_stem_vit_and_conv_projection():
    backbone = MIMDetBackbone(tiny_backbone_config(use_checkpoint=True))
    outputs = backbone(torch.randn(2, 3, 64, 64))
    sum(o.square().mean() for o in outputs.values()).backward()
    for name in (
        "stem.stages.0.0.weight",
        "blocks.1.mlp.fc2.weight",
        "decoder.conv_feat_proj.weight",
        "norm.weight",
    ):
        assert backbone.get_parameter(name).grad.abs().sum() > 0, name
    assert backbone.pos_embed.grad is None  # the sin-cos table is frozen


def test_sincos_table_follows_mae_layout():
    table = sincos_pos_embed(8, height=2, width=3)  # [6, 8]; omega = (1, 1/100)
    assert table.shape == (6, 8)
    row, col = 1, 2
    token = table[row * 3 + col]
    expected = [math.sin(col), math.sin(col / 100), math.cos(col), math.cos(col / 100)]
    expected += [math.sin(row), math.sin(row / 100), math.cos(row), math.cos(row / 100)]
    torch.testing.assert_close(token, torch.tensor(expected))
    rows_first = sincos_pos_embed(8, 2, 3, rows_first=True)[row * 3 + col]
    torch.testing.assert_close(rows_first, torch.tensor(expected[4:] + expected[:4]))


def test_position_table_is_resampled_to_the_feature_grid():
    table = sincos_pos_embed(8, 4, 4)[None]
    assert resize_pos_embed(table, (4, 4)) is table
    resized = resize_pos_embed(table, (2, 6))
    assert resized.shape == (1, 12, 8)
    constant = resize_pos_embed(torch.full((1, 16, 8), 0.5), (7, 3))
    torch.testing.assert_close(constant, torch.full((1, 21, 8), 0.5))


def test_bad_sample_ratio_is_rejected():
    with pytest.raises(ValueError, match=r"model\.backbone\.mimdet\.sample_ratio"):
        MIMDetBackbone(tiny_backbone_config(sample_ratio=0.0))
