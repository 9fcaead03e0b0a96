"""Typed configuration: nested dataclasses, one field per official setting that matters.

A `Config` is built by a preset function (see `presets.py`) and adjusted with `key=value` overrides
addressing fields by their dotted path, e.g. ``solver.max_iter=200`` or ``model.decoder.num_queries=100``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from maskdino import config_parsing


@dataclass
class ResNetConfig:
    """detectron2-style ResNet (`build_resnet_backbone`)."""

    depth: int = 50
    norm: str = "FrozenBN"  # FrozenBN | SyncBN | BN
    stride_in_1x1: bool = False
    stem_out_channels: int = 64
    res2_out_channels: int = 256
    width_per_group: int = 64
    num_groups: int = 1
    res5_dilation: int = 1
    freeze_at: int = 0


@dataclass
class SwinConfig:
    """Swin Transformer as wrapped by Mask2Former/MaskDINO (`D2SwinTransformer`)."""

    pretrain_img_size: int = 224
    patch_size: int = 4
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: int = 7
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.3
    ape: bool = False
    patch_norm: bool = True
    use_checkpoint: bool = False


@dataclass
class MIMDetBackboneConfig:
    """MIMDet ConvNet-ViT hybrid (conv stem + token-sampled ViT + token-restoring decoder); defaults: ViT-B.

    `dropped_tokens` is what stands in for the tokens the ViT did not see: "conv" (the released models:
    conv-stem features through `conv_feat_proj`) or "mask_token" (MAE's learned token, the decoder of
    MIMDet's first code release, which the README's parameter counts describe).
    """

    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    patch_size: int = 16
    pretrain_img_size: int = 800  # grid of the stored position tables (official `img_size`)
    drop_path_rate: float = 0.1
    sample_ratio: float = 0.25  # fraction of patch tokens the ViT sees in training
    eval_sample_ratio: float = 1.0
    conv_stem_dims: tuple[int, ...] = (96, 192, 384)
    decoder_embed_dim: int = 512
    decoder_depth: int = 4
    decoder_num_heads: int = 16
    decoder_mlp_ratio: float = 4.0
    dropped_tokens: str = "conv"  # conv | mask_token
    use_checkpoint: bool = False


@dataclass
class BenchmarkingViTConfig:
    """Plain ViT with windowed/global blocks on a fixed square input (MIMDet's `BenchmarkingViTDet`)."""

    img_size: int = 1024
    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    window_size: int = 16
    drop_path_rate: float = 0.1
    use_checkpoint: bool = False


@dataclass
class BackboneConfig:
    name: str = "resnet"  # resnet | swin | mimdet | benchmarking_vit
    # pretrained backbone file that `build_model` loads (R-50.pkl, torchvision / Swin / MAE .pth); see
    # maskdino.checkpoints.backbone_weights. Whole-model weights (--weights, --resume) replace it.
    weights: str | None = None
    out_features: tuple[str, ...] = ("res2", "res3", "res4", "res5")
    resnet: ResNetConfig = field(default_factory=ResNetConfig)
    swin: SwinConfig = field(default_factory=SwinConfig)
    mimdet: MIMDetBackboneConfig = field(default_factory=MIMDetBackboneConfig)
    benchmarking_vit: BenchmarkingViTConfig = field(default_factory=BenchmarkingViTConfig)


@dataclass
class PixelDecoderConfig:
    """The multi-scale deformable encoder plus the 1/4-resolution mask-feature FPN (`MaskDINOEncoder`)."""

    in_features: tuple[str, ...] = ("res2", "res3", "res4", "res5")
    encoder_in_features: tuple[str, ...] = ("res3", "res4", "res5")
    total_num_feature_levels: int = 4
    feature_order: str = "low2high"  # low2high | high2low
    conv_dim: int = 256
    mask_dim: int = 256
    num_encoder_layers: int = 6
    dim_feedforward: int = 2048
    num_heads: int = 8
    num_points: int = 4
    dropout: float = 0.0
    common_stride: int = 4
    use_checkpoint: bool = False


@dataclass
class DecoderConfig:
    """Transformer decoder with query selection, mask-enhanced boxes and denoising."""

    hidden_dim: int = 256
    num_queries: int = 300
    num_heads: int = 8
    dim_feedforward: int = 2048
    num_layers: int = 9
    num_points: int = 4
    dropout: float = 0.0
    two_stage: bool = True
    initialize_box_type: str = "mask2box"  # no | bitmask | mask2box
    initial_pred: bool = True
    learn_tgt: bool = False
    dn: str = "seg"  # no | standard | seg
    dn_num: int = 100
    dn_noise_scale: float = 0.4
    semantic_ce_loss: bool = False
    use_checkpoint: bool = False
    # DI-MaskDINO (variant="dimaskdino"): De-Imbalance module and balance-aware token optimisation
    variant: str = "maskdino"  # maskdino | dimaskdino
    ti_layers: int = 2
    first_selected_queries: int = 600
    num_guiding_tokens: int = 50


@dataclass
class LossConfig:
    class_weight: float = 4.0
    mask_weight: float = 5.0
    dice_weight: float = 5.0
    box_weight: float = 5.0
    giou_weight: float = 2.0
    cost_class_weight: float = 4.0
    cost_mask_weight: float = 5.0
    cost_dice_weight: float = 5.0
    cost_box_weight: float = 5.0
    cost_giou_weight: float = 2.0
    no_object_weight: float = 0.1
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    num_points: int = 12544
    oversample_ratio: float = 3.0
    importance_sample_ratio: float = 0.75
    deep_supervision: bool = True
    box_loss: bool = True
    pano_box_loss: bool = False


@dataclass
class TestConfig:
    """Inference settings (official MODEL.MaskDINO.TEST.* and TEST.DETECTIONS_PER_IMAGE)."""

    instance_on: bool = True
    panoptic_on: bool = False
    semantic_on: bool = False
    object_mask_threshold: float = 0.25
    overlap_threshold: float = 0.8
    pano_temperature: float = 0.06
    pano_transform_eval: bool = True
    detections_per_image: int = 100
    focus_on_box: bool = False
    sem_seg_postprocessing_before_inference: bool = False
    # instance results carry masks (and the mask term of the score); training on box-only data turns it off
    # (`data.task.adopt_dataset`): a detector's untrained mask head gives no masks, boxes come from the box head
    mask_on: bool = True


@dataclass
class MaskRCNNConfig:
    """Mask R-CNN FPN of the MIMDet detectors (architecture "mimdet_mask_rcnn"); defaults: MIMDet's
    "stronger Mask R-CNN" (2-conv RPN, 4conv1fc box head, BatchNorm in FPN and heads).

    Classes, pixel statistics, padding and detections per image come from `ModelConfig`.
    """

    fpn_channels: int = 256
    anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512)  # one per level p2..p6
    anchor_aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    rpn_conv_depth: int = 2
    rpn_fg_iou_thresh: float = 0.7
    rpn_bg_iou_thresh: float = 0.3
    rpn_batch_size_per_image: int = 256
    rpn_positive_fraction: float = 0.5
    rpn_pre_nms_top_n_train: int = 2000  # per level
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_train: int = 1000  # per image
    rpn_post_nms_top_n_test: int = 1000
    rpn_nms_thresh: float = 0.7
    roi_iou_thresh: float = 0.5
    roi_batch_size_per_image: int = 512
    roi_positive_fraction: float = 0.25
    box_pool_size: int = 7
    box_conv_dims: tuple[int, ...] = (256, 256, 256, 256)
    box_fc_dim: int = 1024
    mask_pool_size: int = 14
    mask_conv_dims: tuple[int, ...] = (256, 256, 256, 256)
    mask_deconv_dim: int = 256
    score_thresh: float = 0.05
    nms_thresh: float = 0.5


@dataclass
class ModelConfig:
    architecture: str = "maskdino"  # maskdino | mimdet_mask_rcnn
    num_classes: int = 80
    # contiguous ids of "thing" classes for panoptic inference; empty = every class is a thing
    thing_classes: tuple[int, ...] = ()
    pixel_mean: tuple[float, ...] = (123.675, 116.28, 103.53)
    pixel_std: tuple[float, ...] = (58.395, 57.12, 57.375)
    size_divisibility: int = 32
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    pixel_decoder: PixelDecoderConfig = field(default_factory=PixelDecoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    test: TestConfig = field(default_factory=TestConfig)
    mask_rcnn: MaskRCNNConfig = field(default_factory=MaskRCNNConfig)


@dataclass
class InputConfig:
    """Data augmentation and test-time resize (official INPUT.*)."""

    # coco_instance_lsj | coco_panoptic_lsj | semantic | multiscale | multiscale_crop
    dataset_mapper: str = "coco_instance_lsj"
    image_size: int = 1024  # LSJ output square
    min_scale: float = 0.1
    max_scale: float = 2.0
    random_flip: str = "horizontal"  # horizontal | vertical | none
    min_size_train: tuple[int, ...] = (800,)
    max_size_train: int = 1333
    min_size_test: int = 800
    max_size_test: int = 1333
    crop_enabled: bool = False
    crop_size: tuple[int, ...] = (512, 512)
    crop_single_category_max_area: float = 1.0
    # multiscale_crop (MIMDet): with probability crop_prob, shortest edge to one of crop_pre_sizes, then
    # a random h x w crop with h, w in crop_size_range (clamped to the image), before the multi-scale resize
    crop_prob: float = 0.5
    crop_pre_sizes: tuple[int, ...] = (400, 500, 600)
    crop_size_range: tuple[int, ...] = (384, 600)
    color_aug_ssd: bool = False
    size_divisibility: int = -1
    ignore_value: int = 255
    mask_format: str = "polygon"


@dataclass
class DataConfig:
    """Which data to read, and the identity of the classes the model predicts.

    Standard datasets are named by `train`/`test` and resolve under `root` (or $MASKDINO_DATASETS). Your
    own data is described by files, and its format is recognised from them (docs/datasets.md):
      * COCO instances (masks, boxes only, or mixed): `*_json` + `*_images`;
      * COCO panoptic (a json whose annotations have `segments_info`): `*_json` + `*_images` + `*_masks`
        (the folder of panoptic PNGs);
      * semantic folders: `*_images` + `*_masks` (label PNGs paired by file stem) + `classes_file`.
    Training writes `class_names` (one per contiguous class) and `class_ids` (the dataset's own id of each:
    category ids, or label values for semantic folders) from the data, so the config stored with weights
    tells predictions their original ids and names without the dataset at hand.
    """

    train: str = "coco_2017_train"
    test: str = "coco_2017_val"
    root: str | None = None
    train_json: str | None = None
    train_images: str | None = None
    train_masks: str | None = None
    val_json: str | None = None
    val_images: str | None = None
    val_masks: str | None = None
    classes_file: str | None = None  # semantic folders: line i names label value i
    reduce_zero_label: bool = False  # semantic folders: label 0 is ignored, value k is class k - 1 (ADE20K)
    ignore_label: int = 255  # semantic folders: the label value of unlabelled pixels
    num_workers: int = 4
    filter_empty_annotations: bool = True
    class_names: tuple[str, ...] = ()
    class_ids: tuple[int, ...] = ()


@dataclass
class SolverConfig:
    optimizer: str = "adamw"
    base_lr: float = 1e-4
    weight_decay: float = 0.05
    weight_decay_norm: float = 0.0
    weight_decay_embed: float = 0.0
    backbone_multiplier: float = 0.1
    # MIMDet detectors (their own parameter groups): lr_multiplier m > 1 trains the pretrained ViT at
    # base/m, the conv stem at base and the rest at base*m; decay_biases=False leaves 1-D tensors undecayed
    lr_multiplier: float = 1.0
    decay_biases: bool = True
    ims_per_batch: int = 16
    max_iter: int = 368750
    lr_scheduler: str = "multistep"  # multistep | poly | cosine
    steps: tuple[int, ...] = (327778, 355092)
    gamma: float = 0.1
    warmup_iters: int = 10
    warmup_factor: float = 1.0
    poly_power: float = 0.9
    clip_gradients: bool = True
    clip_value: float = 0.01
    clip_norm_type: float = 2.0
    amp: bool = True
    amp_dtype: str = "float16"  # float16 | bfloat16
    grad_accum_steps: int = 0  # 0: derive from ims_per_batch, world size and per-device batch
    per_device_batch: int = 0  # 0: ims_per_batch / world size
    ema: bool = False
    ema_decay: float = 0.9998
    checkpoint_period: int = 5000
    keep_last_checkpoints: int = 3
    eval_period: int = 5000
    log_period: int = 20


@dataclass
class Config:
    name: str = "custom"
    official_yaml: str | None = None
    seed: int = 0
    output_dir: str = "runs/default"
    model: ModelConfig = field(default_factory=ModelConfig)
    input: InputConfig = field(default_factory=InputConfig)
    data: DataConfig = field(default_factory=DataConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)

    def to_dict(self) -> dict[str, Any]:
        return config_parsing.to_plain(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any], strict: bool = True) -> Config:
        """Rebuild from `to_dict()` output; with `strict=False` unknown keys (from another version) are
        dropped with a warning instead of raising."""
        return config_parsing.from_plain(cls, data, "", strict)

    def apply_overrides(self, overrides: list[str] | tuple[str, ...]) -> Config:
        """Return a copy with each ``dotted.key=value`` applied (values parsed to the field's type)."""
        cfg = Config.from_dict(self.to_dict())
        for item in overrides:
            if "=" not in item:
                raise ValueError(f"override {item!r} is not of the form key=value (e.g. solver.max_iter=200)")
            key, raw = item.split("=", 1)
            config_parsing.set_path(cfg, key.strip(), raw.strip())
        return cfg


def all_keys() -> list[str]:
    """Every dotted leaf key of a config, for listing and for suggesting close names."""
    return config_parsing.leaf_keys(Config())
