"""MIMDet's released detector checkpoints.

Released checkpoints are detectron2 state dicts (`{"model": {...}}`); `convert_mimdet_state_dict` moves
their names onto `MIMDetMaskRCNN` (prefix moves, plus FPN / RPN renames to torchvision's modules), which
`maskdino.load_weights` applies when it meets detectron2's MIMDet names. MAE-pretrained ViTs initialise the
backbone through `maskdino.load_backbone_weights` (model.backbone.weights), like every other pretrained
backbone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import torch

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
