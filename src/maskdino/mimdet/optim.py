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
    """Groups for `torch.optim.AdamW(groups, ...)`, each named (e.g. "vit/no_decay"); frozen parameters
    are left out.

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
    groups: dict[tuple[str, float, float], list[nn.Parameter]] = {}
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
        part, lr = "all", base_lr
        if lr_multiplier != 1.0:
            if name.startswith("backbone.stem."):
                part = "stem"
            elif name.startswith("backbone.") and not name.startswith("backbone.decoder."):
                part, lr = "vit", base_lr / lr_multiplier
            else:
                part, lr = "others", base_lr * lr_multiplier
        kind = "no_decay" if decay == 0 else "decay" if decay == weight_decay else f"decay_{decay:g}"
        groups.setdefault((f"{part}/{kind}", lr, decay), []).append(param)
    return [
        {"name": group, "params": params, "lr": lr, "weight_decay": decay}
        for (group, lr, decay), params in groups.items()
    ]
