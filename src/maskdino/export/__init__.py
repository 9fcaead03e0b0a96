"""Exporting the network for other runtimes (ONNX)."""

from maskdino.export.onnx import (
    RawNetwork,
    compare_with_pytorch,
    default_input_size,
    export_onnx,
    export_program,
    prepare_input,
)

__all__ = [
    "RawNetwork",
    "compare_with_pytorch",
    "default_input_size",
    "export_onnx",
    "export_program",
    "prepare_input",
]
