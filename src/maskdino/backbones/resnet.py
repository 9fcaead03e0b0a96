"""ResNet-50/101/152 built as detectron2's `build_resnet_backbone` builds it.

Module names equal detectron2's (`stem.conv1`, `res2.0.conv1.norm`, `res2.0.shortcut`, ...), so an
official checkpoint loads after dropping its `backbone.` prefix.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from maskdino.config import ResNetConfig
from maskdino.layers.frozen_batchnorm import FrozenBatchNorm2d, freeze_batchnorm

BLOCKS_PER_STAGE = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
STAGE_NAMES = ("res2", "res3", "res4", "res5")
NORMS = ("FrozenBN", "BN", "SyncBN")


def make_norm(norm: str, channels: int) -> nn.Module:
    """The normalisation after each conv. SyncBN is built as BatchNorm2d (same state-dict names);
    distributed training converts it with `nn.SyncBatchNorm.convert_sync_batchnorm`."""
    if norm == "FrozenBN":
        return FrozenBatchNorm2d(channels)
    if norm in ("BN", "SyncBN"):
        return nn.BatchNorm2d(channels)
    raise ValueError(f"ResNet norm {norm!r} is not supported; use one of {', '.join(NORMS)}")


class ConvNorm(nn.Conv2d):
    """A bias-free Conv2d followed by its norm, stored as the child `norm` (detectron2's layout)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, norm: str, **kwargs):
        super().__init__(in_channels, out_channels, kernel_size, bias=False, **kwargs)
        self.norm = make_norm(norm, out_channels)
        # detectron2's c2_msra_fill
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(super().forward(x))


class BasicStem(nn.Module):
    """7x7 stride-2 conv + norm + ReLU + 3x3 stride-2 max-pool: stride 4 overall."""

    def __init__(self, out_channels: int, norm: str, in_channels: int = 3):
        super().__init__()
        self.conv1 = ConvNorm(in_channels, out_channels, 7, norm, stride=2, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu_(self.conv1(x))
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)


class BottleneckBlock(nn.Module):
    """1x1 -> 3x3 (grouped, dilated) -> 1x1 residual block with a projection shortcut when channels change."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        bottleneck_channels: int,
        stride: int,
        norm: str,
        num_groups: int = 1,
        stride_in_1x1: bool = False,
        dilation: int = 1,
    ):
        super().__init__()
        # Created before conv1 so the state-dict order matches detectron2's.
        self.shortcut = (
            ConvNorm(in_channels, out_channels, 1, norm, stride=stride)
            if in_channels != out_channels
            else None
        )
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = ConvNorm(in_channels, bottleneck_channels, 1, norm, stride=stride_1x1)
        self.conv2 = ConvNorm(
            bottleneck_channels,
            bottleneck_channels,
            3,
            norm,
            stride=stride_3x3,
            padding=dilation,
            dilation=dilation,
            groups=num_groups,
        )
        self.conv3 = ConvNorm(bottleneck_channels, out_channels, 1, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu_(self.conv1(x))
        out = F.relu_(self.conv2(out))
        out = self.conv3(out)
        out = out + (self.shortcut(x) if self.shortcut is not None else x)
        return F.relu_(out)


class ResNet(nn.Module):
    """Bottleneck ResNet returning the requested stages of res2 (stride 4) .. res5 (stride 32).

    Stages after the last requested one are not built (as in detectron2). `cfg.freeze_at` = k freezes the
    stem (k >= 1) and res2..res{k} (k >= 2): parameters stop requiring grad and their BatchNorms become
    FrozenBatchNorm2d.
    """

    size_divisibility = 0

    def __init__(self, cfg: ResNetConfig, out_features: Sequence[str] = STAGE_NAMES):
        super().__init__()
        if cfg.depth not in BLOCKS_PER_STAGE:
            raise ValueError(
                f"ResNet depth {cfg.depth} is not supported; use one of {sorted(BLOCKS_PER_STAGE)} "
                "(bottleneck ResNets, as MaskDINO's configs)"
            )
        unknown = [f for f in out_features if f not in STAGE_NAMES]
        if unknown or not out_features:
            raise ValueError(
                f"ResNet out_features {tuple(out_features)} must be a non-empty subset of {STAGE_NAMES}"
            )
        if cfg.res5_dilation not in (1, 2):
            raise ValueError(f"ResNet res5_dilation must be 1 or 2, got {cfg.res5_dilation}")
        make_norm(cfg.norm, 1)  # validate the name before building anything large

        self.out_features = tuple(f for f in STAGE_NAMES if f in out_features)
        self.stem = BasicStem(cfg.stem_out_channels, cfg.norm)
        self._shapes = {}
        in_channels, out_channels = cfg.stem_out_channels, cfg.res2_out_channels
        bottleneck_channels = cfg.num_groups * cfg.width_per_group
        stride = 4
        last_stage = max(STAGE_NAMES.index(f) for f in self.out_features)
        for index in range(last_stage + 1):
            dilation = cfg.res5_dilation if index == 3 else 1
            first_stride = 1 if index == 0 or dilation == 2 else 2
            blocks = []
            for block_index in range(BLOCKS_PER_STAGE[cfg.depth][index]):
                blocks.append(
                    BottleneckBlock(
                        in_channels if block_index == 0 else out_channels,
                        out_channels,
                        bottleneck_channels,
                        stride=first_stride if block_index == 0 else 1,
                        norm=cfg.norm,
                        num_groups=cfg.num_groups,
                        stride_in_1x1=cfg.stride_in_1x1,
                        dilation=dilation,
                    )
                )
            self.add_module(STAGE_NAMES[index], nn.Sequential(*blocks))
            stride *= first_stride
            self._shapes[STAGE_NAMES[index]] = (out_channels, stride)
            in_channels, out_channels, bottleneck_channels = (
                out_channels,
                out_channels * 2,
                bottleneck_channels * 2,
            )
        self.stage_names = STAGE_NAMES[: last_stage + 1]
        self._freeze(cfg.freeze_at)

    def _freeze(self, freeze_at: int) -> None:
        frozen = (["stem"] if freeze_at >= 1 else []) + list(self.stage_names[: max(freeze_at - 1, 0)])
        for name in frozen:
            module = freeze_batchnorm(getattr(self, name))
            for parameter in module.parameters():
                parameter.requires_grad_(False)

    def output_shape(self) -> dict[str, tuple[int, int]]:
        """(channels, stride) of each returned feature."""
        return {name: self._shapes[name] for name in self.out_features}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x [B, 3, H, W] normalised -> {"res2": [B, C2, H/4, W/4], ..., "res5": [B, C5, H/32, W/32]}"""
        if x.dim() != 4:
            raise ValueError(f"ResNet expects an image batch [B, C, H, W], got shape {tuple(x.shape)}")
        x = self.stem(x)
        outputs = {}
        for name in self.stage_names:
            x = getattr(self, name)(x)
            if name in self.out_features:
                outputs[name] = x
        return outputs
