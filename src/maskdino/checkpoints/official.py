"""Loading officially released (detectron2) Mask DINO checkpoints.

The official model registers a few tensors under several names (one box MLP as `_bbox_embed`,
`bbox_embed.{i}` and `decoder.bbox_embed.{i}`; `decoder_norm` also as `decoder.norm`); ours holds each
once. Conversion is a short list of prefix moves, plus dropping those aliases (after checking they hold
the same values) and the criterion's constant `empty_weight` buffer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from maskdino.checkpoints.errors import CheckpointMismatchError, UnreadableCheckpointError
from maskdino.utils.file_access import check_readable

# (official prefix, our prefix), first match wins
PREFIX_MOVES: list[tuple[str, str]] = [
    ("sem_seg_head.pixel_decoder.transformer.level_embed", "pixel_decoder.level_embed"),
    ("sem_seg_head.pixel_decoder.transformer.encoder.", "pixel_decoder.encoder."),
    ("sem_seg_head.pixel_decoder.", "pixel_decoder."),
    ("sem_seg_head.predictor._bbox_embed.", "predictor.bbox_embed."),
    ("sem_seg_head.predictor.decoder_norm.", "predictor.norm."),
    # DI-MaskDINO
    ("sem_seg_head.predictor._oldm_bbox_embed.", "predictor.oldm.bbox_embed."),
    ("sem_seg_head.predictor.query_guide_feature_update.", "predictor.bato.query_guide_feature_update."),
    ("sem_seg_head.predictor.decoder.mask_output_conv.", "predictor.bato.mask_output_conv."),
    ("sem_seg_head.predictor.", "predictor."),
    ("backbone.", "backbone."),
]

# official names that repeat a tensor held elsewhere: (alias pattern, canonical name template)
ALIASES: list[tuple[re.Pattern, str]] = [
    (
        re.compile(r"^sem_seg_head\.predictor\.(?:decoder\.)?bbox_embed\.\d+\.(.*)$"),
        "sem_seg_head.predictor._bbox_embed.{}",
    ),
    (re.compile(r"^sem_seg_head\.predictor\.decoder\.norm\.(.*)$"), "sem_seg_head.predictor.decoder_norm.{}"),
    # DI-MaskDINO: the oldm box MLP, oldm norm, and the heads / BATO layer repeated in the decoder and oldm
    (
        re.compile(r"^sem_seg_head\.predictor\.(?:oldm\.|oldm_)bbox_embed\.\d+\.(.*)$"),
        "sem_seg_head.predictor._oldm_bbox_embed.{}",
    ),
    (re.compile(r"^sem_seg_head\.predictor\.oldm_norm\.(.*)$"), "sem_seg_head.predictor.oldm.norm.{}"),
    (
        re.compile(r"^sem_seg_head\.predictor\.(?:decoder|oldm)\.class_embed\.(.*)$"),
        "sem_seg_head.predictor.class_embed.{}",
    ),
    (
        re.compile(r"^sem_seg_head\.predictor\.decoder\.mask_embed\.(.*)$"),
        "sem_seg_head.predictor.mask_embed.{}",
    ),
    (
        re.compile(r"^sem_seg_head\.predictor\.decoder\.query_guide_feature_update\.(.*)$"),
        "sem_seg_head.predictor.query_guide_feature_update.{}",
    ),
]

# official entries with no counterpart: constants rebuilt by our code
DROPPED = re.compile(r"^criterion\.empty_weight$")


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of an official `.pth` (`{"model": state_dict}` or a bare state dict), without executing
    pickled code (`weights_only=True`)."""
    path = check_readable(path, "checkpoint")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt files and unsafe pickles both land here
        raise UnreadableCheckpointError(
            f"cannot read {path} as a PyTorch checkpoint with weights_only=True ({type(err).__name__}: {err}). "
            "The file may be truncated or corrupt (download it again), or it pickles objects other than tensors "
            "(re-save just the state dict: torch.save({'model': sd}, path))."
        ) from err
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        obj = obj["model"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UnreadableCheckpointError(
            f"{path} does not hold a state dict of tensors (or {{'model': state_dict}})"
        )
    return dict(obj)


def convert_official_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official names -> ours. Raises if an alias differs from the tensor it should repeat."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    converted = {}
    for name, tensor in state.items():
        alias_of = _canonical_name(name)
        if alias_of is not None:
            canonical = state.get(alias_of)
            if canonical is not None and canonical is not tensor and not torch.equal(canonical, tensor):
                raise CheckpointMismatchError(
                    f"{name} should be the same tensor as {alias_of} (the official model shares it) but differs"
                )
            if alias_of in state:
                continue
            name = alias_of
        if DROPPED.search(name):
            continue
        converted[_move_prefix(name)] = tensor
    return converted


def _canonical_name(name: str) -> str | None:
    for pattern, template in ALIASES:
        match = pattern.match(name)
        if match:
            return template.format(match.group(1))
    return None


def _move_prefix(name: str) -> str:
    for old, new in PREFIX_MOVES:
        if name.startswith(old):
            return new + name[len(old) :]
    return name


def load_official_checkpoint(
    model: nn.Module, path_or_state_dict: str | Path | Mapping[str, torch.Tensor]
) -> nn.Module:
    """Load an official checkpoint into `model` strictly; on any mismatch raise an error that lists the
    missing, unexpected and shape-mismatched keys and names the preset the checkpoint most likely fits."""
    if isinstance(path_or_state_dict, str | Path):
        source = str(path_or_state_dict)
        state = read_checkpoint(path_or_state_dict)
    else:
        source = "the given state dict"
        state = dict(path_or_state_dict)
    converted = convert_official_state_dict(state)
    load_strict(model, converted, source)
    return model


def load_strict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(state) & set(expected)
        if state[k].shape != expected[k].shape
    )
    if missing or unexpected or wrong_shape:
        from maskdino.checkpoints.guess import guess_preset

        guess = guess_preset({k: tuple(v.shape) for k, v in state.items()})
        raise CheckpointMismatchError(_mismatch_message(source, missing, unexpected, wrong_shape, guess))
    model.load_state_dict(state, strict=True)


def _mismatch_message(source: str, missing, unexpected, wrong_shape, guess: str | None) -> str:
    def block(title: str, items: list[str]) -> str:
        shown = "\n    ".join(items[:20])
        more = f"\n    ... and {len(items) - 20} more" if len(items) > 20 else ""
        return f"\n  {title} ({len(items)}):\n    {shown}{more}" if items else ""

    lines = f"checkpoint {source} does not match the model."
    lines += block("missing in checkpoint", missing)
    lines += block("unexpected in checkpoint", unexpected)
    lines += block("shape mismatch", wrong_shape)
    if guess:
        lines += f"\n  It most likely fits the preset {guess!r}: build the model with get_config({guess!r})."
    return lines
