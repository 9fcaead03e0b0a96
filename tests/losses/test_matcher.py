"""Hungarian matcher: cost matrix against a direct per-pair formula, assignment against brute force."""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F

from maskdino.losses.matcher import HungarianMatcher

WEIGHTS = {"cost_class": 4.0, "cost_box": 5.0, "cost_giou": 2.0, "cost_mask": 5.0, "cost_dice": 5.0}


def _random_case(seed: int, num_queries: int = 5, num_targets: int = 3, num_classes: int = 4) -> tuple:
    g = torch.Generator().manual_seed(seed)
    outputs = {
        "pred_logits": torch.randn(1, num_queries, num_classes, generator=g) * 2,
        "pred_boxes": torch.rand(1, num_queries, 4, generator=g) * 0.5 + 0.2,
        "pred_masks": torch.randn(1, num_queries, 8, 8, generator=g) * 3,
    }
    target = {
        "labels": torch.randint(0, num_classes, (num_targets,), generator=g),
        "boxes": torch.rand(num_targets, 4, generator=g) * 0.5 + 0.2,
        "masks": torch.rand(num_targets, 16, 16, generator=g) > 0.6,
    }
    return outputs, target


def _xyxy(box: list[float]) -> list[float]:
    cx, cy, w, h = box
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def _giou(a: list[float], b: list[float]) -> float:
    a, b = _xyxy(a), _xyxy(b)
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    hull = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    return inter / union - (hull - union) / hull


def _direct_cost(outputs: dict, target: dict, points: torch.Tensor, q: int, j: int) -> float:
    """The official matching cost of one (query, target) pair, term by term."""
    label = int(target["labels"][j])
    p = torch.sigmoid(outputs["pred_logits"][0, q, label]).item()
    focal = 0.25 * (1 - p) ** 2 * -math.log(p + 1e-8) - 0.75 * p**2 * -math.log(1 - p + 1e-8)
    pred_box, tgt_box = outputs["pred_boxes"][0, q].tolist(), target["boxes"][j].tolist()
    l1 = sum(abs(a - b) for a, b in zip(pred_box, tgt_box))
    grid = 2 * points.view(1, -1, 1, 2) - 1
    logits = F.grid_sample(outputs["pred_masks"][0, q][None, None], grid, align_corners=False).flatten()
    labels = F.grid_sample(target["masks"][j].float()[None, None], grid, align_corners=False).flatten()
    bce = F.binary_cross_entropy_with_logits(logits, labels).item()
    probs = logits.sigmoid()
    dice = 1 - (2 * (probs * labels).sum().item() + 1) / (probs.sum().item() + labels.sum().item() + 1)
    return 4 * focal + 5 * l1 - 2 * _giou(pred_box, tgt_box) + 5 * bce + 5 * dice


def test_cost_matrix_equals_direct_formula() -> None:
    outputs, target = _random_case(0)
    matcher = HungarianMatcher(**WEIGHTS, num_points=50)
    torch.manual_seed(7)
    cost = matcher.cost_matrix(outputs, target, 0)
    torch.manual_seed(7)
    points = torch.rand(1, 50, 2)  # the matcher's single draw of shared points
    expected = torch.tensor(
        [[_direct_cost(outputs, target, points, q, j) for j in range(3)] for q in range(5)]
    )
    torch.testing.assert_close(cost, expected, atol=1e-5, rtol=1e-5)


def test_assignment_is_the_brute_force_optimum() -> None:
    matcher = HungarianMatcher(**WEIGHTS, num_points=50)
    for seed in range(8):
        outputs, target = _random_case(seed)
        torch.manual_seed(seed)
        cost = matcher.cost_matrix(outputs, target, 0)
        torch.manual_seed(seed)
        [(pred_idx, tgt_idx)] = matcher(outputs, [target])
        # every injective map of the 3 targets onto 5 queries
        best = min(
            itertools.permutations(range(5), 3), key=lambda qs: sum(cost[q, j] for j, q in enumerate(qs))
        )
        assert pred_idx.dtype == torch.int64 and sorted(tgt_idx.tolist()) == [0, 1, 2]
        query_of_target = dict(zip(tgt_idx.tolist(), pred_idx.tolist()))
        assert tuple(query_of_target[j] for j in range(3)) == best


def test_cost_types_select_terms() -> None:
    outputs, target = _random_case(1)
    matcher = HungarianMatcher(**WEIGHTS, num_points=50)
    class_only = matcher.cost_matrix(outputs, target, 0, costs=("cls",))
    with_box = matcher.cost_matrix(outputs, target, 0, costs=("cls", "box"))
    pred, tgt = outputs["pred_boxes"][0], target["boxes"]
    l1 = (pred[:, None] - tgt[None]).abs().sum(-1)
    giou = torch.tensor([[_giou(p.tolist(), t.tolist()) for t in tgt] for p in pred])
    torch.testing.assert_close(with_box - class_only, 5 * l1 - 2 * giou, atol=1e-5, rtol=1e-5)


def test_panoptic_stuff_box_cost_is_thing_mean() -> None:
    outputs, target = _random_case(2)
    target["labels"] = torch.tensor([3, 95, 10])  # 95 is a stuff class (COCO panoptic: things 0..79)
    plain = HungarianMatcher(**WEIGHTS, num_points=50)
    panoptic = HungarianMatcher(**WEIGHTS, num_points=50, thing_classes=tuple(range(80)))
    outputs["pred_logits"] = torch.randn(1, 5, 100)
    costs = ("cls", "box")
    box_plain = plain.cost_matrix(outputs, target, 0, costs) - plain.cost_matrix(outputs, target, 0, ("cls",))
    box_pano = panoptic.cost_matrix(outputs, target, 0, costs) - plain.cost_matrix(
        outputs, target, 0, ("cls",)
    )
    torch.testing.assert_close(box_pano[:, [0, 2]], box_plain[:, [0, 2]])
    # L1 and GIoU are each replaced by their mean over the thing columns
    pred, tgt = outputs["pred_boxes"][0], target["boxes"]
    l1 = (pred[:, None] - tgt[None]).abs().sum(-1)
    giou = torch.tensor([[_giou(p.tolist(), t.tolist()) for t in tgt] for p in pred])
    expected = 5 * l1[:, [0, 2]].mean() - 2 * giou[:, [0, 2]].mean()
    torch.testing.assert_close(box_pano[:, 1], expected.expand(5), atol=1e-5, rtol=1e-5)


def test_image_without_targets_gives_empty_match() -> None:
    outputs, target = _random_case(3)
    empty = {"labels": target["labels"][:0], "boxes": target["boxes"][:0], "masks": target["masks"][:0]}
    [(pred_idx, tgt_idx)] = HungarianMatcher(**WEIGHTS, num_points=50)(outputs, [empty])
    assert pred_idx.numel() == 0 and tgt_idx.numel() == 0
