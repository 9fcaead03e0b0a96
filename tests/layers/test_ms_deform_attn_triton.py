"""The Triton kernels against the grid_sample reference: on CPU through Triton's interpreter, and on a GPU
when there is one.

`TRITON_INTERPRET=1` only takes effect if set before Triton is imported, so the interpreter check runs this
module as a child process (`python -m tests.layers.test_ms_deform_attn_triton`), which prints the relative
errors of every case as JSON for the test to assert on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from maskdino.layers.ms_deform_attn import ms_deform_attn_reference
from tests.layers.test_ms_deform_attn_fast import CASES, TOLERANCE, make_inputs, relative_l2

REPO = Path(__file__).resolve().parents[2]

# tiny, because the interpreter runs each program in numpy; the fp16 case checks the fp32 accumulation
INTERPRETER_CASES = {
    "batch2_1xN": CASES["batch2_1xN"],
    "single_Nx1": CASES["single_Nx1"],
    "far_outside": {**CASES["single_Nx1"], "spread": 3.0},
    "fp16_value": {**CASES["batch2_1xN"], "dtype": torch.float16},
}


def compare_with_reference(device: str, **case) -> dict[str, float]:
    """Relative L2 of the Triton output and gradients against the reference (run in fp32 on the same
    inputs); the triton inputs are non-contiguous views to exercise the wrapper's layout handling."""
    from maskdino.layers.ms_deform_attn_triton import ms_deform_attn_triton

    value, shapes, locations, weights = (
        t.to(device) if torch.is_tensor(t) else t for t in make_inputs(**case)
    )
    grad_out = torch.randn(value.shape[0], locations.shape[1], value.shape[2] * value.shape[3], device=device)
    results = {}
    for name, attention in (("triton", ms_deform_attn_triton), ("reference", ms_deform_attn_reference)):
        leaves = [t.detach().clone().requires_grad_() for t in (value, locations, weights)]
        if name == "triton":
            args = (leaves[0].transpose(1, 2).contiguous().transpose(1, 2), shapes, leaves[1], leaves[2])
        else:
            args = (leaves[0].float(), shapes, leaves[1].float(), leaves[2].float())
        out = attention(*args)
        results[name] = (out, *torch.autograd.grad(out, leaves, grad_out.to(out.dtype)))
    names = ("out", "grad_value", "grad_locations", "grad_weights")
    return {n: relative_l2(t, r) for n, t, r in zip(names, results["triton"], results["reference"])}


def interpreter_report() -> dict:
    """What the child process prints: per case the relative errors, or why the check cannot run."""
    try:
        from triton.runtime.interpreter import InterpretedFunction

        from maskdino.layers import ms_deform_attn_triton
    except ImportError as error:
        return {"skip": f"Triton's interpreter is unavailable: {error}"}
    if not isinstance(ms_deform_attn_triton._forward_kernel, InterpretedFunction):
        return {"skip": "TRITON_INTERPRET=1 did not switch Triton to its interpreter"}
    return {name: compare_with_reference("cpu", **case) for name, case in INTERPRETER_CASES.items()}


def test_kernels_in_triton_interpreter() -> None:
    pytest.importorskip("triton", reason="Triton is not installed")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    child = [sys.executable, "-m", "tests.layers.test_ms_deform_attn_triton"]
    result = subprocess.run(child, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if "skip" in report:
        pytest.skip(report["skip"])
    assert set(report) == set(INTERPRETER_CASES)
    for case, errors in report.items():
        tolerance = 1e-3 if case == "fp16_value" else TOLERANCE  # fp16 output and gradient rounding
        for name, error in errors.items():
            assert error <= tolerance, (case, name, error)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("case", CASES)
def test_kernels_on_gpu(case: str) -> None:
    pytest.importorskip("triton", reason="Triton is not installed")
    for name, error in compare_with_reference("cuda", **CASES[case]).items():
        assert error <= TOLERANCE, name


if __name__ == "__main__":
    print(json.dumps(interpreter_report()))
