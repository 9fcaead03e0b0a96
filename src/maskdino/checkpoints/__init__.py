from maskdino.checkpoints.official import (
    CheckpointMismatchError,
    convert_official_state_dict,
    load_official_checkpoint,
    read_checkpoint,
)

__all__ = [
    "CheckpointMismatchError",
    "convert_official_state_dict",
    "load_official_checkpoint",
    "read_checkpoint",
]
