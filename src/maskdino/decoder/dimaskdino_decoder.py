"""DI-MaskDINO's decoder head: Mask DINO's head with the De-Imbalance module between query selection and
the decoder, and Balance-Aware Tokens Optimization before the second decoder layer (NeurIPS 2024)."""

from __future__ import annotations

import torch

from maskdino.config import DecoderConfig
from maskdino.decoder.balance_aware import BalanceAwareTokens
from maskdino.decoder.di_module import ObjectLevelDetection
from maskdino.decoder.maskdino_decoder import MaskDINODecoder
from maskdino.decoder.query_selection import gather_queries, select_top_queries
from maskdino.layers.box_ops import inverse_sigmoid
from maskdino.outputs import Prediction
from maskdino.pixel_decoder import MultiScaleFeatures

# BATO runs before this decoder layer, i.e. on the output of the first one
BATO_LAYER = 1


class DIMaskDINODecoder(MaskDINODecoder):
    """Adds `oldm` (token interaction on the first selection) and `bato` to Mask DINO's head.

    Queries: the top `first_selected_queries` encoder tokens (interm outputs, mask-enhanced boxes) ->
    `oldm` layers -> the top `num_queries` by the class score of the last one, which become the decoder's
    content (the raw layer output) and anchors (its refined boxes), both with their graph. The oldm
    predictions of every layer are returned as `extra["oldm_outputs"]` (class and box only).
    """

    def __init__(self, cfg: DecoderConfig, num_classes: int, mask_dim: int, num_levels: int):
        super().__init__(cfg, num_classes, mask_dim, num_levels)
        if not cfg.two_stage or cfg.learn_tgt:
            raise ValueError(
                "DI-MaskDINO selects its queries from encoder tokens: needs two_stage and no learn_tgt"
            )
        if cfg.num_layers <= BATO_LAYER:
            raise ValueError(f"DI-MaskDINO needs more than {BATO_LAYER} decoder layers, got {cfg.num_layers}")
        if not cfg.num_guiding_tokens <= cfg.num_queries <= cfg.first_selected_queries:
            raise ValueError(
                "DI-MaskDINO needs num_guiding_tokens <= num_queries <= first_selected_queries, got "
                f"{cfg.num_guiding_tokens}, {cfg.num_queries}, {cfg.first_selected_queries}"
            )
        if mask_dim != cfg.hidden_dim:
            raise ValueError(
                f"BATO adds memory to the mask features: mask_dim {mask_dim} != hidden_dim {cfg.hidden_dim}"
            )
        dim = cfg.hidden_dim
        self.oldm = ObjectLevelDetection(cfg.ti_layers, dim, cfg.dim_feedforward, cfg.dropout, cfg.num_heads)
        self.bato = BalanceAwareTokens(
            dim, cfg.dim_feedforward, cfg.dropout, cfg.num_heads, cfg.num_guiding_tokens
        )

    def initial_queries(
        self, features: MultiScaleFeatures
    ) -> tuple[torch.Tensor, torch.Tensor, Prediction, dict[str, list[Prediction]]]:
        """Residual double selection: (content `[B, Q, C]`, anchor logits `[B, Q, 4]`, interm, oldm outputs)."""
        tokens, anchors, interm = self.select_queries(features, self.cfg.first_selected_queries)
        tokens, normed, reported, boxes = self.oldm(tokens, anchors)
        oldm_outputs = [
            Prediction(self.predict(out, features.mask_features, with_masks=False)[0], box, None)
            for out, box in zip(normed, reported)
        ]
        # scored on the oldm-normalised output without the heads' extra norm (matches the official top-k)
        index = select_top_queries(self.class_embed(normed[-1]), self.num_queries)
        # neither is detached (as the official gradients show): the decoder's losses also train oldm
        content = gather_queries(tokens, index)
        anchors = inverse_sigmoid(gather_queries(boxes, index))
        return content, anchors, interm, {"oldm_outputs": oldm_outputs}

    def run_decoder(
        self,
        content: torch.Tensor,
        anchors: torch.Tensor,
        features: MultiScaleFeatures,
        attn_mask: torch.Tensor | None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """The decoder with BATO before layer `BATO_LAYER`: later layers cross-attend to the updated memory
        and their outputs predict masks from the updated mask features."""
        boxes = anchors.sigmoid()
        references, outputs, mask_features = [boxes], [], []
        memory, layer_mask_features = features.memory, features.mask_features
        out = content
        for index in range(len(self.decoder.layers)):
            if index == BATO_LAYER:
                matching = slice(out.shape[1] - self.num_queries, None)  # denoising queries come first
                memory, layer_mask_features = self.bato(
                    out[:, matching],
                    self.decoder.query_pos(boxes)[:, matching],
                    memory,
                    features.spatial_shapes,
                    layer_mask_features,
                    self.class_embed,
                    self.mask_embed,
                )
            out, refined = self.decoder.layer_step(
                index, out, boxes, memory, features.spatial_shapes, self.bbox_embed, attn_mask
            )
            boxes = refined.detach()
            references.append(refined)
            outputs.append(self.norm(out))
            mask_features.append(layer_mask_features)
        return outputs, references, mask_features
