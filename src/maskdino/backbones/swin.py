"""Swin Transformer as Mask2Former/MaskDINO wrap it (`D2SwinTransformer`, from the mmseg Swin).

Module names equal the official ones (`patch_embed.proj`, `layers.0.blocks.0.attn.qkv`, `norm0`, ...), so
an official checkpoint loads after dropping its `backbone.` prefix. Behaviour follows the official code:
inputs are zero-padded to the patch size, token maps to the window size (padding tokens are attended
to, not masked), odd maps before patch merging; windows never shrink for small maps.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from maskdino.config import SwinConfig

STAGE_NAMES = ("res2", "res3", "res4", "res5")
SHIFT_MASK_VALUE = -100.0  # official value for pairs of tokens from different regions of a shifted window


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero the residual branch of whole samples with probability p, rescale the rest."""
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask / keep


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """[B, H, W, C] (H, W multiples of window) -> [B * nW, window * window, C], windows in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """Inverse of `window_partition`: [B * nW, window * window, C] -> [B, H, W, C]."""
    c = windows.shape[-1]
    x = windows.view(-1, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def relative_position_index(window: int) -> torch.Tensor:
    """[window^2, window^2] int64: row of the bias table for each (query, key) pair of a window."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)  # [N, N, 2]
    return relative[:, :, 0] * (2 * window - 1) + relative[:, :, 1]


def shifted_window_mask(
    height: int, width: int, window: int, shift: int, device: torch.device
) -> torch.Tensor:
    """[nW, N, N] additive mask for a map cyclically shifted by `shift`: 0 within a region, -100 across.

    Along each axis the shifted map has three bands, [0, size - window), [size - window, size - shift) and
    [size - shift, size); a region is a pair of bands, and only the last window row/column mixes regions.
    """

    def bands(size: int) -> torch.Tensor:
        coords = torch.arange(size, device=device)
        return (coords >= size - window).long() + (coords >= size - shift).long()

    regions = bands(height)[:, None] * 3 + bands(width)[None, :]  # [Hp, Wp]
    labels = window_partition(regions[None, :, :, None], window).squeeze(-1)  # [nW, N]
    different = labels[:, None, :] != labels[:, :, None]
    return torch.zeros(different.shape, device=device).masked_fill(different, SHIFT_MASK_VALUE)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each window, plus a learned relative position bias per head."""

    def __init__(
        self, dim: int, window: int, num_heads: int, qkv_bias: bool, attn_drop: float, proj_drop: float
    ):
        super().__init__()
        self.num_heads = num_heads
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x [B * nW, N, C]; mask [nW, N, N] additive or None -> [B * nW, N, C]."""
        windows, n, c = x.shape
        qkv = self.qkv(x).view(windows, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each [B * nW, heads, N, C / heads]
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(n, n, self.num_heads).permute(2, 0, 1)  # [heads, N, N]
        if mask is not None:
            # windows of one image are consecutive: tile the per-window mask over the batch
            bias = bias.unsqueeze(0) + mask.unsqueeze(1).to(bias.dtype)  # [nW, heads, N, N]
            bias = bias.repeat(windows // mask.shape[0], 1, 1, 1)  # [B * nW, heads, N, N]
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias.to(q.dtype), dropout_p=self.attn_drop if self.training else 0.0
        )
        out = out.reshape(windows, self.num_heads, n, -1).transpose(1, 2).reshape(windows, n, c)
        return self.proj_drop(self.proj(out))


class Mlp(nn.Module):
    """Linear -> GELU -> Linear with dropout after each (names fc1/fc2 as the official code)."""

    def __init__(self, dim: int, hidden: int, drop: float):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))


class SwinBlock(nn.Module):
    """Pre-norm (shifted) window attention and MLP, each a residual branch with stochastic depth."""

    def __init__(
        self, dim: int, num_heads: int, window: int, shift: int, cfg: SwinConfig, drop_path_p: float
    ):
        super().__init__()
        self.window = window
        self.shift = shift
        self.drop_path_p = drop_path_p
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, num_heads, cfg.qkv_bias, cfg.attn_drop_rate, cfg.drop_rate)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio), cfg.drop_rate)

    def forward(self, x: torch.Tensor, height: int, width: int, shift_mask: torch.Tensor) -> torch.Tensor:
        """x [B, H*W, C] -> [B, H*W, C]; `shift_mask` [nW, N, N] is used by shifted blocks only."""
        b, length, c = x.shape
        shortcut = x
        x = self.norm1(x).view(b, height, width, c)
        pad_b = (self.window - height % self.window) % self.window
        pad_r = (self.window - width % self.window) % self.window
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        padded_h, padded_w = height + pad_b, width + pad_r
        if self.shift > 0:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        windows = self.attn(window_partition(x, self.window), shift_mask if self.shift > 0 else None)
        x = window_reverse(windows, self.window, padded_h, padded_w)  # [B, Hp, Wp, C]
        if self.shift > 0:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x[:, :height, :width, :].reshape(b, length, c)
        x = shortcut + drop_path(x, self.drop_path_p, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path_p, self.training)


class PatchMerging(nn.Module):
    """2x2 neighbouring tokens -> concat (4C) -> LayerNorm -> Linear to 2C; odd maps are zero-padded first."""

    def __init__(self, dim: int):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """x [B, H*W, C] -> [B, ceil(H/2) * ceil(W/2), 2C]."""
        b, _, c = x.shape
        x = F.pad(x.view(b, height, width, c), (0, 0, 0, width % 2, 0, height % 2))
        # official channel order: (even row, even col), (odd, even), (even, odd), (odd, odd)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class SwinStage(nn.Module):
    """Blocks alternating plain and shifted windows. Stages 0-2 also own the patch merging that follows them
    (`downsample`, official name); SwinTransformer applies it only when a later stage is needed."""

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        cfg: SwinConfig,
        drop_path_ps: Sequence[float],
        downsample: bool,
    ):
        super().__init__()
        self.window = cfg.window_size
        self.shift = cfg.window_size // 2
        self.use_checkpoint = cfg.use_checkpoint
        self.blocks = nn.ModuleList(
            SwinBlock(dim, num_heads, self.window, 0 if i % 2 == 0 else self.shift, cfg, drop_path_ps[i])
            for i in range(depth)
        )
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """x [B, H*W, C] -> the stage output [B, H*W, C] (before merging)."""
        # ceil to a multiple of the window, written with non-negative operands so traced exports agree
        padded_h = (height + self.window - 1) // self.window * self.window
        padded_w = (width + self.window - 1) // self.window * self.window
        mask = shifted_window_mask(padded_h, padded_w, self.window, self.shift, x.device)
        for block in self.blocks:
            if self.use_checkpoint and self.training:
                x = checkpoint(block, x, height, width, mask, use_reentrant=False)
            else:
                x = block(x, height, width, mask)
        return x


class PatchEmbed(nn.Module):
    """Non-overlapping patch_size x patch_size conv (input zero-padded to a multiple), optional LayerNorm."""

    def __init__(self, patch_size: int, embed_dim: int, patch_norm: bool, in_channels: int = 3):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim) if patch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, 3, H, W] -> [B, C, ceil(H/p), ceil(W/p)]."""
        h, w = x.shape[-2:]
        p = self.patch_size
        x = F.pad(x, (0, (p - w % p) % p, 0, (p - h % p) % p))
        x = self.proj(x)
        if self.norm is not None:
            x = self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return x


class SwinTransformer(nn.Module):
    """Hierarchical Swin backbone returning the requested stages: res2 (stride 4, C) .. res5 (stride 32, 8C).

    Each returned stage goes through its own LayerNorm `norm{i}`. Inputs of any size are accepted (padded
    internally); the model pads its batches to multiples of `size_divisibility` = 32, as the official wrapper.
    Stochastic depth grows linearly over all blocks from 0 to `cfg.drop_path_rate`. Like the official code,
    only the bias tables (and absolute position embedding) get a truncated-normal init; everything else
    keeps PyTorch's default, since the backbone is meant to be loaded from pretrained weights.
    """

    size_divisibility = 32

    def __init__(self, cfg: SwinConfig, out_features: Sequence[str] = STAGE_NAMES):
        super().__init__()
        num_stages = len(cfg.depths)
        if num_stages != 4 or len(cfg.num_heads) != 4:
            raise ValueError(
                f"Swin needs 4 stages: got depths {tuple(cfg.depths)} and num_heads {tuple(cfg.num_heads)}; "
                "give 4 values each, e.g. depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48)"
            )
        unknown = [f for f in out_features if f not in STAGE_NAMES]
        if unknown or not out_features:
            raise ValueError(
                f"Swin out_features {tuple(out_features)} must be a non-empty subset of {STAGE_NAMES}"
            )
        self.out_features = tuple(f for f in STAGE_NAMES if f in out_features)
        self.num_features = [cfg.embed_dim * 2**i for i in range(num_stages)]

        self.patch_embed = PatchEmbed(cfg.patch_size, cfg.embed_dim, cfg.patch_norm)
        if cfg.ape:
            grid = cfg.pretrain_img_size // cfg.patch_size
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, cfg.embed_dim, grid, grid))
            nn.init.trunc_normal_(self.absolute_pos_embed, std=0.02)
        else:
            self.absolute_pos_embed = None
        self.pos_drop = nn.Dropout(cfg.drop_rate)

        rates = torch.linspace(0, cfg.drop_path_rate, sum(cfg.depths), device="cpu").tolist()
        starts = [sum(cfg.depths[:i]) for i in range(num_stages + 1)]
        self.layers = nn.ModuleList(
            SwinStage(
                self.num_features[i],
                cfg.depths[i],
                cfg.num_heads[i],
                cfg,
                rates[starts[i] : starts[i + 1]],
                downsample=i < num_stages - 1,
            )
            for i in range(num_stages)
        )
        for i in range(num_stages):
            self.add_module(f"norm{i}", nn.LayerNorm(self.num_features[i]))

    def output_shape(self) -> dict[str, tuple[int, int]]:
        """(channels, stride) of each returned feature."""
        return {
            name: (self.num_features[STAGE_NAMES.index(name)], 4 * 2 ** STAGE_NAMES.index(name))
            for name in self.out_features
        }

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x [B, 3, H, W] normalised -> {"res2": [B, C, ceil(H/4), ceil(W/4)], ..., "res5": stride 32}."""
        if x.dim() != 4:
            raise ValueError(
                f"SwinTransformer expects an image batch [B, C, H, W], got shape {tuple(x.shape)}"
            )
        x = self.patch_embed(x)
        height, width = x.shape[-2:]
        if self.absolute_pos_embed is not None:
            x = x + F.interpolate(self.absolute_pos_embed, size=(height, width), mode="bicubic")
        x = self.pos_drop(x.flatten(2).transpose(1, 2))  # [B, H*W, C]
        last = max(STAGE_NAMES.index(f) for f in self.out_features)
        outputs = {}
        for i in range(last + 1):
            stage = self.layers[i]
            x = stage(x, height, width)
            if STAGE_NAMES[i] in self.out_features:
                out = getattr(self, f"norm{i}")(x)
                outputs[STAGE_NAMES[i]] = (
                    out.view(-1, height, width, out.shape[-1]).permute(0, 3, 1, 2).contiguous()
                )
            if i < last:
                x = stage.downsample(x, height, width)
                height, width = (height + 1) // 2, (width + 1) // 2
        return outputs
