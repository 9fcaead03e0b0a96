"""Test-time post-processing: instance, panoptic and semantic results from raw per-query predictions.

Follows the official inference (thresholds, top-k over queries x classes, score = class probability x
mean mask probability, panoptic temperature softmax, stuff merging) but only upsamples the masks a
result actually uses: the official code resizes all queries' masks to full resolution first.
Bilinear resizing acts on each mask independently, so selecting first gives identical numbers.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from maskdino.config import TestConfig
from maskdino.layers.box_ops import box_cxcywh_to_xyxy

Size = tuple[int, int]


def resize_mask_logits(
    masks: torch.Tensor, padded_size: Size, image_size: Size, output_size: Size
) -> torch.Tensor:
    """`[N, h, w]` logits at 1/4 of the padded input -> `[N, H_out, W_out]`.

    As the official model: upsample to the padded input size, crop the padding away, then resize to the
    requested output size (both bilinear, align_corners=False).
    """
    if masks.shape[0] == 0:
        return masks.new_zeros((0, *output_size))
    x = F.interpolate(masks[None], size=padded_size, mode="bilinear", align_corners=False)
    x = x[:, :, : image_size[0], : image_size[1]]
    if tuple(x.shape[-2:]) != tuple(output_size):
        x = F.interpolate(x, size=output_size, mode="bilinear", align_corners=False)
    return x[0]


def instance_inference(
    logits: torch.Tensor,
    masks: torch.Tensor | None,
    boxes: torch.Tensor,
    padded_size: Size,
    image_size: Size,
    output_size: Size,
    test: TestConfig,
    top_k: int | None = None,
    thing_classes: torch.Tensor | None = None,
    chunk: int = 25,
) -> dict[str, torch.Tensor]:
    """Top-k (query, class) pairs by sigmoid score; results sorted by final score.

    logits `[Q, C]`, masks `[Q, h, w]` logits, boxes `[Q, 4]` (cx, cy, w, h) of the padded input.
    masks None (`test.mask_on` off: a detector): `boxes`, `labels` and the class probability as `scores`,
    no `masks`. top_k: pairs kept (default `test.detections_per_image`).
    thing_classes: bool `[C]`; when given (panoptic presets) only thing classes are kept.
    """
    num_queries, num_classes = logits.shape
    probs = logits.sigmoid()
    k = min(test.detections_per_image if top_k is None else top_k, num_queries * num_classes)
    scores, index = probs.flatten().topk(k)
    labels = index % num_classes
    query = index // num_classes
    if thing_classes is not None:
        keep = thing_classes[labels]
        scores, labels, query = scores[keep], labels[keep], query[keep]
    # boxes are relative to the padded input: rescale so they land in output pixels
    scale_y = padded_size[0] / image_size[0] * output_size[0]
    scale_x = padded_size[1] / image_size[1] * output_size[1]
    xyxy = box_cxcywh_to_xyxy(boxes[query]) * boxes.new_tensor([scale_x, scale_y, scale_x, scale_y])
    if masks is None:  # already best first (top-k)
        return {"boxes": xyxy, "labels": labels, "scores": scores}
    # full-resolution float masks exist for one chunk at a time; only the boolean masks are kept
    binary_chunks, score_chunks = [], []
    for start in range(0, len(query), chunk):
        mask_logits = resize_mask_logits(
            masks[query[start : start + chunk]], padded_size, image_size, output_size
        )
        binary = mask_logits > 0
        binary_chunks.append(binary)
        if not test.focus_on_box:
            # mean mask probability over the mask's own pixels (no bool -> float copy of the masks)
            inside = mask_logits.sigmoid_().masked_fill_(~binary, 0.0).sum((1, 2))
            score_chunks.append(inside / (binary.sum((1, 2)) + 1e-6))
    binary = (
        torch.cat(binary_chunks) if binary_chunks else masks.new_zeros((0, *output_size), dtype=torch.bool)
    )
    if test.focus_on_box:
        mask_scores = torch.ones_like(scores)
    else:
        mask_scores = torch.cat(score_chunks) if score_chunks else scores.new_zeros(0)
    final = scores * mask_scores
    order = final.argsort(descending=True, stable=True)
    return {
        "boxes": xyxy[order],
        "labels": labels[order],
        "scores": final[order],
        "masks": binary[order],
    }


def panoptic_inference(
    logits: torch.Tensor,
    masks: torch.Tensor,
    padded_size: Size,
    image_size: Size,
    output_size: Size,
    test: TestConfig,
    thing_classes: torch.Tensor,
) -> dict:
    """Panoptic map `segments` int32 `[H, W]` (0 = void) and `segments_info` [{id, category_id, isthing}]."""
    probs = logits.sigmoid()
    scores, labels = probs.max(-1)
    keep = scores > test.object_mask_threshold
    if test.pano_transform_eval:
        scores, labels = F.softmax(probs / test.pano_temperature, dim=-1).max(-1)
    cur_scores, cur_classes = scores[keep], labels[keep]
    cur_masks = resize_mask_logits(masks[keep], padded_size, image_size, output_size).sigmoid()
    segments = torch.zeros(output_size, dtype=torch.int32, device=logits.device)
    info: list[dict] = []
    if cur_masks.shape[0] == 0:
        return {"segments": segments, "segments_info": info}
    owner = (cur_scores[:, None, None] * cur_masks).argmax(0)  # [H, W] index of the winning query
    stuff_ids: dict[int, int] = {}
    for k in range(cur_classes.shape[0]):
        cls = int(cur_classes[k])
        isthing = bool(thing_classes[cls])
        confident = cur_masks[k] >= 0.5
        won = owner == k
        won_area = int(won.sum())
        confident_area = int(confident.sum())
        region = won & confident
        if won_area == 0 or confident_area == 0 or int(region.sum()) == 0:
            continue
        if won_area / confident_area < test.overlap_threshold:
            continue
        if not isthing and cls in stuff_ids:
            segments[region] = stuff_ids[cls]
            continue
        segment_id = len(info) + 1
        if not isthing:
            stuff_ids[cls] = segment_id
        segments[region] = segment_id
        info.append({"id": segment_id, "isthing": isthing, "category_id": cls})
    return {"segments": segments, "segments_info": info}


def semantic_inference(
    logits: torch.Tensor,
    masks: torch.Tensor,
    padded_size: Size,
    image_size: Size,
    output_size: Size,
    test: TestConfig,
    semantic_ce: bool,
    resize_before: bool,
    chunk: int = 50,
) -> torch.Tensor:
    """Per-class scores `[C, H, W]`: sum over queries of class probability x mask probability.

    Semantic-CE presets use softmax probabilities without the no-object class; focal presets use the
    temperature softmax of sigmoid scores. With `resize_before` (panoptic/instance presets) masks are
    resized to the output first; otherwise the class map at padded resolution is resized afterwards.
    Queries are processed in chunks so the full-resolution masks of all queries never coexist.
    """
    if semantic_ce:
        class_probs = F.softmax(logits, dim=-1)[..., :-1]
    else:
        class_probs = logits.sigmoid()
        if test.pano_transform_eval:
            class_probs = F.softmax(class_probs / test.pano_temperature, dim=-1)
    total = None
    for start in range(0, masks.shape[0], chunk):
        part = masks[start : start + chunk]
        if resize_before:
            probs = resize_mask_logits(part, padded_size, image_size, output_size).sigmoid()
        else:
            probs = F.interpolate(part[None], size=padded_size, mode="bilinear", align_corners=False)[
                0
            ].sigmoid()
        contribution = torch.einsum("qc,qhw->chw", class_probs[start : start + chunk], probs)
        total = contribution if total is None else total + contribution
    if not resize_before:
        total = total[:, : image_size[0], : image_size[1]]
        if tuple(total.shape[-2:]) != tuple(output_size):
            total = F.interpolate(total[None], size=output_size, mode="bilinear", align_corners=False)[0]
    return total
