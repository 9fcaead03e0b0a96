"""Batching for the MIMDet detectors and the mapping of detections back to output sizes, as officially.

Images arrive at the network's size (resized by the training pipeline, or by the test resize of the
predictor / evaluator: `input.min_size_test`, `input.max_size_test`). Two official batchings:

- MIMDet (detectron2's `GeneralizedRCNN`): normalise, pad with zeros to a multiple of the size
  divisibility. The heads see each image's own size; detections are rescaled to the output size per
  axis (detectron2's `detector_postprocess`).
- Benchmarking ViT (fixed square input): the LSJ test mapper's `FixedSizeCrop` pads the resized image
  to the square with the pixel value 128 BEFORE normalisation, and the heads see the whole square as
  the image. Detections are rescaled by one factor, the larger of the two output / square ratios
  (MIMDet's `lsj_postprocess`), so the content in the square's top-left maps onto the original image.

Either way boxes are then clipped to the output size, empty ones dropped, and the masks pasted there.
"""

from __future__ import annotations

import torch
from torch import nn

from maskdino.data.augmentations import IMAGE_PAD_VALUE
from maskdino.data.loader import pad_images
from maskdino.image_batch import normalize_and_pad, validate_images
from maskdino.mimdet.boxes import clip_boxes, nonempty
from maskdino.mimdet.mask_paste import paste_masks_in_image


class DetectionTransform(nn.Module):
    """`[3, H, W]` images in [0, 1] -> normalised `[B, 3, H', W']` batch and the image sizes the heads see.

    H', W': the largest sizes rounded up to `size_divisibility`, or the `fixed_input_size` square.
    """

    def __init__(
        self,
        pixel_mean: tuple[float, ...],
        pixel_std: tuple[float, ...],
        size_divisibility: int,
        fixed_input_size: int | None = None,
    ):
        super().__init__()
        # the official means/stds are on the 0-255 scale of RGB images
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), persistent=False)
        self.size_divisibility = size_divisibility
        self.fixed_input_size = fixed_input_size

    def forward(self, images: list[torch.Tensor]) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """Returns the batch and, per image, the (h, w) the heads clip to."""
        validate_images(images)
        images = [image.to(self.pixel_mean.device, torch.float32) for image in images]
        square = self.fixed_input_size
        if square is None:
            batch = normalize_and_pad(images, self.pixel_mean, self.pixel_std, self.size_divisibility)
            return batch.pixels, batch.image_sizes
        for i, image in enumerate(images):
            if max(image.shape[-2:]) > square:
                raise ValueError(
                    f"image {i} is {image.shape[1]}x{image.shape[2]}, larger than the fixed input size "
                    f"{square}; resize it first (LSJ and the test resize with input.max_size_test do)"
                )
        # a multiple of the square that no image exceeds is the square itself
        canvas, _ = pad_images([image * 255.0 for image in images], square, float(IMAGE_PAD_VALUE))
        return (canvas - self.pixel_mean) / self.pixel_std, [(square, square)] * len(images)

    def postprocess(
        self,
        detections: list[dict[str, torch.Tensor]],
        image_sizes: list[tuple[int, int]],
        output_sizes: list[tuple[int, int]],
    ) -> list[dict[str, torch.Tensor]]:
        """Detections at the heads' image sizes -> at `output_sizes`: boxes scaled and clipped, empty boxes
        dropped, labels 0-based, masks (probabilities `[N, 1, M, M]`) pasted as bool `[N, h, w]`."""
        if len(output_sizes) != len(detections):
            raise ValueError(f"got {len(output_sizes)} output sizes for {len(detections)} images")
        results = []
        for det, (h, w), (out_h, out_w) in zip(detections, image_sizes, output_sizes):
            scale_x, scale_y = out_w / w, out_h / h
            if self.fixed_input_size is not None:
                scale_x = scale_y = max(scale_x, scale_y)
            boxes = clip_boxes(det["boxes"] * det["boxes"].new_tensor([scale_x, scale_y] * 2), (out_h, out_w))
            keep = nonempty(boxes)
            result = {"boxes": boxes[keep], "labels": det["labels"][keep] - 1, "scores": det["scores"][keep]}
            if "masks" in det:
                result["masks"] = paste_masks_in_image(det["masks"][keep, 0], boxes[keep], (out_h, out_w))
            results.append(result)
        return results
