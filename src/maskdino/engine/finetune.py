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

from maskdino.checkpoints.load import state_dict_from_file
from maskdino.checkpoints.official import load_strict

logger = logging.getLogger(__name__)

# parameters whose shape depends on the number of classes (Mask DINO heads; MIMDet's Mask R-CNN heads)
CLASS_DEPENDENT = (
    "predictor.class_embed.",
    "predictor.label_enc.",
    "roi_heads.box_predictor.",
    "roi_heads.mask_predictor.predictor.",
)


def load_pretrained(model: nn.Module, path: str | Path) -> list[str]:
    """Load `path` into `model`, re-initialising the class heads if their class count differs.

    Returns the names of the re-initialised tensors (empty when everything loaded).
    """
    state = state_dict_from_file(path)
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
