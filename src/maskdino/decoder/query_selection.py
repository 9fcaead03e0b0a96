"""Unified query selection (two-stage): score every encoder token as a proposal and keep the top-k as
initial content queries and anchor boxes (paper Sec. 3.5)."""

from __future__ import annotations

import torch


def encoder_output_proposals(
    memory: torch.Tensor, spatial_shapes: list[tuple[int, int]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """One anchor per encoder token: its pixel centre, with size 0.05 * 2**level.

    Levels are numbered in `spatial_shapes` order (the decoder's order, coarsest first for the released
    configs, so the coarsest level gets the smallest anchors: an official quirk kept for parity).
    Anchors with any coordinate outside (0.01, 0.99) become +inf logits and their memory is zeroed.
    Returns (memory `[B, S, C]`, proposals as logits `[B, S, 4]`).
    """
    proposals = []
    for level, (h, w) in enumerate(spatial_shapes):
        ys = (torch.arange(h, dtype=torch.float32, device=memory.device) + 0.5) / h
        xs = (torch.arange(w, dtype=torch.float32, device=memory.device) + 0.5) / w
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        size = torch.full((h * w, 2), 0.05 * (2.0**level), device=memory.device)
        proposals.append(torch.cat([grid_x.reshape(-1, 1), grid_y.reshape(-1, 1), size], -1))
    boxes = torch.cat(proposals, 0)[None].expand(memory.shape[0], -1, -1)  # [B, S, 4]
    valid = ((boxes > 0.01) & (boxes < 0.99)).all(-1, keepdim=True)
    logits = torch.log(boxes / (1 - boxes)).masked_fill(~valid, float("inf"))
    return memory.masked_fill(~valid, 0.0), logits


def select_top_queries(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices `[B, k]` of the k tokens with the highest best-class logit (scores `[B, S, C]`)."""
    if scores.shape[1] < k:
        raise ValueError(
            f"query selection needs at least {k} encoder tokens but the feature maps hold {scores.shape[1]}; "
            "use a larger input image or fewer queries (model.decoder.num_queries)"
        )
    return torch.topk(scores.max(-1)[0], k, dim=1)[1]


def gather_queries(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x `[B, S, D]`, index `[B, K]` -> `[B, K, D]`."""
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
