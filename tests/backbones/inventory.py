"""Describe a module's state dict the way the official `keys_*.json` inventories do."""

from __future__ import annotations

from torch import nn


def state_dict_inventory(module: nn.Module) -> list[tuple[str, tuple[int, ...], str]]:
    """[(name, shape, dtype)] of the state dict, in registration order."""
    return [
        (name, tuple(t.shape), str(t.dtype).removeprefix("torch.")) for name, t in module.state_dict().items()
    ]


def float_numel(inventory: list[tuple[str, tuple[int, ...], str]], keep=lambda name: True) -> int:
    """Number of float elements of the entries whose name passes `keep`."""
    total = 0
    for name, shape, dtype in inventory:
        if dtype.startswith("float") and keep(name):
            count = 1
            for size in shape:
                count *= size
            total += count
    return total
