"""MIMDet's detector: Mask R-CNN with FPN on a MIMDet (or Benchmarking-ViT) backbone.

Set to the values of hustvl/MIMDet `configs/mimdet/*.py` and `configs/benchmarking/*.py`. Inference is
detectron2's, as the official model runs it: anchors (`anchors.py`), proposals (`rpn.py`), box
inference (`roi_heads.py`), batching, rescaling and mask pasting (`transform.py`, `mask_paste.py`);
the FPN is torchvision's and the RoI heads are the detectron2-shaped modules of `heads.py`.
Follows torchvision's contract: `model(images, targets)` returns a dict of losses in training and a
list of per-image detections in eval (`inference`).

Known differences in training, none of which changes a parameter or a detection: torchvision's RPN and
box losses use smooth-L1 (beta 1/9) where detectron2 uses L1, and mask targets are cropped with
non-aligned RoIAlign; BatchNorm stands for SyncBN (convert with `nn.SyncBatchNorm.convert_sync_batchnorm`
for multi-GPU training).
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterator

import torch
from torch import nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from maskdino.backbones.mimdet import LEVELS
from maskdino.checkpoints.pretrained import PretrainedMixin
from maskdino.config import ModelConfig, SolverConfig
from maskdino.mimdet.anchors import AnchorGenerator
from maskdino.mimdet.heads import BoxHead, BoxPredictor, MaskHead, MaskPredictor, MultiLevelRoIAlign
from maskdino.mimdet.optim import optimizer_param_groups
from maskdino.mimdet.roi_heads import RoIHeads
from maskdino.mimdet.rpn import RPN
from maskdino.mimdet.transform import DetectionTransform

POOLED_LEVELS = ("p2", "p3", "p4", "p5")
POOLED_STRIDES = (4, 8, 16, 32)
ANCHOR_STRIDES = (*POOLED_STRIDES, 64)  # p2..p6, p6 being p5 max-pooled by 2


class MIMDetMaskRCNN(PretrainedMixin, nn.Module):
    """Mask R-CNN FPN over a backbone giving res2..res5 and `output_shape()` {level: (channels, stride)}.

    Heads follow `model_cfg.mask_rcnn`; classes, pixel statistics, padding and detections per image come
    from the shared `ModelConfig` fields. Labels are contiguous 0..C-1 in targets and outputs (shifted to
    torchvision's 1-based ids inside). A backbone with a `fixed_input_size` (the Benchmarking ViT) gets
    batches of that square, padded as the official LSJ mapper pads them (see `transform.py`).
    """

    def __init__(self, backbone: nn.Module, model_cfg: ModelConfig):
        super().__init__()
        cfg = model_cfg.mask_rcnn
        shapes = backbone.output_shape()
        if tuple(shapes[level][1] for level in LEVELS) != POOLED_STRIDES:
            raise ValueError(f"the backbone must give res2..res5 at strides {POOLED_STRIDES}, got {shapes}")
        if len(cfg.anchor_sizes) != len(POOLED_LEVELS) + 1:
            raise ValueError(
                f"model.mask_rcnn.anchor_sizes needs one size per level p2..p6, got {cfg.anchor_sizes}"
            )
        num_classes = model_cfg.num_classes
        self.num_classes = num_classes
        self.backbone = backbone
        self.fpn = FeaturePyramidNetwork(
            [shapes[level][0] for level in LEVELS],
            cfg.fpn_channels,
            extra_blocks=LastLevelMaxPool(),
            norm_layer=nn.BatchNorm2d,
        )
        anchors = AnchorGenerator(cfg.anchor_sizes, cfg.anchor_aspect_ratios, ANCHOR_STRIDES)
        self.rpn = RPN(anchors, cfg.fpn_channels, cfg)
        box_head = BoxHead(cfg.fpn_channels, cfg.box_pool_size, cfg.box_conv_dims, cfg.box_fc_dim)
        mask_head = MaskHead(cfg.fpn_channels, cfg.mask_conv_dims)
        mask_channels = cfg.mask_conv_dims[-1] if cfg.mask_conv_dims else cfg.fpn_channels
        self.roi_heads = RoIHeads(
            box_roi_pool=MultiLevelRoIAlign(POOLED_LEVELS, POOLED_STRIDES, cfg.box_pool_size),
            box_head=box_head,
            box_predictor=BoxPredictor(cfg.box_fc_dim, num_classes),
            fg_iou_thresh=cfg.roi_iou_thresh,
            bg_iou_thresh=cfg.roi_iou_thresh,
            batch_size_per_image=cfg.roi_batch_size_per_image,
            positive_fraction=cfg.roi_positive_fraction,
            bbox_reg_weights=(10.0, 10.0, 5.0, 5.0),
            score_thresh=cfg.score_thresh,
            nms_thresh=cfg.nms_thresh,
            detections_per_img=model_cfg.test.detections_per_image,
            mask_roi_pool=MultiLevelRoIAlign(POOLED_LEVELS, POOLED_STRIDES, cfg.mask_pool_size),
            mask_head=mask_head,
            mask_predictor=MaskPredictor(mask_channels, cfg.mask_deconv_dim, num_classes),
        )
        divisibility = model_cfg.size_divisibility
        self.transform = DetectionTransform(
            model_cfg.pixel_mean,
            model_cfg.pixel_std,
            divisibility if divisibility >= 0 else backbone.size_divisibility,
            getattr(backbone, "fixed_input_size", None),
        )

    def optimizer_param_groups(self, solver: SolverConfig) -> list[dict]:
        """The official MIMDet / Benchmarking AdamW groups (see `maskdino.mimdet.optim`)."""
        if solver.backbone_multiplier != 1.0:
            raise ValueError(
                f"solver.backbone_multiplier={solver.backbone_multiplier} is Mask DINO's backbone lr factor; "
                "MIMDet detectors split learning rates with solver.lr_multiplier (set backbone_multiplier=1)"
            )
        return optimizer_param_groups(
            self,
            solver.base_lr,
            solver.weight_decay,
            solver.lr_multiplier,
            solver.weight_decay_norm,
            solver.decay_biases,
        )

    def forward(
        self,
        images: list[torch.Tensor],
        targets: list[dict[str, torch.Tensor]] | None = None,
        output_sizes: list[tuple[int, int]] | None = None,
        top_k: int | None = None,
    ) -> dict[str, torch.Tensor] | list[dict[str, torch.Tensor]]:
        """`images`: [3, H, W] RGB in [0, 1], already at the network's size (see `transform.py`).

        Training: `targets` per image (`labels` int64 0..C-1, `boxes` xyxy pixels, `masks` bool [N, H, W])
        -> {loss name: scalar}. Eval: `inference(images, output_sizes, top_k)`."""
        if not self.training:
            return self.inference(images, output_sizes, top_k)
        if targets is None:
            raise ValueError("training needs targets: one dict with labels, boxes and masks per image")
        targets = [self._torchvision_target(t, i) for i, t in enumerate(targets)]
        batch, sizes = self.transform(images)
        pyramid = self.pyramid(batch, sizes)
        proposals, _, rpn_losses = self.rpn(list(pyramid.values()), sizes, targets)
        _, roi_losses = self.roi_heads(pyramid, proposals, sizes, targets)
        return {**rpn_losses, **roi_losses}

    def inference(
        self,
        images: list[torch.Tensor],
        output_sizes: list[tuple[int, int]] | None = None,
        top_k: int | None = None,
    ) -> list[dict[str, torch.Tensor]]:
        """Per image `boxes` [N, 4] xyxy, `labels` (0..C-1), `scores`, `masks` (bool [N, h, w]), best first,
        at `output_sizes` [(h, w)] (the original images' sizes) or else at the input sizes; at most `top_k`
        detections (default `test.detections_per_image`)."""
        batch, sizes = self.transform(images)
        pyramid = self.pyramid(batch, sizes)
        proposals, _, _ = self.rpn(list(pyramid.values()), sizes)
        with _detections_per_image(self.roi_heads, top_k):
            detections, _ = self.roi_heads(pyramid, proposals, sizes)
        if output_sizes is None:
            output_sizes = [(int(image.shape[-2]), int(image.shape[-1])) for image in images]
        return self.transform.postprocess(detections, sizes, output_sizes)

    def pyramid(self, batch: torch.Tensor, sizes: list[tuple[int, int]]) -> OrderedDict[str, torch.Tensor]:
        """The FPN levels p2..p5 and the max-pooled p6 (named "pool") of a normalised batch."""
        features = self.backbone(batch, sizes)
        return self.fpn(OrderedDict((p, features[res]) for p, res in zip(POOLED_LEVELS, LEVELS)))

    def _torchvision_target(self, target: dict[str, torch.Tensor], index: int) -> dict[str, torch.Tensor]:
        missing = {"labels", "boxes", "masks"} - set(target)
        if missing:
            raise KeyError(
                f"targets[{index}] lacks {sorted(missing)}; each target needs labels, boxes, masks"
            )
        labels = target["labels"]
        if labels.dtype != torch.int64 or (
            len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < self.num_classes
        ):
            raise ValueError(
                f"targets[{index}]['labels'] must be int64 contiguous ids in [0, {self.num_classes}), "
                f"got {labels.dtype} {labels.tolist()[:10]}"
            )
        return {"labels": labels + 1, "boxes": target["boxes"].float(), "masks": target["masks"]}


@contextlib.contextmanager
def _detections_per_image(roi_heads: RoIHeads, top_k: int | None) -> Iterator[None]:
    """Let torchvision's RoI heads keep `top_k` detections for one call (None: their configured count)."""
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k={top_k}; expected at least 1")
    configured = roi_heads.detections_per_img
    roi_heads.detections_per_img = configured if top_k is None else top_k
    try:
        yield
    finally:
        roi_heads.detections_per_img = configured
