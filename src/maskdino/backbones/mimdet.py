"""MIMDet's ConvNet-ViT hybrid backbone (hustvl/MIMDet `models/mimdet.py`).

A randomly initialised conv stem (four stride-2 3x3 convs) replaces the ViT patchify layer; its stride-4
and stride-8 maps are the high-resolution pyramid levels. The stride-16 map is tokenised and a vanilla
(MAE-pretrained) ViT sees only a random sample of those tokens in training. A small transformer
"decoder" (MAE's decoder blocks) puts every token back in place, filling the ones the ViT did not see
with projected conv features, and gives the stride-16 level; max-pooling it gives stride 32.

Outputs are named res2..res5 (strides 4, 8, 16, 32) so the backbone feeds either MIMDet's FPN or Mask
DINO's pixel decoder. Parameter names follow the official ones after these moves:
`encoder.patch_embed.proj.` -> `stem.stages.`, `encoder.` -> ``, `decoder.decoder_` -> `decoder.`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from maskdino.config import MIMDetBackboneConfig

LEVELS = ("res2", "res3", "res4", "res5")
DROPPED_TOKEN_FILLS = ("conv", "mask_token")


def sincos_pos_embed(dim: int, height: int, width: int, rows_first: bool = False) -> torch.Tensor:
    """Fixed 2-D sin-cos embedding of a row-major grid, `[height * width, dim]`.

    Each axis gets dim/2 channels, (sin, cos) of position x 1/10000^(i / (dim/4)). MAE puts the
    column half first; the Benchmarking ViT the row half (`rows_first`).
    """
    if dim % 4 != 0:
        raise ValueError(f"sin-cos position embedding needs a dim divisible by 4, got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float32) / (dim // 4))
    rows = torch.arange(height, dtype=torch.float32).repeat_interleave(width)
    cols = torch.arange(width, dtype=torch.float32).repeat(height)

    def axis(pos: torch.Tensor) -> torch.Tensor:
        angles = pos[:, None] * omega[None, :]  # [N, dim/4]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    halves = (axis(rows), axis(cols)) if rows_first else (axis(cols), axis(rows))
    return torch.cat(halves, dim=1)


def resize_pos_embed(table: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubically resample a square `[1, G*G, C]` grid table to `[1, h*w, C]` (official online resize)."""
    grid = int(round(table.shape[1] ** 0.5))
    if (grid, grid) == tuple(size):
        return table
    channels = table.shape[-1]
    table = table.reshape(1, grid, grid, channels).permute(0, 3, 1, 2)  # [1, C, G, G]
    table = F.interpolate(table, size=size, mode="bicubic", align_corners=False)
    return table.flatten(2).transpose(1, 2)  # [1, h*w, C]


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: drop the residual branch of whole samples with probability p, rescale the rest."""
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask / keep


# queries per attention call when an additive bias is given: with a bias, attention materialises the
# [B, heads, queries, N] scores (twice, on the CPU), 1.6 GB for the Benchmarking ViT's 4096-token global
# blocks at once; rows are independent, so chunks give the same result in a quarter of the memory
BIASED_QUERY_CHUNK = 1024


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection and an optional additive bias per head."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [B, heads, N, C/heads]
        if bias is None or n <= BIASED_QUERY_CHUNK:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        else:  # bias [heads, N, N]
            out = torch.cat(
                [
                    F.scaled_dot_product_attention(
                        q[:, :, i : i + BIASED_QUERY_CHUNK],
                        k,
                        v,
                        attn_mask=bias[:, i : i + BIASED_QUERY_CHUNK],
                    )
                    for i in range(0, n, BIASED_QUERY_CHUNK)
                ],
                dim=2,
            )
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class ViTBlock(nn.Module):
    """Pre-norm transformer block with timm's names (`norm1`, `attn.qkv`, `attn.proj`, `norm2`, `mlp.fc1`)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop_path: float, norm_eps: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        x = x + drop_path(self.attn(self.norm1(x), bias), self.drop_path, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path, self.training)


def init_vit_weights(module: nn.Module) -> None:
    """MAE's init: xavier-uniform linear weights, zero biases, unit LayerNorms (convs keep PyTorch's)."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def run_blocks(blocks: nn.ModuleList, x: torch.Tensor, use_checkpoint: bool) -> torch.Tensor:
    for block in blocks:
        if use_checkpoint and x.requires_grad:
            x = checkpoint(block, x, use_reentrant=False)
        else:
            x = block(x)
    return x


class ConvStem(nn.Module):
    """Four stride-2 `conv3x3 -> GroupNorm(1) -> GELU` stages, the last then a 1x1 conv to the ViT width.

    Returns the stride-4, stride-8 and stride-16 maps (the stride-2 map is internal).
    """

    def __init__(self, dims: tuple[int, ...], embed_dim: int):
        super().__init__()
        if len(dims) != 3:
            raise ValueError(
                f"conv_stem_dims must list the widths of the first three stem stages, got {dims}; "
                "MIMDet uses (embed_dim/8, embed_dim/4, embed_dim/2), e.g. (96, 192, 384) for ViT-B"
            )
        widths = (3, *dims, embed_dim)
        stages = []
        for i in range(4):
            layers = [
                nn.Conv2d(widths[i], widths[i + 1], kernel_size=3, stride=2, padding=1, bias=False),
                nn.GroupNorm(1, widths[i + 1], eps=1e-6),
                nn.GELU(),
            ]
            if i == 3:
                layers.append(nn.Conv2d(embed_dim, embed_dim, kernel_size=1))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.stages[0](x)
        stride4 = self.stages[1](x)
        stride8 = self.stages[2](stride4)
        return stride4, stride8, self.stages[3](stride8)


def sample_token_indices(valid: torch.Tensor, ratio: float) -> torch.Tensor:
    """Indices `[B, K]` of a uniform random sample of K = int(N * ratio) tokens per image.

    `valid` `[B, N]` is False on tokens of the zero padding; those sort last, so they are kept only when
    fewer than K tokens are valid. K counts padding too and is shared by the batch, as in the official
    `random_masking` (which truncates with `int`, not rounds).
    """
    batch, num_tokens = valid.shape
    num_keep = max(1, int(num_tokens * ratio))
    noise = torch.rand(batch, num_tokens, device=valid.device).masked_fill(valid.logical_not(), 2.0)
    return noise.argsort(dim=1)[:, :num_keep]


class MIMDetDecoder(nn.Module):
    """Restores the token grid: ViT outputs at the sampled positions, a stand-in elsewhere; then blocks."""

    def __init__(self, cfg: MIMDetBackboneConfig, grid: int):
        super().__init__()
        if cfg.dropped_tokens not in DROPPED_TOKEN_FILLS:
            raise ValueError(
                f"model.backbone.mimdet.dropped_tokens must be one of {DROPPED_TOKEN_FILLS}, "
                f"got {cfg.dropped_tokens!r}"
            )
        dim = cfg.decoder_embed_dim
        self.dropped_tokens = cfg.dropped_tokens
        self.embed = nn.Linear(cfg.embed_dim, dim)
        if cfg.dropped_tokens == "conv":
            self.conv_feat_proj = nn.Linear(cfg.embed_dim, dim)
        else:
            self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        # fixed sin-cos table with a leading (unused) class-token row, kept as a frozen parameter like MAE's
        table = torch.cat([torch.zeros(1, dim), sincos_pos_embed(dim, grid, grid)])
        self.pos_embed = nn.Parameter(table[None], requires_grad=False)  # [1, 1 + G*G, C]
        self.blocks = nn.ModuleList(
            ViTBlock(dim, cfg.decoder_num_heads, cfg.decoder_mlp_ratio, drop_path=0.0, norm_eps=1e-5)
            for _ in range(cfg.decoder_depth)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(
        self,
        tokens: torch.Tensor,
        kept: torch.Tensor | None,
        conv_tokens: torch.Tensor,
        size: tuple[int, int],
        use_checkpoint: bool,
    ) -> torch.Tensor:
        x = self.embed(tokens)  # [B, K, C]
        batch, _, channels = x.shape
        if kept is not None:
            if self.dropped_tokens == "conv":
                full = self.conv_feat_proj(conv_tokens)  # [B, N, C]
            else:
                full = self.mask_token.expand(batch, conv_tokens.shape[1], channels)
            x = full.scatter(1, kept[:, :, None].expand(-1, -1, channels), x)  # [B, N, C]
        x = x + resize_pos_embed(self.pos_embed[:, 1:], size)
        x = self.norm(run_blocks(self.blocks, x, use_checkpoint))
        return x.transpose(1, 2).reshape(batch, channels, *size)  # [B, C, H/16, W/16]


class MIMDetBackbone(nn.Module):
    """Conv stem + token-sampled ViT + restoring decoder; `forward` returns res2..res5 (strides 4..32),
    restricted to `out_features`.

    The ViT sees `sample_ratio` of the stride-16 tokens in training and `eval_sample_ratio` (1.0: all)
    otherwise; both are plain attributes, so a caller may change them between calls.
    """

    size_divisibility = 32

    def __init__(self, cfg: MIMDetBackboneConfig, out_features: Sequence[str] = LEVELS):
        super().__init__()
        if not out_features or any(f not in LEVELS for f in out_features):
            raise ValueError(
                f"MIMDet out_features {tuple(out_features)} must be a non-empty subset of {LEVELS}"
            )
        self.out_features = tuple(f for f in LEVELS if f in out_features)
        if cfg.patch_size != 16:
            raise ValueError(f"MIMDet's four stride-2 stem stages give patch_size 16, got {cfg.patch_size}")
        for name in ("sample_ratio", "eval_sample_ratio"):
            if not 0.0 < getattr(cfg, name) <= 1.0:
                raise ValueError(f"model.backbone.mimdet.{name} must be in (0, 1], got {getattr(cfg, name)}")
        grid = cfg.pretrain_img_size // cfg.patch_size
        self.sample_ratio = cfg.sample_ratio
        self.eval_sample_ratio = cfg.eval_sample_ratio
        self.use_checkpoint = cfg.use_checkpoint
        self.stem = ConvStem(tuple(cfg.conv_stem_dims), cfg.embed_dim)
        table = torch.cat([torch.zeros(1, cfg.embed_dim), sincos_pos_embed(cfg.embed_dim, grid, grid)])
        self.pos_embed = nn.Parameter(table[None], requires_grad=False)  # [1, 1 + G*G, D]
        rates = [cfg.drop_path_rate * i / max(cfg.depth - 1, 1) for i in range(cfg.depth)]
        self.blocks = nn.ModuleList(
            ViTBlock(cfg.embed_dim, cfg.num_heads, cfg.mlp_ratio, rate, norm_eps=1e-5) for rate in rates
        )
        self.norm = nn.LayerNorm(cfg.embed_dim)
        self.decoder = MIMDetDecoder(cfg, grid)
        self.apply(init_vit_weights)
        shapes = {
            "res2": (cfg.conv_stem_dims[1], 4),
            "res3": (cfg.conv_stem_dims[2], 8),
            "res4": (cfg.decoder_embed_dim, 16),
            "res5": (cfg.decoder_embed_dim, 32),
        }
        self._shapes = {f: shapes[f] for f in self.out_features}

    def output_shape(self) -> dict[str, tuple[int, int]]:
        """{level: (channels, stride)} of `out_features`."""
        return dict(self._shapes)

    def forward(
        self, images: torch.Tensor, image_sizes: list[tuple[int, int]] | None = None
    ) -> dict[str, torch.Tensor]:
        """`images` [B, 3, H, W] (H, W multiples of 32); `image_sizes` are the unpadded (h, w), if padded."""
        res2, res3, stem_map = self.stem(images)
        batch, _, height, width = stem_map.shape
        conv_tokens = stem_map.flatten(2).transpose(1, 2)  # [B, N, D]
        tokens = conv_tokens + resize_pos_embed(self.pos_embed[:, 1:], (height, width))
        ratio = self.sample_ratio if self.training else self.eval_sample_ratio
        kept = None
        if ratio < 1.0:
            valid = self.valid_tokens(batch, (height, width), image_sizes, images.device)
            kept = sample_token_indices(valid, ratio)
            tokens = tokens.gather(1, kept[:, :, None].expand(-1, -1, tokens.shape[-1]))  # [B, K, D]
        use_checkpoint = self.use_checkpoint and self.training
        tokens = self.norm(run_blocks(self.blocks, tokens, use_checkpoint))
        res4 = self.decoder(tokens, kept, conv_tokens, (height, width), use_checkpoint)
        levels = {"res2": res2, "res3": res3, "res4": res4, "res5": F.max_pool2d(res4, 2)}
        return {f: levels[f] for f in self.out_features}

    @staticmethod
    def valid_tokens(
        batch: int, grid: tuple[int, int], image_sizes: list[tuple[int, int]] | None, device: torch.device
    ) -> torch.Tensor:
        """`[B, N]` bool, False for stride-16 tokens that lie entirely in the zero padding."""
        valid = torch.ones(batch, *grid, dtype=torch.bool, device=device)
        if image_sizes is not None:
            valid.zero_()
            for i, (h, w) in enumerate(image_sizes):
                valid[i, : -(-h // 16), : -(-w // 16)] = True
        return valid.flatten(1)
