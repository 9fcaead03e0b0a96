"""Conv2d carrying an optional norm and activation, with the norm at `<name>.norm` as detectron2 names it."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class Conv2dNorm(nn.Conv2d):
    """`activation(norm(conv(x)))`; state-dict names `weight`, `bias`, `norm.*` match detectron2's Conv2d."""

    def __init__(
        self,
        *args,
        norm: nn.Module | None = None,
        activation: Callable[[torch.Tensor], torch.Tensor] | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.norm = norm
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x


def c2_xavier_fill(module: nn.Conv2d | nn.Linear) -> None:
    """Caffe2's XavierFill (kaiming_uniform with a=1) and zero bias, the init detectron2 uses for these convs."""
    nn.init.kaiming_uniform_(module.weight, a=1)
    if module.bias is not None:
        nn.init.constant_(module.bias, 0)
