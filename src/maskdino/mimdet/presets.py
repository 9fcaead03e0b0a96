"""The MIMDet and Benchmarking-ViT Mask R-CNN presets (registered in `maskdino.presets`), from hustvl/MIMDet's
lazy configs: `configs/mimdet/*_sr_*.py`, `configs/benchmarking/*.py` and the `configs/coco.py`,
`configs/common.py` they inherit."""

from __future__ import annotations

from maskdino.config import Config

# the official multi-scale list skips 672 and 704
MIMDET_MIN_SIZES_TRAIN = (480, 512, 544, 576, 608, 640, 736, 768, 800)


def _mimdet(sample_ratio: float) -> Config:
    """MIMDet Mask R-CNN FPN, ViT-B, 3x at batch 64: 36 epochs of 120000 / 64 iterations, steps after 27
    and 33, warm-up from 0 over a quarter epoch, lr 8e-5 x 64 / 16 split three ways (x2 / base / /2)."""
    cfg = Config()
    cfg.model.architecture = "mimdet_mask_rcnn"
    cfg.model.backbone.name = "mimdet"
    mim = cfg.model.backbone.mimdet
    mim.sample_ratio, mim.pretrain_img_size, mim.use_checkpoint = sample_ratio, 800, True
    inp = cfg.input
    inp.dataset_mapper = "multiscale_crop"
    inp.min_size_train, inp.max_size_train = MIMDET_MIN_SIZES_TRAIN, 1333
    inp.crop_prob, inp.crop_pre_sizes, inp.crop_size_range = 0.5, (400, 500, 600), (384, 600)
    inp.min_size_test, inp.max_size_test = 800, 1333
    sol = cfg.solver
    sol.base_lr, sol.weight_decay, sol.weight_decay_norm = 3.2e-4, 0.1, 0.0
    sol.backbone_multiplier, sol.lr_multiplier, sol.decay_biases = 1.0, 2.0, False
    sol.ims_per_batch, sol.max_iter, sol.steps = 64, 67500, (50625, 61875)
    sol.warmup_iters, sol.warmup_factor, sol.clip_gradients = 468, 0.0, False
    sol.checkpoint_period, sol.eval_period = 1875, 1875
    return cfg


def mimdet_vit_b_sr025() -> Config:
    return _mimdet(0.25)


def mimdet_vit_b_sr05() -> Config:
    return _mimdet(0.5)


def mimdet_vit_l_sr05() -> Config:
    cfg = _mimdet(0.5)
    mim = cfg.model.backbone.mimdet
    mim.embed_dim, mim.depth, mim.num_heads, mim.drop_path_rate = 1024, 24, 16, 0.4
    mim.conv_stem_dims = (128, 256, 512)
    cfg.solver.lr_multiplier = 3.5
    return cfg


def _benchmarking_vit_b(epochs: int) -> Config:
    """Benchmarking-ViT-B Mask R-CNN FPN: LSJ 1024, cosine schedule; 100 epochs = 184375 iterations (the
    config keeps configs/coco.py's batch 16), shorter runs divide them; warm-up 0.25 % of 100 epochs."""
    cfg = Config()
    cfg.model.architecture = "mimdet_mask_rcnn"
    cfg.model.backbone.name = "benchmarking_vit"
    inp = cfg.input
    inp.dataset_mapper, inp.image_size, inp.min_scale, inp.max_scale = "coco_instance_lsj", 1024, 0.1, 2.0
    inp.min_size_test, inp.max_size_test = 1024, 1024
    sol = cfg.solver
    sol.base_lr, sol.weight_decay, sol.weight_decay_norm = 1.6e-4, 0.2, 0.0
    sol.backbone_multiplier, sol.lr_multiplier, sol.decay_biases = 1.0, 1.0, True
    sol.ims_per_batch, sol.max_iter, sol.lr_scheduler, sol.steps = 16, 184375 * epochs // 100, "cosine", ()
    sol.warmup_iters, sol.warmup_factor, sol.clip_gradients = 461, 0.001, False
    sol.checkpoint_period, sol.eval_period = 1844, 1844
    return cfg


def benchmarking_vit_b_25ep() -> Config:
    return _benchmarking_vit_b(25)


def benchmarking_vit_b_50ep() -> Config:
    return _benchmarking_vit_b(50)


def benchmarking_vit_b_100ep() -> Config:
    return _benchmarking_vit_b(100)
