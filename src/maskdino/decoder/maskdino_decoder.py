"""Mask DINO's Transformer decoder head: query selection, mask-enhanced anchors, denoising queries, the
decoder stack and the class / box / mask heads shared by every prediction."""

from __future__ import annotations

import torch
from torch import nn

from maskdino.config import DecoderConfig
from maskdino.decoder.decoder import TransformerDecoder
from maskdino.decoder.denoising_queries import split_denoising_outputs
from maskdino.decoder.mask_enhanced_boxes import BOX_INIT_TYPES, mask_enhanced_boxes
from maskdino.decoder.query_selection import encoder_output_proposals, gather_queries, select_top_queries
from maskdino.layers.box_ops import inverse_sigmoid
from maskdino.layers.mlp import MLP
from maskdino.outputs import MaskDINOOutput, Prediction
from maskdino.pixel_decoder import MultiScaleFeatures


class MaskDINODecoder(nn.Module):
    """Parameter names follow the official predictor (`class_embed`, `mask_embed`, `enc_output`, ...).

    One box MLP (`bbox_embed`) serves the encoder proposals and every decoder layer, and one LayerNorm
    (`norm`) normalises every layer output, as in the official code (which registers them under several
    aliases).
    """

    def __init__(self, cfg: DecoderConfig, num_classes: int, mask_dim: int, num_levels: int):
        super().__init__()
        if cfg.initialize_box_type not in BOX_INIT_TYPES:
            raise ValueError(
                f"initialize_box_type must be one of {BOX_INIT_TYPES}, got {cfg.initialize_box_type!r}"
            )
        if cfg.initialize_box_type != "no" and not (cfg.two_stage and cfg.initial_pred):
            raise ValueError("mask-enhanced boxes need two_stage=True and initial_pred=True")
        self.cfg = cfg
        self.num_classes = num_classes
        self.num_queries = cfg.num_queries
        dim = cfg.hidden_dim
        if not cfg.two_stage or cfg.learn_tgt:
            self.query_feat = nn.Embedding(cfg.num_queries, dim)
        if not cfg.two_stage and cfg.initialize_box_type == "no":
            self.query_embed = nn.Embedding(cfg.num_queries, 4)
        if cfg.two_stage:
            self.enc_output = nn.Linear(dim, dim)
            self.enc_output_norm = nn.LayerNorm(dim)
        self.class_embed = nn.Linear(dim, num_classes + 1 if cfg.semantic_ce_loss else num_classes)
        self.label_enc = nn.Embedding(num_classes, dim)
        self.mask_embed = MLP(dim, dim, mask_dim, 3)
        self.norm = nn.LayerNorm(dim)
        self.decoder = TransformerDecoder(
            cfg.num_layers,
            dim,
            cfg.dim_feedforward,
            cfg.dropout,
            num_levels,
            cfg.num_heads,
            cfg.num_points,
            cfg.use_checkpoint,
        )
        self.bbox_embed = MLP(dim, dim, 4, 3)
        nn.init.constant_(self.bbox_embed.layers[-1].weight, 0.0)
        nn.init.constant_(self.bbox_embed.layers[-1].bias, 0.0)

    def predict(self, queries: torch.Tensor, mask_features: torch.Tensor, with_masks: bool = True):
        """Class logits and (optionally) mask logits for queries `[B, Q, C]` (normalised again first)."""
        normed = self.norm(queries)
        logits = self.class_embed(normed)
        masks = None
        if with_masks:
            masks = torch.einsum("bqc,bchw->bqhw", self.mask_embed(normed), mask_features)  # [B, Q, H/4, W/4]
        return logits, masks

    def select_queries(
        self, features: MultiScaleFeatures, num_queries: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, Prediction]:
        """Two-stage initial queries: (content `[B, Q, C]`, anchor logits `[B, Q, 4]`, encoder proposals)
        for the `num_queries` best tokens (default: the decoder's query count)."""
        memory, proposals = encoder_output_proposals(features.memory, features.spatial_shapes)
        memory = self.enc_output_norm(self.enc_output(memory))
        token_logits = self.class_embed(memory)
        token_boxes = self.bbox_embed(memory) + proposals  # logits of (cx, cy, w, h)
        index = select_top_queries(token_logits, num_queries or self.num_queries)
        anchors = gather_queries(token_boxes, index)
        content = gather_queries(memory, index)
        logits, masks = self.predict(content, features.mask_features)
        interm = Prediction(logits, anchors.sigmoid(), masks)
        anchors = anchors.detach()
        if self.cfg.initialize_box_type != "no":
            anchors = mask_enhanced_boxes(masks, self.cfg.initialize_box_type)
        content = content.detach()
        if self.cfg.learn_tgt:
            content = self.query_feat.weight[None].expand(memory.shape[0], -1, -1)
        return content, anchors, interm

    def initial_queries(
        self, features: MultiScaleFeatures
    ) -> tuple[torch.Tensor, torch.Tensor, Prediction | None, dict[str, list[Prediction]]]:
        """(content `[B, Q, C]`, anchor logits `[B, Q, 4]`, encoder proposals, extra named predictions)."""
        if self.cfg.two_stage:
            content, anchors, interm = self.select_queries(features)
            return content, anchors, interm, {}
        batch = features.memory.shape[0]
        content = self.query_feat.weight[None].expand(batch, -1, -1)
        anchors = self.query_embed.weight[None].expand(batch, -1, -1)
        return content, anchors, None, {}

    def run_decoder(
        self,
        content: torch.Tensor,
        anchors: torch.Tensor,
        features: MultiScaleFeatures,
        attn_mask: torch.Tensor | None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """(normalised layer outputs, boxes: initial then after each layer, mask features of each output)."""
        outputs, references = self.decoder(
            content, anchors, features.memory, features.spatial_shapes, self.bbox_embed, self.norm, attn_mask
        )
        return outputs, references, [features.mask_features] * len(outputs)

    def forward(self, features: MultiScaleFeatures, denoising=None) -> tuple[MaskDINOOutput, dict | None]:
        """Run the head. `denoising` is (content `[B, P, C]`, box logits `[B, P, 4]`, attention mask) of
        `P` noised ground-truth queries prepended to the matching queries in training.

        Returns the matching queries' outputs and, with denoising, the denoising queries' outputs in the
        criterion's dict layout (None otherwise).
        """
        content, anchors, interm, extra = self.initial_queries(features)
        attn_mask = None
        num_dn = 0
        if denoising is not None:
            dn_content, dn_anchors, attn_mask = denoising
            num_dn = dn_content.shape[1]
            content = torch.cat([dn_content, content], 1)
            anchors = torch.cat([dn_anchors, anchors], 1)
        masks_everywhere = self.training
        predictions = []
        if self.cfg.initial_pred:
            logits, masks = self.predict(content, features.mask_features, with_masks=masks_everywhere)
            predictions.append((logits, masks))
        outputs, references, mask_features = self.run_decoder(content, anchors, features, attn_mask)
        for i, (out, layer_mask_features) in enumerate(zip(outputs, mask_features)):
            last = i == len(outputs) - 1
            predictions.append(self.predict(out, layer_mask_features, with_masks=masks_everywhere or last))
        # boxes: the initial anchors (with initial_pred), then each layer's refinement of its input box
        boxes = [anchors.sigmoid()] if self.cfg.initial_pred else []
        for out, reference in zip(outputs, references[:-1]):
            boxes.append((self.bbox_embed(out) + inverse_sigmoid(reference)).sigmoid())
        dn_outputs = None
        if num_dn:
            (logits, boxes, masks), dn_outputs = split_denoising_outputs(
                [p[0] for p in predictions], boxes, [p[1] for p in predictions], num_dn
            )
            predictions = list(zip(logits, masks))
        preds = [Prediction(logits, box, masks) for (logits, masks), box in zip(predictions, boxes)]
        if self.training and denoising is None:
            # keep label_enc in the graph so distributed training sees a gradient for every parameter
            preds[-1].logits = preds[-1].logits + 0.0 * self.label_enc.weight.sum()
        return MaskDINOOutput(final=preds[-1], aux=preds[:-1], interm=interm, extra=extra), dn_outputs
