"""Our own formats: one safetensors file whose metadata carries the full JSON config, and the
`save_pretrained` folder (that file as `model.safetensors`, plus `config.json`, classes and a model card)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from maskdino.checkpoints.errors import UnreadableCheckpointError
from maskdino.config import Config
from maskdino.utils.atomic import atomic_write
from maskdino.utils.file_access import check_readable

FORMAT = "maskdino"
FOLDER_WEIGHTS = "model.safetensors"
FOLDER_CONFIG = "config.json"


def save_weights(path: str | Path, model: nn.Module, cfg: Config) -> Path:
    """Write `model`'s state dict and `cfg` atomically (temporary file + rename), with the umask's permissions."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write(
        path, lambda tmp: save_file(state, tmp, metadata={"format": FORMAT, "config": cfg.to_json()})
    )
    return path


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], Config | None]:
    """(state dict, config stored with it or None) of a safetensors file."""
    path = check_readable(path, "weights file")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except Exception as err:
        raise UnreadableCheckpointError(
            f"cannot read {path} as safetensors ({err}); is the file complete?"
        ) from err
    return state, _config(metadata)


def read_config(path: str | Path) -> Config | None:
    """The config stored in a safetensors file's metadata (the tensors are not read)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except Exception as err:
        raise UnreadableCheckpointError(
            f"cannot read {path} as safetensors ({err}); is the file complete?"
        ) from err
    return _config(metadata)


def _config(metadata: dict[str, str]) -> Config | None:
    # a config written by another version may have keys this one lacks: drop them with a warning
    cfg = Config.from_dict(json.loads(metadata["config"]), strict=False) if "config" in metadata else None
    if cfg is not None:
        cfg.model.backbone.weights = None  # these weights replace the backbone the run started from
    return cfg


def is_safetensors(path: str | Path) -> bool:
    return Path(path).suffix == ".safetensors"
