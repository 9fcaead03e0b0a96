"""DI-MaskDINO's De-Imbalance (DI) module: the token interaction between its two query selections.

Residual double selection (the selections live in `dimaskdino_decoder.py`): the first selection keeps
more encoder tokens than the decoder has queries (600 for 300) with mask-enhanced boxes; the
object-level detection module (`oldm`) here lets them interact (self-attention + FFN per layer) and
refines their boxes layer by layer; the second selection keeps the best of them as the decoder's
queries. This strengthens detection before the first decoder layer, where it lags behind segmentation.

Established against the official outputs and gradients (its decoder file is not public): box_{l+1} =
sigmoid(bbox_embed(out_l) + logit(box_l)) as in the decoder, but the box each layer *reports* (in
`oldm_outputs`) adds a second delta on top: sigmoid(bbox_embed(norm(out_l)) + logit(box_{l+1})). The
boxes are detached between layers, but the last refined boxes reach the decoder as its anchors with
their graph, so the decoder's box losses also train the oldm box MLP and layers.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from maskdino.layers.box_ops import inverse_sigmoid
from maskdino.layers.init import cloned_layers
from maskdino.layers.mlp import MLP
from maskdino.layers.position_encoding import sine_box_embedding


class TokenInteractionLayer(nn.Module):
    """Self-attention among the selected tokens then an FFN, each followed by residual + LayerNorm."""

    def __init__(self, d_model: int, dim_feedforward: int, dropout: float, n_heads: int):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, tgt: torch.Tensor, query_pos: torch.Tensor) -> torch.Tensor:
        """tgt, query_pos: `[B, Q, C]`; queries and keys carry the position, values do not."""
        q = k = tgt + query_pos
        tgt = self.norm1(tgt + self.dropout(self.self_attn(q, k, tgt)[0]))
        ffn = self.linear2(self.dropout(F.relu(self.linear1(tgt), inplace=True)))
        return self.norm2(tgt + self.dropout(ffn))


class ObjectLevelDetection(nn.Module):
    """The token-interaction layers with their own query-position head, output norm and box MLP (one MLP
    shared by every layer, last layer zero-initialised; the official model also lists it under
    `_oldm_bbox_embed`, `oldm_bbox_embed.{i}` and `oldm.bbox_embed.{i}`).

    Initialised as the official module: copies of one layer with PyTorch's default inits (no xavier
    pass), so every layer starts with the same values.
    """

    def __init__(self, num_layers: int, d_model: int, dim_feedforward: int, dropout: float, n_heads: int):
        super().__init__()
        self.layers = cloned_layers(
            TokenInteractionLayer(d_model, dim_feedforward, dropout, n_heads), num_layers
        )
        self.ref_point_head = MLP(2 * d_model, d_model, d_model, 2)
        self.norm = nn.LayerNorm(d_model)
        self.bbox_embed = MLP(d_model, d_model, 4, 3)
        nn.init.constant_(self.bbox_embed.layers[-1].weight, 0.0)
        nn.init.constant_(self.bbox_embed.layers[-1].bias, 0.0)
        self.d_model = d_model

    def forward(
        self, tokens: torch.Tensor, reference_logits: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """tokens `[B, K, C]` with anchor logits `[B, K, 4]`.

        Returns (the last layer's raw output, each layer's normalised output, each layer's reported boxes,
        the boxes refined by the last layer, not detached); boxes are `[B, K, 4]` (cx, cy, w, h) in [0, 1].
        """
        boxes = reference_logits.sigmoid()
        out = tokens
        normed, reported = [], []
        for layer in self.layers:
            query_pos = self.ref_point_head(sine_box_embedding(boxes, self.d_model // 2))
            out = layer(out, query_pos)
            refined = (self.bbox_embed(out) + inverse_sigmoid(boxes)).sigmoid()
            normed.append(self.norm(out))
            # official quirk: the reported box refines the already refined box a second time
            reported.append((self.bbox_embed(normed[-1]) + inverse_sigmoid(refined)).sigmoid())
            boxes = refined.detach()
        return out, normed, reported, refined
