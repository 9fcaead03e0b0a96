"""Start training from pretrained weights: an official `.pth` or our `.safetensors`.

When the weights were trained for another number of classes (fine-tuning COCO weights on a custom
dataset), only the class-dependent tensors keep the fresh initialisation of the model being trained:
the classifier `predictor.class_embed` and the denoising label embedding `predictor.label_enc`.
Everything else must match exactly; any other difference is an error listing every differing key.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from maskdino.checkpoints.native import is_safetensors, read_weights
from maskdino.checkpoints.official import convert_official_state_dict, load_strict, read_checkpoint

logger = logging.getLogger(__name__)

CLASS_DEPENDENT = ("predictor.class_embed.", "predictor.label_enc.")


def read_pretrained(path: str | Path) -> dict[str, torch.Tensor]:
    """State dict in our names from an official checkpoint (.pth) or our safetensors file."""
    if is_safetensors(path):
        return read_weights(path)[0]
    return convert_official_state_dict(read_checkpoint(path))


def load_pretrained(model: nn.Module, path: str | Path) -> list[str]:
    """Load `path` into `model`, re-initialising the class heads if their class count differs.

    Returns the names of the re-initialised tensors (empty when everything loaded).
    """
    state = read_pretrained(path)
    reinitialised = reinitialise_class_heads(model, state)
    load_strict(model, state, str(path))
    if reinitialised:
        logger.warning(
            "%s was trained for another number of classes: re-initialised %s; every other tensor loaded",
            path,
            ", ".join(reinitialised),
        )
    else:
        logger.info("loaded pretrained weights %s (all %d tensors)", path, len(state))
    return reinitialised


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
