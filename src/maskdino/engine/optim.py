"""The official optimisation recipe: AdamW parameter groups, the warm-up + step schedule, AMP and clipping.

Official `train_net.py:build_optimizer` gives every parameter its own group with lr x backbone multiplier
when its module name contains "backbone", and weight decay `weight_decay_norm` for norm layers,
`weight_decay_embed` for `nn.Embedding` and 0 for Swin's relative-position tables and absolute position
embedding. We bucket parameters with equal (lr, weight decay) into one group: the same update, with
PyTorch's fused multi-tensor AdamW path.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import nn

from maskdino.config import SolverConfig

logger = logging.getLogger(__name__)

NORM_TYPES = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.GroupNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LayerNorm,
    nn.LocalResponseNorm,
)
NO_DECAY_NAMES = ("relative_position_bias_table", "absolute_pos_embed")


def param_groups(model: nn.Module, solver: SolverConfig) -> list[dict]:
    """AdamW groups of the official recipe; each group also carries a `name` (e.g. "backbone/no_decay")."""
    groups: dict[tuple[str, float, float], list[nn.Parameter]] = {}
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            is_backbone = "backbone" in module_name
            lr = solver.base_lr * (solver.backbone_multiplier if is_backbone else 1.0)
            decay = solver.weight_decay
            if any(name in param_name for name in NO_DECAY_NAMES):
                decay = 0.0
            if isinstance(module, NORM_TYPES):
                decay = solver.weight_decay_norm
            if isinstance(module, nn.Embedding):
                decay = solver.weight_decay_embed
            part = "backbone" if is_backbone else "head"
            kind = (
                "decay" if decay == solver.weight_decay else "no_decay" if decay == 0 else f"decay_{decay:g}"
            )
            groups.setdefault((f"{part}/{kind}", lr, decay), []).append(param)
    return [
        {"name": name, "params": params, "lr": lr, "weight_decay": decay}
        for (name, lr, decay), params in groups.items()
    ]


def build_optimizer(model: nn.Module, solver: SolverConfig) -> torch.optim.Optimizer:
    """AdamW over the model's own `optimizer_param_groups(solver)` when it defines them (MIMDet's
    detectors), else over `param_groups`."""
    if solver.optimizer.lower() != "adamw":
        raise ValueError(
            f"solver.optimizer={solver.optimizer!r}: only 'adamw' (the official one) is supported"
        )
    own_groups = getattr(model, "optimizer_param_groups", None)
    groups = own_groups(solver) if callable(own_groups) else param_groups(model, solver)
    for group in groups:
        logger.debug(
            "param group %s: %d tensors, lr %g, weight decay %g",
            group["name"],
            len(group["params"]),
            group["lr"],
            group["weight_decay"],
        )
    return torch.optim.AdamW(groups, lr=solver.base_lr, weight_decay=solver.weight_decay)


def lr_factor(solver: SolverConfig, iteration: int) -> float:
    """Multiplier of each group's lr at `iteration` (0-based), as detectron2's WarmupParamScheduler.

    multistep: gamma ** (milestones <= iteration), milestones beyond max_iter ignored; poly:
    (1 - iteration / max_iter) ** poly_power. During the first `warmup_iters` the factor rises linearly
    from warmup_factor x (value at 0) to the value at warmup_iters.
    """
    if iteration < solver.warmup_iters:
        start = solver.warmup_factor * _schedule_value(solver, 0)
        end = _schedule_value(solver, solver.warmup_iters)
        return start + (end - start) * iteration / solver.warmup_iters
    return _schedule_value(solver, iteration)


def _schedule_value(solver: SolverConfig, iteration: int) -> float:
    if solver.lr_scheduler == "multistep":
        passed = sum(1 for step in solver.steps if step <= iteration and step <= solver.max_iter)
        return solver.gamma**passed
    if solver.lr_scheduler == "poly":
        return max(1.0 - iteration / solver.max_iter, 0.0) ** solver.poly_power
    if solver.lr_scheduler == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(iteration / solver.max_iter, 1.0)))
    raise ValueError(f"solver.lr_scheduler={solver.lr_scheduler!r}; expected 'multistep', 'poly' or 'cosine'")


def build_scheduler(
    optimizer: torch.optim.Optimizer, solver: SolverConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-iteration scheduler: call `step()` after each optimiser step."""
    late = [s for s in solver.steps if s > solver.max_iter]
    if late:
        logger.warning("solver.steps %s are beyond solver.max_iter=%d and are ignored", late, solver.max_iter)

    def factor(iteration: int) -> float:
        return lr_factor(solver, iteration)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass(frozen=True)
class AmpSettings:
    """Autocast on/off and dtype for a device; fp16 needs a GradScaler, bf16 does not."""

    enabled: bool
    dtype: torch.dtype
    device_type: str

    @property
    def needs_scaler(self) -> bool:
        return self.enabled and self.dtype == torch.float16

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.enabled)


def amp_settings(solver: SolverConfig, device: torch.device) -> AmpSettings:
    dtypes = {
        "float16": torch.float16,
        "fp16": torch.float16,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
    }
    if solver.amp_dtype not in dtypes:
        raise ValueError(f"solver.amp_dtype={solver.amp_dtype!r}; expected 'float16' or 'bfloat16'")
    dtype = dtypes[solver.amp_dtype]
    enabled = solver.amp
    if enabled and device.type == "cpu" and dtype == torch.float16:
        logger.info(
            "solver.amp with float16 is for GPUs: mixed precision is off on CPU (use solver.amp_dtype=bfloat16)"
        )
        enabled = False
    if enabled:
        logger.info(
            "mixed precision: %s autocast%s",
            solver.amp_dtype,
            " with a GradScaler" if dtype == torch.float16 else "",
        )
    return AmpSettings(enabled, dtype, device.type)


def build_grad_scaler(amp: AmpSettings) -> torch.amp.GradScaler:
    """A GradScaler that is active only for fp16 (disabled scalers pass losses and steps through)."""
    return torch.amp.GradScaler(amp.device_type, enabled=amp.needs_scaler)


def clip_and_step(
    optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, solver: SolverConfig
) -> torch.Tensor | None:
    """Full-model gradient clipping (on unscaled gradients under fp16), then the optimiser step.

    Returns the total gradient norm before clipping (None when clipping is off).
    """
    norm = None
    if solver.clip_gradients and solver.clip_value > 0:
        scaler.unscale_(optimizer)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        norm = torch.nn.utils.clip_grad_norm_(params, solver.clip_value, solver.clip_norm_type)
    scaler.step(optimizer)
    scaler.update()
    return norm
