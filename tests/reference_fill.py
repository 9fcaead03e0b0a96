"""Deterministic synthetic weights from a parameter's official name (our implementation of the
reference specification `shared/reference/fill.py`; `test_reference_fill.py` checks it reproduces it).

Each tensor draws from its own PCG64 generator seeded by crc32(name), with a scale rule chosen by name.
"""

from __future__ import annotations

import zlib

import numpy as np

MASK_FEATURE_BIAS_STD = 0.3
MASK_OFFSET = 4.0
ADAPTER_GAIN = 0.25
DECODER_RESIDUAL_GAIN = 0.25
BOX_WH_BIAS = 0.7
CLASS_BIAS = -4.5


def _generator(name: str) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(zlib.crc32(name.encode())))


def _offset_ring(size: int, heads: int = 8, points: int = 4) -> np.ndarray:
    levels = size // (heads * points * 2)
    angles = np.arange(heads, dtype=np.float64) * (2.0 * np.pi / heads)
    ring = np.stack([np.cos(angles), np.sin(angles)], -1)
    ring = ring / np.abs(ring).max(-1, keepdims=True)
    ring = np.broadcast_to(ring[:, None, None, :], (heads, levels, points, 2)).copy()
    ring *= np.arange(1, points + 1, dtype=np.float64)[None, None, :, None]
    return ring.reshape(-1)


def _gain(name: str) -> float:
    if name.startswith("backbone."):
        if ".shortcut." in name:
            return 1.0
        if ".conv3." in name:
            return 0.5
        if "stem." in name or ".conv1." in name or ".conv2." in name:
            return float(np.sqrt(2.0))
        return 1.0
    if ".adapter_" in name:
        return ADAPTER_GAIN
    if ".decoder.layers." in name and name.endswith(
        ("out_proj.weight", "output_proj.weight", "linear2.weight")
    ):
        return DECODER_RESIDUAL_GAIN
    return 1.0


def fill(name: str, shape) -> np.ndarray:
    shape = tuple(int(s) for s in shape)
    rng = _generator(name)
    size = int(np.prod(shape)) if shape else 1

    def normal(std: float = 1.0) -> np.ndarray:
        return rng.standard_normal(size).reshape(shape) * std

    if name.endswith("running_mean"):
        out = normal(0.1)
    elif name.endswith("running_var"):
        out = rng.uniform(0.5, 1.5, size).reshape(shape)
    elif name.endswith("level_embed"):
        out = normal(0.5)
    elif name.endswith("sampling_offsets.bias"):
        out = _offset_ring(size).reshape(shape) + normal(0.1)
    elif len(shape) == 1 and name.endswith("weight"):
        out = 1.0 + normal(0.02)
    elif name.endswith("bias"):
        if name.endswith("class_embed.bias"):
            out = CLASS_BIAS + normal(0.3)
        elif "bbox_embed" in name and name.endswith(".layers.2.bias") and shape == (4,):
            out = np.array([0.0, 0.0, -BOX_WH_BIAS, -BOX_WH_BIAS]) + normal(0.02)
        elif name.endswith("pixel_decoder.mask_features.bias"):
            out = normal(MASK_FEATURE_BIAS_STD)
        elif name.endswith("mask_embed.layers.2.bias") and "predictor." in name:
            prefix = name[: name.index("predictor.")]
            b = fill(prefix + "pixel_decoder.mask_features.bias", shape).astype(np.float64)
            out = -MASK_OFFSET * b / (b * b).sum()
        else:
            out = normal(0.02)
    elif name.endswith(("query_embed.weight", "query_feat.weight", "label_enc.weight")):
        out = normal(1.0)
    elif name.endswith(("relative_position_bias_table", "absolute_pos_embed")):
        out = normal(0.02)
    elif len(shape) >= 2:
        fan_in = int(np.prod(shape[1:]))
        out = normal(_gain(name) / np.sqrt(fan_in))
        if not name.startswith("backbone."):
            rows = out.reshape(shape[0], -1)
            out = (rows - rows.mean(1, keepdims=True)).reshape(shape)
    else:
        out = normal(0.02)
    return np.ascontiguousarray(out, dtype=np.float32)


def official_state_dict(inventory: dict) -> dict[str, np.ndarray]:
    """Fill every float entry of a `keys_*.json` inventory; aliased names share their group's canonical value."""
    canonical = {}
    for group in inventory["alias_groups"]:
        first = sorted(group)[0]
        for name in group:
            canonical[name] = first
    state = {}
    cache: dict[str, np.ndarray] = {}
    for name, shape, dtype in inventory["keys"]:
        if not dtype.startswith("float"):
            continue
        source = canonical.get(name, name)
        if source not in cache:
            cache[source] = fill(source, shape)
        state[name] = cache[source]
    return state
