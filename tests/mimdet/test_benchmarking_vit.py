"""Benchmarking-ViT baseline: pyramid shapes, relative position indices, fixed input size."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from maskdino.config import BenchmarkingViTConfig
from maskdino.mimdet.benchmarking_vit import BenchmarkingViT, RelativePositionBias


def tiny() -> BenchmarkingViT:
    return BenchmarkingViT(
        BenchmarkingViTConfig(img_size=64, embed_dim=64, depth=8, num_heads=2, window_size=2)
    )


def test_pyramid_shapes():
    backbone = tiny()
    outputs = backbone(torch.randn(2, 3, 64, 64))
    assert backbone.output_shape() == {"res2": (64, 4), "res3": (64, 8), "res4": (64, 16), "res5": (64, 32)}
    assert {k: tuple(v.shape) for k, v in outputs.items()} == {
        "res2": (2, 64, 16, 16),
        "res3": (2, 64, 8, 8),
        "res4": (2, 64, 4, 4),
        "res5": (2, 64, 2, 2),
    }


def test_relative_position_index_enumerates_offsets():
    index = RelativePositionBias((3, 4), num_heads=2).relative_position_index  # [12, 12]
    coords = [(r, c) for r in range(3) for c in range(4)]
    offsets = {}
    for q, (rq, cq) in enumerate(coords):
        for k, (rk, ck) in enumerate(coords):
            offsets.setdefault((rq - rk, cq - ck), set()).add(int(index[q, k]))
    # one table row per offset, and every one of the (2*3-1) * (2*4-1) rows is used
    assert all(len(rows) == 1 for rows in offsets.values())
    assert sorted(next(iter(rows)) for rows in offsets.values()) == list(range(35))


def test_bias_reaches_attention_per_head():
    bias = RelativePositionBias((2, 2), num_heads=3)
    with torch.no_grad():
        bias.relative_position_bias_table.copy_(torch.arange(27.0).view(9, 3))
    table = bias()
    assert table.shape == (3, 4, 4)
    # the diagonal is offset (0, 0): row (0 + 1) * 3 + (0 + 1) = 4 of the table
    torch.testing.assert_close(
        table.diagonal(dim1=1, dim2=2), torch.tensor([12.0, 13.0, 14.0])[:, None].expand(3, 4)
    )


class SkipBlock(nn.Module):
    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        return x


def test_windowed_blocks_mix_tokens_only_inside_their_window():
    backbone = tiny().eval()  # 4x4 tokens, 2x2 windows, blocks (windowed, global) x 4; no drop path
    for global_block in (1, 3, 5, 7):
        backbone.blocks[global_block] = SkipBlock()
    images = torch.randn(1, 3, 64, 64)
    changed = images.clone()
    changed[..., :16, :16] += 1.0  # the pixels of token (0, 0) only
    with torch.no_grad():
        diff = (backbone(changed)["res4"] - backbone(images)["res4"]).abs().sum(1)[0]  # [4, 4]
    assert (diff[:2, :2] > 0).all()  # the whole top-left window sees the change
    assert diff[2:].sum() == 0 and diff[:, 2:].sum() == 0


def test_input_must_have_the_fixed_size():
    with pytest.raises(ValueError, match=r"takes 64x64 inputs, got \(64, 96\).*benchmarking_vit.img_size"):
        tiny()(torch.randn(1, 3, 64, 96))
