"""Official-format MIMDet / Benchmarking-ViT checkpoints filled with the reference's deterministic weights.

The rule is the one `shared/reference/README.md` (MIMDet section) states for the stored official outputs:
every floating entry of the official inventory draws `torch.randn` from a generator seeded with the crc32
of its name, then is scaled by its kind; position tables, pixel statistics, anchors and integer entries
keep the values the model is built with.
"""

from __future__ import annotations

import zlib

import torch
from torch import nn

from maskdino.mimdet.checkpoints import convert_mimdet_state_dict


def filled_value(name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """The reference's value of the floating official entry `name` (not a position table)."""
    r = torch.randn(shape, generator=torch.Generator().manual_seed(zlib.crc32(name.encode())))
    is_weight = name.endswith("weight")
    if "box_predictor.cls_score" in name:
        return r * (0.1 if is_weight else 2.0)
    if "mask_head.predictor" in name:
        return r * (0.1 if is_weight else 0.5)
    if name.endswith("running_var"):
        return 1 + 0.1 * r.abs()
    if name.endswith("running_mean"):
        return 0.02 * r
    if is_weight and len(shape) == 1 and ("norm" in name or ".bn" in name):
        return 1 + 0.1 * r
    return 0.02 * r


def built_value(model: nn.Module, name: str) -> torch.Tensor:
    """What `model` (built from the matching preset) holds for the official entry `name`."""
    converted = convert_mimdet_state_dict({name: torch.empty(0)})
    if converted:  # a saved entry: the same tensor under our name
        (ours,) = converted
        return model.state_dict()[ours].clone()
    # dropped on conversion because it is rebuilt from the config (relative position indices)
    return model.get_buffer(name.replace("backbone.bottom_up.", "backbone.", 1)).clone()


def official_checkpoint(inventory: list[tuple[str, tuple[int, ...], str]], model: nn.Module) -> dict:
    """`{"model": state_dict}` under the official names of `inventory`, filled by the reference's rule."""
    state = {}
    for name, shape, dtype in inventory:
        if dtype != "float32" or name.endswith("pos_embed"):
            value = built_value(model, name)
        else:
            value = filled_value(name, shape)
        if tuple(value.shape) != tuple(shape):
            raise AssertionError(f"{name}: built {tuple(value.shape)} vs official {shape}")
        state[name] = value
    return {"model": state}
