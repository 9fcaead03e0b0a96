"""Load any weights file we know into a model: our safetensors (config inside), an official Mask DINO /
DI-MaskDINO / MIMDet `.pth`, or one of our training checkpoints (`.pth` holding our names under "model")."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from maskdino.checkpoints.native import is_safetensors, read_weights
from maskdino.checkpoints.official import convert_official_state_dict, load_strict, read_checkpoint
from maskdino.config import Config


def stored_config(path: str | Path) -> Config | None:
    """The config saved inside our safetensors files and training checkpoints (None for other files;
    an unreadable file is reported when its weights are loaded), without `model.backbone.weights`: the
    stored weights replace the backbone the run started from."""
    if is_safetensors(path):
        return read_weights(path)[1]
    try:  # memory-mapped: only the small "config" entry is read
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return None
    stored = obj.get("config") if isinstance(obj, dict) else None
    if not isinstance(stored, dict):
        return None
    cfg = Config.from_dict(stored, strict=False)
    cfg.model.backbone.weights = None
    return cfg


def state_dict_from_file(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of `path` in our parameter names, whichever known layout the file uses."""
    if is_safetensors(path):
        return read_weights(path)[0]
    state = read_checkpoint(path)
    if any(key.startswith("sem_seg_head.") for key in state):
        return convert_official_state_dict(state)
    if any(key.startswith("backbone.bottom_up.") for key in state):
        from maskdino.mimdet.checkpoints import convert_mimdet_state_dict

        return convert_mimdet_state_dict(state)
    return state


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Strictly load `path` into `model`; errors list every mismatching key and the likely preset."""
    load_strict(model, state_dict_from_file(path), str(path))
    return model
