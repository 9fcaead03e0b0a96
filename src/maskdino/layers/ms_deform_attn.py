"""Multi-scale deformable attention (Zhu et al., Deformable DETR) in plain PyTorch.

`ms_deform_attn_reference` is the readable definition: one bilinear `grid_sample` per feature level
(zeros padding, align_corners=False, grid = 2 * location - 1), weighted by the attention weights. It is
the same arithmetic as the official CUDA op. Faster paths (see `ms_deform_attn_dispatch`) must agree with
it to fp32 rounding.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from maskdino.layers.ms_deform_attn_fast import ms_deform_attn_fast

SpatialShapes = list[tuple[int, int]]


def ms_deform_attn_reference(
    value: torch.Tensor,
    spatial_shapes: SpatialShapes,
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """Sample each level bilinearly and take the attention-weighted sum.

    value: `[B, S, M, D]` (S = sum of H*W over levels, M heads of D channels)
    sampling_locations: `[B, Q, M, L, P, 2]` as (x, y) in [0, 1] of each level
    attention_weights: `[B, Q, M, L, P]`
    returns `[B, Q, M*D]`
    """
    batch, _, heads, channels = value.shape
    _, num_queries, _, levels, points, _ = sampling_locations.shape
    value_per_level = value.split([h * w for h, w in spatial_shapes], dim=1)
    grids = 2 * sampling_locations - 1
    sampled = []
    for level, (h, w) in enumerate(spatial_shapes):
        # [B, H*W, M, D] -> [B*M, D, H, W]
        value_l = value_per_level[level].flatten(2).transpose(1, 2).reshape(batch * heads, channels, h, w)
        # [B, Q, M, P, 2] -> [B*M, Q, P, 2]
        grid_l = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        # [B*M, D, Q, P]
        sampled.append(
            F.grid_sample(value_l, grid_l, mode="bilinear", padding_mode="zeros", align_corners=False)
        )
    # [B, Q, M, L, P] -> [B*M, 1, Q, L*P]
    weights = attention_weights.transpose(1, 2).reshape(batch * heads, 1, num_queries, levels * points)
    # [B*M, D, Q, L*P] -> [B, M*D, Q]
    out = (
        (torch.stack(sampled, dim=-2).flatten(-2) * weights)
        .sum(-1)
        .view(batch, heads * channels, num_queries)
    )
    return out.transpose(1, 2).contiguous()


def level_sizes_xy(spatial_shapes: SpatialShapes, like: torch.Tensor) -> torch.Tensor:
    """`[L, 2]` (W, H) of each level as a tensor of `like`'s dtype and device.

    Built from scalars with `torch.full` rather than `torch.tensor`, so that under `torch.export` the sizes
    stay symbolic (`torch.tensor` of symbolic sizes would bake the traced values into the graph).
    """
    return torch.stack([torch.stack([like.new_full((), w), like.new_full((), h)]) for h, w in spatial_shapes])


def ms_deform_attn_dispatch(
    value: torch.Tensor,
    spatial_shapes: SpatialShapes,
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
    impl: str = "auto",
) -> torch.Tensor:
    """Run the implementation named by `impl`; all agree with the reference to fp32 rounding.

    "reference": `ms_deform_attn_reference` (what ONNX export uses). "fast": `ms_deform_attn_fast`, one
    embedding-bag gather-sum on any device. "triton": the Triton kernels for CUDA (needs Triton).
    "auto": reference while an ONNX export traces, triton for CUDA tensors when Triton imports (float64
    excepted: the kernels accumulate in fp32), the fast path otherwise.
    """
    if impl == "auto" and torch.onnx.is_in_onnx_export():
        impl = "reference"
    if impl == "reference":
        return ms_deform_attn_reference(value, spatial_shapes, sampling_locations, attention_weights)
    if impl == "triton" or (impl == "auto" and value.is_cuda and value.dtype != torch.float64):
        try:
            from maskdino.layers.ms_deform_attn_triton import ms_deform_attn_triton
        except ImportError:
            if impl == "triton":
                raise
        else:
            return ms_deform_attn_triton(value, spatial_shapes, sampling_locations, attention_weights)
    if impl in ("auto", "fast"):
        return ms_deform_attn_fast(value, spatial_shapes, sampling_locations, attention_weights)
    raise ValueError(
        f"unknown deformable-attention implementation {impl!r}; use 'auto', 'reference', 'fast' or 'triton'"
    )


class MSDeformAttn(nn.Module):
    """Deformable attention over `n_levels` feature maps; parameter names follow the official module.

    Reference points are (x, y) in [0, 1] (encoder: pixel centres) or boxes (cx, cy, w, h) (decoder); with
    boxes, offsets are scaled by half the box size divided by the number of points.
    """

    def __init__(self, d_model: int = 256, n_levels: int = 4, n_heads: int = 8, n_points: int = 4):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.d_model, self.n_levels, self.n_heads, self.n_points = d_model, n_levels, n_heads, n_points
        self.impl = "auto"
        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Deformable-DETR init: zero offset weights, offsets biased to a ring of directions per head."""
        nn.init.constant_(self.sampling_offsets.weight, 0.0)
        thetas = torch.arange(self.n_heads, dtype=torch.float32) * (2.0 * torch.pi / self.n_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = grid / grid.abs().max(-1, keepdim=True)[0]
        grid = grid.view(self.n_heads, 1, 1, 2).repeat(1, self.n_levels, self.n_points, 1)
        grid = grid * torch.arange(1, self.n_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.reshape(-1))
        nn.init.constant_(self.attention_weights.weight, 0.0)
        nn.init.constant_(self.attention_weights.bias, 0.0)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.constant_(self.value_proj.bias, 0.0)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.constant_(self.output_proj.bias, 0.0)

    def forward(
        self,
        query: torch.Tensor,
        reference_points: torch.Tensor,
        value: torch.Tensor,
        spatial_shapes: SpatialShapes,
        padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """query `[B, Q, C]`, reference_points `[B, Q, L, 2|4]`, value `[B, S, C]` -> `[B, Q, C]`."""
        batch, num_queries, _ = query.shape
        heads, levels, points = self.n_heads, self.n_levels, self.n_points
        value = self.value_proj(value)
        if padding_mask is not None:
            value = value.masked_fill(padding_mask[..., None], 0.0)
        value = value.view(batch, value.shape[1], heads, self.d_model // heads)  # [B, S, M, D]
        offsets = self.sampling_offsets(query).view(batch, num_queries, heads, levels, points, 2)
        weights = self.attention_weights(query).view(batch, num_queries, heads, levels * points)
        weights = weights.softmax(-1).view(batch, num_queries, heads, levels, points)
        if reference_points.shape[-1] == 2:
            # offsets are in pixels of each level: divide by (W, H)
            normalizer = level_sizes_xy(spatial_shapes, query)  # [L, 2]
            locations = (
                reference_points[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None]
            )
        elif reference_points.shape[-1] == 4:
            centers = reference_points[:, :, None, :, None, :2]
            sizes = reference_points[:, :, None, :, None, 2:]
            locations = centers + offsets / points * sizes * 0.5
        else:
            raise ValueError(f"reference_points must end in 2 or 4 coordinates, got {reference_points.shape}")
        out = ms_deform_attn_dispatch(value, spatial_shapes, locations, weights, self.impl)
        return self.output_proj(out)
