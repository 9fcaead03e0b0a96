"""Loss terms and point sampling as small pure functions.

The mask losses are evaluated on a few thousand sampled points rather than on full-resolution masks
(PointRend / Mask2Former): the predicted 1/4-resolution logits and the full-resolution targets are both
read at the same normalised coordinates, so no prediction is ever upsampled.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sigmoid_focal_loss(
    inputs: torch.Tensor, targets: torch.Tensor, num_boxes: float, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Focal loss (Lin et al. 2017) on logits `[B, Q, C]`, averaged over queries, summed, / `num_boxes`.

    The mean over dim 1 is the official reduction; the criterion multiplies the result back by Q.
    """
    prob = inputs.sigmoid()
    ce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.mean(1).sum() / num_boxes


def dice_loss(inputs: torch.Tensor, targets: torch.Tensor, num_masks: float) -> torch.Tensor:
    """Dice loss with +1 smoothing, summed over masks `[M, P]` and divided by `num_masks`."""
    probs = inputs.sigmoid().flatten(1)
    numerator = 2 * (probs * targets).sum(-1)
    denominator = probs.sum(-1) + targets.sum(-1)
    return (1 - (numerator + 1) / (denominator + 1)).sum() / num_masks


def sigmoid_ce_loss(inputs: torch.Tensor, targets: torch.Tensor, num_masks: float) -> torch.Tensor:
    """Per-point binary cross-entropy `[M, P]`, averaged over points, summed, / `num_masks`."""
    loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    return loss.mean(1).sum() / num_masks


def point_sample(
    inputs: torch.Tensor, point_coords: torch.Tensor, align_corners: bool = False
) -> torch.Tensor:
    """Bilinear values of `inputs` `[N, C, H, W]` at `point_coords` `[N, P, 2]` given as (x, y) in [0, 1].

    Returns `[N, C, P]`. Points outside the map read zeros (grid_sample's zero padding).
    """
    grid = 2.0 * point_coords.unsqueeze(2) - 1.0  # [N, P, 1, 2] in [-1, 1]
    return F.grid_sample(inputs, grid, mode="bilinear", align_corners=align_corners).squeeze(3)


def sample_masks_at_points(masks: torch.Tensor, index: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear value of `masks[index[m]]` at `coords[m]`: `point_sample` of each match's target mask.

    masks: bool or float `[N, H, W]`; index: int64 `[M]`; coords: `[M, P, 2]` (x, y) in [0, 1].
    Returns float `[M, P]`, the same numbers as point-sampling a float copy of every matched mask (the
    official computation). Each target mask is converted once and sampled at the points of all its
    matches together, so the (often repeated) full-resolution masks are never copied per match.
    """
    out = coords.new_empty(coords.shape[:2])
    for target in index.unique().tolist():
        rows = torch.nonzero(index == target)[:, 0]
        mask = masks[target][None, None].to(coords.dtype)  # [1, 1, H, W]
        points = coords[rows].reshape(1, -1, 2)  # [1, R * P, 2]
        out[rows] = point_sample(mask, points)[0, 0].view(len(rows), -1)
    return out


def uncertain_point_coords_with_randomness(
    mask_logits: torch.Tensor, num_points: int, oversample_ratio: float, importance_sample_ratio: float
) -> torch.Tensor:
    """PointRend importance sampling: `num_points` (x, y) per mask logits `[M, 1, H, W]` -> `[M, P, 2]`.

    Draws `num_points * oversample_ratio` uniform points, keeps the `importance_sample_ratio` fraction whose
    logits are closest to 0 (most uncertain), and fills the rest with fresh uniform points.
    """
    num_masks = mask_logits.shape[0]
    num_sampled = int(num_points * oversample_ratio)
    coords = torch.rand(num_masks, num_sampled, 2, device=mask_logits.device)
    uncertainty = -point_sample(mask_logits, coords.to(mask_logits.dtype)).abs()[:, 0]  # [M, num_sampled]
    num_uncertain = int(importance_sample_ratio * num_points)
    num_random = num_points - num_uncertain
    top = torch.topk(uncertainty, k=num_uncertain, dim=1)[1]  # [M, num_uncertain]
    coords = torch.gather(coords, 1, top[..., None].expand(-1, -1, 2))
    if num_random > 0:
        extra = torch.rand(num_masks, num_random, 2, device=mask_logits.device)
        coords = torch.cat([coords, extra], dim=1)
    return coords
