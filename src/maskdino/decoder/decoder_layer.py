"""One DINO-style decoder layer: query self-attention, deformable cross-attention to the encoder memory
around each query's anchor box, and an FFN, each followed by residual + LayerNorm (post-norm)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from maskdino.layers.ms_deform_attn import MSDeformAttn, SpatialShapes


class DecoderLayer(nn.Module):
    def __init__(
        self, d_model: int, dim_feedforward: int, dropout: float, n_levels: int, n_heads: int, n_points: int
    ):
        super().__init__()
        self.cross_attn = MSDeformAttn(d_model, n_levels, n_heads, n_points)
        self.norm1 = nn.LayerNorm(d_model)
        self.self_attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        tgt: torch.Tensor,
        query_pos: torch.Tensor,
        reference_boxes: torch.Tensor,
        memory: torch.Tensor,
        spatial_shapes: SpatialShapes,
        self_attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """tgt, query_pos: `[B, Q, C]`; reference_boxes: `[B, Q, L, 4]` (cx, cy, w, h); memory: `[B, S, C]`.

        self_attn_mask: bool `[Q, Q]`, True where attention is blocked (denoising groups).
        """
        q = k = tgt + query_pos
        attended = self.self_attn(q, k, tgt, attn_mask=self_attn_mask)[0]
        tgt = self.norm2(tgt + self.dropout(attended))
        sampled = self.cross_attn(tgt + query_pos, reference_boxes, memory, spatial_shapes)
        tgt = self.norm1(tgt + self.dropout(sampled))
        ffn = self.linear2(self.dropout(F.relu(self.linear1(tgt), inplace=True)))
        return self.norm3(tgt + self.dropout(ffn))
