"""Where each tensor of a pretrained-backbone file goes in our backbones, and what stays unused.

One rule set per file layout:
- ResNet, detectron2 names (`stem.conv1.weight`, `res2.0.conv1.norm.weight`, e.g. detectron2's R-50.pkl):
  our names already. torchvision names (`conv1.weight`, `bn1.*`, `layer1.0.downsample.0.weight`) are
  renamed as detectron2's `tools/convert-torchvision-to-d2.py` does; the ImageNet classifier `fc` is unused.
- Swin (the microsoft/Swin-Transformer release or its detectron2 pickle): our names; the classifier
  `head`, the final `norm` and the shifted-window `attn_mask` buffers are unused, and the detection
  backbone's output norms `norm0..norm3` keep their initialisation (as with detectron2's loader).
- MAE ViT (facebookresearch/mae `models_mae.py` names) into MIMDet's backbone or the Benchmarking ViT,
  as MIMDet's `MIMDetEncoder`/`MIMDetDecoder` and `BenchmarkingViTDet` initialise from it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from maskdino.backbones.mimdet import MIMDetBackbone
from maskdino.backbones.resnet import ResNet
from maskdino.backbones.swin import SwinTransformer
from maskdino.mimdet.benchmarking_vit import BenchmarkingViT

RESNET_DEPTHS = {6: 50, 23: 101, 36: 152}  # blocks in the third stage -> depth
SWIN_SIZES = {96: "Swin-T/S", 128: "Swin-B", 192: "Swin-L"}


@dataclass
class NameMap:
    """File key -> our key for the tensors to load, file key -> reason for the unused ones, which of our
    tensors may keep their initialisation (name predicate, reason), and what else loading must do."""

    targets: dict[str, str] = field(default_factory=dict)
    unused: dict[str, str] = field(default_factory=dict)
    keep_init: list[tuple[Callable[[str], bool], str]] = field(default_factory=list)
    resample_position_tables: bool = False  # `*pos_embed` of another grid: resample (MIMDet)
    warning: str | None = None  # logged after loading

    def untouched_reason(self, name: str) -> str | None:
        return next((reason for allowed, reason in self.keep_init if allowed(name)), None)


def file_layout(keys: set[str]) -> str | None:
    """The layout family of a file's tensor names: resnet-d2, resnet-torchvision, resnet-caffe2, swin,
    mae-vit, or None."""
    if any(re.match(r"res\d_\d+_branch2a_w$|res_conv1_bn_s$", k) for k in keys):
        return "resnet-caffe2"
    if any(k.startswith("res2.0.conv1.") for k in keys):
        return "resnet-d2"
    if any(k.startswith("layer1.0.conv1.") for k in keys):
        return "resnet-torchvision"
    if any(k.startswith("layers.0.blocks.0.attn.qkv.") for k in keys):
        return "swin"
    if any(k.startswith("blocks.0.attn.qkv.") for k in keys):
        return "mae-vit"
    return None


def describe_file(tensors: dict[str, torch.Tensor]) -> str:
    """What a file holds, for messages: "a ResNet-50 (detectron2 names)", "a Swin-L (embed_dim 192, ...)"."""
    layout = file_layout(set(tensors))
    if layout in ("resnet-d2", "resnet-torchvision"):
        third = "res4" if layout == "resnet-d2" else "layer3"
        blocks = {int(k.split(".")[1]) for k in tensors if k.startswith(third + ".")}
        depth = RESNET_DEPTHS.get(len(blocks))
        name = f"ResNet-{depth}" if depth else f"ResNet with {len(blocks)} blocks in its third stage"
        return f"a {name} ({'detectron2' if layout == 'resnet-d2' else 'torchvision'} names)"
    if layout == "resnet-caffe2":
        return "a Caffe2 (MSRA) ResNet (names like res2_0_branch2a_w)"
    if layout == "swin":
        dim = tensors["patch_embed.proj.weight"].shape[0] if "patch_embed.proj.weight" in tensors else 0
        depths = tuple(
            len({k.split(".")[3] for k in tensors if k.startswith(f"layers.{i}.blocks.")}) for i in range(4)
        )
        tables = [v for k, v in tensors.items() if k.endswith("relative_position_bias_table")]
        window = (int(round(tables[0].shape[0] ** 0.5)) + 1) // 2 if tables else 0
        size = SWIN_SIZES.get(dim, "Swin")
        return f"a {size} backbone (embed_dim {dim}, depths {depths}, window {window})"
    if layout == "mae-vit":
        width = tensors["blocks.0.norm1.weight"].shape[0] if "blocks.0.norm1.weight" in tensors else 0
        depth = len({k.split(".")[1] for k in tensors if k.startswith("blocks.")})
        decoder = "with" if any(k.startswith("decoder_") for k in tensors) else "without"
        return f"an MAE ViT (width {width}, {depth} blocks, {decoder} MAE's decoder)"
    shown = ", ".join(sorted(tensors)[:4])
    return f"{len(tensors)} tensors in no known backbone layout (names like {shown})"


def describe_backbone(backbone: nn.Module) -> str:
    """What a model's backbone is, in the words of `describe_file`."""
    if isinstance(backbone, ResNet | SwinTransformer):
        return describe_file(backbone.state_dict()).removesuffix(" (detectron2 names)")
    width = backbone.blocks[0].norm1.weight.shape[0]
    return f"a {type(backbone).__name__} (ViT width {width}, {len(backbone.blocks)} blocks)"


def backbone_family(backbone: nn.Module) -> str:
    """The file layout family a backbone reads: resnet, swin or mae-vit."""
    if isinstance(backbone, ResNet):
        return "resnet"
    if isinstance(backbone, SwinTransformer):
        return "swin"
    if isinstance(backbone, MIMDetBackbone | BenchmarkingViT):
        return "mae-vit"
    raise TypeError(f"no pretrained-weights layout is known for a {type(backbone).__name__} backbone")


def map_names(backbone: nn.Module, keys: list[str]) -> NameMap:
    family = backbone_family(backbone)
    if family == "resnet":
        return resnet_names(backbone, keys)
    if family == "swin":
        return swin_names(keys)
    if isinstance(backbone, MIMDetBackbone):
        return mae_names_for_mimdet(backbone, keys)
    return mae_names_for_benchmarking(keys)


def torchvision_to_detectron2(key: str) -> str:
    """`layer1.0.bn2.weight` -> `res2.0.conv2.norm.weight`, `bn1.bias` -> `stem.conv1.norm.bias`, ..."""
    if not key.startswith("layer"):
        key = "stem." + key  # conv1, bn1 and fc sit outside the four stages
    key = re.sub(r"^layer([1-4])\.", lambda m: f"res{int(m[1]) + 1}.", key)
    key = re.sub(r"(^|\.)bn([1-3])\.", r"\1conv\2.norm.", key)
    return key.replace(".downsample.0.", ".shortcut.").replace(".downsample.1.", ".shortcut.norm.")


def resnet_names(backbone: ResNet, keys: list[str]) -> NameMap:
    names = NameMap()
    built = set(backbone.stage_names)
    own = set(backbone.state_dict())
    for key in keys:
        ours = key if key.startswith(("stem.", "res")) else torchvision_to_detectron2(key)
        stage = ours.split(".")[0]
        if ours.startswith("stem.fc."):
            names.unused[key] = "ImageNet classifier (fc)"
        elif stage.startswith("res") and stage not in built:
            names.unused[key] = f"stage {stage} is not built (model.backbone.out_features stops before it)"
        elif ours.endswith("num_batches_tracked") and ours not in own:
            names.unused[key] = "batch counter: frozen BatchNorm keeps none"
        else:
            names.targets[key] = ours
    names.keep_init.append(
        (lambda name: name.endswith("num_batches_tracked"), "BatchNorm batch counter (not in the file)")
    )
    return names


def swin_names(keys: list[str]) -> NameMap:
    names = NameMap()
    for key in keys:
        if key.startswith("head."):
            names.unused[key] = "ImageNet classification head"
        elif key in ("norm.weight", "norm.bias"):
            names.unused[key] = "final norm of the classifier (the detection backbone uses norm0..norm3)"
        elif key.endswith(".attn_mask"):
            names.unused[key] = "shifted-window mask buffer (rebuilt for every input size)"
        else:
            names.targets[key] = key
    names.keep_init.append(
        (
            lambda name: re.match(r"norm[0-3]\.", name) is not None,
            "output norm of the detection backbone, not in classification checkpoints (kept at its "
            "initialisation, as detectron2's loader does)",
        )
    )
    return names


def mae_names_for_mimdet(backbone: MIMDetBackbone, keys: list[str]) -> NameMap:
    """MIMDet takes MAE's encoder blocks and final norm, and its decoder from MAE's first decoder blocks."""
    names = NameMap(resample_position_tables=True)
    decoder = backbone.decoder
    has_decoder = any(k.startswith("decoder_") for k in keys)
    for key in keys:
        if key == "cls_token":
            names.unused[key] = "class token: MIMDet uses none"
        elif key.startswith("patch_embed."):
            names.unused[key] = "patchify layer: MIMDet's conv stem replaces it"
        elif key.startswith("decoder_pred."):
            names.unused[key] = "MAE's pixel-reconstruction head"
        elif key == "mask_token" and decoder.dropped_tokens != "mask_token":
            names.unused[key] = (
                "mask token: dropped tokens are filled with conv features (dropped_tokens=conv)"
            )
        elif key == "mask_token":
            names.targets[key] = "decoder.mask_token"
        elif key.startswith("decoder_blocks.") and int(key.split(".")[1]) >= len(decoder.blocks):
            names.unused[key] = "MAE decoder block beyond model.backbone.mimdet.decoder_depth"
        elif key.startswith("decoder_"):
            names.targets[key] = "decoder." + key.removeprefix("decoder_")
        else:
            names.targets[key] = key
    names.keep_init.append((lambda n: n.startswith("stem."), "conv stem: not pretrained (MIMDet's design)"))
    names.keep_init.append(
        (lambda n: n.startswith("decoder.conv_feat_proj."), "conv-feature projection: not in MAE")
    )
    if not has_decoder:
        names.warning = "no MAE decoder in the file: MIMDet's decoder keeps its random initialisation"
        names.keep_init.append(
            (
                lambda n: n.startswith("decoder."),
                "MIMDet's decoder starts from MAE's decoder, which this file lacks: use the full "
                "checkpoint (mae_pretrain_vit_base_full.pth) to reproduce MIMDet",
            )
        )
    return names


def mae_names_for_benchmarking(keys: list[str]) -> NameMap:
    names = NameMap()
    for key in keys:
        if key in ("cls_token", "mask_token"):
            names.unused[key] = "class / mask token: the detection ViT uses none"
        elif key == "pos_embed":
            names.unused[key] = (
                "position table: a sin-cos table on the detection grid replaces it (as official)"
            )
        elif key.startswith(("norm.", "decoder_")):
            names.unused[key] = "final norm / MAE decoder: unused by the detection ViT"
        else:
            names.targets[key] = key
    names.keep_init.append(
        (
            lambda n: n.startswith(
                ("pos_embed", "ms_adaptor.", "windowed_rel_pos_bias.", "global_rel_pos_bias.")
            ),
            "detection-only part (position table, pyramid adaptors, relative position biases)",
        )
    )
    return names
