"""Peer models timed beside ours: torchvision Mask R-CNN R50-FPN and HF transformers Mask2Former R50.

Both are built with seeded random weights and nothing downloaded, see the same photos as our model, and
are timed on their whole inference call, pre- and post-processing included. Random weights make the
score thresholds meaningless, so both keep their top 100 detections whatever the scores (as our instance
post-processing does): otherwise Mask R-CNN would skip its mask head and mask pasting, and Mask2Former
its mask resizing.

`PEERS` is what `maskdino bench` runs beside our presets; the builders run inside its worker processes.
"""

from __future__ import annotations

import torch

from maskdino.benchmark.workloads import Peer, Prepared, SkipWorkload
from maskdino.data import pad_images

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

PEERS = {
    "maskrcnn": Peer(
        "maskrcnn", "torchvision Mask R-CNN R50-FPN", "maskdino.benchmark.peers:maskrcnn_r50_fpn"
    ),
    "mask2former": Peer("mask2former", "HF Mask2Former R50", "maskdino.benchmark.peers:mask2former_r50"),
}


def maskrcnn_r50_fpn(spec: dict, images: list[torch.Tensor]) -> Prepared:
    """`maskrcnn_resnet50_fpn` (91 COCO classes). Its transform's resize bounds are set so that it keeps
    the input size (800 x 1200 stays 800 x 1200, as with its default min 800 / max 1333)."""
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    device = torch.device(spec["device"])
    height, width = images[0].shape[-2:]
    torch.manual_seed(spec["seed"])
    model = maskrcnn_resnet50_fpn(
        weights=None,
        weights_backbone=None,
        min_size=min(height, width),
        max_size=max(height, width, 1333),
        box_score_thresh=0.0,
        box_detections_per_img=100,
    )
    model = model.eval().to(device)
    images = [image.to(device) for image in images]
    notes = [
        f"random weights (torch.manual_seed({spec['seed']}))",
        "box_score_thresh=0: 100 detections, masks pasted at full resolution",
    ]
    return Prepared(lambda: model(images), model, len(images), None, notes)


def mask2former_r50(spec: dict, images: list[torch.Tensor]) -> Prepared:
    """`Mask2FormerForUniversalSegmentation` with the COCO instance R50 settings (100 queries, 9+1 decoder
    layers, 6 encoder layers with FFN 1024, 80 classes) on a locally configured ResNet-50, then the
    processor's `post_process_instance_segmentation` at the input size. Normalisation and padding to a
    multiple of 32 (the processor's work before the model) are done with torch inside the timed call."""
    try:
        import transformers
        from transformers import (
            Mask2FormerConfig,
            Mask2FormerForUniversalSegmentation,
            Mask2FormerImageProcessor,
            ResNetConfig,
        )
    except ImportError as err:
        raise SkipWorkload(f"transformers is not importable ({err}); pip install transformers") from None

    transformers.logging.set_verbosity_error()  # "resnet is not a supported backbone": it works, see notes
    backbone = ResNetConfig(
        embedding_size=64,
        hidden_sizes=[256, 512, 1024, 2048],
        depths=[3, 4, 6, 3],
        layer_type="bottleneck",
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    config = Mask2FormerConfig(
        backbone_config=backbone,
        num_labels=80,
        num_queries=100,
        decoder_layers=10,
        encoder_layers=6,
        encoder_feedforward_dim=1024,
    )
    device = torch.device(spec["device"])
    torch.manual_seed(spec["seed"])
    model = Mask2FormerForUniversalSegmentation(config).eval().to(device)
    processor = Mask2FormerImageProcessor()
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(3, 1, 1)
    images = [image.to(device) for image in images]

    def step():
        pixels, sizes = pad_images([(image - mean) / std for image in images], 32)
        pixel_mask = torch.zeros(pixels.shape[0], *pixels.shape[-2:], dtype=torch.long, device=device)
        for mask, (h, w) in zip(pixel_mask, sizes):
            mask[:h, :w] = 1
        outputs = model(pixel_values=pixels, pixel_mask=pixel_mask)
        return processor.post_process_instance_segmentation(
            outputs, threshold=0.0, target_sizes=sizes, return_binary_maps=True
        )

    notes = [
        f"random weights (torch.manual_seed({spec['seed']})), transformers {transformers.__version__}",
        "HF ResNet-50 backbone (transformers warns it is not a listed Mask2Former backbone; it runs)",
        "post_process_instance_segmentation(threshold=0): all 100 queries resized to the input size",
    ]
    return Prepared(step, model, len(images), None, notes)
