"""`build_model(cfg)`: the model a Config describes."""

from __future__ import annotations

from torch import nn

from maskdino.config import Config, ModelConfig

ARCHITECTURES = ("maskdino", "mimdet_mask_rcnn")


def build_model(cfg: Config | ModelConfig) -> nn.Module:
    """Mask DINO / DI-MaskDINO ("maskdino") or MIMDet's Mask R-CNN FPN ("mimdet_mask_rcnn"). Built from a
    full Config, the model keeps it at `model.config` (what `model.save_pretrained` writes)."""
    model = _build(cfg.model if isinstance(cfg, Config) else cfg)
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
