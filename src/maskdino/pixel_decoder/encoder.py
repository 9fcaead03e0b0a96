"""The multi-scale deformable Transformer encoder (post-norm layers of deformable self-attention + FFN)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from maskdino.layers.init import cloned_layers, xavier_init_transformer
from maskdino.layers.ms_deform_attn import MSDeformAttn, SpatialShapes


class DeformableEncoderLayer(nn.Module):
    """x = LN(x + DeformAttn(x + pos)); x = LN(x + FFN(x))."""

    def __init__(
        self, d_model: int, dim_feedforward: int, dropout: float, n_levels: int, n_heads: int, n_points: int
    ):
        super().__init__()
        self.self_attn = MSDeformAttn(d_model, n_levels, n_heads, n_points)
        self.norm1 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        src: torch.Tensor,
        pos: torch.Tensor,
        reference_points: torch.Tensor,
        spatial_shapes: SpatialShapes,
    ) -> torch.Tensor:
        attended = self.self_attn(src + pos, reference_points, src, spatial_shapes)
        src = self.norm1(src + self.dropout(attended))
        ffn = self.linear2(self.dropout(F.relu(self.linear1(src), inplace=True)))
        return self.norm2(src + self.dropout(ffn))


def encoder_reference_points(spatial_shapes: SpatialShapes, batch: int, device: torch.device) -> torch.Tensor:
    """Pixel centres (x, y) normalised per level, repeated for every level: `[B, S, L, 2]`."""
    points = []
    for h, w in spatial_shapes:
        ys = (torch.arange(h, dtype=torch.float32, device=device) + 0.5) / h
        xs = (torch.arange(w, dtype=torch.float32, device=device) + 0.5) / w
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack((grid_x.reshape(-1), grid_y.reshape(-1)), -1))
    ref = torch.cat(points, 0)  # [S, 2]
    return ref[None, :, None, :].expand(batch, -1, len(spatial_shapes), -1)


class DeformableEncoder(nn.Module):
    """`num_layers` copies of one encoder layer, initialised as the official encoder
    (`xavier_init_transformer`; the layers start with equal biases)."""

    def __init__(
        self,
        num_layers: int,
        d_model: int,
        dim_feedforward: int,
        dropout: float,
        n_levels: int,
        n_heads: int,
        n_points: int,
        use_checkpoint: bool = False,
    ):
        super().__init__()
        layer = DeformableEncoderLayer(d_model, dim_feedforward, dropout, n_levels, n_heads, n_points)
        self.layers = cloned_layers(layer, num_layers)
        self.use_checkpoint = use_checkpoint
        xavier_init_transformer(self)

    def forward(self, src: torch.Tensor, pos: torch.Tensor, spatial_shapes: SpatialShapes) -> torch.Tensor:
        """src, pos: `[B, S, C]` flattened over levels in `spatial_shapes` order."""
        reference_points = encoder_reference_points(spatial_shapes, src.shape[0], src.device)
        for layer in self.layers:
            if self.use_checkpoint and self.training:
                src = checkpoint(layer, src, pos, reference_points, spatial_shapes, use_reentrant=False)
            else:
                src = layer(src, pos, reference_points, spatial_shapes)
        return src
