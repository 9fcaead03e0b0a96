"""Pixel decoder: deformable encoder over multi-scale backbone features + a 1/4-resolution mask-feature map.

Backbone levels named in `encoder_in_features` are projected to `conv_dim` (1x1 conv + GN); extra coarser
levels come from stride-2 3x3 convs on the lowest-resolution input. After the encoder, the finest
encoder map is upsampled and added to a lateral projection of the stride-4 backbone feature, giving the
per-pixel embedding that query embeddings dot-product with to predict masks (paper Eq. 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from maskdino.config import PixelDecoderConfig
from maskdino.layers.conv import Conv2dNorm, c2_xavier_fill
from maskdino.layers.position_encoding import sine_position_map
from maskdino.pixel_decoder.encoder import DeformableEncoder


@dataclass
class MultiScaleFeatures:
    """What the Transformer decoder consumes.

    memory: `[B, S, C]` encoder output flattened over levels in `spatial_shapes` order (the order the
    official decoder uses: the encoder's level list reversed).
    spatial_shapes: (H, W) of each level of `memory`.
    mask_features: `[B, mask_dim, H/4, W/4]` per-pixel embedding.
    """

    memory: torch.Tensor
    spatial_shapes: list[tuple[int, int]]
    mask_features: torch.Tensor


class PixelDecoder(nn.Module):
    def __init__(self, cfg: PixelDecoderConfig, input_shape: dict[str, tuple[int, int]]):
        """input_shape: backbone feature name -> (channels, stride)."""
        super().__init__()
        missing = [f for f in cfg.in_features if f not in input_shape]
        if missing:
            raise ValueError(
                f"pixel decoder needs backbone features {missing}; the backbone gives {list(input_shape)}"
            )
        by_stride = sorted(cfg.in_features, key=lambda f: input_shape[f][1])
        self.in_features = by_stride  # fine -> coarse, e.g. res2..res5
        self.feature_order = cfg.feature_order
        if cfg.feature_order not in ("low2high", "high2low"):
            raise ValueError(f"feature_order must be 'low2high' or 'high2low', got {cfg.feature_order!r}")
        # Official ordering: low2high sorts encoder inputs coarse -> fine, high2low fine -> coarse; the
        # encoder then iterates that list reversed.
        descending = cfg.feature_order == "low2high"
        enc = sorted(cfg.encoder_in_features, key=lambda f: input_shape[f][1], reverse=descending)
        self.encoder_in_features = enc[::-1]  # the order levels enter the encoder
        enc_channels = [input_shape[f][0] for f in self.encoder_in_features]
        self.total_levels = cfg.total_num_feature_levels
        self.num_extra_levels = self.total_levels - len(enc)
        if self.num_extra_levels < 0:
            raise ValueError(
                f"total_num_feature_levels ({self.total_levels}) is smaller than the {len(enc)} encoder inputs"
            )
        # extra levels are computed from the input with the most channels (the lowest resolution)
        self.extra_source = enc[[input_shape[f][0] for f in enc].index(max(enc_channels))]
        dim = cfg.conv_dim
        projections = [
            nn.Sequential(nn.Conv2d(c, dim, kernel_size=1), nn.GroupNorm(32, dim)) for c in enc_channels
        ]
        in_channels = max(enc_channels)
        for _ in range(self.num_extra_levels):
            projections.append(
                nn.Sequential(
                    nn.Conv2d(in_channels, dim, kernel_size=3, stride=2, padding=1), nn.GroupNorm(32, dim)
                )
            )
            in_channels = dim
        self.input_proj = nn.ModuleList(projections)
        for proj in self.input_proj:
            nn.init.xavier_uniform_(proj[0].weight, gain=1)
            nn.init.constant_(proj[0].bias, 0)
        self.level_embed = nn.Parameter(torch.empty(self.total_levels, dim))
        nn.init.normal_(self.level_embed)
        self.encoder = DeformableEncoder(
            cfg.num_encoder_layers,
            dim,
            cfg.dim_feedforward,
            cfg.dropout,
            self.total_levels,
            cfg.num_heads,
            cfg.num_points,
            cfg.use_checkpoint,
        )
        min_stride = min(input_shape[f][1] for f in enc)
        self.num_fpn_levels = max(int(math.log2(min_stride) - math.log2(cfg.common_stride)), 1)
        for i, name in enumerate(self.in_features[: self.num_fpn_levels]):
            lateral = Conv2dNorm(
                input_shape[name][0], dim, kernel_size=1, bias=False, norm=nn.GroupNorm(32, dim)
            )
            output = Conv2dNorm(
                dim, dim, kernel_size=3, padding=1, bias=False, norm=nn.GroupNorm(32, dim), activation=F.relu
            )
            c2_xavier_fill(lateral)
            c2_xavier_fill(output)
            self.add_module(f"adapter_{i + 1}", lateral)
            self.add_module(f"layer_{i + 1}", output)
        self.mask_features = nn.Conv2d(dim, cfg.mask_dim, kernel_size=1)
        c2_xavier_fill(self.mask_features)
        self.mask_dim = cfg.mask_dim

    def forward(self, features: dict[str, torch.Tensor]) -> MultiScaleFeatures:
        batch = next(iter(features.values())).shape[0]
        srcs = [self.input_proj[i](features[f].float()) for i, f in enumerate(self.encoder_in_features)]
        extras: list[torch.Tensor] = []
        for i in range(self.num_extra_levels):
            source = features[self.extra_source].float() if i == 0 else extras[-1]
            extras.append(self.input_proj[len(srcs) + i](source))
        # low2high: [fine..coarse] + [extra coarse..coarsest]; high2low: [coarsest extra..] + [coarse..fine]
        levels = srcs + extras if self.feature_order == "low2high" else extras[::-1] + srcs
        # sizes stay symbolic under torch.export (no int()): one exported graph serves every input size
        spatial_shapes = [(x.shape[2], x.shape[3]) for x in levels]
        flat = torch.cat([x.flatten(2).transpose(1, 2) for x in levels], 1)  # [B, S, C]
        pos = torch.cat(
            [
                sine_position_map(batch, h, w, self.level_embed.shape[1] // 2, device=flat.device)
                .flatten(2)
                .transpose(1, 2)
                + self.level_embed[i].view(1, 1, -1)
                for i, (h, w) in enumerate(spatial_shapes)
            ],
            1,
        )
        memory = self.encoder(flat, pos, spatial_shapes)
        sizes = [h * w for h, w in spatial_shapes]
        maps = [
            m.transpose(1, 2).reshape(batch, -1, h, w)  # [B, C, H_l, W_l]
            for m, (h, w) in zip(memory.split(sizes, dim=1), spatial_shapes)
        ]
        outs = list(maps)
        for i, name in enumerate(self.in_features[: self.num_fpn_levels][::-1]):
            lateral = getattr(self, f"adapter_{self.num_fpn_levels - i}")
            output = getattr(self, f"layer_{self.num_fpn_levels - i}")
            x = lateral(features[name].float())
            # official: low2high fuses the first (finest) encoder map, high2low the last map so far
            base = outs[0] if self.feature_order == "low2high" else outs[-1]
            outs.append(
                output(x + F.interpolate(base, size=x.shape[-2:], mode="bilinear", align_corners=False))
            )
        mask_features = self.mask_features(outs[-1])
        # the decoder reads the encoder levels in reverse order
        decoder_levels = maps[: self.total_levels][::-1]
        decoder_shapes = spatial_shapes[: self.total_levels][::-1]
        decoder_memory = torch.cat([x.flatten(2).transpose(1, 2) for x in decoder_levels], 1)  # [B, S, C]
        return MultiScaleFeatures(decoder_memory, decoder_shapes, mask_features)
