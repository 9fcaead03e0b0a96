"""Multi-scale deformable attention as Triton kernels (forward and backward) for CUDA.

Each program owns a block of (batch, query, head) rows and all D channels of them. It walks the L levels
and P points, computes the four bilinear corners of each sampling location (zeros padding,
align_corners=False) and accumulates the attention-weighted corner values in fp32, so nothing but the
output is written. The backward pass recomputes the corners, scatters the value gradient with atomic adds
and writes the location and attention-weight gradients per tap. Inputs of any float dtype are computed
in fp32; the output has the value's dtype.

Importing this module needs Triton; with `TRITON_INTERPRET=1` set before Triton is imported the kernels
also run on CPU tensors (slowly), which is how the tests check them without a GPU.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# A program's tile is BLOCK_ELEMENTS (row, channel) pairs over NUM_WARPS warps: 4 per thread, which compiles
# for sm_90 without register spills in either kernel (checked with ptxas; not timed on a GPU).
BLOCK_ELEMENTS = 1024
NUM_WARPS = 8


@triton.jit
def _tap(shapes_ptr, starts_ptr, loc_ptr, attn_ptr, row_mask, batch, head, total, heads, tap, level):
    """Bilinear footprint of one tap of each row: attention weight, fractions (fx, fy), the value row of
    the lower corner, the row step to the next image line, and which of the four corners lie inside."""
    height = tl.load(shapes_ptr + 2 * level)
    width = tl.load(shapes_ptr + 2 * level + 1)
    x = tl.load(loc_ptr + 2 * tap, mask=row_mask, other=0.0).to(tl.float32) * width - 0.5
    y = tl.load(loc_ptr + 2 * tap + 1, mask=row_mask, other=0.0).to(tl.float32) * height - 0.5
    attn = tl.load(attn_ptr + tap, mask=row_mask, other=0.0).to(tl.float32)
    x0 = tl.floor(x)
    y0 = tl.floor(y)
    xi = x0.to(tl.int32)
    yi = y0.to(tl.int32)
    pixel = tl.load(starts_ptr + level) + yi * width + xi
    row = (batch.to(tl.int64) * total + pixel) * heads + head
    x_low = (xi >= 0) & (xi < width)
    x_high = (xi >= -1) & (xi < width - 1)
    y_low = row_mask & (yi >= 0) & (yi < height)
    y_high = row_mask & (yi >= -1) & (yi < height - 1)
    return (
        attn,
        x - x0,
        y - y0,
        row,
        width * heads,
        y_low & x_low,
        y_low & x_high,
        y_high & x_low,
        y_high & x_high,
    )


@triton.jit
def _gather(value_ptr, row, inside, channels, mask_c, CHANNELS: tl.constexpr):
    """Value rows `[rows, channels]` in fp32; corners outside their level read as zero."""
    offsets = row[:, None] * CHANNELS + channels[None, :]
    return tl.load(value_ptr + offsets, mask=inside[:, None] & mask_c[None, :], other=0.0).to(tl.float32)


@triton.jit
def _scatter(grad_value_ptr, row, inside, update, channels, mask_c, CHANNELS: tl.constexpr):
    """Add `update` `[rows, channels]` to the value-gradient rows (atomically: taps share pixels)."""
    offsets = row[:, None] * CHANNELS + channels[None, :]
    tl.atomic_add(grad_value_ptr + offsets, update, mask=inside[:, None] & mask_c[None, :])


@triton.jit
def _forward_kernel(
    value_ptr,
    shapes_ptr,
    starts_ptr,
    loc_ptr,
    attn_ptr,
    out_ptr,
    num_rows,
    num_queries,
    total,
    heads,
    CHANNELS: tl.constexpr,
    LEVELS: tl.constexpr,
    POINTS: tl.constexpr,
    BLOCK_R: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)  # row = (b * Q + q) * M + m
    row_mask = rows < num_rows
    batch = rows // (num_queries * heads)
    head = rows % heads
    channels = tl.arange(0, BLOCK_C)
    mask_c = channels < CHANNELS
    acc = tl.zeros((BLOCK_R, BLOCK_C), dtype=tl.float32)
    for level in range(LEVELS):
        for point in range(POINTS):
            tap = (rows * LEVELS + level) * POINTS + point
            attn, fx, fy, row, line, in00, in01, in10, in11 = _tap(
                shapes_ptr,
                starts_ptr,
                loc_ptr,
                attn_ptr,
                row_mask,
                batch,
                head,
                total,
                heads,
                tap,
                level,
            )
            top = _gather(value_ptr, row, in00, channels, mask_c, CHANNELS) * (1 - fx)[:, None]
            top += _gather(value_ptr, row + heads, in01, channels, mask_c, CHANNELS) * fx[:, None]
            bottom = _gather(value_ptr, row + line, in10, channels, mask_c, CHANNELS) * (1 - fx)[:, None]
            bottom += _gather(value_ptr, row + line + heads, in11, channels, mask_c, CHANNELS) * fx[:, None]
            acc += top * (attn * (1 - fy))[:, None] + bottom * (attn * fy)[:, None]
    out_offsets = rows[:, None].to(tl.int64) * CHANNELS + channels[None, :]
    tl.store(out_ptr + out_offsets, acc, mask=row_mask[:, None] & mask_c[None, :])


@triton.jit
def _backward_kernel(
    value_ptr,
    shapes_ptr,
    starts_ptr,
    loc_ptr,
    attn_ptr,
    grad_out_ptr,
    grad_value_ptr,
    grad_loc_ptr,
    grad_attn_ptr,
    num_rows,
    num_queries,
    total,
    heads,
    CHANNELS: tl.constexpr,
    LEVELS: tl.constexpr,
    POINTS: tl.constexpr,
    BLOCK_R: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    row_mask = rows < num_rows
    batch = rows // (num_queries * heads)
    head = rows % heads
    channels = tl.arange(0, BLOCK_C)
    mask_c = channels < CHANNELS
    out_offsets = rows[:, None].to(tl.int64) * CHANNELS + channels[None, :]
    grad = tl.load(grad_out_ptr + out_offsets, mask=row_mask[:, None] & mask_c[None, :], other=0.0)
    grad = grad.to(tl.float32)
    for level in range(LEVELS):
        for point in range(POINTS):
            tap = (rows * LEVELS + level) * POINTS + point
            attn, fx, fy, row, line, in00, in01, in10, in11 = _tap(
                shapes_ptr,
                starts_ptr,
                loc_ptr,
                attn_ptr,
                row_mask,
                batch,
                head,
                total,
                heads,
                tap,
                level,
            )
            # <corner value, grad>: the loss derivative w.r.t. each corner's bilinear weight times attn
            d00 = tl.sum(_gather(value_ptr, row, in00, channels, mask_c, CHANNELS) * grad, 1)
            d01 = tl.sum(_gather(value_ptr, row + heads, in01, channels, mask_c, CHANNELS) * grad, 1)
            d10 = tl.sum(_gather(value_ptr, row + line, in10, channels, mask_c, CHANNELS) * grad, 1)
            d11 = tl.sum(_gather(value_ptr, row + line + heads, in11, channels, mask_c, CHANNELS) * grad, 1)
            w00, w01 = attn * (1 - fx) * (1 - fy), attn * fx * (1 - fy)
            w10, w11 = attn * (1 - fx) * fy, attn * fx * fy
            _scatter(grad_value_ptr, row, in00, grad * w00[:, None], channels, mask_c, CHANNELS)
            _scatter(grad_value_ptr, row + heads, in01, grad * w01[:, None], channels, mask_c, CHANNELS)
            _scatter(grad_value_ptr, row + line, in10, grad * w10[:, None], channels, mask_c, CHANNELS)
            _scatter(
                grad_value_ptr, row + line + heads, in11, grad * w11[:, None], channels, mask_c, CHANNELS
            )
            top = d00 * (1 - fx) + d01 * fx
            bottom = d10 * (1 - fx) + d11 * fx
            tl.store(grad_attn_ptr + tap, top * (1 - fy) + bottom * fy, mask=row_mask)
            # pixel x = location x * width - 0.5 (likewise y), so d(pixel)/d(location) is the level size
            width = tl.load(shapes_ptr + 2 * level + 1)
            height = tl.load(shapes_ptr + 2 * level)
            grad_x = attn * width * ((d01 - d00) * (1 - fy) + (d11 - d10) * fy)
            tl.store(grad_loc_ptr + 2 * tap, grad_x, mask=row_mask)
            tl.store(grad_loc_ptr + 2 * tap + 1, attn * height * (bottom - top), mask=row_mask)


def _launch(
    kernel: triton.JITFunction, value: torch.Tensor, locations: torch.Tensor, *tensors: torch.Tensor
) -> None:
    """Run `kernel` over all (batch, query, head) rows; `tensors` are its pointer arguments after value."""
    batch, total, heads, channels = value.shape
    _, num_queries, _, levels, points, _ = locations.shape
    rows = batch * num_queries * heads
    block_c = triton.next_power_of_2(channels)
    block_r = max(1, BLOCK_ELEMENTS // block_c)
    kernel[(triton.cdiv(rows, block_r),)](
        value,
        *tensors,
        rows,
        num_queries,
        total,
        heads,
        CHANNELS=channels,
        LEVELS=levels,
        POINTS=points,
        BLOCK_R=block_r,
        BLOCK_C=block_c,
        num_warps=NUM_WARPS,
    )


class _MSDeformAttnFunction(torch.autograd.Function):
    """Autograd wrapper: the backward kernel gives the value, location and attention-weight gradients."""

    @staticmethod
    def forward(ctx, value, level_shapes, level_starts, locations, weights):
        batch, _, heads, channels = value.shape
        out = value.new_empty(batch, locations.shape[1], heads, channels)
        _launch(_forward_kernel, value, locations, level_shapes, level_starts, locations, weights, out)
        ctx.save_for_backward(value, level_shapes, level_starts, locations, weights)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        value, level_shapes, level_starts, locations, weights = ctx.saved_tensors
        grad_value = torch.zeros_like(value, dtype=torch.float32)
        grad_locations = torch.empty_like(locations, dtype=torch.float32)
        grad_weights = torch.empty_like(weights, dtype=torch.float32)
        tensors = (level_shapes, level_starts, locations, weights, grad_out.contiguous())
        _launch(_backward_kernel, value, locations, *tensors, grad_value, grad_locations, grad_weights)
        grads = (
            grad_value.to(value.dtype),
            grad_locations.to(locations.dtype),
            grad_weights.to(weights.dtype),
        )
        return grads[0], None, None, grads[1], grads[2]


def ms_deform_attn_triton(
    value: torch.Tensor,
    spatial_shapes: list[tuple[int, int]],
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """Same contract and numerics as `ms_deform_attn_reference` (fp32 accumulation), differentiable.

    value `[B, S, M, D]`, sampling_locations `[B, Q, M, L, P, 2]` (x, y in [0, 1]),
    attention_weights `[B, Q, M, L, P]` -> `[B, Q, M*D]`.
    """
    batch, _, heads, channels = value.shape
    num_queries = sampling_locations.shape[1]
    level_shapes = torch.tensor(spatial_shapes, dtype=torch.int32, device=value.device)  # [L, 2] (H, W)
    level_sizes = level_shapes.prod(1)
    level_starts = (level_sizes.cumsum(0) - level_sizes).to(torch.int32)
    out = _MSDeformAttnFunction.apply(
        value.contiguous(),
        level_shapes,
        level_starts,
        sampling_locations.contiguous(),
        attention_weights.contiguous(),
    )
    return out.view(batch, num_queries, heads * channels)
