"""Mask DINO in plain PyTorch: official checkpoints, training, evaluation, prediction and export."""

from maskdino.build import build_model
from maskdino.checkpoints import from_pretrained, load_official_checkpoint, load_weights, save_pretrained
from maskdino.checkpoints.backbone_weights import load_backbone_weights
from maskdino.config import Config
from maskdino.engine.evaluator import evaluate_model
from maskdino.engine.trainer import TrainResult, train
from maskdino.predictor import Predictor
from maskdino.presets import get_config, preset_names

__version__ = "0.1.0"

__all__ = [
    "Config",
    "Predictor",
    "TrainResult",
    "build_model",
    "evaluate_model",
    "from_pretrained",
    "get_config",
    "load_backbone_weights",
    "load_official_checkpoint",
    "load_weights",
    "preset_names",
    "save_pretrained",
    "train",
]
