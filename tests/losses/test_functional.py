"""Loss terms against hand-computed values; point sampling against known bilinear values."""

from __future__ import annotations

import math

import torch

from maskdino.losses.functional import (
    dice_loss,
    point_sample,
    sample_masks_at_points,
    sigmoid_ce_loss,
    sigmoid_focal_loss,
    uncertain_point_coords_with_randomness,
)


def test_sigmoid_focal_loss_hand_value() -> None:
    logits = torch.tensor([[[0.0, 2.0]]])  # [B=1, Q=1, C=2]
    targets = torch.tensor([[[1.0, 0.0]]])
    # positive at p = 0.5: alpha * (1 - p)^2 * ln 2
    # negative at p = sigmoid(2): (1 - alpha) * p^2 * softplus(2)
    p = 1 / (1 + math.exp(-2.0))
    positive = 0.25 * 0.25 * math.log(2)
    negative = 0.75 * p**2 * math.log(1 + math.exp(2.0))
    expected = (positive + negative) / 2  # num_boxes = 2
    assert math.isclose(expected, 0.640440, abs_tol=1e-6)
    assert math.isclose(sigmoid_focal_loss(logits, targets, 2.0).item(), expected, rel_tol=1e-6)


def test_dice_loss_hand_value() -> None:
    logits = torch.tensor([[0.0, 0.0], [50.0, -50.0]])
    targets = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    # first mask: 1 - (2 * 0.5 + 1) / (1 + 1 + 1) = 1/3; second is (numerically) perfect: 0
    assert math.isclose(dice_loss(logits, targets, 2.0).item(), 1 / 6, rel_tol=1e-6)


def test_sigmoid_ce_loss_hand_value() -> None:
    logits = torch.tensor([[0.0, math.log(3.0)]])
    targets = torch.tensor([[1.0, 1.0]])
    # -ln 0.5 and -ln 0.75, averaged over the two points
    expected = (math.log(2) - math.log(0.75)) / 2
    assert math.isclose(expected, 0.490415, abs_tol=1e-6)
    assert math.isclose(sigmoid_ce_loss(logits, targets, 1.0).item(), expected, rel_tol=1e-6)


def test_point_sample_bilinear_at_known_points() -> None:
    image = torch.tensor([[[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]]])  # [1, 1, H=2, W=3]
    # pixel (i, j) has its centre at ((j + 0.5) / W, (i + 0.5) / H)
    points = torch.tensor([[[5 / 6, 0.25], [0.5, 0.5], [1 / 3, 0.75], [0.0, 0.75]]])
    # centre of (0, 2); halfway down column 1; halfway between (1, 0) and (1, 1); half a pixel left of (1, 0)
    expected = torch.tensor([[[2.0, 2.5, 3.5, 1.5]]])
    torch.testing.assert_close(point_sample(image, points), expected)


def test_sample_masks_at_points_matches_point_sample() -> None:
    torch.manual_seed(0)
    masks = torch.rand(4, 9, 13) > 0.5
    index = torch.tensor([2, 0, 2, 3, 1])
    coords = torch.rand(5, 40, 2) * 1.2 - 0.1  # some points fall into the zero padding
    expected = point_sample(masks[index][:, None].float(), coords)[:, 0]
    # bit-identical: the same bilinear kernel on the same values
    torch.testing.assert_close(sample_masks_at_points(masks, index, coords), expected, atol=0, rtol=0)


def test_uncertain_points_prefer_low_confidence() -> None:
    xs = torch.linspace(0, 1, 32)
    logits = ((xs - 0.5) * 20).expand(2, 1, 32, 32).contiguous()  # uncertain along the column x = 0.5
    torch.manual_seed(3)
    coords = uncertain_point_coords_with_randomness(logits, 100, 3.0, 0.75)
    assert coords.shape == (2, 100, 2)

    torch.manual_seed(3)
    candidates = torch.rand(2, 300, 2)
    random_tail = torch.rand(2, 25, 2)
    torch.testing.assert_close(coords[:, 75:], random_tail)
    confidence = point_sample(logits, candidates)[:, 0].abs()  # [2, 300]
    chosen = point_sample(logits, coords[:, :75])[:, 0].abs()
    for m in range(2):
        # the 75 chosen are exactly the 75 least confident candidates
        torch.testing.assert_close(chosen[m].sort().values, confidence[m].sort().values[:75])
