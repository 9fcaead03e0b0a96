"""Multi-scale deformable attention as one weighted gather-sum: the fast plain-PyTorch path.

Each bilinear tap (4 corners x L levels x P points) of a (batch, query, head) row becomes a row index into
the value viewed as a `[B*S*M, D]` table plus one weight (attention weight times bilinear weight, zero for
a corner outside its level). `F.embedding_bag(mode="sum")` then gathers and sums all taps of a row in one
kernel: no per-level loop and no `[B*M, D, Q, L*P]` tensor of samples, and autograd differentiates it
with respect to value, locations and attention weights. The index arithmetic runs on `[rows, L*P]`
planes, whose long contiguous inner dimension keeps the element-wise ops vectorised on CPU; rows are
processed in chunks so the intermediates stay small. Half-precision inputs are computed in fp32.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

DEFAULT_CHUNK_ROWS = 65536  # 32 MB of indices and weights per step; larger was no faster on 1-2 threads


def _axis_taps(
    coord: torch.Tensor, size: torch.Tensor, index_dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bilinear weights and indices of the two neighbours along one axis.

    coord in [0, 1] of a level of `size` pixels (align_corners=False: pixel i has its centre at
    (i + 0.5) / size). A neighbour is inside the level iff clamping it to the level leaves it unchanged;
    one outside gets weight 0 (zeros padding) and keeps the clamped, valid index.
    """
    pixel = coord * size - 0.5
    low = pixel.floor()
    frac = pixel - low
    high = low + 1
    last = size - 1
    low_clamped = low.clamp(min=0).minimum(last)
    high_clamped = high.clamp(min=0).minimum(last)
    weight_low = (1 - frac) * (low_clamped == low)
    weight_high = frac * (high_clamped == high)
    return weight_low, weight_high, low_clamped.to(index_dtype), high_clamped.to(index_dtype)


def ms_deform_attn_fast(
    value: torch.Tensor,
    spatial_shapes: list[tuple[int, int]],
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> torch.Tensor:
    """Same contract and numerics as `ms_deform_attn_reference`; `chunk_rows` bounds the B*Q*M rows per step.

    value `[B, S, M, D]`, sampling_locations `[B, Q, M, L, P, 2]` (x, y in [0, 1]),
    attention_weights `[B, Q, M, L, P]` -> `[B, Q, M*D]`.
    """
    batch, total, heads, channels = value.shape
    _, num_queries, _, levels, points, _ = sampling_locations.shape
    rows, taps = batch * num_queries * heads, levels * points
    device = value.device
    dtype = torch.promote_types(value.dtype, torch.float32)
    index_dtype = torch.int32 if batch * total * heads < 2**31 else torch.int64

    table = value.to(dtype).reshape(batch * total * heads, channels)  # row (b * S + s) * M + m
    locations = sampling_locations.to(dtype).reshape(rows, taps, 2)
    weights = attention_weights.to(dtype).reshape(rows, taps)

    # per-tap level constants, [L*P] each
    sizes = torch.tensor([[w, h] for h, w in spatial_shapes], dtype=dtype, device=device)
    widths, heights = sizes.repeat_interleave(points, 0).unbind(-1)
    level_sizes = torch.tensor([h * w for h, w in spatial_shapes], device=device)
    level_starts = (level_sizes.cumsum(0) - level_sizes).repeat_interleave(points)
    level_offsets = (level_starts * heads).to(index_dtype)
    y_strides = (widths * heads).to(index_dtype)
    # offset of (b, m) in the table for every row (b, q, m): [B*Q*M, 1]
    row_offsets = torch.arange(batch, device=device).view(batch, 1, 1) * (total * heads)
    row_offsets = (row_offsets + torch.arange(heads, device=device)).expand(batch, num_queries, heads)
    row_offsets = row_offsets.reshape(rows, 1).to(index_dtype)

    outputs = []
    for start in range(0, rows, chunk_rows):
        chunk = slice(start, start + chunk_rows)
        wx0, wx1, x0, x1 = _axis_taps(locations[chunk, :, 0], widths, index_dtype)
        wy0, wy1, y0, y1 = _axis_taps(locations[chunk, :, 1], heights, index_dtype)
        wy0, wy1 = wy0 * weights[chunk], wy1 * weights[chunk]
        x0, x1 = x0 * heads, x1 * heads
        base = row_offsets[chunk] + level_offsets
        y0, y1 = y0 * y_strides + base, y1 * y_strides + base
        index = torch.cat([y0 + x0, y0 + x1, y1 + x0, y1 + x1], 1)  # [rows, 4*L*P]
        tap_weights = torch.cat([wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1], 1)
        outputs.append(F.embedding_bag(index, table, per_sample_weights=tap_weights, mode="sum"))
    out = torch.cat(outputs)  # [B*Q*M, D]
    return out.view(batch, num_queries, heads * channels).to(value.dtype)
