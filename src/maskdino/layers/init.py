"""The official initialisation of the Transformer stacks (Deformable DETR / DINO conventions).

The official encoder and decoder build one layer, deep-copy it for every depth, then redraw every
weight matrix with `xavier_uniform_` and reset each deformable attention. Vectors (biases) are not
redrawn, so at initialisation every layer of a stack holds the same biases: those the prototype layer
drew with PyTorch's default `nn.Linear` init.
"""

from __future__ import annotations

import copy

from torch import nn

from maskdino.layers.ms_deform_attn import MSDeformAttn


def cloned_layers(layer: nn.Module, num_layers: int) -> nn.ModuleList:
    """`num_layers` independent deep copies of `layer` (equal values until they are trained)."""
    return nn.ModuleList(copy.deepcopy(layer) for _ in range(num_layers))


def xavier_init_transformer(module: nn.Module) -> None:
    """`xavier_uniform_` on every parameter of `module` with more than one dimension, then each
    deformable attention's own reset (zero offset weights, ring of offset biases, ...), as the
    official `_reset_parameters` of the encoder and decoder do."""
    for param in module.parameters():
        if param.dim() > 1:
            nn.init.xavier_uniform_(param)
    for child in module.modules():
        if isinstance(child, MSDeformAttn):
            child.reset_parameters()
