"""Hungarian matching of predictions to ground truth with the hybrid (class + box + mask) cost.

Mask DINO matches on classification, box and mask costs together ("hybrid matching", paper Sec. 3.4) so
that the box and the mask a query is trained on belong to the same object.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn

from maskdino.layers.box_ops import box_cxcywh_to_xyxy, generalized_box_iou
from maskdino.losses.functional import point_sample, sample_masks_at_points

COST_TYPES = ("cls", "box", "mask")


def pairwise_focal_class_cost(
    logits: torch.Tensor, labels: torch.Tensor, alpha: float, gamma: float
) -> torch.Tensor:
    """Focal-loss-shaped class cost `[Q, N]`: positive minus negative focal term of each target's class."""
    prob = logits.sigmoid()
    neg = (1 - alpha) * prob**gamma * -(1 - prob + 1e-8).log()
    pos = alpha * (1 - prob) ** gamma * -(prob + 1e-8).log()
    return pos[:, labels] - neg[:, labels]


def pairwise_sigmoid_ce_cost(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of every prediction `[Q, P]` against every target `[N, P]` -> `[Q, N]`."""
    pos = F.softplus(-logits)  # BCE against 1
    neg = F.softplus(logits)  # BCE against 0
    return (pos @ targets.T + neg @ (1 - targets).T) / logits.shape[1]


def pairwise_dice_cost(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Dice loss (+1 smoothing) of every prediction `[Q, P]` against every target `[N, P]` -> `[Q, N]`."""
    probs = logits.sigmoid()
    numerator = 2 * probs @ targets.T
    denominator = probs.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1 - (numerator + 1) / (denominator + 1)


class HungarianMatcher(nn.Module):
    """One-to-one assignment per image minimising the weighted sum of the selected costs.

    Mask costs use `num_points` uniformly random points shared by all predictions and targets of an
    image; a target whose `has_mask` is False (a box-only annotation) has none. With `thing_classes` given
    (`loss.pano_box_loss`), box costs of stuff targets are replaced by the mean box cost of the thing
    targets, so stuff is matched on class and mask only (the official builder never turns this on; the
    official code takes labels < 80, COCO panoptic's things, where we take the config's thing classes).
    """

    def __init__(
        self,
        cost_class: float,
        cost_box: float,
        cost_giou: float,
        cost_mask: float,
        cost_dice: float,
        num_points: int,
        alpha: float = 0.25,
        gamma: float = 2.0,
        thing_classes: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        if cost_class == 0 and cost_mask == 0 and cost_dice == 0:
            raise ValueError("the class, mask and dice costs cannot all be 0")
        self.cost_class = cost_class
        self.cost_box = cost_box
        self.cost_giou = cost_giou
        self.cost_mask = cost_mask
        self.cost_dice = cost_dice
        self.num_points = num_points
        self.alpha = alpha
        self.gamma = gamma
        self.thing_classes = thing_classes

    @torch.no_grad()
    def cost_matrix(
        self, outputs: dict, target: dict, image: int, costs: tuple[str, ...] = COST_TYPES
    ) -> torch.Tensor:
        """The `[Q, N]` matching cost of image `image` of the batch (float32)."""
        unknown = set(costs) - set(COST_TYPES)
        if unknown:
            raise ValueError(f"unknown cost types {sorted(unknown)}; choose from {COST_TYPES}")
        # float32 throughout: under AMP, half-precision probabilities make the log terms overflow
        logits = outputs["pred_logits"][image].float()
        labels = target["labels"]
        total = self.cost_class * pairwise_focal_class_cost(logits, labels, self.alpha, self.gamma)

        if "box" in costs:
            out_boxes = outputs["pred_boxes"][image].float()
            tgt_boxes = target["boxes"].float()
            cost_l1 = torch.cdist(out_boxes, tgt_boxes, p=1)
            cost_giou = -generalized_box_iou(box_cxcywh_to_xyxy(out_boxes), box_cxcywh_to_xyxy(tgt_boxes))
            if self.thing_classes is not None:
                thing = is_thing(labels, self.thing_classes)
                cost_l1 = _stuff_to_thing_mean(cost_l1, thing)
                cost_giou = _stuff_to_thing_mean(cost_giou, thing)
            total = total + self.cost_box * cost_l1 + self.cost_giou * cost_giou

        has_mask = target.get("has_mask")  # False for box-only targets: matched on class and box
        if "mask" in costs and (has_mask is None or bool(has_mask.any())):
            out_masks = outputs["pred_masks"][image]  # [Q, Hm, Wm]
            tgt_masks = target["masks"]  # [N, H, W]
            coords = torch.rand(1, self.num_points, 2, device=out_masks.device)
            out_points = point_sample(
                out_masks[:, None], coords.expand(out_masks.shape[0], -1, -1).to(out_masks.dtype)
            )[:, 0].float()  # [Q, P]
            index = torch.arange(tgt_masks.shape[0], device=tgt_masks.device)
            tgt_points = sample_masks_at_points(
                tgt_masks, index, coords.to(tgt_masks.device).expand(tgt_masks.shape[0], -1, -1)
            ).to(out_points.device)  # [N, P]
            cost_ce = self.cost_mask * pairwise_sigmoid_ce_cost(out_points, tgt_points)
            cost_dice = self.cost_dice * pairwise_dice_cost(out_points, tgt_points)
            if has_mask is not None:
                with_mask = has_mask.to(cost_ce.device, cost_ce.dtype)[None]  # [1, N]
                cost_ce, cost_dice = cost_ce * with_mask, cost_dice * with_mask
            total = total + cost_ce
            total = total + cost_dice
        return total

    @torch.no_grad()
    def forward(
        self, outputs: dict, targets: list[dict], costs: tuple[str, ...] = COST_TYPES
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Match each image; returns per image (prediction indices, target indices), int64 on the CPU.

        `costs` picks the terms: "cls" is always used, "box" adds L1 + GIoU, "mask" adds BCE + dice.
        The official criterion uses all three for every decoder layer and for the encoder proposals.
        """
        indices = []
        for image, target in enumerate(targets):
            cost = self.cost_matrix(outputs, target, image, costs).cpu()
            pred_idx, tgt_idx = linear_sum_assignment(cost.numpy())
            indices.append(
                (torch.as_tensor(pred_idx, dtype=torch.int64), torch.as_tensor(tgt_idx, dtype=torch.int64))
            )
        return indices


def is_thing(labels: torch.Tensor, thing_classes: tuple[int, ...]) -> torch.Tensor:
    """Bool mask of the labels that are thing classes."""
    return torch.isin(labels, torch.as_tensor(thing_classes, dtype=labels.dtype, device=labels.device))


def _stuff_to_thing_mean(cost: torch.Tensor, thing: torch.Tensor) -> torch.Tensor:
    """Give every stuff column the mean cost over thing columns (0 when the image has no thing)."""
    cost = cost.clone()
    cost[:, ~thing] = cost[:, thing].mean()
    return torch.where(cost.isnan(), torch.zeros_like(cost), cost)
