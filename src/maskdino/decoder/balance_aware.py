"""DI-MaskDINO's Balance-Aware Tokens Optimization (BATO): after the first decoder layer, the queries
most confident about their class ("guiding tokens") update the encoder memory, and the updated finest
level refreshes the per-pixel mask features, so that later layers attend to, and segment with,
features tuned to the detected objects.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from maskdino.decoder.query_selection import gather_queries
from maskdino.layers.conv import Conv2dNorm, c2_xavier_fill
from maskdino.layers.init import xavier_init_transformer
from maskdino.layers.position_encoding import sine_position_map


class QueryGuidedUpdate(nn.Module):
    """Every memory token cross-attends to the guiding tokens, then an FFN; residual + LayerNorm after each.

    The official model builds it inside its decoder, so the decoder's xavier pass initialises it too.
    """

    def __init__(self, d_model: int, dim_feedforward: int, dropout: float, n_heads: int):
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        xavier_init_transformer(self)

    def forward(
        self, memory: torch.Tensor, memory_pos: torch.Tensor, guides: torch.Tensor, guide_pos: torch.Tensor
    ) -> torch.Tensor:
        """memory, memory_pos `[B, S, C]`; guides, guide_pos `[B, K, C]` (positions on queries and keys)."""
        attended = self.multihead_attn(memory + memory_pos, guides + guide_pos, guides)[0]
        memory = self.norm1(memory + self.dropout(attended))
        ffn = self.linear2(self.dropout(F.relu(self.linear1(memory), inplace=True)))
        return self.norm2(memory + self.dropout(ffn))


class BalanceAwareTokens(nn.Module):
    """Guiding tokens = the `num_guiding_tokens` queries with the highest best-class logit; they enter the
    update through their mask embeddings (keys / values) and query positions (key positions), while the
    memory carries sine positions of its own level."""

    def __init__(
        self, d_model: int, dim_feedforward: int, dropout: float, n_heads: int, num_guiding_tokens: int
    ):
        super().__init__()
        self.query_guide_feature_update = QueryGuidedUpdate(d_model, dim_feedforward, dropout, n_heads)
        self.mask_output_conv = Conv2dNorm(
            d_model,
            d_model,
            kernel_size=3,
            padding=1,
            bias=False,
            norm=nn.GroupNorm(32, d_model),
            activation=F.relu,
        )
        c2_xavier_fill(self.mask_output_conv)
        self.num_guiding_tokens = num_guiding_tokens

    def forward(
        self,
        queries: torch.Tensor,
        query_pos: torch.Tensor,
        memory: torch.Tensor,
        spatial_shapes: list[tuple[int, int]],
        mask_features: torch.Tensor,
        class_head: nn.Module,
        mask_head: nn.Module,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """queries: the raw (not normalised) layer output of the matching queries `[B, Q, C]`, query_pos
        their positions; memory `[B, S, C]` with levels in `spatial_shapes` order, the last the finest;
        mask_features `[B, C, H/4, W/4]`.

        Returns (updated memory `[B, S, C]`, updated mask features `[B, C, H/4, W/4]`).
        """
        batch, dim = memory.shape[0], memory.shape[2]
        scores = class_head(queries).max(-1)[0]  # [B, Q]
        index = torch.topk(scores, self.num_guiding_tokens, dim=1)[1]
        guides = mask_head(gather_queries(queries, index))  # [B, K, C]
        guide_pos = gather_queries(query_pos, index)
        memory_pos = torch.cat(
            [
                sine_position_map(batch, h, w, dim // 2, device=memory.device).flatten(2).transpose(1, 2)
                for h, w in spatial_shapes
            ],
            1,
        )  # [B, S, C]
        memory = self.query_guide_feature_update(memory, memory_pos, guides, guide_pos)
        h, w = spatial_shapes[-1]
        finest = memory[:, -h * w :].transpose(1, 2).reshape(batch, dim, h, w)
        upsampled = F.interpolate(finest, size=mask_features.shape[-2:], mode="bilinear", align_corners=False)
        return memory, self.mask_output_conv(mask_features + upsampled)
