"""The embedding-bag deformable attention against the grid_sample reference: outputs and gradients."""

from __future__ import annotations

import pytest
import torch

from maskdino.layers.ms_deform_attn import ms_deform_attn_reference
from maskdino.layers.ms_deform_attn_fast import ms_deform_attn_fast

TOLERANCE = 1e-5  # relative L2 in fp32, the bar for every fast path

# batch > 1 with Q != S and a 1xN level; an Nx1-only map; a scaled-down encoder (Q = S, M=8, D=32, L=P=4)
CASES = {
    "batch2_1xN": {"batch": 2, "shapes": [(6, 8), (3, 4), (1, 5)], "queries": 7, "heads": 3, "channels": 5},
    "single_Nx1": {"batch": 1, "shapes": [(4, 1)], "queries": 6, "heads": 1, "channels": 2, "points": 3},
    "encoder": {
        "batch": 1,
        "shapes": [(10, 12), (5, 6), (3, 3), (2, 1)],
        "heads": 8,
        "channels": 32,
        "points": 4,
    },
}


def make_inputs(
    batch: int,
    shapes: list[tuple[int, int]],
    heads: int,
    channels: int,
    queries: int | None = None,
    points: int = 2,
    spread: float = 0.2,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> tuple[torch.Tensor, list[tuple[int, int]], torch.Tensor, torch.Tensor]:
    """Random (value, shapes, locations, weights); locations reach `spread` outside [0, 1]; Q defaults to S."""
    generator = torch.Generator().manual_seed(seed)
    total = sum(h * w for h, w in shapes)
    queries = queries or total
    value = torch.randn(batch, total, heads, channels, generator=generator, dtype=dtype)
    location_shape = (batch, queries, heads, len(shapes), points, 2)
    locations = torch.rand(location_shape, generator=generator, dtype=dtype) * (1 + 2 * spread) - spread
    weights = torch.rand(location_shape[:-1], generator=generator, dtype=dtype)
    return value, shapes, locations, weights


def relative_l2(actual: torch.Tensor, expected: torch.Tensor) -> float:
    expected = expected.double()
    return ((actual.double() - expected).norm() / expected.norm()).item()


def border_locations(shapes: list[tuple[int, int]]) -> torch.Tensor:
    """`[1, 64, 1, L, 1, 2]`: per level, every (x, y) pair of the map edges (0, 1), the first and last pixel
    centres and edges, the middle, and half a pixel outside either side."""
    per_level = []
    for h, w in shapes:
        axes = [torch.tensor([0, 1, 0.5 / n, 1 - 0.5 / n, 1 / n, -0.5 / n, 1 + 0.5 / n, 0.5]) for n in (w, h)]
        per_level.append(torch.cartesian_prod(*axes))  # [64, 2]
    return torch.stack(per_level, 1)[None, :, None, :, None, :]


@pytest.mark.parametrize("case", CASES)
def test_forward_matches_reference(case: str) -> None:
    inputs = make_inputs(**CASES[case])
    assert relative_l2(ms_deform_attn_fast(*inputs), ms_deform_attn_reference(*inputs)) <= TOLERANCE


@pytest.mark.parametrize("case", CASES)
def test_gradients_match_reference(case: str) -> None:
    value, shapes, locations, weights = make_inputs(**CASES[case])
    grads = []
    for attention in (ms_deform_attn_fast, ms_deform_attn_reference):
        leaves = [t.clone().requires_grad_() for t in (value, locations, weights)]
        out = attention(leaves[0], shapes, leaves[1], leaves[2])
        grads.append(torch.autograd.grad(out, leaves, torch.linspace(-1, 1, out.numel()).view_as(out)))
    for name, fast, reference in zip(("value", "locations", "weights"), *grads):
        assert relative_l2(fast, reference) <= TOLERANCE, name


def test_map_borders_and_half_pixel_outside() -> None:
    shapes = [(4, 5), (1, 3), (2, 1)]
    value = torch.randn(1, 4 * 5 + 3 + 2, 1, 4, generator=torch.Generator().manual_seed(1))
    locations = border_locations(shapes)
    weights = torch.rand(locations.shape[:-1], generator=torch.Generator().manual_seed(2))
    grads = []
    for attention in (ms_deform_attn_fast, ms_deform_attn_reference):
        leaves = [value.clone().requires_grad_(), weights.clone().requires_grad_()]
        out = attention(leaves[0], shapes, locations, leaves[1])
        grads.append((out, *torch.autograd.grad(out.square().sum(), leaves)))
    # the location gradient is not compared: on a pixel centre it is a one-sided derivative by convention
    for name, fast, reference in zip(("out", "value", "weights"), *grads):
        assert relative_l2(fast, reference) <= TOLERANCE, name


def test_locations_outside_every_level_give_zero() -> None:
    value, shapes, locations, weights = make_inputs(**CASES["batch2_1xN"])
    outside = torch.where(locations > 0.5, 1 + 0.5 + locations, -0.5 - locations)  # > 1/2 pixel beyond
    out = ms_deform_attn_fast(value, shapes, outside, weights)
    assert torch.equal(out, torch.zeros_like(out))
    assert torch.equal(ms_deform_attn_reference(value, shapes, outside, weights), out)


def test_non_contiguous_inputs() -> None:
    value, shapes, locations, weights = make_inputs(**CASES["batch2_1xN"])
    strided_value = value.transpose(1, 2).contiguous().transpose(1, 2)  # stored as [B, M, S, D]
    strided_locations = torch.stack([locations, -locations], -2)[..., 0, :]  # every other pair
    strided_weights = torch.stack([weights, -weights], -1)[..., 0]  # every other element
    assert not any(t.is_contiguous() for t in (strided_value, strided_locations, strided_weights))
    out = ms_deform_attn_fast(strided_value, shapes, strided_locations, strided_weights)
    assert relative_l2(out, ms_deform_attn_reference(value, shapes, locations, weights)) <= TOLERANCE


def test_row_chunks_do_not_change_the_result() -> None:
    inputs = make_inputs(**CASES["encoder"])  # 161 queries x 8 heads = 1288 rows
    assert torch.equal(ms_deform_attn_fast(*inputs, chunk_rows=100), ms_deform_attn_fast(*inputs))


def test_gradcheck_float64() -> None:
    value, shapes, locations, weights = make_inputs(
        batch=2, shapes=[(3, 4), (1, 3)], queries=3, heads=2, channels=3, dtype=torch.float64
    )
    leaves = tuple(t.requires_grad_() for t in (value, locations, weights))
    assert torch.autograd.gradcheck(lambda v, x, a: ms_deform_attn_fast(v, shapes, x, a), leaves)


@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float16, 1e-3), (torch.bfloat16, 8e-3)])
def test_half_precision_is_computed_in_fp32(dtype: torch.dtype, tolerance: float) -> None:
    value, shapes, locations, weights = make_inputs(**CASES["batch2_1xN"], dtype=dtype)
    out = ms_deform_attn_fast(value, shapes, locations, weights)
    expected = ms_deform_attn_reference(value.float(), shapes, locations.float(), weights.float())
    assert out.dtype == dtype
    # only the final rounding to `dtype` is lost: about half a unit in the last place
    assert relative_l2(out, expected) <= tolerance
