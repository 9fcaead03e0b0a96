from maskdino.checkpoints.download import cache_dir, resolve_weights
from maskdino.checkpoints.errors import (
    CheckpointMismatchError,
    DownloadError,
    UnreadableCheckpointError,
    WeightsError,
)
from maskdino.checkpoints.load import load_weights, weights_config
from maskdino.checkpoints.official import (
    convert_official_state_dict,
    load_official_checkpoint,
    read_checkpoint,
)
from maskdino.checkpoints.pretrained import from_pretrained, load_model, save_pretrained
from maskdino.checkpoints.zoo import ZOO, ZooEntry, find_entry

__all__ = [
    "ZOO",
    "CheckpointMismatchError",
    "DownloadError",
    "UnreadableCheckpointError",
    "WeightsError",
    "ZooEntry",
    "cache_dir",
    "convert_official_state_dict",
    "find_entry",
    "from_pretrained",
    "load_model",
    "load_official_checkpoint",
    "load_weights",
    "read_checkpoint",
    "resolve_weights",
    "save_pretrained",
    "weights_config",
]
