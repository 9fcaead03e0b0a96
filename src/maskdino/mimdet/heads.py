"""The RoI side of MIMDet's Mask R-CNN, shaped like its detectron2 config and plugged into torchvision.

MIMDet's configs use detectron2's "stronger Mask R-CNN": RoIAlignV2 poolers, a 4conv1fc box head and a
4-conv mask head, with BatchNorm after every head conv. `roi_heads.RoIHeads` (torchvision's) drives them; these
modules keep detectron2's parameter names and shapes (so released weights load by name and the
parameter count is the official one) and translate their outputs to torchvision's conventions:
background is class 0 and per-class outputs are indexed by the 1-based label.
"""

from __future__ import annotations

import math
import sys
from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.ops import roi_align

from maskdino.layers.conv import Conv2dNorm, c2_xavier_fill


def c2_msra_fill(module: nn.Conv2d | nn.ConvTranspose2d) -> None:
    """Caffe2's MSRAFill (kaiming-normal, fan-out, ReLU gain), zero bias: detectron2's head conv init."""
    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def conv_bn_relu(in_channels: int, out_channels: int) -> Conv2dNorm:
    """3x3 conv without bias, BatchNorm at `.norm`, ReLU (detectron2 `Conv2d(norm=BN, activation=relu)`)."""
    conv = Conv2dNorm(
        in_channels,
        out_channels,
        3,
        padding=1,
        bias=False,
        norm=nn.BatchNorm2d(out_channels),
        activation=F.relu,
    )
    c2_msra_fill(conv)
    return conv


class MultiLevelRoIAlign(nn.Module):
    """RoIAlignV2 (half-pixel aligned, adaptive sampling) over FPN levels, each box on the level of its size.

    Level = floor(4 + log2(sqrt(area) / 224)), clamped to the given levels (FPN paper eq. 1, detectron2's
    `assign_boxes_to_levels`). torchvision's `MultiScaleRoIAlign` is the non-aligned RoIAlign, hence this.
    """

    def __init__(self, names: tuple[str, ...], strides: tuple[int, ...], output_size: int):
        super().__init__()
        self.names = names
        self.strides = strides
        self.output_size = output_size
        self.min_level = int(math.log2(strides[0]))

    def forward(
        self,
        features: dict[str, torch.Tensor],
        boxes: list[torch.Tensor],
        image_shapes: list[tuple[int, int]] | None = None,
    ) -> torch.Tensor:
        """`boxes` xyxy per image -> `[sum(len(b)), C, S, S]` (`image_shapes`: torchvision's call; unused)."""
        rois = torch.cat([torch.cat([b.new_full((len(b), 1), i), b], dim=1) for i, b in enumerate(boxes)])
        sides = ((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2])).clamp(min=0).sqrt()
        levels = torch.floor(4 + torch.log2(sides / 224 + sys.float_info.epsilon))
        levels = levels.clamp(self.min_level, self.min_level + len(self.names) - 1) - self.min_level
        first = features[self.names[0]]
        pooled = first.new_zeros(len(rois), first.shape[1], self.output_size, self.output_size)
        for level, (name, stride) in enumerate(zip(self.names, self.strides)):
            index = torch.where(levels == level)[0]
            if len(index):
                pooled[index] = roi_align(
                    features[name],
                    rois[index],
                    self.output_size,
                    1.0 / stride,
                    sampling_ratio=0,
                    aligned=True,
                )
        return pooled


class BoxHead(nn.Sequential):
    """`conv1..convN` (3x3, BN, ReLU) then `fc1` + ReLU: detectron2's `FastRCNNConvFCHead` ("4conv1fc")."""

    def __init__(self, in_channels: int, pool_size: int, conv_dims: tuple[int, ...], fc_dim: int):
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels = in_channels
        for k, dim in enumerate(conv_dims, start=1):
            layers[f"conv{k}"] = conv_bn_relu(channels, dim)
            channels = dim
        layers["flatten"] = nn.Flatten()
        layers["fc1"] = nn.Linear(channels * pool_size * pool_size, fc_dim)
        layers["fc_relu1"] = nn.ReLU()
        super().__init__(layers)
        c2_xavier_fill(self.fc1)


class BoxPredictor(nn.Module):
    """detectron2 `FastRCNNOutputLayers` weights, answering in torchvision's layout.

    Weights: `cls_score` [C+1] with background last, `bbox_pred` 4 deltas for each of the C classes.
    Output: scores with background first and `4 (C+1)` deltas whose background slot is zero.
    """

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.cls_score = nn.Linear(in_features, num_classes + 1)
        self.bbox_pred = nn.Linear(in_features, num_classes * 4)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.cls_score.bias)
        nn.init.zeros_(self.bbox_pred.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.cls_score(x)
        scores = torch.cat([scores[:, -1:], scores[:, :-1]], dim=1)  # [N, C+1], background first
        deltas = self.bbox_pred(x)
        return scores, torch.cat([deltas.new_zeros(len(deltas), 4), deltas], dim=1)  # [N, 4 (C+1)]


class MaskHead(nn.Sequential):
    """`mask_fcn1..N` (3x3, BN, ReLU): the conv part of detectron2's `MaskRCNNConvUpsampleHead`."""

    def __init__(self, in_channels: int, conv_dims: tuple[int, ...]):
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels = in_channels
        for k, dim in enumerate(conv_dims, start=1):
            layers[f"mask_fcn{k}"] = conv_bn_relu(channels, dim)
            channels = dim
        super().__init__(layers)


class MaskPredictor(nn.Module):
    """`deconv` (2x up) + ReLU + 1x1 `predictor` to C class masks; a zero channel 0 stands for background."""

    def __init__(self, in_channels: int, deconv_dim: int, num_classes: int):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(in_channels, deconv_dim, kernel_size=2, stride=2)
        self.predictor = nn.Conv2d(deconv_dim, num_classes, kernel_size=1)
        c2_msra_fill(self.deconv)
        nn.init.normal_(self.predictor.weight, std=0.001)
        nn.init.zeros_(self.predictor.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.predictor(F.relu(self.deconv(x)))  # [N, C, 2S, 2S]
        background = logits.new_zeros(len(logits), 1, *logits.shape[-2:])
        return torch.cat([background, logits], dim=1)  # [N, C+1, 2S, 2S], indexed by 1-based label
