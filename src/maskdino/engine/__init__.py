"""Training: optimiser recipe, checkpoints, distributed helpers, EMA, logging and the loop (`train`)."""

from maskdino.engine.checkpointer import Checkpointer
from maskdino.engine.distributed import BatchLayout, batch_layout, init_distributed
from maskdino.engine.ema import ModelEMA
from maskdino.engine.optim import build_optimizer, build_scheduler, lr_factor, param_groups
from maskdino.engine.trainer import TrainResult, train

__all__ = [
    "BatchLayout",
    "Checkpointer",
    "ModelEMA",
    "TrainResult",
    "batch_layout",
    "build_optimizer",
    "build_scheduler",
    "init_distributed",
    "lr_factor",
    "param_groups",
    "train",
]
