"""Denoising queries: group rule, layout, attention mask, noise bounds and the official RNG order."""

from __future__ import annotations

import torch
from torch import nn

from maskdino.decoder.denoising_queries import (
    DenoisingMeta,
    build_denoising_queries,
    split_denoising_outputs,
)
from maskdino.layers.box_ops import inverse_sigmoid

NUM_CLASSES = 7
HIDDEN = 8


def _targets() -> list[dict]:
    """Two images with 3 and 1 objects."""
    return [
        {
            "labels": torch.tensor([1, 4, 6]),
            "boxes": torch.tensor([[0.3, 0.4, 0.2, 0.2], [0.6, 0.5, 0.3, 0.1], [0.5, 0.5, 0.4, 0.6]]),
        },
        {"labels": torch.tensor([2]), "boxes": torch.tensor([[0.7, 0.2, 0.1, 0.2]])},
    ]


def _label_enc() -> nn.Embedding:
    torch.manual_seed(0)
    return nn.Embedding(NUM_CLASSES, HIDDEN)


def test_groups_layout_and_clean_queries() -> None:
    label_enc = _label_enc()
    content, boxes, attn_mask, meta = build_denoising_queries(
        _targets(), label_enc, NUM_CLASSES, num_queries=2, dn_num=10, noise_scale=0.0, hidden_dim=HIDDEN
    )
    # groups = 10 // 3 objects at most = 3, each group is 3 queries wide
    assert meta == DenoisingMeta(pad_size=9, num_groups=3, single_pad=3, num_gt=(3, 1))
    assert content.shape == (2, 9, HIDDEN) and boxes.shape == (2, 9, 4) and attn_mask.shape == (11, 11)

    targets = _targets()
    for g in range(3):
        block = slice(3 * g, 3 * g + 3)
        torch.testing.assert_close(content[0, block], label_enc(targets[0]["labels"]))
        torch.testing.assert_close(boxes[0, block], inverse_sigmoid(targets[0]["boxes"]))
        # image 1 fills the first slot of each group; the other two are zero padding
        torch.testing.assert_close(content[1, 3 * g], label_enc(targets[1]["labels"])[0])
        torch.testing.assert_close(boxes[1, 3 * g], inverse_sigmoid(targets[1]["boxes"])[0])
        assert content[1, 3 * g + 1 : 3 * g + 3].abs().sum() == 0
        assert boxes[1, 3 * g + 1 : 3 * g + 3].abs().sum() == 0


def test_attention_mask_pattern() -> None:
    *_, attn_mask, _ = build_denoising_queries(
        _targets(), _label_enc(), NUM_CLASSES, num_queries=2, dn_num=10, hidden_dim=HIDDEN
    )
    # rows attend (.) or not (x) to columns: 3 DN groups of 3, then the 2 matching queries
    expected = [
        "...xxxxxx..",
        "...xxxxxx..",
        "...xxxxxx..",
        "xxx...xxx..",
        "xxx...xxx..",
        "xxx...xxx..",
        "xxxxxx.....",
        "xxxxxx.....",
        "xxxxxx.....",
        "xxxxxxxxx..",
        "xxxxxxxxx..",
    ]
    drawn = ["".join("x" if blocked else "." for blocked in row) for row in attn_mask.tolist()]
    assert drawn == expected
    assert attn_mask.dtype == torch.bool


def test_no_queries_without_objects_or_groups() -> None:
    empty = [{"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)}] * 2
    assert build_denoising_queries(empty, _label_enc(), NUM_CLASSES, 5, hidden_dim=HIDDEN) is None
    # 2 // 3 objects = 0 groups
    assert (
        build_denoising_queries(_targets(), _label_enc(), NUM_CLASSES, 5, dn_num=2, hidden_dim=HIDDEN) is None
    )


def test_noise_bounds_and_flip_rate() -> None:
    box = torch.tensor([[0.5, 0.5, 0.2, 0.4]])
    targets = [{"labels": torch.tensor([3]), "boxes": box}]
    label_enc = nn.Embedding(1000, HIDDEN)
    torch.manual_seed(1)
    content, boxes, _, meta = build_denoising_queries(
        targets, label_enc, 1000, num_queries=5, dn_num=4000, noise_scale=0.4, hidden_dim=HIDDEN
    )
    assert meta.num_groups == 4000
    deviation = (boxes[0].sigmoid() - box).abs()  # [4000, 4]
    # cx within w/2 * 0.4, cy within h/2 * 0.4, w within w * 0.4, h within h * 0.4
    bound = torch.tensor([0.04, 0.08, 0.08, 0.16])
    assert (deviation <= bound + 1e-5).all()
    assert (deviation.amax(0) > 0.95 * bound).all()
    kept = (content[0] == label_enc.weight[3]).all(-1).float().mean().item()
    # a label is redrawn with probability 0.2 (and rarely redrawn as itself)
    assert 0.77 < kept < 0.83


def test_reproducible_in_the_official_rng_order() -> None:
    label_enc = _label_enc()
    targets = _targets()
    torch.manual_seed(5)
    first = build_denoising_queries(targets, label_enc, NUM_CLASSES, 4, dn_num=10, hidden_dim=HIDDEN)
    torch.manual_seed(5)
    second = build_denoising_queries(targets, label_enc, NUM_CLASSES, 4, dn_num=10, hidden_dim=HIDDEN)
    for a, b in zip(first[:3], second[:3]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)

    # replay the draws: label flips (rand), new labels (randint), then box noise (rand)
    labels = torch.cat([t["labels"] for t in targets]).repeat(3)
    gt_boxes = torch.cat([t["boxes"] for t in targets]).repeat(3, 1)
    torch.manual_seed(5)
    flipped = torch.nonzero(torch.rand(12) < 0.2).view(-1)
    labels[flipped] = torch.randint_like(flipped, 0, NUM_CLASSES)
    scale = torch.cat([gt_boxes[:, 2:] / 2, gt_boxes[:, 2:]], dim=1)
    noised = (gt_boxes + (torch.rand(12, 4) * 2 - 1.0) * scale * 0.4).clamp(0, 1)
    content, boxes, _, _ = first
    slots = [(0, 0), (0, 1), (0, 2), (1, 0), (0, 3), (0, 4), (0, 5), (1, 3), (0, 6), (0, 7), (0, 8), (1, 6)]
    for k, (image, slot) in enumerate(slots):
        torch.testing.assert_close(content[image, slot], label_enc.weight[labels[k]])
        torch.testing.assert_close(boxes[image, slot], inverse_sigmoid(noised[k]))


def test_gradient_reaches_label_embedding() -> None:
    label_enc = _label_enc()
    content, *_ = build_denoising_queries(_targets(), label_enc, NUM_CLASSES, 4, dn_num=10, hidden_dim=HIDDEN)
    content.sum().backward()
    assert label_enc.weight.grad.abs().sum() > 0


def test_loss_indices() -> None:
    meta = DenoisingMeta(pad_size=9, num_groups=3, single_pad=3, num_gt=(3, 1))
    (pred0, tgt0), (pred1, tgt1) = meta.loss_indices()
    assert pred0.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8] and tgt0.tolist() == [0, 1, 2] * 3
    assert pred1.tolist() == [0, 3, 6] and tgt1.tolist() == [0, 0, 0]
    assert pred0.dtype == tgt1.dtype == torch.int64


def test_split_denoising_outputs() -> None:
    pad, queries = 4, 6
    classes = [torch.randn(2, pad + queries, 3) for _ in range(3)]
    boxes = [torch.rand(2, pad + queries, 4) for _ in range(3)]
    masks = [None, torch.randn(2, pad + queries, 5, 5), torch.randn(2, pad + queries, 5, 5)]
    (cls_m, box_m, mask_m), dn = split_denoising_outputs(classes, boxes, masks, pad)
    assert [c.shape[1] for c in cls_m] == [queries] * 3 and mask_m[0] is None
    torch.testing.assert_close(box_m[1], boxes[1][:, pad:])
    torch.testing.assert_close(mask_m[2], masks[2][:, pad:])
    torch.testing.assert_close(dn["pred_logits"], classes[2][:, :pad])
    torch.testing.assert_close(dn["pred_masks"], masks[2][:, :pad])
    assert len(dn["aux_outputs"]) == 2 and "pred_masks" not in dn["aux_outputs"][0]
    torch.testing.assert_close(dn["aux_outputs"][1]["pred_boxes"], boxes[1][:, :pad])
