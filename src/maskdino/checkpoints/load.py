"""Load any weights file we know into a model: our safetensors (config inside), an official detectron2
`.pth`, or one of our training checkpoints (`.pth` holding our own names under "model")."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from maskdino.checkpoints.native import is_safetensors, read_weights
from maskdino.checkpoints.official import convert_official_state_dict, load_strict, read_checkpoint
from maskdino.config import Config


def stored_config(path: str | Path) -> Config | None:
    """The config saved inside one of our safetensors files (None for other formats)."""
    return read_weights(path)[1] if is_safetensors(path) else None


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Strictly load `path` into `model`; errors list every mismatching key and the likely preset."""
    if is_safetensors(path):
        state, _ = read_weights(path)
    else:
        state = read_checkpoint(path)
        if any(key.startswith("sem_seg_head.") for key in state):
            state = convert_official_state_dict(state)
    load_strict(model, state, str(path))
    return model
