"""BatchNorm with fixed statistics and affine terms, as detectron2 uses for pretrained ResNets."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class FrozenBatchNorm2d(nn.Module):
    """y = x * scale + shift, scale = weight / sqrt(running_var + eps), shift = bias - running_mean * scale.

    All four tensors are buffers (saved in the state dict, never trained). Fresh instances are the
    identity: running_var starts at 1 - eps as in detectron2.
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features) - eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The eval-mode batch_norm kernel computes exactly x * scale + shift, as detectron2 does.
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, training=False, eps=self.eps
        )

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"

    @classmethod
    def from_batchnorm(cls, bn: nn.BatchNorm2d) -> FrozenBatchNorm2d:
        """A frozen copy of a (Sync)BatchNorm's current statistics and affine terms."""
        frozen = cls(bn.num_features, bn.eps)
        if bn.affine:
            frozen.weight.copy_(bn.weight.detach())
            frozen.bias.copy_(bn.bias.detach())
        frozen.running_mean.copy_(bn.running_mean)
        frozen.running_var.copy_(bn.running_var)
        return frozen


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d / SyncBatchNorm inside `module` by a FrozenBatchNorm2d (in place).

    Returns the replacement when `module` itself is a batch norm, otherwise `module`.
    """
    if isinstance(module, nn.BatchNorm2d | nn.SyncBatchNorm):
        return FrozenBatchNorm2d.from_batchnorm(module)
    for name, child in module.named_children():
        frozen = freeze_batchnorm(child)
        if frozen is not child:
            setattr(module, name, frozen)
    return module
