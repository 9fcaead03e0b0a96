"""Export of the network (`MaskDINO.network`) with dynamic batch, height and width: `torch.export` and ONNX.

Input: `images` `[B, 3, H, W]`, RGB scaled to 0-255, normalised with the model's pixel mean/std and
zero-padded at the bottom/right to multiples of the size divisibility (`numpy_processing.preprocess`).
Outputs: `pred_logits` `[B, Q, C]`, `pred_boxes` `[B, Q, 4]` (cx, cy, w, h) in [0, 1] of the padded input,
`pred_masks` `[B, Q, H/4, W/4]` mask logits. The model keeps its feature-map sizes symbolic while it is
traced, so one graph serves every size. Deformable attention is switched to its reference path (one
`GridSample` per level) while tracing; eager PyTorch keeps its fast CPU/Triton paths.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from maskdino.layers.ms_deform_attn import MSDeformAttn

INPUT_NAMES = ["images"]
OUTPUT_NAMES = ["pred_logits", "pred_boxes", "pred_masks"]
MAX_SIDE = 4096  # largest exported height / width
# the exporter's loggers: at INFO they print hundreds of lines per export
EXPORTER_LOGGERS = ("onnx_ir", "onnxscript", "torch.onnx")


class RawNetwork(nn.Module):
    """`model.network` returning a tuple of plain tensors (pred_logits, pred_boxes, pred_masks)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.model.network(images)
        return out.pred_logits, out.pred_boxes, out.pred_masks


@contextlib.contextmanager
def reference_attention(model: nn.Module) -> Iterator[None]:
    """Run every deformable attention of `model` on the reference (grid_sample) path, then restore."""
    modules = [m for m in model.modules() if isinstance(m, MSDeformAttn)]
    saved = [m.impl for m in modules]
    for m in modules:
        m.impl = "reference"
    try:
        yield
    finally:
        for m, impl in zip(modules, saved):
            m.impl = impl


@contextlib.contextmanager
def quiet_exporter(verbose: bool = False) -> Iterator[None]:
    """Keep the exporter's INFO and WARNING logging out of the output unless `verbose`."""
    loggers = [logging.getLogger(name) for name in EXPORTER_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG if verbose else logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def min_side(model: nn.Module) -> int:
    """The smallest exportable height/width, a multiple of the size divisibility: every feature level
    at least 2 x 2 (a level of size 1 would be fixed in the graph: broadcasting treats 1 apart) and at
    least as many encoder tokens as query selection keeps."""
    pixel_decoder = model.pixel_decoder
    shapes = model.backbone.output_shape()
    strides = [shapes[f][1] for f in pixel_decoder.encoder_in_features]
    strides += [max(strides) * 2 ** (i + 1) for i in range(pixel_decoder.num_extra_levels)]
    decoder = model.cfg.decoder
    selected = max(
        decoder.num_queries, decoder.first_selected_queries if decoder.variant == "dimaskdino" else 0
    )
    side = model.size_divisibility
    while min(-(-side // s) for s in strides) < 2 or sum((-(-side // s)) ** 2 for s in strides) < selected:
        side += model.size_divisibility
    return side


def dynamic_shapes(model: nn.Module) -> dict:
    """`torch.export` dynamic shapes of the input: any batch, height and width multiples of the size
    divisibility between `min_side(model)` and `MAX_SIDE`."""
    divisor = model.size_divisibility
    low, high = min_side(model) // divisor, MAX_SIDE // divisor
    batch = torch.export.Dim("batch", min=1, max=1024)
    height = torch.export.Dim("height_blocks", min=low, max=high)
    width = torch.export.Dim("width_blocks", min=low, max=high)
    return {"images": {0: batch, 2: divisor * height, 3: divisor * width}}


def example_input(model: nn.Module) -> torch.Tensor:
    """A `[2, 3, H, W]` tracing input, H != W, both above `min_side` (batch 1 or equal sides would be
    specialised by the tracer)."""
    side = min_side(model)
    divisor = model.size_divisibility
    return torch.zeros(2, 3, side + divisor, side + 2 * divisor, device=next(model.parameters()).device)


def export_program(model: nn.Module) -> torch.export.ExportedProgram:
    """`torch.export` of `RawNetwork(model)` with dynamic batch, height and width (reference attention)."""
    model.eval()
    with reference_attention(model), torch.no_grad():
        return torch.export.export(
            RawNetwork(model), (example_input(model),), dynamic_shapes=dynamic_shapes(model), strict=False
        )


def export_onnx(
    model: nn.Module,
    path: str | Path,
    opset: int | None = None,
    fp16: bool = False,
    program: torch.export.ExportedProgram | None = None,
    verbose: bool = False,
) -> Path:
    """Write the network as ONNX with dynamic batch, height and width; returns the path.

    program: an `export_program(model)` result to convert (traced here when None). fp16: store weights
    and compute in float16 (input and outputs stay float32, see `float16.py`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    program = program if program is not None else export_program(model)
    with quiet_exporter(verbose):
        onnx_program = torch.onnx.export(
            program,
            (example_input(model),),
            input_names=INPUT_NAMES,
            output_names=OUTPUT_NAMES,
            opset_version=opset,
            dynamo=True,
            verbose=verbose,
        )
    proto = name_dynamic_axes(onnx_program.model_proto, model.size_divisibility)
    if fp16:
        from maskdino.export.float16 import convert_to_float16  # needs the optional onnx package

        proto = convert_to_float16(proto)
    import onnx

    onnx.save(proto, str(path))
    return path


def name_dynamic_axes(proto, divisor: int):
    """Rename the tracer's symbols in the graph's inputs and outputs: `batch`, `height`, `width`."""
    image = proto.graph.input[0].type.tensor_type.shape.dim
    names = {image[0].dim_param: "batch", image[2].dim_param: "height", image[3].dim_param: "width"}
    symbols = {name.split("*")[-1]: new for name, new in names.items()}  # "32*s39" -> "s39"
    quarter = {f"{divisor // 4}*{symbol}": f"{new}/4" for symbol, new in symbols.items() if new != "batch"}
    for value in [*proto.graph.input, *proto.graph.output]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.dim_param = names.get(dim.dim_param, quarter.get(dim.dim_param, dim.dim_param))
    return proto
