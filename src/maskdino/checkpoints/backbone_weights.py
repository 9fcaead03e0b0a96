"""`load_backbone_weights(model, path)`: start a model's backbone from a pretrained file, as the official
recipes do (ImageNet ResNet-50 or Swin-L, MAE ViT).

The result equals what the official loader gives with the official config (detectron2's
`DetectionCheckpointer` name matching for ResNet and Swin, MIMDet's MAE loading): every backbone tensor
of the file, the rest of the backbone at its initialisation only where the official model leaves it
there (Swin's output norms, MIMDet's conv stem). A file that does not fit (another architecture, a
truncated or empty file, Caffe2 BGR weights) raises `BackboneWeightsError` naming the file, what it
holds and what to do; the model is only changed when everything fits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from maskdino.backbones.mimdet import resize_pos_embed
from maskdino.checkpoints.backbone_files import WeightsFile, read_weights_file
from maskdino.checkpoints.backbone_names import (
    NameMap,
    backbone_family,
    describe_backbone,
    describe_file,
    file_layout,
    map_names,
)
from maskdino.checkpoints.zoo import ZooEntry, find_entry
from maskdino.config import BackboneConfig

logger = logging.getLogger(__name__)

# every supported file was trained on RGB images normalised with these (0-255 scale)
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
CAFFE2_MEAN_BGR = (103.53, 116.28, 123.675)


class BackboneWeightsError(ValueError):
    """A backbone weights file that cannot initialise this model's backbone."""


def _published(name: str) -> ZooEntry:
    entry = find_entry(name)
    assert entry is not None and entry.kind == "backbone", name
    return entry


# the files the official configs start their backbones from (registry entries: `maskdino zoo`)
R50_TORCHVISION = _published("resnet50-imagenet")
SWIN_L_22K = _published("swin-large-in22k-384")
MAE_VIT_B_FULL = _published("mae-vit-base-full")
MAE_VIT_L_FULL = _published("mae-vit-large-full")
MAE_VIT_B = _published("mae-vit-base")


def published_weights(cfg: BackboneConfig) -> ZooEntry | None:
    """The published pretrained file for this backbone configuration (None when there is none)."""
    resnet, swin = cfg.resnet, cfg.swin
    if cfg.name == "resnet":
        standard = (resnet.stem_out_channels, resnet.res2_out_channels, resnet.width_per_group) == (
            64,
            256,
            64,
        )
        return R50_TORCHVISION if standard and resnet.depth == 50 and resnet.num_groups == 1 else None
    if cfg.name == "swin":
        return SWIN_L_22K if (swin.embed_dim, swin.window_size) == (192, 12) else None
    if cfg.name == "mimdet":
        return {768: MAE_VIT_B_FULL, 1024: MAE_VIT_L_FULL}.get(cfg.mimdet.embed_dim)
    if cfg.name == "benchmarking_vit":
        return MAE_VIT_B if cfg.benchmarking_vit.embed_dim == 768 else None
    return None


@dataclass
class BackboneWeightsReport:
    """What `load_backbone_weights` did. Names in `loaded`/`untouched` are the backbone's own (no
    `backbone.` prefix); names in `skipped` are the file's."""

    path: Path
    holds: str  # what the file holds, e.g. "a ResNet-50 (torchvision names)"
    loaded: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # file entry -> why it was not used
    untouched: dict[str, str] = field(default_factory=dict)  # backbone tensor -> why it keeps its init
    pixel_mean: tuple[float, ...] = IMAGENET_MEAN  # the input normalisation the file was trained with
    pixel_std: tuple[float, ...] = IMAGENET_STD
    channel_order: str = "RGB"

    def summary(self) -> str:
        """One paragraph: counts, and each reason once with how many tensors it covers."""

        def grouped(entries: dict[str, str]) -> str:
            counts: dict[str, list[str]] = {}
            for name, reason in entries.items():
                counts.setdefault(reason, []).append(name)
            return "; ".join(f"{len(names)} x {reason} (e.g. {names[0]})" for reason, names in counts.items())

        text = f"backbone weights {self.path} ({self.holds}): loaded {len(self.loaded)} tensors"
        if self.skipped:
            text += f"; unused from the file: {grouped(self.skipped)}"
        if self.untouched:
            text += f"; left at initialisation: {grouped(self.untouched)}"
        return text


def load_backbone_weights(model: nn.Module, path: str | Path) -> BackboneWeightsReport:
    """Load the pretrained backbone file `path` (or registry name, `maskdino zoo`) into `model.backbone`;
    see the module docstring."""
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, nn.Module):
        raise TypeError(
            f"load_backbone_weights needs a model with a .backbone module, got {type(model).__name__}"
        )
    weights = read_weights_file(path)
    path = weights.path
    tensors, skipped = _backbone_entries(weights)
    holds = describe_file(tensors)
    layout = file_layout(set(tensors))
    if layout == "resnet-caffe2" or weights.author == "Caffe2":
        raise BackboneWeightsError(_caffe2_message(path))
    family = backbone_family(backbone)
    if layout is None or not layout.startswith(family):
        raise BackboneWeightsError(
            f"{path} holds {holds}, but this model's backbone is {describe_backbone(backbone)}. "
            f"{_fix_hint(backbone)}"
        )
    names = map_names(backbone, list(tensors))
    skipped.update(names.unused)
    state, untouched, problems = _match(backbone.state_dict(), tensors, names)
    if any(problems.values()):
        raise BackboneWeightsError(
            _mismatch_message(path, holds, describe_backbone(backbone), problems)
            + f"\n  {_fix_hint(backbone)}"
        )
    _check_normalisation(model, path)
    backbone.load_state_dict(state, strict=False)
    if names.warning:
        logger.warning("%s: %s", path, names.warning)
    return BackboneWeightsReport(path, holds, sorted(state), skipped, untouched)


def _match(
    own: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor], names: NameMap
) -> tuple[dict[str, torch.Tensor], dict[str, str], dict[str, list[str]]]:
    """(tensors to load under our names, our tensors kept at init -> reason, problems by kind)."""
    state: dict[str, torch.Tensor] = {}
    problems: dict[str, list[str]] = {"missing in the file": [], "in the file but not in the backbone": []}
    problems["shape mismatch"] = []
    for key, ours in names.targets.items():
        value = tensors[key]
        if ours not in own:
            problems["in the file but not in the backbone"].append(
                key if ours == key else f"{key} (as {ours})"
            )
            continue
        if value.shape != own[ours].shape and names.resample_position_tables and ours.endswith("pos_embed"):
            value = _resized_pos_table(value, own[ours])
        if value.shape != own[ours].shape:
            problems["shape mismatch"].append(
                f"{key}: file {tuple(value.shape)} vs backbone {tuple(own[ours].shape)}"
            )
            continue
        state[ours] = value
    untouched = {}
    for name in own:
        reason = names.untouched_reason(name) if name not in state else None
        if reason is not None:
            untouched[name] = reason
        elif name not in state:
            problems["missing in the file"].append(name)
    return state, untouched, problems


def _backbone_entries(weights: WeightsFile) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The backbone part of a file: everything, or the `backbone.*` entries of a whole-model file."""
    tensors = weights.tensors
    if not any(key.startswith("backbone.") for key in tensors):
        return dict(tensors), {}
    inside = {k.removeprefix("backbone."): v for k, v in tensors.items() if k.startswith("backbone.")}
    outside = {
        k: "not part of the backbone (a whole-model file)" for k in tensors if not k.startswith("backbone.")
    }
    return inside, outside


def _resized_pos_table(table: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MAE's `[1, 1 + g*g, C]` sin-cos table resampled to the target grid, class-token row kept (MIMDet's
    `interpolate_pos_embed`)."""
    grid = int(round((target.shape[1] - 1) ** 0.5))
    return torch.cat([table[:, :1], resize_pos_embed(table[:, 1:], (grid, grid))], dim=1)


def _model_normalisation(model: nn.Module) -> tuple[list[float], list[float]] | None:
    """(mean, std) on the 0-255 scale with which `model` normalises its inputs, if it says."""
    for owner in (model, getattr(model, "transform", None)):  # Mask DINO; MIMDet's detection transform
        mean, std = getattr(owner, "pixel_mean", None), getattr(owner, "pixel_std", None)
        if isinstance(mean, torch.Tensor) and isinstance(std, torch.Tensor) and not mean.is_meta:
            return mean.flatten().tolist(), std.flatten().tolist()
    return None


def _check_normalisation(model: nn.Module, path: Path) -> None:
    stats = _model_normalisation(model)
    if stats is None:
        return
    mean, std = (torch.tensor(values) for values in stats)
    if torch.allclose(mean, torch.tensor(IMAGENET_MEAN), rtol=1e-4) and torch.allclose(
        std, torch.tensor(IMAGENET_STD), rtol=1e-4
    ):
        return
    raise BackboneWeightsError(
        f"{path} was trained on RGB images normalised with mean {IMAGENET_MEAN} and std {IMAGENET_STD} "
        f"(0-255 scale), but the model normalises with mean {tuple(round(v, 3) for v in stats[0])} and std "
        f"{tuple(round(v, 3) for v in stats[1])}: set model.pixel_mean={list(IMAGENET_MEAN)} "
        f"model.pixel_std={list(IMAGENET_STD)}"
    )


def _caffe2_message(path: Path) -> str:
    return (
        f"{path} holds Caffe2 (MSRA) ResNet weights: they expect BGR input normalised with mean "
        f"{CAFFE2_MEAN_BGR} and std (1, 1, 1) and a ResNet with the stride in the 1x1 conv (detectron2 "
        "INPUT.FORMAT=BGR, MODEL.PIXEL_MEAN, MODEL.PIXEL_STD, MODEL.RESNETS.STRIDE_IN_1X1=True). The Mask "
        f"DINO configs feed RGB with model.pixel_mean={list(IMAGENET_MEAN)}, model.pixel_std="
        f"{list(IMAGENET_STD)} and model.backbone.resnet.stride_in_1x1=false, and this package always feeds "
        f"RGB: use the torchvision-converted file they start from, {R50_TORCHVISION.url}"
    )


def _fix_hint(backbone: nn.Module) -> str:
    family = backbone_family(backbone)
    files = {
        "resnet": f"{R50_TORCHVISION.file_name} ({R50_TORCHVISION.url}) or torchvision's resnet50 .pth",
        "swin": f"{SWIN_L_22K.file_name} ({SWIN_L_22K.url}) or its detectron2 .pkl",
        "mae-vit": f"{MAE_VIT_B_FULL.file_name} ({MAE_VIT_B_FULL.url}) or {MAE_VIT_L_FULL.file_name} for ViT-L",
    }
    return f"Pass the file made for this backbone, e.g. {files[family]}, or pick a preset made for the file."


def _mismatch_message(path: Path, holds: str, backbone: str, problems: dict[str, list[str]]) -> str:
    text = (
        f"{path} holds {holds}, which does not fit this model's backbone ({backbone}): the file is incomplete "
        "or made for another size of this architecture."
    )
    for title, items in problems.items():
        if items:
            shown = "\n    ".join(items[:12])
            more = f"\n    ... and {len(items) - 12} more" if len(items) > 12 else ""
            text += f"\n  {title} ({len(items)}):\n    {shown}{more}"
    return text


def random_backbone_warning(cfg: BackboneConfig) -> str | None:
    """The warning for training this backbone from random weights when the official recipe starts it from
    a published pretrained file (None when it does not, or when `cfg.weights` is set)."""
    published = published_weights(cfg)
    if published is None or cfg.weights is not None:
        return None
    rule = "=" * 100
    return (
        f"\n{rule}\nTRAINING FROM A RANDOM BACKBONE. The official recipe starts this {cfg.name} backbone from "
        f"pretrained weights,\n{published.file_name}: {published.url}\nWithout them the results will be far "
        f"below the paper's. Pass the file (or its registry name, downloaded once) with\n"
        f"  maskdino train ... --backbone-weights {published.name}\n"
        f"or the config key model.backbone.weights={published.file_name} (docs/training.md lists each preset's "
        "file)."
        f"\n{rule}"
    )
