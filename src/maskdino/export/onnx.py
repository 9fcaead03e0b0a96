"""ONNX export of the raw network: normalised, padded image `[1, 3, H, W]` -> logits, boxes, mask logits.

The graph is captured with `torch.export` (the dynamo-based `torch.onnx.export`) for ONE fixed input
size: the feature-map sizes become Python ints inside the model, so a graph exported with dynamic
height/width would silently keep the traced sizes. Deformable attention is switched to its reference
path (one `grid_sample` per level), which maps onto ONNX GridSample. Post-processing (top-k, mask
resizing) stays outside the graph; see docs/export.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from maskdino.config import Config
from maskdino.data.augmentations import shortest_edge_size
from maskdino.data.transforms import Resize
from maskdino.layers.ms_deform_attn import MSDeformAttn

INPUT_NAMES = ["images"]
OUTPUT_NAMES = ["pred_logits", "pred_boxes", "pred_masks"]


class RawNetwork(nn.Module):
    """MaskDINO's network without pre- or post-processing, returning a tuple of plain tensors.

    images: `[B, 3, H, W]` normalised ((RGB * 255 - pixel_mean) / pixel_std) and zero-padded to a multiple
    of the model's size divisibility. Returns pred_logits `[B, Q, C]`, pred_boxes `[B, Q, 4]` (cx, cy, w, h)
    in [0, 1] of the padded input, pred_masks `[B, Q, H/4, W/4]` logits.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.model.run_network(images)[0]
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


def default_input_size(cfg: Config, divisor: int) -> tuple[int, int]:
    """(H, W) that holds a landscape image after the preset's test resize, rounded up to `divisor`."""
    inp = cfg.input
    return -(-inp.min_size_test // divisor) * divisor, -(-inp.max_size_test // divisor) * divisor


def prepare_input(
    image: np.ndarray, cfg: Config, height: int, width: int
) -> tuple[np.ndarray, tuple[int, int]]:
    """uint8 RGB `[H0, W0, 3]` -> the exported model's input `[1, 3, height, width]` float32, and the
    (h, w) the image occupies in it (top-left; the rest is zero padding).

    The preset's shortest-edge test resize, shrunk further when the result does not fit the canvas
    (e.g. a portrait photo in a landscape canvas), then normalisation and zero padding as `MaskDINO` does.
    """
    h0, w0 = image.shape[:2]
    h, w = shortest_edge_size(h0, w0, cfg.input.min_size_test, cfg.input.max_size_test)
    if h > height or w > width:  # e.g. a portrait photo in a landscape canvas: fit it inside instead
        scale = min(height / h0, width / w0)
        h, w = min(int(h0 * scale + 0.5), height), min(int(w0 * scale + 0.5), width)
    resized = Resize(h0, w0, h, w).apply_image(image).astype(np.float32)
    mean = np.asarray(cfg.model.pixel_mean, dtype=np.float32)
    std = np.asarray(cfg.model.pixel_std, dtype=np.float32)
    batch = np.zeros((1, 3, height, width), dtype=np.float32)
    batch[0, :, :h, :w] = ((resized - mean) / std).transpose(2, 0, 1)
    return batch, (h, w)


def export_program(model: nn.Module, example: torch.Tensor) -> torch.export.ExportedProgram:
    """`torch.export` of `RawNetwork(model)` at the size of `example` `[1, 3, H, W]` (reference attention)."""
    model.eval()
    with reference_attention(model), torch.no_grad():
        return torch.export.export(RawNetwork(model), (example,), strict=False)


def export_onnx(
    model: nn.Module, path: str | Path, height: int, width: int, opset: int | None = None
) -> Path:
    """Write `RawNetwork(model)` for input `[1, 3, height, width]` to `path` as ONNX; returns the path."""
    divisor = getattr(model, "size_divisibility", 32)
    if height % divisor or width % divisor:
        raise ValueError(
            f"input size {height}x{width} must be a multiple of the model's size divisibility {divisor}"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(1, 3, height, width, device=next(model.parameters()).device)
    program = export_program(model, example)
    onnx_program = torch.onnx.export(
        program,
        (example,),
        input_names=INPUT_NAMES,
        output_names=OUTPUT_NAMES,
        opset_version=opset,
        dynamo=True,
        verbose=False,
    )
    onnx_program.save(str(path))
    return path


def relative_l2(ours: np.ndarray, reference: np.ndarray) -> float:
    ours, reference = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
    return float(np.linalg.norm(ours - reference) / max(np.linalg.norm(reference), 1e-12))


def compare_with_pytorch(path: str | Path, model: nn.Module, batch: np.ndarray) -> dict[str, float]:
    """Run the ONNX model with onnxruntime (CPU) and `model` as PyTorch runs it (its own deformable-attention
    path) on `batch`; relative L2 per output."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_outputs = session.run(OUTPUT_NAMES, {INPUT_NAMES[0]: batch})
    device = next(model.parameters()).device
    with torch.no_grad():
        torch_outputs = RawNetwork(model.eval())(torch.from_numpy(batch).to(device))
    return {
        name: relative_l2(ours, theirs.float().cpu().numpy())
        for name, ours, theirs in zip(OUTPUT_NAMES, onnx_outputs, torch_outputs)
    }
