"""Sine position encodings: the 2-D map of the pixel decoder and the box embedding of decoder queries."""

from __future__ import annotations

import math

import torch


def sine_position_map(
    batch: int, height: int, width: int, num_feats: int = 128, temperature: float = 10000.0, device=None
) -> torch.Tensor:
    """Normalised (scale 2*pi) sine/cosine map of an unpadded canvas, `[B, 2*num_feats, H, W]`.

    Channels are (y features, x features); each half interleaves sin and cos (DETR's encoding with no
    padding mask, as the official model runs).
    """
    eps, scale = 1e-6, 2 * math.pi
    y = torch.arange(1, height + 1, dtype=torch.float32, device=device)
    x = torch.arange(1, width + 1, dtype=torch.float32, device=device)
    y = y / (y[-1] + eps) * scale
    x = x / (x[-1] + eps) * scale
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)
    pos_x = x[:, None] / dim_t  # [W, F]
    pos_y = y[:, None] / dim_t  # [H, F]
    pos_x = torch.stack((pos_x[:, 0::2].sin(), pos_x[:, 1::2].cos()), dim=2).flatten(1)
    pos_y = torch.stack((pos_y[:, 0::2].sin(), pos_y[:, 1::2].cos()), dim=2).flatten(1)
    pos = torch.cat(
        (
            pos_y[:, None, :].expand(height, width, num_feats),
            pos_x[None, :, :].expand(height, width, num_feats),
        ),
        dim=2,
    )  # [H, W, 2F]
    return pos.permute(2, 0, 1).unsqueeze(0).expand(batch, -1, -1, -1)


def sine_box_embedding(
    boxes: torch.Tensor, num_feats: int = 128, temperature: float = 10000.0
) -> torch.Tensor:
    """Embed (x, y[, w, h]) in [0, 1] as concatenated sines, ordered (y, x[, w, h]): `[..., 2|4 * num_feats]`."""
    scale = 2 * math.pi
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=boxes.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)

    def embed(coord: torch.Tensor) -> torch.Tensor:
        pos = coord[..., None] * scale / dim_t
        return torch.stack((pos[..., 0::2].sin(), pos[..., 1::2].cos()), dim=-1).flatten(-2)

    parts = [embed(boxes[..., 1]), embed(boxes[..., 0])]
    if boxes.shape[-1] == 4:
        parts += [embed(boxes[..., 2]), embed(boxes[..., 3])]
    elif boxes.shape[-1] != 2:
        raise ValueError(f"expected 2 or 4 coordinates, got {boxes.shape[-1]}")
    return torch.cat(parts, dim=-1)
