"""Checking an exported network against PyTorch on a real photo at three input shapes.

The shapes: the photo after the preset's test resize, the photo turned 90 degrees (the other
orientation), and both in one batch of 2 (padded to their common size). Differences are relative L2 per
output. A float16 graph may rank near-tied queries in another order (the decoder treats its queries as a
set) and may select another token where two tie at the top-k boundary, so its rows are first matched to
the reference's by nearest class logits, and compared where matched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from maskdino.config import Config
from maskdino.export.numpy_processing import preprocess
from maskdino.export.onnx import INPUT_NAMES, OUTPUT_NAMES, RawNetwork


def verification_batches(photo: np.ndarray, cfg: Config, divisor: int) -> list[np.ndarray]:
    """uint8 RGB `[H, W, 3]` -> the three network inputs (`[1, 3, ...]`, turned, `[2, 3, ...]`)."""
    inp, model = cfg.input, cfg.model
    first, _ = preprocess(
        photo, inp.min_size_test, inp.max_size_test, model.pixel_mean, model.pixel_std, divisor
    )
    turned, _ = preprocess(
        np.ascontiguousarray(np.rot90(photo)),
        inp.min_size_test,
        inp.max_size_test,
        model.pixel_mean,
        model.pixel_std,
        divisor,
    )
    height, width = max(first.shape[2], turned.shape[2]), max(first.shape[3], turned.shape[3])
    pair = np.zeros((2, 3, height, width), np.float32)
    pair[0, :, : first.shape[2], : first.shape[3]] = first[0]
    pair[1, :, : turned.shape[2], : turned.shape[3]] = turned[0]
    return [first, turned, pair]


def relative_l2(ours: np.ndarray, reference: np.ndarray) -> float:
    ours, reference = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
    return float(np.linalg.norm(ours - reference) / max(np.linalg.norm(reference), 1e-12))


def match_queries(reference_logits: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image, the reference row nearest to each row of `logits` by class logits (`[B, Q]`), and
    whether the row is matched (`[B, Q]` bool): a reference row claimed by several rows matches only the
    nearest; the others were selected by one run only (a near tie at the top-k boundary)."""
    distances = ((reference_logits[:, :, None, :] - logits[:, None, :, :]) ** 2).sum(-1)  # [B, Q_ref, Q]
    nearest = distances.argmin(1)
    best = np.take_along_axis(distances, nearest[:, None, :], 1)[:, 0]  # [B, Q]
    matched = np.ones_like(nearest, dtype=bool)
    for b, row in enumerate(nearest):
        for q in range(len(row)):
            rivals = np.flatnonzero(row == row[q])
            matched[b, q] = best[b, q] <= best[b, rivals].min()
    return nearest, matched


def compare(outputs: list[np.ndarray], reference: list[np.ndarray], match: bool = False) -> dict[str, float]:
    """Relative L2 per output name. With `match`, rows are first paired with `match_queries` and compared
    where matched; `unmatched_queries` counts the others (over the batch)."""
    if not match:
        return {name: relative_l2(o, r) for name, o, r in zip(OUTPUT_NAMES, outputs, reference)}
    nearest, matched = match_queries(reference[0], outputs[0])
    batch, query = np.nonzero(matched)
    errors = {
        name: relative_l2(o[batch, query], r[batch, nearest[batch, query]])
        for name, o, r in zip(OUTPUT_NAMES, outputs, reference)
    }
    errors["unmatched_queries"] = float((~matched).sum())
    return errors


def pytorch_outputs(model: nn.Module, batch: np.ndarray) -> list[np.ndarray]:
    """`model.network` as eager PyTorch runs it (its own deformable-attention path)."""
    device = next(model.parameters()).device
    with torch.no_grad():
        outputs = RawNetwork(model.eval())(torch.from_numpy(batch).to(device))
    return [o.float().cpu().numpy() for o in outputs]


def compare_with_pytorch(
    path: str | Path, model: nn.Module, batches: list[np.ndarray], match: bool = False
) -> list[dict[str, float]]:
    """onnxruntime (CPU) vs PyTorch on each `[B, 3, H, W]` batch: relative L2 per output."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [
        compare(session.run(OUTPUT_NAMES, {INPUT_NAMES[0]: batch}), pytorch_outputs(model, batch), match)
        for batch in batches
    ]
