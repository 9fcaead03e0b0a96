"""Exponential moving average of the model weights (optional; solver.ema, solver.ema_decay).

Not part of the official recipe: an averaged copy that often evaluates slightly better late in training.
Floating-point parameters and buffers are averaged; integer buffers are copied.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEMA:
    """`module` holds ema = decay * ema + (1 - decay) * weights, updated after every optimiser step."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"solver.ema_decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        self.module.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        current = model.state_dict()
        for name, averaged in self.module.state_dict().items():
            value = current[name].detach()
            if averaged.is_floating_point():
                averaged.lerp_(value.to(averaged.dtype), 1.0 - self.decay)
            else:
                averaged.copy_(value)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state, strict=True)
