"""The stack of decoder layers with layer-by-layer anchor-box refinement (DAB/DINO style)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from maskdino.decoder.decoder_layer import DecoderLayer
from maskdino.layers.box_ops import inverse_sigmoid
from maskdino.layers.init import cloned_layers, xavier_init_transformer
from maskdino.layers.mlp import MLP
from maskdino.layers.ms_deform_attn import SpatialShapes
from maskdino.layers.position_encoding import sine_box_embedding


class TransformerDecoder(nn.Module):
    """Runs the layers; before each, the query position is an MLP of the sine embedding of its box.

    After each layer the box is refined: box' = sigmoid(box_head(out) + logit(box)), detached before it
    steers the next layer. `box_head` and `norm` are set by the owner (they are shared with its heads).
    The layers are copies of one layer and, with `ref_point_head`, initialised as the official decoder
    (`xavier_init_transformer`).
    """

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
        layer = DecoderLayer(d_model, dim_feedforward, dropout, n_levels, n_heads, n_points)
        self.layers = cloned_layers(layer, num_layers)
        self.ref_point_head = MLP(2 * d_model, d_model, d_model, 2)
        self.d_model = d_model
        self.use_checkpoint = use_checkpoint
        xavier_init_transformer(self)

    def forward(
        self,
        tgt: torch.Tensor,
        reference_logits: torch.Tensor,
        memory: torch.Tensor,
        spatial_shapes: SpatialShapes,
        box_head: nn.Module,
        norm: nn.Module,
        self_attn_mask: torch.Tensor | None = None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """tgt `[B, Q, C]`, reference_logits `[B, Q, 4]`, memory `[B, S, C]`.

        Returns (normalised outputs of each layer, boxes in [0, 1]: the initial ones then after each layer).
        """
        boxes = reference_logits.sigmoid()
        references = [boxes]
        outputs = []
        out = tgt
        for index in range(len(self.layers)):
            out, refined = self.layer_step(
                index, out, boxes, memory, spatial_shapes, box_head, self_attn_mask
            )
            boxes = refined.detach()
            references.append(refined)
            outputs.append(norm(out))
        return outputs, references

    def query_pos(self, boxes: torch.Tensor) -> torch.Tensor:
        """Positional query `[B, Q, C]` of boxes `[B, Q, 4]` in [0, 1]."""
        return self.ref_point_head(sine_box_embedding(boxes, self.d_model // 2))

    def layer_step(
        self,
        index: int,
        out: torch.Tensor,
        boxes: torch.Tensor,
        memory: torch.Tensor,
        spatial_shapes: SpatialShapes,
        box_head: nn.Module,
        self_attn_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer `index` on queries `out` `[B, Q, C]` anchored at `boxes` `[B, Q, 4]` (detached, in [0, 1]).

        Returns (the raw layer output, its refined boxes in [0, 1]).
        """
        layer = self.layers[index]
        query_pos = self.query_pos(boxes)
        reference_boxes = boxes[:, :, None].expand(-1, -1, len(spatial_shapes), -1)  # [B, Q, L, 4]
        if self.use_checkpoint and self.training:
            out = checkpoint(
                layer,
                out,
                query_pos,
                reference_boxes,
                memory,
                spatial_shapes,
                self_attn_mask,
                use_reentrant=False,
            )
        else:
            out = layer(out, query_pos, reference_boxes, memory, spatial_shapes, self_attn_mask)
        return out, (box_head(out) + inverse_sigmoid(boxes)).sigmoid()
