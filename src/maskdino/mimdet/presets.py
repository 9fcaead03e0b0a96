"""The MIMDet presets as plain data: one `MIMDetPreset` per released model of hustvl/MIMDet's README.

Values come from the official lazy configs (paths in `official_config`, relative to hustvl/MIMDet):
`configs/mimdet/*_sr_*.py` for MIMDet, `configs/benchmarking/*.py` for the Benchmarking-ViT baseline,
`configs/coco.py` and `configs/common.py` for what they inherit. Iteration counts are the official ones
at the official batch size.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from maskdino.backbones.mimdet import MIMDetBackbone, MIMDetDecoderConfig
from maskdino.config import MIMDetBackboneConfig
from maskdino.mimdet.benchmarking_vit import BenchmarkingViT, BenchmarkingViTConfig
from maskdino.mimdet.detector import MaskRCNNConfig, MIMDetMaskRCNN

RELEASES = "https://github.com/hustvl/storage/releases/download/v1.0.0/"


@dataclass(frozen=True)
class MIMDetAugmentation:
    """Training / test resizing of the official dataloader mappers.

    "multiscale_crop" (MIMDet): horizontal flip; with probability `crop_prob` resize the shortest edge to
    one of `crop_pre_sizes` and crop a random h x w with h, w in `crop_size_range` (detectron2
    "absolute_range"); then resize the shortest edge to one of `min_size_train` (longest <= max).
    "lsj" (Benchmarking): large-scale jitter of a `lsj_size` square by [min_scale, max_scale], crop/pad
    to `lsj_size`, flip; boxes recomputed from the cropped masks.
    """

    kind: str
    min_size_train: tuple[int, ...] = ()
    max_size_train: int = 1333
    crop_prob: float = 0.0
    crop_pre_sizes: tuple[int, ...] = ()
    crop_size_range: tuple[int, int] = (0, 0)
    lsj_size: int = 0
    lsj_min_scale: float = 0.1
    lsj_max_scale: float = 2.0
    min_size_test: int = 800
    max_size_test: int = 1333


@dataclass(frozen=True)
class MIMDetSolver:
    """AdamW schedule; `optim.optimizer_param_groups` turns the decay and multiplier fields into groups.

    `lr_multiplier` m > 1 splits MIMDet's learning rates three ways (official `get_fpn_model_parameters`):
    ViT blocks base/m, conv stem base, everything else base*m.
    """

    base_lr: float
    weight_decay: float
    ims_per_batch: int
    max_iter: int
    schedule: str  # multistep | cosine
    warmup_iters: int
    warmup_factor: float
    steps: tuple[int, ...] = ()
    gamma: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay_norm: float = 0.0
    decay_biases: bool = False  # detectron2's default optimizer (Benchmarking) decays biases
    lr_multiplier: float = 1.0
    checkpoint_period: int = 5000
    amp: bool = True


@dataclass(frozen=True)
class MIMDetPreset:
    name: str
    official_config: str
    backbone: MIMDetBackboneConfig | BenchmarkingViTConfig
    detector: MaskRCNNConfig
    augmentation: MIMDetAugmentation
    solver: MIMDetSolver
    decoder: MIMDetDecoderConfig | None = None
    checkpoint_url: str = ""
    readme_box_ap: float = 0.0
    readme_mask_ap: float = 0.0
    readme_params_m: float = (
        0.0  # README "#params" (see tests/mimdet/test_param_counts.py for its definition)
    )
    notes: tuple[str, ...] = field(default_factory=tuple)


MULTISCALE_CROP = MIMDetAugmentation(
    kind="multiscale_crop",
    # the official list skips 672 and 704
    min_size_train=(480, 512, 544, 576, 608, 640, 736, 768, 800),
    max_size_train=1333,
    crop_prob=0.5,
    crop_pre_sizes=(400, 500, 600),
    crop_size_range=(384, 600),
)

LSJ_1024 = MIMDetAugmentation(
    kind="lsj", lsj_size=1024, lsj_min_scale=0.1, lsj_max_scale=2.0, min_size_test=1024, max_size_test=1024
)

# 3x schedule at batch 64: 120000 / 64 iterations an "epoch", 36 of them, steps after 27 and 33,
# linear warmup from 0 over a quarter epoch; lr = 8e-5 x 64/16
MIMDET_3X = MIMDetSolver(
    base_lr=3.2e-4,
    weight_decay=0.1,
    ims_per_batch=64,
    max_iter=67500,
    schedule="multistep",
    steps=(50625, 61875),
    warmup_iters=468,
    warmup_factor=0.0,
    lr_multiplier=2.0,
    checkpoint_period=1875,
)

VIT_BASE = MIMDetBackboneConfig(
    embed_dim=768,
    depth=12,
    num_heads=12,
    mlp_ratio=4.0,
    patch_size=16,
    pretrain_img_size=800,
    drop_path_rate=0.1,
    sample_ratio=0.5,
    eval_sample_ratio=1.0,
    conv_stem_dims=(96, 192, 384),
    use_checkpoint=True,
)

VIT_LARGE = replace(
    VIT_BASE, embed_dim=1024, depth=24, num_heads=16, drop_path_rate=0.4, conv_stem_dims=(128, 256, 512)
)

EVAL_RATIO_NOTE = (
    "the official evaluation keeps sample_ratio at inference too (README: set it to 1.0 for full "
    "tokens); eval_sample_ratio=1.0 here"
)


def build_model(preset: MIMDetPreset) -> MIMDetMaskRCNN:
    """The (randomly initialised) detector of a preset."""
    if isinstance(preset.backbone, BenchmarkingViTConfig):
        backbone = BenchmarkingViT(preset.backbone)
    else:
        backbone = MIMDetBackbone(preset.backbone, preset.decoder)
    return MIMDetMaskRCNN(backbone, preset.detector)


def _mimdet(
    name: str, backbone: MIMDetBackboneConfig, box_ap: float, mask_ap: float, params_m: float, **solver
) -> MIMDetPreset:
    return MIMDetPreset(
        name=name,
        official_config=f"configs/mimdet/{name}.py",
        backbone=backbone,
        decoder=MIMDetDecoderConfig(embed_dim=512, depth=4, num_heads=16, dropped_tokens="conv"),
        detector=MaskRCNNConfig(),
        augmentation=MULTISCALE_CROP,
        solver=replace(MIMDET_3X, **solver),
        checkpoint_url=f"{RELEASES}{name}.pth",
        readme_box_ap=box_ap,
        readme_mask_ap=mask_ap,
        readme_params_m=params_m,
        notes=(EVAL_RATIO_NOTE,),
    )


def _benchmarking(epochs: int, box_ap: float, mask_ap: float) -> MIMDetPreset:
    name = f"benchmarking_mask_rcnn_base_FPN_{epochs}ep_LSJ_mae"
    # 100 ep = 184375 iterations; 25/50 ep divide them and multiply the warmup fraction (0.25 / 100)
    max_iter = 184375 * epochs // 100
    return MIMDetPreset(
        name=name,
        official_config=f"configs/benchmarking/{name}.py",
        backbone=BenchmarkingViTConfig(img_size=1024, window_size=16, drop_path_rate=0.1),
        detector=MaskRCNNConfig(min_size_test=1024, max_size_test=1024, fixed_input_size=1024),
        augmentation=LSJ_1024,
        solver=MIMDetSolver(
            base_lr=1.6e-4,
            weight_decay=0.2,
            ims_per_batch=16,
            max_iter=max_iter,
            schedule="cosine",
            warmup_iters=round(184375 * 0.0025),
            warmup_factor=0.001,
            decay_biases=True,
            checkpoint_period=1844,
        ),
        checkpoint_url=f"{RELEASES}{name}.pth",
        readme_box_ap=box_ap,
        readme_mask_ap=mask_ap,
        readme_params_m=118.67,
        notes=(
            "the config leaves the batch at configs/coco.py's 16; 184375 iterations are 100 epochs only at "
            "batch 64 (the Benchmarking paper's), so the released runs likely overrode it",
            "MAE weights: mae_pretrain_vit_base.pth (encoder only); its pos_embed is replaced by sin-cos",
        ),
    )


PRESETS: dict[str, MIMDetPreset] = {
    p.name: p
    for p in (
        _mimdet(
            "mimdet_vit_base_mask_rcnn_fpn_sr_0p25_800_1333_4xdec_coco_3x",
            replace(VIT_BASE, sample_ratio=0.25),
            49.9,
            44.7,
            127.56,
        ),
        _mimdet("mimdet_vit_base_mask_rcnn_fpn_sr_0p5_800_1333_4xdec_coco_3x", VIT_BASE, 51.5, 46.0, 127.56),
        _mimdet(
            "mimdet_vit_large_mask_rcnn_fpn_sr_0p5_800_1333_4xdec_coco_3x",
            VIT_LARGE,
            53.3,
            47.5,
            345.27,
            lr_multiplier=3.5,
        ),
        _benchmarking(25, 48.0, 43.0),
        _benchmarking(50, 50.2, 44.9),
        _benchmarking(100, 50.4, 44.9),
    )
}

# Beyond the paper: MIMDet's backbone (token sampling included) under Mask DINO's pixel decoder, so a
# MAE-pretrained ViT drives Mask DINO. Pair it with the Mask DINO R50 COCO instance preset (LSJ 1024,
# 50 epochs) and set model.backbone.name = "mimdet"; res2..res5 have 192, 384, 512, 512 channels.
MASKDINO_MIMDET_VIT_BASE_BACKBONE = replace(VIT_BASE, pretrain_img_size=1024, sample_ratio=0.5)
MASKDINO_MIMDET_VIT_BASE_DECODER = MIMDetDecoderConfig(
    embed_dim=512, depth=4, num_heads=16, dropped_tokens="conv"
)
