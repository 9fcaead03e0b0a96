"""The one way weights get into a model: `load_weights(model, source)`.

`source` is a registry name or release file name (`maskdino zoo`; downloaded into the cache), a
`save_pretrained` folder, our `.safetensors`, one of our training checkpoints (`.pt`, our names under
"model"), an official Mask DINO / DI-MaskDINO / MIMDet `.pth` (converted from detectron2's names), or
a state dict in either naming.
Every file is read without running pickled code, and every load is strict: a mismatch lists each
differing key and the preset the weights most likely fit.

Fine-tuning onto another class count (`reinit_class_heads=True`): the class-dependent tensors whose
shape differs keep the model's fresh initialisation (the classifier, the denoising label embedding,
MIMDet's box and mask predictors); anything else that differs is still an error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from maskdino.checkpoints.download import fetch_entry, resolve_weights
from maskdino.checkpoints.errors import DownloadError, UnreadableCheckpointError, WeightsError
from maskdino.checkpoints.native import (
    FOLDER_CONFIG,
    FOLDER_WEIGHTS,
    is_safetensors,
    read_config,
    read_weights,
)
from maskdino.checkpoints.official import convert_official_state_dict, load_strict, read_checkpoint
from maskdino.checkpoints.zoo import ZooEntry, find_entry
from maskdino.config import Config
from maskdino.mimdet.checkpoints import convert_mimdet_state_dict
from maskdino.presets import get_config

logger = logging.getLogger(__name__)

# parameters whose shape depends on the number of classes (Mask DINO heads; MIMDet's Mask R-CNN heads)
CLASS_DEPENDENT = (
    "predictor.class_embed.",
    "predictor.label_enc.",
    "roi_heads.box_predictor.",
    "roi_heads.mask_predictor.predictor.",
)


def load_weights(
    model: nn.Module,
    source: str | Path | Mapping[str, torch.Tensor],
    reinit_class_heads: bool = False,
    progress: bool = True,
) -> nn.Module:
    """Strictly load `source` (name, folder, file or state dict; see the module docstring) into `model`."""
    if isinstance(source, Mapping):
        state, source = in_our_names(dict(source)), "the given state dict"
    else:
        state = _read_state(source, model_entry(source), progress)
    if reinit_class_heads:
        replaced = reinitialise_class_heads(model, state)
        if replaced:
            logger.warning(
                "%s was trained for another number of classes: re-initialised %s; every other tensor loaded",
                source,
                ", ".join(replaced),
            )
    load_strict(model, state, str(source))
    logger.info("loaded weights %s (%d tensors)", source, len(state))
    return model


def registry_entry(source: str | Path) -> ZooEntry | None:
    """The registry entry `source` names, unless it is a local file or folder."""
    return None if Path(source).expanduser().exists() else find_entry(str(source))


def model_entry(source: str | Path) -> ZooEntry | None:
    """Like `registry_entry`, but an entry of backbone weights (not a whole model) is an error."""
    entry = registry_entry(source)
    if entry is not None and entry.kind != "model":
        raise WeightsError(
            f"{entry.name} holds {entry.kind} weights ({entry.file_name}), not a whole {entry.preset} model: "
            "pass it as --backbone-weights (training) instead of --weights"
        )
    return entry


def _read_state(source: str | Path, entry: ZooEntry | None, progress: bool) -> dict[str, torch.Tensor]:
    """The tensors of `source` in our names; a cached registry file that cannot be read (truncated or
    damaged on disk) is downloaded once more before giving up."""
    path = resolve_weights(source, progress)
    try:
        return state_dict_from_file(path)
    except UnreadableCheckpointError as err:
        if entry is None:
            raise
        logger.warning("the cached %s is unreadable (%s): downloading it again", path, err)
    path = fetch_entry(entry, progress, force=True)
    try:
        return state_dict_from_file(path)
    except UnreadableCheckpointError as err:
        raise DownloadError(
            f"{entry.name}: the file downloaded again is still not a readable checkpoint ({err}). If "
            "MASKDINO_MIRROR is set, check the mirror's copy; otherwise the download was damaged on the way"
        ) from None


def state_dict_from_file(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a local file or `save_pretrained` folder in our names, whichever layout it uses."""
    path = Path(path)
    if path.is_dir():
        return read_weights(_folder_file(path, FOLDER_WEIGHTS))[0]
    if is_safetensors(path):
        return read_weights(path)[0]
    return in_our_names(read_checkpoint(path))


def in_our_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official Mask DINO / DI-MaskDINO or MIMDet (detectron2) names -> ours; our own names pass."""
    if any(key.startswith("sem_seg_head.") for key in state):
        return convert_official_state_dict(state)
    if any(key.startswith("backbone.bottom_up.") for key in state):
        return convert_mimdet_state_dict(state)
    return state


def weights_config(source: str | Path) -> Config | None:
    """The config that comes with `source`, without reading its tensors: the one stored in our folders,
    safetensors and training checkpoints, or the preset of a registry entry (also for a release file
    saved under its own name). None for other files. A stored config comes without
    `model.backbone.weights`: the stored weights replace the backbone the run started from."""
    cfg = _stored_config(Path(source).expanduser())
    if cfg is not None:
        cfg.model.backbone.weights = None
        return cfg
    path = Path(source).expanduser()
    entry = find_entry(path.name if path.is_file() else str(source))
    if entry is None or entry.kind != "model":
        return None
    return get_config(entry.preset)


def _stored_config(path: Path) -> Config | None:
    if path.is_dir():
        return Config.from_dict(json.loads(_folder_file(path, FOLDER_CONFIG).read_text()), strict=False)
    if not path.is_file():
        return None
    return read_config(path) if is_safetensors(path) else _training_checkpoint_config(path)


def _training_checkpoint_config(path: Path) -> Config | None:
    try:  # memory-mapped: only the small "config" entry is read
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return None  # not ours (or unreadable: reported when its tensors are read)
    stored = obj.get("config") if isinstance(obj, dict) else None
    return Config.from_dict(stored, strict=False) if isinstance(stored, dict) else None


def _folder_file(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{folder} is a folder but not a save_pretrained folder: it has no {name} "
            "(pass the weights file itself, or a folder written by save_pretrained)"
        )
    return path


def reinitialise_class_heads(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Replace, in `state`, the class-dependent tensors whose shape differs from `model`'s by the model's own
    (freshly initialised) values. Returns their names."""
    own = model.state_dict()
    replaced = []
    for name in sorted(state):
        if name.startswith(CLASS_DEPENDENT) and name in own and state[name].shape != own[name].shape:
            state[name] = own[name].detach().clone()
            replaced.append(name)
    return replaced
