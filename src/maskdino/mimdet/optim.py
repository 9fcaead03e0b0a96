"""AdamW parameter groups of the official MIMDet / Benchmarking-ViT optimizers."""

from __future__ import annotations

from torch import nn

NORM_TYPES = (nn.BatchNorm2d, nn.SyncBatchNorm, nn.GroupNorm, nn.LayerNorm)


def optimizer_param_groups(
    model: nn.Module,
    base_lr: float,
    weight_decay: float,
    lr_multiplier: float = 1.0,
    weight_decay_norm: float = 0.0,
    decay_biases: bool = False,
) -> list[dict]:
    """Groups for `torch.optim.AdamW(groups, ...)`; frozen parameters are left out.

    Weight decay: `weight_decay_norm` on norm layers, none on position tables and relative position
    bias tables, none on other 1-D parameters (biases) unless `decay_biases` (detectron2's default
    optimizer, which the Benchmarking config uses), `weight_decay` otherwise.
    Learning rate (official `get_fpn_model_parameters`, MIMDet only, `lr_multiplier` m > 1): the
    pretrained ViT (`backbone.` but not its conv stem or decoder) trains at base/m, the conv stem at
    base, everything else at base*m.
    """
    norm_params = {
        id(p)
        for module in model.modules()
        if isinstance(module, NORM_TYPES)
        for p in module.parameters(False)
    }
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if id(param) in norm_params:
            decay = weight_decay_norm
        elif (
            "pos_embed" in name
            or "relative_position_bias_table" in name
            or (param.dim() == 1 and not decay_biases)
        ):
            decay = 0.0
        else:
            decay = weight_decay
        lr = base_lr
        if lr_multiplier != 1.0 and not name.startswith("backbone.stem."):
            pretrained = name.startswith("backbone.") and not name.startswith("backbone.decoder.")
            lr = base_lr / lr_multiplier if pretrained else base_lr * lr_multiplier
        groups.setdefault((lr, decay), []).append(param)
    return [{"params": params, "lr": lr, "weight_decay": decay} for (lr, decay), params in groups.items()]
