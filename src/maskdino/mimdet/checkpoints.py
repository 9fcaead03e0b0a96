"""MIMDet's released detector checkpoints.

Released checkpoints are detectron2 state dicts (`{"model": {...}}`); `convert_mimdet_state_dict` moves
their names onto `MIMDetMaskRCNN` (prefix moves, plus FPN / RPN renames to torchvision's modules), and
`load_mimdet_checkpoint` loads the result strictly. MAE-pretrained ViTs initialise the backbone through
`maskdino.load_backbone_weights` (model.backbone.weights), like every other pretrained backbone.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

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


def load_mimdet_checkpoint(
    model: nn.Module, source: str | Path | Mapping[str, torch.Tensor], trust_pickle: bool = False
) -> None:
    """Load a released MIMDet / Benchmarking-ViT detector checkpoint into `MIMDetMaskRCNN`, strictly."""
    state = convert_mimdet_state_dict(read_state_dict(source, trust_pickle))
    check_state_dict(
        model.state_dict(), state, f"checkpoint {source if isinstance(source, str | Path) else '(mapping)'}"
    )
    model.load_state_dict(state, strict=True)
