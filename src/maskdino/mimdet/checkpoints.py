"""Weights for the MIMDet models: MAE-pretrained ViTs and MIMDet's released detector checkpoints.

Released checkpoints are detectron2 state dicts (`{"model": {...}}`); `convert_mimdet_state_dict` moves
their names onto `MIMDetMaskRCNN` (prefix moves, plus FPN / RPN renames to torchvision's modules), which
`maskdino.load_weights` applies when it meets detectron2's MIMDet names. MAE checkpoints (facebookresearch/mae
`models_mae.py` layout: `blocks.*`, `norm.*`, `decoder_*`, ...) initialise the backbone through
`load_mae_weights`, which says which keys it skipped and why.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

import torch

from maskdino.backbones.mimdet import MIMDetBackbone, resize_pos_embed
from maskdino.mimdet.benchmarking_vit import BenchmarkingViT

StateDict = dict[str, torch.Tensor]


def _fpn(match: re.Match) -> str:
    kind = "inner_blocks" if match["kind"] == "lateral" else "layer_blocks"
    leaf = "0.weight" if match["leaf"] == "weight" else "1." + match["leaf"].removeprefix("norm.")
    return f"fpn.{kind}.{int(match['stage']) - 2}.{leaf}"


# official name (full match) -> ours; the first matching rule applies
RENAMES: list[tuple[str, str | Callable[[re.Match], str]]] = [
    (r"backbone\.bottom_up\.encoder\.patch_embed\.proj\.(.+)", r"backbone.stem.stages.\1"),
    (r"backbone\.bottom_up\.encoder\.(.+)", r"backbone.\1"),
    (r"backbone\.bottom_up\.decoder\.decoder_(.+)", r"backbone.decoder.\1"),
    (r"backbone\.bottom_up\.(.+)", r"backbone.\1"),
    (r"backbone\.fpn_(?P<kind>lateral|output)(?P<stage>\d)\.(?P<leaf>weight|norm\..+)", _fpn),
    (r"proposal_generator\.rpn_head\.conv\.conv(\d+)\.(weight|bias)", r"rpn.head.conv.\1.0.\2"),
    (r"proposal_generator\.rpn_head\.objectness_logits\.(.+)", r"rpn.head.cls_logits.\1"),
    (r"proposal_generator\.rpn_head\.anchor_deltas\.(.+)", r"rpn.head.bbox_pred.\1"),
    (r"roi_heads\.mask_head\.(deconv|predictor)\.(.+)", r"roi_heads.mask_predictor.\1.\2"),
    (r"roi_heads\.(box_head|box_predictor|mask_head)\.(.+)", r"roi_heads.\1.\2"),
]

# state the official code saves but derives from the config (we rebuild it): never loaded
DERIVED = re.compile(
    r"(.*\.relative_position_index|pixel_(mean|std)|proposal_generator\.anchor_generator\..*)"
)


def read_state_dict(source: str | Path | Mapping[str, torch.Tensor], trust_pickle: bool = False) -> StateDict:
    """A state dict from a path or a mapping, unwrapping `{"model": ...}` and DDP's `module.` prefix."""
    if isinstance(source, str | Path):
        try:
            source = torch.load(source, map_location="cpu", weights_only=not trust_pickle)
        except pickle.UnpicklingError as error:  # weights-only loading met a non-tensor object
            raise RuntimeError(
                f"could not read {source} as plain tensors ({error}); if the file comes from a source you "
                "trust (e.g. a full detectron2 training checkpoint), pass trust_pickle=True"
            ) from error
    if "model" in source and isinstance(source["model"], Mapping):
        source = source["model"]
    return {k.removeprefix("module."): v for k, v in source.items() if isinstance(v, torch.Tensor)}


def convert_mimdet_state_dict(official: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename an official MIMDet / Benchmarking-ViT detector state dict to `MIMDetMaskRCNN`'s names."""
    converted, unknown = {}, []
    for key, value in official.items():
        if DERIVED.fullmatch(key):
            continue
        for pattern, replacement in RENAMES:
            match = re.fullmatch(pattern, key)
            if match:
                converted[
                    match.expand(replacement) if isinstance(replacement, str) else replacement(match)
                ] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise KeyError(
            f"{len(unknown)} keys are not part of a MIMDet Mask R-CNN checkpoint, e.g. {unknown[:5]}; "
            "expected detectron2 names (backbone.bottom_up.*, backbone.fpn_*, proposal_generator.*, "
            "roi_heads.*)"
        )
    return converted


def check_state_dict(
    expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], what: str
) -> None:
    """Raise one error listing every missing, unexpected and wrongly shaped key of `state`."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        lines = [f"{what} does not fit the model:"]
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
            if items:
                lines.append(f"  {label} ({len(items)}): {items[:8]}")
        lines.append(
            "  check that the preset matches the checkpoint (ViT-B vs ViT-L, num_classes, pretrain_img_size "
            "800 for MIMDet's position tables, Benchmarking vs MIMDet backbone)"
        )
        raise ValueError("\n".join(lines))


def _resized_pos_table(table: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Resample MAE's `[1, 1 + g*g, C]` table to the target's grid, keeping the class-token row
    (official `interpolate_pos_embed`)."""
    grid = int(round((target.shape[1] - 1) ** 0.5))
    return torch.cat([table[:, :1], resize_pos_embed(table[:, 1:], (grid, grid))], dim=1)


def _mae_for_mimdet(backbone: MIMDetBackbone, key: str) -> str | None:
    """Our name for an MAE key, or None for keys MIMDet does not use."""
    decoder = backbone.decoder
    if key == "cls_token" or key.startswith(("patch_embed.", "decoder_pred.")):
        return None  # no class token; the conv stem replaces the patchify layer; no pixel head
    if key == "mask_token":
        return "decoder.mask_token" if decoder.dropped_tokens == "mask_token" else None
    if key.startswith("decoder_blocks."):
        index = int(key.split(".")[1])
        return "decoder." + key.removeprefix("decoder_") if index < len(decoder.blocks) else None
    if key.startswith("decoder_"):
        return "decoder." + key.removeprefix("decoder_")
    return key


def _mae_for_benchmarking(key: str) -> str | None:
    if key in ("cls_token", "pos_embed", "mask_token") or key.startswith(("norm.", "decoder_")):
        return None  # sin-cos position table instead (as official), no class token, no final norm
    return key


def load_mae_weights(
    backbone: MIMDetBackbone | BenchmarkingViT,
    source: str | Path | Mapping[str, torch.Tensor],
    require_decoder: bool = True,
    trust_pickle: bool = False,
) -> list[str]:
    """Initialise a MIMDet (or Benchmarking) backbone from an MAE checkpoint; returns the MAE keys not used.

    MIMDet takes the encoder blocks and final norm, and its decoder from the first blocks of MAE's
    decoder: that needs a *full* MAE checkpoint (`mae_pretrain_vit_base_full.pth`), unless
    `require_decoder=False` leaves the decoder random. Position tables are resampled to the backbone's
    grid. The conv stem and conv-feature projection (MIMDet), the adaptors, relative position biases
    and position table (Benchmarking) keep their initialisation. Anything else missing is an error.
    """
    state = read_state_dict(source, trust_pickle)
    if isinstance(backbone, MIMDetBackbone):
        rename = partial(_mae_for_mimdet, backbone)
        random_init: tuple[str, ...] = ("stem.", "decoder.conv_feat_proj.")
        if not any(k.startswith("decoder_") for k in state):
            if require_decoder:
                raise ValueError(
                    "the MAE checkpoint has no decoder (decoder_* keys): MIMDet initialises its decoder from "
                    "MAE's, so use the full checkpoint (mae_pretrain_vit_base_full.pth / "
                    "mae_pretrain_vit_large_full.pth) or pass require_decoder=False to leave it random"
                )
            random_init += ("decoder.",)
    else:
        rename = _mae_for_benchmarking
        random_init = ("pos_embed", "ms_adaptor.", "windowed_rel_pos_bias.", "global_rel_pos_bias.")
    ours = backbone.state_dict()
    loaded, skipped = {}, []
    for key, value in state.items():
        name = rename(key)
        if name is None:
            skipped.append(key)
            continue
        if name.endswith("pos_embed") and name in ours and value.shape != ours[name].shape:
            value = _resized_pos_table(value, ours[name])
        loaded[name] = value
    expected = {k: v for k, v in ours.items() if not k.startswith(random_init)}
    check_state_dict(expected, loaded, "MAE checkpoint")
    backbone.load_state_dict(loaded, strict=False)
    return skipped
