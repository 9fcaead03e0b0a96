"""Swin: official names/shapes/count for Swin-L, output geometry, window/shift/mask behaviour."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.nn import functional as F

from maskdino.backbones.swin import (
    PatchMerging,
    SwinBlock,
    SwinTransformer,
    drop_path,
    relative_position_index,
    shifted_window_mask,
    window_partition,
    window_reverse,
)
from maskdino.config import SwinConfig
from tests.backbones.inventory import float_numel, state_dict_inventory

SWIN_L = SwinConfig(
    pretrain_img_size=384, embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48), window_size=12
)
TINY = SwinConfig(
    embed_dim=48, depths=(2, 2, 2, 2), num_heads=(3, 6, 12, 24), window_size=7, drop_path_rate=0.0
)
SMALLEST = SwinConfig(
    embed_dim=24, depths=(2, 2, 2, 2), num_heads=(1, 2, 3, 4), window_size=4, drop_path_rate=0.0
)


def test_swin_l_state_dict_and_parameter_count_equal_official(official_backbone_keys):
    official = official_backbone_keys["swinl_ins_5s"]
    model = SwinTransformer(SWIN_L)
    assert state_dict_inventory(model) == official
    assert sum(dtype == "int64" for _, _, dtype in official) == 24  # relative_position_index, one per block
    assert sum(p.numel() for p in model.parameters()) == float_numel(official) == 195_201_204
    assert model.output_shape() == {"res2": (192, 4), "res3": (384, 8), "res4": (768, 16), "res5": (1536, 32)}
    assert model.size_divisibility == 32


def test_tiny_swin_on_odd_input_gives_all_stages():
    torch.manual_seed(0)
    model = SwinTransformer(TINY).eval()
    assert model.output_shape() == {"res2": (48, 4), "res3": (96, 8), "res4": (192, 16), "res5": (384, 32)}
    with torch.no_grad():
        out = model(torch.randn(2, 3, 100, 130))
    # input padded to 100x132 for the 4x4 patches, odd maps padded before each 2x2 merge: ceil(H / stride)
    assert {name: tuple(f.shape) for name, f in out.items()} == {
        "res2": (2, 48, 25, 33),
        "res3": (2, 96, 13, 17),
        "res4": (2, 192, 7, 9),
        "res5": (2, 384, 4, 5),
    }
    # each stage goes through a fresh LayerNorm (weight 1, bias 0): zero mean, unit variance per token
    for feature in out.values():
        torch.testing.assert_close(feature.mean(1), torch.zeros_like(feature[:, 0]), atol=1e-5, rtol=0)
        assert feature.isfinite().all()


def test_out_features_subset_and_absolute_position_embedding():
    cfg = SwinConfig(**{**TINY.__dict__, "ape": True, "pretrain_img_size": 224})
    model = SwinTransformer(cfg, out_features=("res3", "res5")).eval()
    assert model.absolute_pos_embed.shape == (1, 48, 56, 56)
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 96))
    assert {name: tuple(f.shape) for name, f in out.items()} == {
        "res3": (1, 96, 8, 12),
        "res5": (1, 384, 2, 3),
    }


def test_relative_position_index_for_a_2x2_window():
    # (query, key) -> (dy + 1) * 3 + (dx + 1) with d = query - key, tokens in row-major order
    expected = torch.tensor([[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]])
    assert torch.equal(relative_position_index(2), expected)
    index = relative_position_index(12)
    assert index.shape == (144, 144) and index.dtype == torch.int64
    assert index.min() == 0 and index.max() == 23 * 23 - 1 and (index.diagonal() == 11 * 23 + 11).all()


def test_shifted_window_mask_separates_rolled_regions():
    mask = shifted_window_mask(4, 4, window=2, shift=1, device=torch.device("cpu"))
    assert mask.shape == (4, 4, 4)
    assert (mask[0] == 0).all()  # top-left window: one region
    # top-right window holds two columns from different regions
    same_column = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1]], dtype=torch.bool)
    assert torch.equal(mask[1], torch.where(same_column, 0.0, -100.0))
    assert torch.equal(mask[3], torch.where(torch.eye(4, dtype=torch.bool), 0.0, -100.0))  # four regions


def test_window_partition_round_trip_and_order():
    x = torch.arange(2 * 4 * 6 * 3, dtype=torch.float32).view(2, 4, 6, 3)
    windows = window_partition(x, 2)
    assert windows.shape == (12, 4, 3)
    assert torch.equal(windows[1], x[0, 0:2, 2:4].reshape(4, 3))  # second window: next to the right
    assert torch.equal(window_reverse(windows, 2, 4, 6), x)


def _block(shift: int, window: int = 4) -> SwinBlock:
    torch.manual_seed(0)
    return SwinBlock(dim=8, num_heads=2, window=window, shift=shift, cfg=TINY, drop_path_p=0.0).eval()


def _changed_tokens(block: SwinBlock, size: int, row: int, col: int) -> torch.Tensor:
    """[size, size] bool: which outputs change when the single input token (row, col) changes."""
    x = torch.randn(1, size * size, 8, generator=torch.Generator().manual_seed(1))
    mask = shifted_window_mask(-(-size // 4) * 4, -(-size // 4) * 4, 4, 2, torch.device("cpu"))
    poked = x.clone()
    poked[0, row * size + col] += torch.linspace(-1.0, 2.0, 8)  # not constant: LayerNorm would remove it
    with torch.no_grad():
        diff = block(poked, size, size, mask) - block(x, size, size, mask)
    return (diff.abs().sum(-1) > 0).view(size, size)


def _region(size: int, rows: slice, cols: slice) -> torch.Tensor:
    region = torch.zeros(size, size, dtype=torch.bool)
    region[rows, cols] = True
    return region


def test_attention_stays_inside_plain_and_shifted_windows():
    plain, shifted = _block(shift=0), _block(shift=2)
    assert torch.equal(_changed_tokens(plain, 8, 3, 3), _region(8, slice(0, 4), slice(0, 4)))
    assert torch.equal(_changed_tokens(shifted, 8, 3, 3), _region(8, slice(2, 6), slice(2, 6)))
    # the shifted window holding (0, 0) wraps around, but the mask keeps it to its own 2x2 region
    assert torch.equal(_changed_tokens(shifted, 8, 0, 0), _region(8, slice(0, 2), slice(0, 2)))
    # 6x6 map padded to 8x8: windows still start at the top-left corner
    assert torch.equal(_changed_tokens(plain, 6, 5, 5), _region(6, slice(4, 6), slice(4, 6)))


def test_window_attention_equals_full_attention_with_relative_bias():
    block = _block(shift=0)
    attn = block.attn
    x = torch.randn(3, 16, 8)  # three 4x4 windows
    with torch.no_grad():
        q, k, v = attn.qkv(x).view(3, 16, 3, 2, 4).permute(2, 0, 3, 1, 4)  # each [3, heads, 16, 4]
        table = attn.relative_position_bias_table
        bias = torch.stack([table[relative_position_index(4), h] for h in range(2)])  # [heads, 16, 16]
        weights = F.softmax(q @ k.transpose(-1, -2) / 2.0 + bias, dim=-1)
        expected = attn.proj((weights @ v).transpose(1, 2).reshape(3, 16, 8))
        torch.testing.assert_close(attn(x, None), expected, rtol=1e-5, atol=1e-6)


def test_stochastic_depth_rates_grow_linearly():
    model = SwinTransformer(SwinConfig(**{**TINY.__dict__, "drop_path_rate": 0.35}))
    rates = [block.drop_path_p for stage in model.layers for block in stage.blocks]
    torch.testing.assert_close(torch.tensor(rates), torch.linspace(0, 0.35, 8))


def test_drop_path_drops_whole_samples_and_rescales():
    x = torch.ones(4000, 3, 2)
    out = drop_path(x, 0.25, training=True)
    per_sample = out.view(4000, -1)
    assert ((per_sample == 0).all(1) | (per_sample == 1 / 0.75).all(1)).all()
    assert abs((per_sample[:, 0] == 0).float().mean().item() - 0.25) < 0.03
    assert drop_path(x, 0.25, training=False) is x


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = SwinTransformer(SMALLEST).train()
    checkpointed = SwinTransformer(SwinConfig(**{**SMALLEST.__dict__, "use_checkpoint": True})).train()
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 36, 44)
    for model in (plain, checkpointed):
        sum(f.square().mean() for f in model(x).values()).backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), checkpointed.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_bad_config_is_rejected_with_a_precise_message():
    with pytest.raises(ValueError, match="4 stages"):
        SwinTransformer(SwinConfig(depths=(2, 2, 6)))
    with pytest.raises(ValueError, match="res1"):
        SwinTransformer(TINY, out_features=("res1",))


def test_patch_merging_concatenates_in_official_order():
    merging = PatchMerging(dim=1)
    x = torch.tensor([[[1.0], [2.0], [3.0], [4.0]]])  # 2x2 map, row-major: (0,0)=1 (0,1)=2 (1,0)=3 (1,1)=4
    with torch.no_grad():
        expected = merging.reduction(merging.norm(torch.tensor([[[1.0, 3.0, 2.0, 4.0]]])))
        torch.testing.assert_close(merging(x, 2, 2), expected)
        assert merging(torch.randn(1, 15, 1), 3, 5).shape == (1, 6, 2)  # odd map: padded to 4x6


def test_exports_to_onnx_with_the_same_outputs(tmp_path):
    """Guards the traced size arithmetic (ceil via floor division of non-negative ints, mask tiling)."""
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = SwinTransformer(SwinConfig(**{**SMALLEST.__dict__, "window_size": 7})).eval()
    x = torch.randn(2, 3, 100, 130)
    path = tmp_path / "swin.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python ints
        torch.onnx.export(model, (x,), path, dynamo=False, opset_version=17, input_names=["x"])
    outputs = ort.InferenceSession(str(path)).run(None, {"x": x.numpy()})
    with torch.no_grad():
        expected = model(x)
    for ours, reference in zip(outputs, expected.values()):
        torch.testing.assert_close(torch.from_numpy(ours), reference, rtol=1e-4, atol=1e-4)
