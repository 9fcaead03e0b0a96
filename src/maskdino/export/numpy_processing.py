"""Pre- and post-processing for the exported network with numpy and Pillow only (no torch).

The same steps as `maskdino.Predictor` around the network: the preset's shortest-edge test resize (PIL
bilinear), normalisation and zero padding to a multiple of the size divisibility; then the instance
post-processing of `maskdino.postprocess.instance_inference` (top-k (query, class) pairs by sigmoid score,
masks upsampled to the padded input, cropped and resized to the photo, score = class probability x mean
mask probability, boxes in photo pixels). This file imports nothing from maskdino: copy it anywhere.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def resized_size(height: int, width: int, short: int, long: int) -> tuple[int, int]:
    """(h, w) after the test resize: short side `short`, then shrunk so the long side is at most `long`."""
    scale = short / min(height, width)
    h, w = (short, scale * width) if height < width else (scale * height, short)
    shrink = min(1.0, long / max(h, w))
    return int(h * shrink + 0.5), int(w * shrink + 0.5)


def preprocess(
    photo: np.ndarray, short: int, long: int, mean, std, divisor: int = 32
) -> tuple[np.ndarray, tuple[int, int]]:
    """uint8 RGB `[H, W, 3]` -> network input `[1, 3, Hp, Wp]` float32 and the (h, w) the photo fills
    (top left; the rest is zero padding, Hp and Wp the next multiples of `divisor`)."""
    h, w = resized_size(photo.shape[0], photo.shape[1], short, long)
    resized = np.asarray(Image.fromarray(photo).resize((w, h), Image.BILINEAR), np.float32)
    pixels = (resized - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    padded = np.zeros((1, 3, -(-h // divisor) * divisor, -(-w // divisor) * divisor), np.float32)
    padded[0, :, :h, :w] = pixels.transpose(2, 0, 1)
    return padded, (h, w)


def resize_bilinear(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`[N, h, w]` -> `[N, H, W]`: bilinear, pixel centres aligned (torch `align_corners=False`)."""

    def taps(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.maximum((np.arange(dst, dtype=np.float32) + 0.5) * np.float32(src / dst) - 0.5, 0)
        low = np.minimum(pos.astype(np.int64), src - 1)
        return low, np.minimum(low + 1, src - 1), (pos - low).astype(np.float32)

    y0, y1, fy = taps(x.shape[1], size[0])
    x0, x1, fx = taps(x.shape[2], size[1])
    rows = x[:, y0] * (1 - fy)[:, None] + x[:, y1] * fy[:, None]  # [N, H, w]
    return rows[:, :, x0] * (1 - fx) + rows[:, :, x1] * fx


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * x))  # no overflow for large |x|


def postprocess(
    logits: np.ndarray,
    boxes: np.ndarray,
    masks: np.ndarray,
    image_size: tuple[int, int],
    output_size: tuple[int, int],
    top_k: int = 100,
) -> dict[str, np.ndarray]:
    """One image's network outputs (`[Q, C]` logits, `[Q, 4]` cx cy w h of the padded input, `[Q, h, w]`
    mask logits at 1/4 of it) -> `boxes` xyxy `[K, 4]`, `labels`, `scores` (best first) and bool `masks`
    `[K, H, W]` at `output_size` (the photo's (H, W)); `image_size` is the (h, w) the photo filled."""
    padded = (masks.shape[1] * 4, masks.shape[2] * 4)
    probs = sigmoid(logits.astype(np.float32)).ravel()
    top = np.argsort(-probs, kind="stable")[:top_k]
    query, labels = np.divmod(top, logits.shape[1])
    binary, mask_scores = [], []
    for start in range(0, len(query), 25):  # 25 full-size float masks at a time
        chunk = resize_bilinear(masks[query[start : start + 25]].astype(np.float32), padded)
        chunk = resize_bilinear(chunk[:, : image_size[0], : image_size[1]], output_size)
        inside = chunk > 0
        binary.append(inside)
        mask_scores.append(np.where(inside, sigmoid(chunk), 0).sum((1, 2)) / (inside.sum((1, 2)) + 1e-6))
    scores = probs[top] * np.concatenate(mask_scores)
    cx, cy, w, h = boxes[query].T
    scale_x = padded[1] / image_size[1] * output_size[1]
    scale_y = padded[0] / image_size[0] * output_size[0]
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1) * [
        scale_x,
        scale_y,
        scale_x,
        scale_y,
    ]
    order = np.argsort(-scores, kind="stable")
    masks_out = np.concatenate(binary)[order]
    return {"boxes": xyxy[order], "labels": labels[order], "scores": scores[order], "masks": masks_out}
