"""The Benchmarking-ViT baseline of MIMDet (hustvl/MIMDet `models/benchmarking.py`, `BenchmarkingViTDet`).

An unofficial re-implementation, by the MIMDet authors, of "Benchmarking Detection Transfer Learning with
Vision Transformers": a plain ViT on a fixed square input whose blocks run in four groups (window
attention in all but the last block of a group, global attention in the last, each kind with one shared
relative position bias); after each group a deconv / identity / max-pool adaptor makes one pyramid level.
Parameter names equal the official ones (after `backbone.bottom_up.` -> `backbone.`).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from maskdino.backbones.mimdet import LEVELS, ViTBlock, sincos_pos_embed
from maskdino.config import BenchmarkingViTConfig


class RelativePositionBias(nn.Module):
    """A learned bias per head for every (row, column) offset between two tokens of an h x w grid."""

    def __init__(self, grid: tuple[int, int], num_heads: int):
        super().__init__()
        height, width = grid
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * height - 1) * (2 * width - 1), num_heads)
        )
        rows = torch.arange(height).repeat_interleave(width)
        cols = torch.arange(width).repeat(height)
        d_row = rows[:, None] - rows[None, :] + height - 1  # [N, N]
        d_col = cols[:, None] - cols[None, :] + width - 1
        # derived from the grid alone, so not saved (the official checkpoint's copy is dropped on conversion)
        self.register_buffer("relative_position_index", d_row * (2 * width - 1) + d_col, persistent=False)

    def forward(self) -> torch.Tensor:
        n = self.relative_position_index.shape[0]
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, -1).permute(2, 0, 1)  # [heads, N, N]


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, embed_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def trunc_normal_(weight: torch.Tensor, std: float, bound: float) -> None:
    """N(0, std^2) truncated to [-bound, bound], drawn by inverting the CDF (as timm does): one uniform draw
    per value, where rejection sampling (`nn.init.trunc_normal_`) redraws ~1/3 of a +-1 std tensor per round."""
    with torch.no_grad():
        edge = math.erf(bound / std / math.sqrt(2.0))  # the CDF of +-bound, mapped to [-1, 1]
        weight.uniform_(-edge, edge).erfinv_().mul_(std * math.sqrt(2.0)).clamp_(-bound, bound)


def lecun_normal_(weight: torch.Tensor) -> None:
    """Truncated normal with variance 1/fan_in (timm's `lecun_normal_`: cut at +-2, far outside)."""
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
    trunc_normal_(weight, std=math.sqrt(1.0 / fan_in) / 0.87962566103423978, bound=2.0)


class BenchmarkingViT(nn.Module):
    """Windowed/global ViT on a fixed `img_size` square; returns res2..res5, all of `embed_dim` channels.

    Batches must be padded to exactly `fixed_input_size` (= img_size), which the detector reads.
    """

    size_divisibility = 32

    def __init__(self, cfg: BenchmarkingViTConfig):
        super().__init__()
        grid = cfg.img_size // cfg.patch_size
        if cfg.img_size % cfg.patch_size or grid % cfg.window_size:
            raise ValueError(
                f"BenchmarkingViT needs img_size ({cfg.img_size}) divisible by patch_size ({cfg.patch_size}) "
                f"and the {grid}x{grid} token grid divisible by window_size ({cfg.window_size})"
            )
        if cfg.depth % 4:
            raise ValueError(f"BenchmarkingViT runs its blocks in 4 equal groups; depth {cfg.depth} is not")
        self.cfg = cfg
        self.grid = grid
        self.fixed_input_size = cfg.img_size
        self.patch_embed = PatchEmbed(cfg.patch_size, cfg.embed_dim)
        # sin-cos initialised but trained, as in the official code (a fresh nn.Parameter is trainable)
        self.pos_embed = nn.Parameter(sincos_pos_embed(cfg.embed_dim, grid, grid, rows_first=True)[None])
        rates = [cfg.drop_path_rate * i / max(cfg.depth - 1, 1) for i in range(cfg.depth)]
        self.blocks = nn.ModuleList(
            ViTBlock(cfg.embed_dim, cfg.num_heads, cfg.mlp_ratio, rate, norm_eps=1e-6) for rate in rates
        )
        dim = cfg.embed_dim
        self.ms_adaptor = nn.ModuleList(
            [
                nn.Sequential(
                    nn.ConvTranspose2d(dim, dim, 2, 2),
                    nn.GroupNorm(32, dim),
                    nn.GELU(),
                    nn.ConvTranspose2d(dim, dim, 2, 2),
                ),
                nn.ConvTranspose2d(dim, dim, 2, 2),
                nn.Identity(),
                nn.MaxPool2d(2),
            ]
        )
        self.windowed_rel_pos_bias = RelativePositionBias((cfg.window_size, cfg.window_size), cfg.num_heads)
        self.global_rel_pos_bias = RelativePositionBias((grid, grid), cfg.num_heads)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                trunc_normal_(module.weight, std=0.02, bound=0.02)  # the official cut at +-1 std
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm | nn.GroupNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
                lecun_normal_(module.weight)
                nn.init.zeros_(module.bias)
        # deeper residual branches start smaller (BEiT's rescale by sqrt(2 * layer))
        for layer, block in enumerate(self.blocks, start=1):
            block.attn.proj.weight.data.div_(math.sqrt(2.0 * layer))
            block.mlp.fc2.weight.data.div_(math.sqrt(2.0 * layer))

    def output_shape(self) -> dict[str, tuple[int, int]]:
        """{level: (channels, stride)}."""
        return {name: (self.cfg.embed_dim, 2 ** (i + 2)) for i, name in enumerate(LEVELS)}

    def _block(self, block: nn.Module, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        if self.cfg.use_checkpoint and self.training and x.requires_grad:
            return checkpoint(block, x, bias, use_reentrant=False)
        return block(x, bias)

    def forward(
        self, images: torch.Tensor, image_sizes: list[tuple[int, int]] | None = None
    ) -> dict[str, torch.Tensor]:
        """`images` [B, 3, img_size, img_size]; `image_sizes` only keeps the backbones' common signature."""
        size = self.cfg.img_size
        if tuple(images.shape[-2:]) != (size, size):
            raise ValueError(
                f"BenchmarkingViT takes {size}x{size} inputs, got {tuple(images.shape[-2:])}; "
                "pad batches to that size (model.backbone.benchmarking_vit.img_size)"
            )
        batch, grid, win = images.shape[0], self.grid, self.cfg.window_size
        x = self.patch_embed(images).flatten(2).transpose(1, 2) + self.pos_embed  # [B, N, D]
        dim = x.shape[-1]
        per_group = len(self.blocks) // 4
        outputs = {}
        for group, (name, adaptor) in enumerate(zip(LEVELS, self.ms_adaptor)):
            blocks = self.blocks[group * per_group : (group + 1) * per_group]
            x = x.view(batch, grid // win, win, grid // win, win, dim).permute(0, 1, 3, 2, 4, 5)
            x = x.reshape(-1, win * win, dim)  # [B * windows, win*win, D]
            window_bias = self.windowed_rel_pos_bias()
            for block in blocks[:-1]:
                x = self._block(block, x, window_bias)
            x = x.view(batch, grid // win, grid // win, win, win, dim).permute(0, 1, 3, 2, 4, 5)
            x = x.reshape(batch, grid * grid, dim)  # [B, N, D], row-major again
            x = self._block(blocks[-1], x, self.global_rel_pos_bias())
            outputs[name] = adaptor(x.transpose(1, 2).reshape(batch, dim, grid, grid))
        return outputs
