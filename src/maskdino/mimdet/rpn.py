"""MIMDet's region proposal network: detectron2's RPN inference on torchvision's RPN training targets.

Proposals are made as detectron2's `RPN` + `find_top_rpn_proposals` make them: anchors from
`anchors.AnchorGenerator`, deltas decoded with weights (1, 1, 1, 1) and the log(1000/16) scale clamp,
the top `pre_nms_top_n` objectness logits of EACH level, boxes clipped to the image and empty ones
dropped, NMS within each level, then the best `post_nms_top_n` per image. The matching, sampling and
losses of training are torchvision's (see `detector.py` for how those differ from detectron2's).
"""

from __future__ import annotations

import torch
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.ops import batched_nms

from maskdino.config import MaskRCNNConfig
from maskdino.mimdet.anchors import AnchorGenerator
from maskdino.mimdet.boxes import BoxDecoder, clip_boxes, nonempty

# detectron2's RPN `min_box_size`: after clipping, a proposal needs a width and height above this
MIN_PROPOSAL_SIZE = 0.0


class RPN(RegionProposalNetwork):
    """`forward(features, image_sizes, targets)` -> (proposals `[K, 4]` per image, their objectness
    logits `[K]`, losses). Parameters are torchvision's `RPNHead` (`head.conv`, `head.cls_logits`,
    `head.bbox_pred`)."""

    def __init__(self, anchors: AnchorGenerator, fpn_channels: int, cfg: MaskRCNNConfig):
        super().__init__(
            anchors,
            RPNHead(fpn_channels, anchors.num_anchors, conv_depth=cfg.rpn_conv_depth),
            fg_iou_thresh=cfg.rpn_fg_iou_thresh,
            bg_iou_thresh=cfg.rpn_bg_iou_thresh,
            batch_size_per_image=cfg.rpn_batch_size_per_image,
            positive_fraction=cfg.rpn_positive_fraction,
            pre_nms_top_n={"training": cfg.rpn_pre_nms_top_n_train, "testing": cfg.rpn_pre_nms_top_n_test},
            post_nms_top_n={"training": cfg.rpn_post_nms_top_n_train, "testing": cfg.rpn_post_nms_top_n_test},
            nms_thresh=cfg.rpn_nms_thresh,
        )
        self.decode = BoxDecoder((1.0, 1.0, 1.0, 1.0))

    def forward(
        self,
        features: list[torch.Tensor],
        image_sizes: list[tuple[int, int]],
        targets: list[dict[str, torch.Tensor]] | None = None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], dict[str, torch.Tensor]]:
        logit_maps, delta_maps = self.head(features)  # per level [B, A, H, W], [B, 4 A, H, W]
        anchors = self.anchor_generator(features)  # per level [H*W*A, 4]
        batch = features[0].shape[0]
        logits = [m.permute(0, 2, 3, 1).flatten(1) for m in logit_maps]  # per level [B, H*W*A]
        deltas = [
            m.view(batch, -1, 4, *m.shape[-2:]).permute(0, 3, 4, 1, 2).reshape(batch, -1, 4)  # [B, H*W*A, 4]
            for m in delta_maps
        ]
        with torch.no_grad():
            proposals = [
                self.decode(d.reshape(-1, 4), a.repeat(batch, 1)).view(batch, -1, 4)
                for d, a in zip(deltas, anchors)
            ]
            boxes, scores = self.select_proposals(proposals, [x.detach() for x in logits], image_sizes)
        losses = {}
        if self.training:
            if targets is None:
                raise ValueError("the RPN needs targets in training")
            image_anchors = [torch.cat(anchors)] * batch
            labels, matched_boxes = self.assign_targets_to_anchors(image_anchors, targets)
            regression_targets = self.box_coder.encode(matched_boxes, image_anchors)
            loss_objectness, loss_box = self.compute_loss(
                torch.cat(logits, dim=1).reshape(-1, 1),
                torch.cat(deltas, dim=1).reshape(-1, 4),
                labels,
                regression_targets,
            )
            losses = {"loss_objectness": loss_objectness, "loss_rpn_box_reg": loss_box}
        return boxes, scores, losses

    def select_proposals(
        self,
        proposals: list[torch.Tensor],
        logits: list[torch.Tensor],
        image_sizes: list[tuple[int, int]],
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per level `[B, N_l, 4]` boxes and `[B, N_l]` logits -> per image the kept boxes and logits,
        best first (detectron2's `find_top_rpn_proposals`)."""
        pre_nms, post_nms = self.pre_nms_top_n(), self.post_nms_top_n()
        top_boxes, top_logits, levels = [], [], []
        for level, (boxes, scores) in enumerate(zip(proposals, logits)):
            k = min(scores.shape[1], pre_nms)
            scores, index = scores.topk(k, dim=1)  # [B, k], best first
            top_logits.append(scores)
            top_boxes.append(boxes.gather(1, index[..., None].expand(-1, -1, 4)))  # [B, k, 4]
            levels.append(torch.full((k,), level, dtype=torch.int64, device=scores.device))
        all_boxes = torch.cat(top_boxes, dim=1)  # [B, sum k, 4]
        all_logits, all_levels = torch.cat(top_logits, dim=1), torch.cat(levels)
        kept_boxes, kept_logits = [], []
        for boxes, scores, size in zip(all_boxes, all_logits, image_sizes):
            level = all_levels
            finite = torch.isfinite(boxes).all(dim=1) & torch.isfinite(scores)
            if not finite.all():
                if self.training:
                    raise FloatingPointError(
                        "the RPN predicted non-finite boxes or logits: training diverged"
                    )
                boxes, scores, level = boxes[finite], scores[finite], level[finite]
            boxes = clip_boxes(boxes, size)
            keep = nonempty(boxes, MIN_PROPOSAL_SIZE)
            boxes, scores, level = boxes[keep], scores[keep], level[keep]
            keep = batched_nms(boxes.float(), scores, level, self.nms_thresh)[:post_nms]
            kept_boxes.append(boxes[keep])
            kept_logits.append(scores[keep])
        return kept_boxes, kept_logits
