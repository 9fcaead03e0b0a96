"""MaskDINO: backbone -> pixel decoder -> Transformer decoder -> post-processing.

`model(images, targets)` follows torchvision's detection contract: a dict of weighted losses in training,
one result dict per image in eval. Inference is `preprocess` -> `network` -> `postprocess` (`predict` runs
them per network batch, see `image_batch.network_batches`); the predictor, export, benchmark and evaluation
call these methods.
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
from maskdino.image_batch import Batching, ImageBatch, network_batches, normalize_and_pad, validate_images
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

    # ------------------------------------------------------------------ inference, stage by stage

    def preprocess(self, images: list[torch.Tensor]) -> ImageBatch:
        """Check the images, normalise them and zero-pad them into one batch (one padded size)."""
        validate_images(images)
        images = [img.to(self.pixel_mean.device, torch.float32) for img in images]
        return normalize_and_pad(images, self.pixel_mean, self.pixel_std, self.size_divisibility)

    def backbone_features(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        """The backbone's feature maps of `[B, 3, Hp, Wp]` pixels (channels-last where it runs faster)."""
        if self.channels_last:
            pixels = pixels.contiguous(memory_format=torch.channels_last)
        return self.backbone(pixels)

    def network(self, pixels: torch.Tensor) -> MaskDINOOutput:
        """Backbone -> pixel decoder -> Transformer decoder on normalised, padded pixels `[B, 3, Hp, Wp]`:
        the official network outputs (boxes relative to the padded input). What ONNX export traces."""
        return self.predictor(self.pixel_decoder(self.backbone_features(pixels)))[0]

    def postprocess(
        self,
        outputs: MaskDINOOutput,
        batch: ImageBatch,
        output_sizes: list[tuple[int, int]] | None = None,
        top_k: int | None = None,
    ) -> list[dict]:
        """One result dict per image of `batch` at `output_sizes` (default: the input sizes).

        top_k: instances kept per image (default `test.detections_per_image`, the official 100). Runs in
        float32 whatever precision the network ran in. With `test.mask_on` off (a detector trained on boxes)
        instance results have no `masks`.
        """
        sizes = batch.image_sizes
        output_sizes = sizes if output_sizes is None else output_sizes
        if len(output_sizes) != len(sizes):
            raise ValueError(f"got {len(output_sizes)} output sizes for {len(sizes)} images")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k={top_k}; expected at least 1")
        test = self.cfg.test
        if not test.mask_on and (test.panoptic_on or test.semantic_on):
            raise ValueError(
                "model.test.mask_on=false gives instance results only; panoptic_on and semantic_on need masks"
            )
        top_k = test.detections_per_image if top_k is None else top_k
        resize_before = test.sem_seg_postprocessing_before_inference or test.panoptic_on or test.instance_on
        padded_size = batch.padded_size
        with torch.autocast(batch.pixels.device.type, enabled=False):
            final = outputs.final
            all_logits, all_masks, all_boxes = final.logits.float(), final.masks.float(), final.boxes.float()
            results = []
            for i, (image_size, output_size) in enumerate(zip(sizes, output_sizes)):
                output_size = (int(output_size[0]), int(output_size[1]))
                logits, masks, boxes = all_logits[i], all_masks[i], all_boxes[i]
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
                    instance_masks = masks if test.mask_on else None
                    result.update(
                        instance_inference(
                            logits,
                            instance_masks,
                            boxes,
                            padded_size,
                            image_size,
                            output_size,
                            test,
                            top_k,
                            things,
                        )
                    )
                results.append(result)
        return results

    def predict(
        self,
        images: list[torch.Tensor],
        output_sizes: list[tuple[int, int]] | None = None,
        top_k: int | None = None,
        batching: Batching = "exact",
    ) -> list[dict]:
        """`preprocess` -> `network` -> `postprocess` for each network batch of `images`.

        batching: "exact" (default) runs each image on its own, so each result is bitwise the image's
        result alone; "grouped" lets images that pad to the same size share a pass (equal to float
        rounding). Images are never padded to a neighbour's size: the official model masks none of the
        padding, so that would change the results (`image_batch.network_batches`).
        """
        validate_images(images)
        if output_sizes is None:
            output_sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        if len(output_sizes) != len(images):
            raise ValueError(f"got {len(output_sizes)} output sizes for {len(images)} images")
        sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        results: list[dict] = [{} for _ in images]
        for group in network_batches(sizes, self.size_divisibility, batching):
            batch = self.preprocess([images[i] for i in group])
            outputs = self.network(batch.pixels)
            group_results = self.postprocess(outputs, batch, [output_sizes[i] for i in group], top_k)
            for i, result in zip(group, group_results):
                results[i] = result
        return results

    def forward_raw(self, images: list[torch.Tensor]) -> MaskDINOOutput:
        """Official network outputs before post-processing, the images padded into one batch (boxes
        relative to the padded batch)."""
        return self.network(self.preprocess(images).pixels)

    # ------------------------------------------------------------------ training and the torchvision contract

    def run_network(self, batch: torch.Tensor, denoising_targets: list[dict] | None = None):
        """Training network: `network` with denoising queries built from the targets. Returns (outputs,
        denoising outputs, denoising meta)."""
        multi_scale = self.pixel_decoder(self.backbone_features(batch))
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

    def forward(
        self,
        images: list[torch.Tensor],
        targets: list[dict[str, torch.Tensor]] | None = None,
        output_sizes: list[tuple[int, int]] | None = None,
        top_k: int | None = None,
        batching: Batching = "exact",
    ):
        """images: float RGB `[3, H, W]` in [0, 1], already resized by the preset's test transform.

        Training: targets with `labels` (contiguous ids), `boxes` (xyxy pixels), `masks` (bool `[N, H, W]`)
        and optionally `has_mask` (bool `[N]`, False for box-only targets); returns the weighted losses.
        Eval: `predict` (one dict per image with `boxes`/`labels`/`scores`/`masks` (instance presets),
        `panoptic`, `semantic`, at `output_sizes`, default the input sizes; `top_k`, `batching` as there).
        """
        if self.training:
            if targets is None:
                raise ValueError(
                    "training needs targets: a list of dicts with labels, boxes (xyxy) and masks"
                )
            batch = self.preprocess(images)
            prepared = self.prepare_targets(targets, batch.image_sizes, batch.pixels.shape[-2:])
            outputs, dn_outputs, meta = self.run_network(batch.pixels, prepared)
            losses = self.criterion(outputs.as_dict(), prepared, meta, dn_outputs)
            weights = self.criterion.weight_dict
            return {k: v * weights[k] for k, v in losses.items() if k in weights}
        return self.predict(images, output_sizes, top_k, batching)

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
