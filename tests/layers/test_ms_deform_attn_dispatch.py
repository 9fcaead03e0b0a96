"""Choosing a deformable-attention implementation: auto on CPU, the module, torch.compile, ONNX export."""

from __future__ import annotations

import io
import sys
import warnings

import pytest
import torch

from maskdino.layers.ms_deform_attn import MSDeformAttn, ms_deform_attn_dispatch, ms_deform_attn_reference
from maskdino.layers.ms_deform_attn_fast import ms_deform_attn_fast
from tests.layers.test_ms_deform_attn_fast import CASES, TOLERANCE, make_inputs, relative_l2


def test_auto_on_cpu_is_the_fast_path() -> None:
    inputs = make_inputs(**CASES["batch2_1xN"])
    out = ms_deform_attn_dispatch(*inputs)
    assert torch.equal(out, ms_deform_attn_fast(*inputs))
    assert torch.equal(ms_deform_attn_dispatch(*inputs, impl="reference"), ms_deform_attn_reference(*inputs))


def test_unknown_impl_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown deformable-attention implementation 'cuda'"):
        ms_deform_attn_dispatch(*make_inputs(**CASES["single_Nx1"]), impl="cuda")


def test_without_triton_auto_still_runs_and_triton_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "triton", None)  # makes `import triton` raise ImportError
    monkeypatch.delitem(sys.modules, "maskdino.layers.ms_deform_attn_triton", raising=False)
    inputs = make_inputs(**CASES["single_Nx1"])
    assert torch.equal(ms_deform_attn_dispatch(*inputs), ms_deform_attn_fast(*inputs))
    with pytest.raises(ImportError, match="triton"):
        ms_deform_attn_dispatch(*inputs, impl="triton")


@pytest.mark.parametrize("coordinates", [2, 4])  # encoder points, decoder boxes
def test_module_auto_matches_reference(coordinates: int) -> None:
    torch.manual_seed(0)
    attention = MSDeformAttn(d_model=32, n_levels=3, n_heads=4, n_points=2)
    for layer in (attention.sampling_offsets, attention.attention_weights):
        torch.nn.init.normal_(layer.weight, std=0.5)  # the default init gives uniform weights, no offsets
    shapes = [(6, 8), (3, 4), (1, 5)]
    query = torch.randn(2, 9, 32)
    value = torch.randn(2, sum(h * w for h, w in shapes), 32)
    reference_points = torch.rand(2, 9, 3, coordinates)
    outputs = {}
    for impl in ("auto", "reference"):
        attention.impl = impl
        outputs[impl] = attention(query, reference_points, value, shapes)
    assert relative_l2(outputs["auto"], outputs["reference"]) <= TOLERANCE


def test_torch_compile_of_the_cpu_path() -> None:
    value, shapes, locations, weights = make_inputs(**CASES["batch2_1xN"])
    # aot_eager: dynamo + AOT autograd without a C++ build, so the test stays fast; inductor also works
    compiled = torch.compile(
        lambda v, x, a: ms_deform_attn_dispatch(v, shapes, x, a), backend="aot_eager", fullgraph=True
    )
    results = []
    for attention in (compiled, lambda v, x, a: ms_deform_attn_reference(v, shapes, x, a)):
        leaves = [t.clone().requires_grad_() for t in (value, locations, weights)]
        out = attention(*leaves)
        results.append((out, *torch.autograd.grad(out.square().sum(), leaves)))
    for name, compiled_result, reference in zip(("out", "value", "locations", "weights"), *results):
        assert relative_l2(compiled_result, reference) <= TOLERANCE, name


def test_onnx_export_traces_the_reference() -> None:
    onnx = pytest.importorskip("onnx")
    value, shapes, locations, weights = make_inputs(**CASES["single_Nx1"])

    class Attention(torch.nn.Module):
        def forward(self, v: torch.Tensor, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
            return ms_deform_attn_dispatch(v, shapes, x, a)  # impl="auto"

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(Attention(), (value, locations, weights), buffer, dynamo=False, opset_version=17)
    ops = {node.op_type for node in onnx.load_from_string(buffer.getvalue()).graph.node}
    assert "GridSample" in ops


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_auto_on_cuda_is_triton() -> None:
    triton_module = pytest.importorskip(
        "maskdino.layers.ms_deform_attn_triton", reason="Triton is not installed"
    )
    inputs = [t.cuda() if torch.is_tensor(t) else t for t in make_inputs(**CASES["encoder"])]
    assert torch.equal(ms_deform_attn_dispatch(*inputs), triton_module.ms_deform_attn_triton(*inputs))
