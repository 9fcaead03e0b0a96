"""One validation pass over a config, before any data is read or any model is built.

Values that cannot work (`solver.max_iter=-5`, a negative learning rate, `ims_per_batch=0`) would
otherwise "train" zero iterations and write untrained weights, or fail deep inside torch without naming
the key. Every problem is reported at once, each with its key, its value and what it must be.
`train()` checks the training rules and the model/input rules; `eval` and `predict` the latter only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from maskdino.config import Config


class ConfigError(ValueError):
    """A config value that cannot work; the message names every offending key."""


@dataclass(frozen=True)
class Rule:
    key: str  # dotted path, as in overrides
    holds: Callable[[Any], bool]
    requirement: str  # what a valid value is, for the message


def _at_least(bound: float) -> Callable[[Any], bool]:
    return lambda v: v >= bound


def _positive(v: Any) -> bool:
    return v > 0


def _one_of(*choices: str) -> Callable[[Any], bool]:
    return lambda v: v in choices


MODEL_RULES = (
    Rule("model.num_classes", _at_least(1), "must be >= 1"),
    Rule("model.decoder.num_queries", _at_least(1), "must be >= 1"),
    Rule("model.decoder.num_layers", _at_least(1), "must be >= 1"),
    Rule("model.decoder.hidden_dim", _at_least(1), "must be >= 1"),
    Rule("model.test.detections_per_image", _at_least(1), "must be >= 1"),
    Rule("model.pixel_std", lambda v: all(s > 0 for s in v), "must be > 0 for every channel"),
    Rule("input.min_size_test", _at_least(1), "must be >= 1 (pixels)"),
    Rule("input.max_size_test", _at_least(1), "must be >= 1 (pixels)"),
    Rule("data.num_workers", _at_least(0), "must be >= 0 (0 loads data in the main process)"),
)

TRAINING_RULES = (
    Rule("solver.max_iter", _at_least(1), "must be >= 1 (the number of optimiser steps)"),
    Rule("solver.base_lr", _at_least(0.0), "must be >= 0"),
    Rule("solver.weight_decay", _at_least(0.0), "must be >= 0"),
    Rule("solver.weight_decay_norm", _at_least(0.0), "must be >= 0"),
    Rule("solver.weight_decay_embed", _at_least(0.0), "must be >= 0"),
    Rule("solver.backbone_multiplier", _at_least(0.0), "must be >= 0 (0 freezes the backbone's lr)"),
    Rule("solver.lr_multiplier", _positive, "must be > 0"),
    Rule("solver.ims_per_batch", _at_least(1), "must be >= 1 (images per optimiser step, all GPUs)"),
    Rule("solver.per_device_batch", _at_least(0), "must be >= 0 (0: derived)"),
    Rule("solver.grad_accum_steps", _at_least(0), "must be >= 0 (0: derived)"),
    Rule("solver.warmup_iters", _at_least(0), "must be >= 0"),
    Rule("solver.warmup_factor", lambda v: 0 <= v <= 1, "must be in [0, 1]"),
    Rule("solver.gamma", _positive, "must be > 0"),
    Rule("solver.steps", lambda v: all(s >= 0 for s in v), "must hold iterations >= 0"),
    Rule("solver.clip_value", _positive, "must be > 0 (or turn clipping off: solver.clip_gradients=false)"),
    Rule("solver.optimizer", lambda v: v.lower() == "adamw", "must be 'adamw'"),
    Rule("solver.lr_scheduler", _one_of("multistep", "poly", "cosine"), "must be multistep, poly or cosine"),
    Rule("solver.amp_dtype", _one_of("float16", "bfloat16"), "must be float16 or bfloat16"),
    Rule("solver.ema_decay", lambda v: 0 <= v < 1, "must be in [0, 1)"),
    Rule("input.image_size", _at_least(1), "must be >= 1 (pixels)"),
    Rule("input.min_scale", _positive, "must be > 0"),
    Rule("input.max_size_train", _at_least(1), "must be >= 1 (pixels)"),
)


def config_problems(cfg: Config, training: bool) -> list[str]:
    """`key=value: requirement` for every rule `cfg` breaks."""
    rules = MODEL_RULES + (TRAINING_RULES if training else ())
    problems = []
    for rule in rules:
        value = _value_at(cfg, rule.key)
        if not rule.holds(value):
            problems.append(f"{rule.key}={value!r}: {rule.requirement}")
    if training and cfg.input.max_scale < cfg.input.min_scale:
        problems.append(
            f"input.max_scale={cfg.input.max_scale!r}: must be >= input.min_scale ({cfg.input.min_scale!r})"
        )
    return problems


def validate_config(cfg: Config, training: bool) -> Config:
    """Raise ConfigError listing every impossible value of `cfg` (training: the solver and augmentation too)."""
    problems = config_problems(cfg, training)
    if problems:
        raise ConfigError(
            f"config {cfg.name!r} has impossible values:\n  "
            + "\n  ".join(problems)
            + "\nset them with key=value overrides (e.g. solver.max_iter=1000) or in the config file"
        )
    return cfg


def _value_at(cfg: Config, key: str) -> Any:
    value: Any = cfg
    for part in key.split("."):
        value = getattr(value, part)
    return value
