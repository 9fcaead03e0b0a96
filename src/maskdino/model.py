"""MaskDINO: backbone -> pixel decoder -> Transformer decoder -> post-processing.

`model(images, targets)` follows torchvision's detection contract: a dict of weighted losses in training,
one result dict per image in eval.
"""

from __future__ import annotations

import torch
from torch import nn

from maskdino.backbones.build import build_backbone
from maskdino.checkpoints.pretrained import PretrainedMixin
from maskdino.config import ModelConfig
from maskdino.decoder.denoising_queries import build_denoising_queries
from maskdino.decoder.dimaskdino_decoder import DIMaskDINODecoder
from maskdino.decoder.maskdino_decoder import MaskDINODecoder
from maskdino.image_batch import normalize_and_pad, validate_images
from maskdino.layers.box_ops import box_xyxy_to_cxcywh
from maskdino.losses.criterion import build_criterion
from maskdino.outputs import MaskDINOOutput
from maskdino.pixel_decoder import PixelDecoder
from maskdino.postprocess import instance_inference, panoptic_inference, semantic_inference


class MaskDINO(PretrainedMixin, nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.backbone = build_backbone(cfg.backbone)
        # convolutional backbones run ~25% faster on CPU in channels-last layout (mkldnn), and so do GPU convs
        self.channels_last = cfg.backbone.name == "resnet"
        if self.channels_last:
            self.backbone.to(memory_format=torch.channels_last)
        self.pixel_decoder = PixelDecoder(cfg.pixel_decoder, self.backbone.output_shape())
        decoders = {"maskdino": MaskDINODecoder, "dimaskdino": DIMaskDINODecoder}
        if cfg.decoder.variant not in decoders:
            raise ValueError(f"decoder.variant must be one of {tuple(decoders)}, got {cfg.decoder.variant!r}")
        self.predictor = decoders[cfg.decoder.variant](
            cfg.decoder,
            cfg.num_classes,
            cfg.pixel_decoder.mask_dim,
            cfg.pixel_decoder.total_num_feature_levels,
        )
        self.register_buffer("pixel_mean", torch.tensor(cfg.pixel_mean).view(3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(cfg.pixel_std).view(3, 1, 1), persistent=False)
        things = torch.zeros(cfg.num_classes, dtype=torch.bool)
        things[list(cfg.thing_classes) if cfg.thing_classes else slice(None)] = True
        self.register_buffer("thing_classes", things, persistent=False)
        self.size_divisibility = cfg.size_divisibility
        if self.size_divisibility < 0:
            self.size_divisibility = self.backbone.size_divisibility
        self.criterion = build_criterion(cfg)  # holds no persistent state: not in the state dict

    def preprocess(self, images: list[torch.Tensor]) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        validate_images(images)
        images = [img.to(self.pixel_mean.device, torch.float32) for img in images]
        return normalize_and_pad(images, self.pixel_mean, self.pixel_std, self.size_divisibility)

    def run_network(self, batch: torch.Tensor, denoising_targets: list[dict] | None = None):
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        features = self.backbone(batch)
        multi_scale = self.pixel_decoder(features)
        denoising = None
        meta = None
        if denoising_targets is not None and self.cfg.decoder.dn != "no":
            built = build_denoising_queries(
                denoising_targets,
                self.predictor.label_enc,
                self.cfg.num_classes,
                self.cfg.decoder.num_queries,
                self.cfg.decoder.dn_num,
                self.cfg.decoder.dn_noise_scale,
                self.cfg.decoder.hidden_dim,
            )
            if built is not None:
                content, boxes, attn_mask, meta = built
                denoising = (content, boxes, attn_mask)
        outputs, dn_outputs = self.predictor(multi_scale, denoising)
        return outputs, dn_outputs, meta

    def forward_raw(self, images: list[torch.Tensor]) -> MaskDINOOutput:
        """Official network outputs before post-processing (boxes relative to the padded batch)."""
        batch, _ = self.preprocess(images)
        return self.run_network(batch)[0]

    def forward(
        self,
        images: list[torch.Tensor],
        targets: list[dict[str, torch.Tensor]] | None = None,
        output_sizes: list[tuple[int, int]] | None = None,
    ):
        """images: float RGB `[3, H, W]` in [0, 1], already resized by the preset's test transform.

        Training: targets with `labels` (contiguous ids), `boxes` (xyxy pixels), `masks` (bool `[N, H, W]`)
        and optionally `has_mask` (bool `[N]`, False for box-only targets); returns the weighted losses.
        Eval: one dict per image with `boxes`/`labels`/`scores`/`masks` (instance presets), `panoptic`,
        `semantic`, at `output_sizes` (default: the input sizes).
        """
        if self.training:
            if targets is None:
                raise ValueError(
                    "training needs targets: a list of dicts with labels, boxes (xyxy) and masks"
                )
            batch, sizes = self.preprocess(images)
            prepared = self.prepare_targets(targets, sizes, batch.shape[-2:])
            outputs, dn_outputs, meta = self.run_network(batch, prepared)
            losses = self.criterion(outputs.as_dict(), prepared, meta, dn_outputs)
            weights = self.criterion.weight_dict
            return {k: v * weights[k] for k, v in losses.items() if k in weights}
        batch, sizes = self.preprocess(images)
        outputs = self.run_network(batch)[0]
        if output_sizes is None:
            output_sizes = sizes
        if len(output_sizes) != len(sizes):
            raise ValueError(f"got {len(output_sizes)} output sizes for {len(sizes)} images")
        return self.postprocess(outputs, tuple(batch.shape[-2:]), sizes, output_sizes)

    def postprocess(self, outputs: MaskDINOOutput, padded_size, sizes, output_sizes) -> list[dict]:
        test = self.cfg.test
        resize_before = test.sem_seg_postprocessing_before_inference or test.panoptic_on or test.instance_on
        results = []
        for i, (image_size, output_size) in enumerate(zip(sizes, output_sizes)):
            output_size = (int(output_size[0]), int(output_size[1]))
            logits, masks, boxes = outputs.pred_logits[i], outputs.pred_masks[i], outputs.pred_boxes[i]
            result: dict = {}
            if test.semantic_on:
                result["semantic"] = semantic_inference(
                    logits,
                    masks,
                    padded_size,
                    image_size,
                    output_size,
                    test,
                    self.cfg.decoder.semantic_ce_loss,
                    resize_before,
                )
            if test.panoptic_on:
                result["panoptic"] = panoptic_inference(
                    logits, masks, padded_size, image_size, output_size, test, self.thing_classes
                )
            if test.instance_on:
                things = self.thing_classes if test.panoptic_on else None
                result.update(
                    instance_inference(
                        logits, masks, boxes, padded_size, image_size, output_size, test, things
                    )
                )
            results.append(result)
        return results

    @staticmethod
    def prepare_targets(targets: list[dict], sizes, padded_size) -> list[dict]:
        """Official target layout: boxes as (cx, cy, w, h) / image size, masks padded to the batch size."""
        prepared = []
        for target, (h, w) in zip(targets, sizes):
            masks = target["masks"]
            padded = masks.new_zeros((masks.shape[0], *padded_size))
            padded[:, : masks.shape[1], : masks.shape[2]] = masks
            scale = torch.tensor([w, h, w, h], dtype=torch.float32, device=masks.device)
            entry = {
                "labels": target["labels"],
                "boxes": box_xyxy_to_cxcywh(target["boxes"].float()) / scale,
                "masks": padded,
            }
            if "has_mask" in target:  # False for box-only annotations: no mask loss, no mask cost
                entry["has_mask"] = target["has_mask"]
            prepared.append(entry)
        return prepared
