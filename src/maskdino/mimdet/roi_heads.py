"""The RoI heads' driver: torchvision's `RoIHeads` with detectron2's box inference.

torchvision samples proposals, computes the box / mask losses and runs the mask head on the detections;
the detections themselves are chosen as detectron2's `fast_rcnn_inference` chooses them: per-class
deltas decoded with weights (10, 10, 5, 5) and the log(1000/16) scale clamp, boxes clipped to the image,
every (proposal, class) pair scoring above `score_thresh` kept, NMS within each class, the best
`detections_per_img`. (torchvision also drops boxes under 0.01 px, which detectron2 does not.)
"""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torchvision.models.detection.roi_heads import RoIHeads as TorchvisionRoIHeads
from torchvision.ops import batched_nms

from maskdino.mimdet.boxes import BoxDecoder, clip_boxes


class RoIHeads(TorchvisionRoIHeads):
    """Labels are torchvision's: 1..C for the classes, 0 for background (see `heads.BoxPredictor`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.decode = BoxDecoder((10.0, 10.0, 5.0, 5.0))

    def postprocess_detections(
        self,
        class_logits: torch.Tensor,
        box_regression: torch.Tensor,
        proposals: list[torch.Tensor],
        image_shapes: list[tuple[int, int]],
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """`class_logits` `[R, C+1]` and `box_regression` `[R, 4 (C+1)]` (background first) over the
        proposals of all images -> per image boxes `[D, 4]`, scores `[D]`, labels `[D]` (1..C)."""
        boxes = self.decode(box_regression[:, 4:], torch.cat(proposals))  # [R, 4 C]
        scores = F.softmax(class_logits, dim=-1)[:, 1:]  # [R, C]
        counts = [len(p) for p in proposals]
        all_boxes, all_scores, all_labels = [], [], []
        for image_boxes, image_scores, size in zip(boxes.split(counts), scores.split(counts), image_shapes):
            finite = torch.isfinite(image_boxes).all(dim=1) & torch.isfinite(image_scores).all(dim=1)
            if not finite.all():
                image_boxes, image_scores = image_boxes[finite], image_scores[finite]
            image_boxes = clip_boxes(image_boxes.view(len(image_boxes), -1, 4), size)  # [R, C, 4]
            passing = image_scores > self.score_thresh  # [R, C]
            classes = passing.nonzero()[:, 1]  # row-major, as boxes[passing]
            image_boxes, image_scores = image_boxes[passing], image_scores[passing]
            keep = batched_nms(image_boxes.float(), image_scores, classes, self.nms_thresh)
            keep = keep[: self.detections_per_img]
            all_boxes.append(image_boxes[keep])
            all_scores.append(image_scores[keep])
            all_labels.append(classes[keep] + 1)
        return all_boxes, all_scores, all_labels
