"""Unified denoising queries: noised ground-truth labels and boxes the decoder learns to reconstruct.

Training only (paper Sec. 3.3 and App. B.2). Every ground-truth object is copied into `num_groups` groups;
each copy gets a possibly flipped label (its content query, through `label_enc`) and a shifted and
rescaled box (its anchor). The decoder reconstructs class and box from them and, with DN "seg", the mask
too: the noised box is treated as a noised version of the mask. The DN queries are prepended to the
matching queries; an attention mask keeps the groups and the matching queries from seeing them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from maskdino.layers.box_ops import inverse_sigmoid


@dataclass(frozen=True)
class DenoisingMeta:
    """Layout of the DN queries: `num_groups` blocks of `single_pad` queries, `pad_size` in total.

    Within every group, image b's objects take the first `num_gt[b]` slots (in target order); the rest
    of the block is zero padding.
    """

    pad_size: int
    num_groups: int
    single_pad: int
    num_gt: tuple[int, ...]

    def loss_indices(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per image, (DN query index, target index) of every noised copy: the fixed DN "matching"."""
        indices = []
        for n in self.num_gt:
            tgt_idx = torch.arange(n, dtype=torch.int64).repeat(self.num_groups)  # [G * n]
            group_start = torch.arange(self.num_groups, dtype=torch.int64) * self.single_pad
            pred_idx = (group_start[:, None] + torch.arange(n, dtype=torch.int64)).flatten()  # [G * n]
            indices.append((pred_idx, tgt_idx))
        return indices


def build_denoising_queries(
    targets: list[dict],
    label_enc: nn.Embedding,
    num_classes: int,
    num_queries: int,
    dn_num: int = 100,
    noise_scale: float = 0.4,
    hidden_dim: int = 256,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, DenoisingMeta] | None:
    """Noised GT queries for a batch; None when the batch has no object or `dn_num` < the most objects.

    targets: per image `labels` int64 `[N]` and `boxes` `[N, 4]` (cx, cy, w, h normalised).
    Returns content `[B, pad, hidden_dim]`, unsigmoided boxes `[B, pad, 4]`, the self-attention mask
    `[pad + num_queries, pad + num_queries]` (True = may not attend) and the layout.

    Groups = dn_num // (most objects in one image of the batch). Each label is replaced with probability
    `noise_scale / 2` by a uniformly random class; each box gets cx += U(-1, 1) * w/2 * noise_scale,
    cy likewise with h, w += U(-1, 1) * w * noise_scale, h likewise, then is clamped to [0, 1]. The random
    draws use torch's global generator in the official order (label flips, new labels, box noise).
    """
    num_gt = tuple(len(t["labels"]) for t in targets)
    max_gt = max(num_gt, default=0)
    num_groups = dn_num // max_gt if max_gt > 0 else 0
    if num_groups == 0:
        return None
    device = label_enc.weight.device
    labels = torch.cat([t["labels"] for t in targets]).to(device)
    boxes = torch.cat([t["boxes"] for t in targets]).to(device=device, dtype=torch.float32)
    batch_idx = torch.cat(
        [torch.full((n,), b, dtype=torch.int64, device=device) for b, n in enumerate(num_gt)]
    )

    # group-major copies: all objects of the batch, then all again, ...
    noised_labels = labels.repeat(num_groups)  # [G * N]
    noised_boxes = boxes.repeat(num_groups, 1)  # [G * N, 4]
    batch_idx = batch_idx.repeat(num_groups)
    if noise_scale > 0:
        flip = torch.rand_like(noised_labels.float())
        flipped = torch.nonzero(flip < noise_scale * 0.5).view(-1)
        new_labels = torch.randint_like(flipped, 0, num_classes)
        noised_labels = noised_labels.scatter(0, flipped, new_labels)

        half_size = noised_boxes[:, 2:] / 2
        scale = torch.cat([half_size, noised_boxes[:, 2:]], dim=1)  # [w/2, h/2, w, h]
        noise = (torch.rand_like(noised_boxes) * 2 - 1.0) * scale * noise_scale
        noised_boxes = (noised_boxes + noise).clamp(min=0.0, max=1.0)

    single_pad = max_gt
    pad_size = single_pad * num_groups
    slot = torch.cat([torch.arange(n, device=device) for n in num_gt])  # position inside a group
    slot = torch.cat([slot + single_pad * g for g in range(num_groups)])

    batch_size = len(targets)
    content = torch.zeros(batch_size, pad_size, hidden_dim, device=device, dtype=label_enc.weight.dtype)
    boxes_unsigmoid = torch.zeros(batch_size, pad_size, 4, device=device)
    content[batch_idx, slot] = label_enc(noised_labels)
    boxes_unsigmoid[batch_idx, slot] = inverse_sigmoid(noised_boxes)

    attn_mask = denoising_attention_mask(pad_size, num_groups, num_queries, device)
    meta = DenoisingMeta(pad_size=pad_size, num_groups=num_groups, single_pad=single_pad, num_gt=num_gt)
    return content, boxes_unsigmoid, attn_mask, meta


def denoising_attention_mask(
    pad_size: int, num_groups: int, num_queries: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """Bool `[pad + Q, pad + Q]`, True where a query (row) may not attend to a key (column).

    Matching queries cannot see any DN query (they would read the answers); a DN group cannot see
    the other groups. DN queries do see the matching queries.
    """
    size = pad_size + num_queries
    single_pad = pad_size // num_groups
    mask = torch.zeros(size, size, dtype=torch.bool, device=device)
    mask[pad_size:, :pad_size] = True
    for g in range(num_groups):
        rows = slice(g * single_pad, (g + 1) * single_pad)
        mask[rows, : g * single_pad] = True
        mask[rows, (g + 1) * single_pad : pad_size] = True
    return mask


def split_denoising_outputs(
    class_per_layer: list[torch.Tensor],
    boxes_per_layer: list[torch.Tensor],
    masks_per_layer: list[torch.Tensor | None],
    pad_size: int,
) -> tuple[tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor | None]], dict]:
    """Separate the DN queries (the first `pad_size`) from the matching queries in every prediction.

    Inputs are the decoder's per-layer predictions `[B, pad + Q, ...]` (a mask entry may be None).
    Returns the matching part as the same three lists `[B, Q, ...]` and the DN part as an outputs dict
    (`pred_logits`, `pred_boxes`, `pred_masks` of the last layer, `aux_outputs` for the earlier ones,
    `pred_masks` left out where a layer has no masks) for `SetCriterion(..., dn_outputs=...)`.
    """
    matching = (
        [c[:, pad_size:] for c in class_per_layer],
        [b[:, pad_size:] for b in boxes_per_layer],
        [None if m is None else m[:, pad_size:] for m in masks_per_layer],
    )
    layers = []
    for logits, boxes, masks in zip(class_per_layer, boxes_per_layer, masks_per_layer, strict=True):
        layer = {"pred_logits": logits[:, :pad_size], "pred_boxes": boxes[:, :pad_size]}
        if masks is not None:
            layer["pred_masks"] = masks[:, :pad_size]
        layers.append(layer)
    dn_outputs = {**layers[-1], "aux_outputs": layers[:-1]}
    return matching, dn_outputs
