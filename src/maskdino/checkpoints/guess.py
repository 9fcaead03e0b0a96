"""Which preset does a checkpoint fit? Compare its (name, shape) pairs with the state dict of every preset
of the same architecture, built on the meta device so nothing is allocated."""

from __future__ import annotations

from functools import cache

import torch


@cache
def preset_shapes(name: str) -> dict[str, tuple[int, ...]]:
    from maskdino.build import build_model
    from maskdino.presets import get_config

    with torch.device("meta"):
        model = build_model(get_config(name))
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def guess_preset(shapes: dict[str, tuple[int, ...]]) -> str | None:
    """The preset whose state dict shares the most (name, shape) pairs with `shapes` (None if none fit)."""
    from maskdino.presets import PRESETS

    # Mask R-CNN heads (MIMDet, Benchmarking) or Mask DINO's: only presets of that architecture can fit
    architecture = "mimdet_mask_rcnn" if any(k.startswith("roi_heads.") for k in shapes) else "maskdino"
    best, best_score = None, 0.0
    items = set(shapes.items())
    for name, info in PRESETS.items():
        if info.build().model.architecture != architecture:
            continue
        try:
            expected = set(preset_shapes(name).items())
        except (ValueError, NotImplementedError):
            continue
        score = len(items & expected) / max(len(items | expected), 1)
        if score > best_score:
            best, best_score = name, score
    return best if best_score > 0.5 else None
