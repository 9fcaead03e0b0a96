"""Exporting the network for other runtimes: `torch.export` and ONNX with dynamic batch, height and width,
and the numpy pre- and post-processing that goes with them (`numpy_processing`, no torch needed)."""

from maskdino.export.onnx import RawNetwork, export_onnx, export_program, min_side
from maskdino.export.verify import compare_with_pytorch, verification_batches

__all__ = [
    "RawNetwork",
    "compare_with_pytorch",
    "export_onnx",
    "export_program",
    "min_side",
    "verification_batches",
]
