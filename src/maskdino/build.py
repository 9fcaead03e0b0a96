"""`build_model(cfg)`: the model a Config describes."""

from __future__ import annotations

from torch import nn

from maskdino.config import Config, ModelConfig


def build_model(cfg: Config | ModelConfig) -> nn.Module:
    model_cfg = cfg.model if isinstance(cfg, Config) else cfg
    if model_cfg.architecture == "maskdino":
        from maskdino.model import MaskDINO

        return MaskDINO(model_cfg)
    raise ValueError(f"unknown architecture {model_cfg.architecture!r}; expected 'maskdino'")
