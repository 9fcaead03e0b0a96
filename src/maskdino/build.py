"""`build_model(cfg)`: the model a Config describes, its backbone loaded from `model.backbone.weights`."""

from __future__ import annotations

import logging

from torch import nn

from maskdino.config import Config, ModelConfig

ARCHITECTURES = ("maskdino", "mimdet_mask_rcnn")

logger = logging.getLogger(__name__)


def build_model(cfg: Config | ModelConfig) -> nn.Module:
    """Mask DINO / DI-MaskDINO ("maskdino") or MIMDet's Mask R-CNN FPN ("mimdet_mask_rcnn"), freshly
    initialised; with `model.backbone.weights` set, the backbone is then loaded from that file. Built from
    a full Config, the model keeps it at `model.config` (what `model.save_pretrained` writes)."""
    model_cfg = cfg.model if isinstance(cfg, Config) else cfg
    model = _build(model_cfg)
    if model_cfg.backbone.weights is not None:
        from maskdino.checkpoints.backbone_weights import load_backbone_weights

        logger.info("%s", load_backbone_weights(model, model_cfg.backbone.weights).summary())
    if isinstance(cfg, Config):
        model.config = cfg
    return model


def _build(model_cfg: ModelConfig) -> nn.Module:
    if model_cfg.architecture == "maskdino":
        from maskdino.model import MaskDINO

        return MaskDINO(model_cfg)
    if model_cfg.architecture == "mimdet_mask_rcnn":
        from maskdino.backbones.build import build_backbone
        from maskdino.mimdet.detector import MIMDetMaskRCNN

        return MIMDetMaskRCNN(build_backbone(model_cfg.backbone), model_cfg)
    raise ValueError(
        f"unknown model.architecture {model_cfg.architecture!r}; expected one of {', '.join(ARCHITECTURES)}"
    )
