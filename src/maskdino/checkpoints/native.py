"""Our own checkpoint format: one safetensors file whose metadata carries the full JSON config."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from maskdino.config import Config
from maskdino.utils.file_access import check_readable

FORMAT = "maskdino"


def save_weights(path: str | Path, model: nn.Module, cfg: Config) -> Path:
    """Write `model`'s state dict and `cfg` atomically (temporary file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        save_file(state, tmp, metadata={"format": FORMAT, "config": cfg.to_json()})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], Config | None]:
    """(state dict, config stored with it or None) of a safetensors file."""
    path = check_readable(path, "weights file")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except Exception as err:
        raise ValueError(f"cannot read {path} as safetensors ({err}); is the file complete?") from err
    # a config written by another version may have keys this one lacks: drop them with a warning
    cfg = Config.from_dict(json.loads(metadata["config"]), strict=False) if "config" in metadata else None
    return state, cfg


def is_safetensors(path: str | Path) -> bool:
    return Path(path).suffix == ".safetensors"
