"""One preset per official config, addressable by our name or the official config path.

`get_config("r50_ins_4s")` == `get_config("coco/instance-segmentation/maskdino_R50_bs16_50ep_3s_dowsample1_2048.yaml")`;
`get_config("runs/mine/config.yaml")` reads the config a training run wrote.
Values come from the fully merged official configs (shared/reference/configs) and FACTS.md section 0;
the MIMDet and Benchmarking-ViT detectors' presets are built in `maskdino.mimdet.presets`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from maskdino.config import Config
from maskdino.mimdet.presets import (
    benchmarking_vit_b_25ep,
    benchmarking_vit_b_50ep,
    benchmarking_vit_b_100ep,
    mimdet_vit_b_sr025,
    mimdet_vit_b_sr05,
    mimdet_vit_l_sr05,
)

COCO_PANOPTIC_THINGS = tuple(range(80))
CONFIG_FILE_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class PresetInfo:
    name: str
    official_yaml: str | None
    summary: str
    build: Callable[[], Config]


def _coco_instance_r50() -> Config:
    """The README's R50 "4-scale" instance model (res3-5 + one extra level, mask2box, encoder FFN 2048)."""
    return Config()


def _high2low_3_levels(cfg: Config) -> Config:
    cfg.model.pixel_decoder.dim_feedforward = 1024
    cfg.model.pixel_decoder.feature_order = "high2low"
    cfg.model.pixel_decoder.total_num_feature_levels = 3
    return cfg


def _swin_large(cfg: Config) -> Config:
    cfg.model.backbone.name = "swin"
    swin = cfg.model.backbone.swin
    swin.embed_dim, swin.depths, swin.num_heads = 192, (2, 2, 18, 2), (6, 12, 24, 48)
    swin.window_size, swin.pretrain_img_size, swin.drop_path_rate = 12, 384, 0.3
    cfg.model.pixel_decoder.encoder_in_features = ("res2", "res3", "res4", "res5")
    cfg.model.pixel_decoder.total_num_feature_levels = 5
    return cfg


def _panoptic(cfg: Config) -> Config:
    cfg.model.num_classes = 133
    cfg.model.thing_classes = COCO_PANOPTIC_THINGS
    cfg.model.decoder.initialize_box_type = "no"
    cfg.model.test.panoptic_on = True
    cfg.model.test.semantic_on = True
    cfg.input.dataset_mapper = "coco_panoptic_lsj"
    cfg.data.train, cfg.data.test = "coco_2017_train_panoptic", "coco_2017_val_panoptic_with_sem_seg"
    return cfg


def _semantic(cfg: Config, num_classes: int, min_base: int, max_train: int, crop, test_min: int) -> Config:
    cfg = _high2low_3_levels(cfg)
    cfg.model.num_classes = num_classes
    cfg.model.decoder.num_queries = 100
    cfg.model.decoder.two_stage = False
    cfg.model.decoder.initialize_box_type = "no"
    cfg.model.decoder.semantic_ce_loss = True
    cfg.model.test.instance_on = False
    cfg.model.test.semantic_on = True
    cfg.model.test.object_mask_threshold = 0.8
    inp = cfg.input
    inp.dataset_mapper = "semantic"
    inp.min_size_train = tuple(int(min_base * x / 10) for x in range(5, 21))
    inp.max_size_train = max_train
    inp.min_size_test, inp.max_size_test = test_min, 2048
    inp.crop_enabled, inp.crop_size, inp.color_aug_ssd = True, crop, True
    cfg.solver.amp = False
    return cfg


def r50_ins_4s() -> Config:
    cfg = _coco_instance_r50()
    return cfg


def r50_ins_4s_bitmask() -> Config:
    cfg = _coco_instance_r50()
    cfg.model.decoder.initialize_box_type = "bitmask"
    return cfg


def r50_ins_hid1024_3s() -> Config:
    cfg = _high2low_3_levels(_coco_instance_r50())
    cfg.model.decoder.initialize_box_type = "bitmask"
    return cfg


def r50_ins_5s() -> Config:
    cfg = _high2low_3_levels(_coco_instance_r50())
    cfg.model.pixel_decoder.total_num_feature_levels = 5
    cfg.model.decoder.initialize_box_type = "no"
    return cfg


def r50_ins_res2to5_enc() -> Config:
    cfg = _coco_instance_r50()
    cfg.model.pixel_decoder.encoder_in_features = ("res2", "res3", "res4", "res5")
    cfg.model.decoder.initialize_box_type = "no"
    return cfg


def swinl_ins_5s() -> Config:
    cfg = _swin_large(_coco_instance_r50())
    cfg.model.decoder.initialize_box_type = "bitmask"
    return cfg


def swinl_ins_5s_hid1024() -> Config:
    cfg = swinl_ins_5s()
    cfg.model.pixel_decoder.dim_feedforward = 1024
    return cfg


def swinl_ins_5s_no_mask_enhance() -> Config:
    cfg = swinl_ins_5s()
    cfg.model.decoder.initialize_box_type = "no"
    return cfg


def r50_pan() -> Config:
    return _panoptic(_coco_instance_r50())


def swinl_pan_5s() -> Config:
    cfg = _panoptic(_swin_large(_coco_instance_r50()))
    cfg.model.decoder.initialize_box_type = "bitmask"
    return cfg


def swinl_pan_5s_large_eval() -> Config:
    return _panoptic(_swin_large(_coco_instance_r50()))


def r50_ade_sem() -> Config:
    cfg = _semantic(_coco_instance_r50(), 150, 512, 2048, (512, 512), 512)
    cfg.input.size_divisibility = 512
    cfg.data.train, cfg.data.test = "ade20k_sem_seg_train", "ade20k_sem_seg_val"
    cfg.solver.max_iter, cfg.solver.steps = 160000, (135000, 150000)
    return cfg


def r50_city_sem() -> Config:
    cfg = _semantic(_coco_instance_r50(), 19, 1024, 4096, (512, 1024), 1024)
    cfg.model.backbone.resnet.norm = "SyncBN"
    cfg.data.train, cfg.data.test = "cityscapes_fine_sem_seg_train", "cityscapes_fine_sem_seg_val"
    cfg.solver.max_iter, cfg.solver.steps = 90000, (80000, 87000)
    return cfg


def _dimaskdino(max_iter: int, steps: tuple[int, ...]) -> Config:
    cfg = _coco_instance_r50()
    dec = cfg.model.decoder
    dec.variant, dec.num_layers = "dimaskdino", 6
    dec.ti_layers, dec.first_selected_queries, dec.num_guiding_tokens = 2, 600, 50
    cfg.solver.max_iter, cfg.solver.steps = max_iter, steps
    return cfg


def dimaskdino_r50_4s_12ep() -> Config:
    return _dimaskdino(88500, (81125,))


def dimaskdino_r50_4s_24ep() -> Config:
    # schedule scaled from the 12-epoch config (its YAML is not in our reference set)
    return _dimaskdino(177000, (162250,))


def dimaskdino_r50_4s_50ep() -> Config:
    # the Mask DINO 50-epoch schedule (its YAML is not in our reference set)
    return _dimaskdino(368750, (327778, 355092))


def maskdino_mimdet_vit_b() -> Config:
    """Beyond the papers: the R50 4-scale Mask DINO recipe with MIMDet's ViT-B backbone (token sampling
    0.5, 1024 position grid for LSJ 1024) producing res2..res5 (192, 384, 512, 512 channels)."""
    cfg = _coco_instance_r50()
    cfg.model.backbone.name = "mimdet"
    mim = cfg.model.backbone.mimdet
    mim.sample_ratio, mim.pretrain_img_size, mim.use_checkpoint = 0.5, 1024, True
    return cfg


def demo() -> Config:
    """Mask DINO at reduced width/depth/resolution, for the CPU quick start (`maskdino demo`) and fast tests.

    Tuned to learn the synthetic shapes of `maskdino demo` (256 px, panoptic: 3 things, 3 stuff) from
    random weights in 1000 CPU iterations; docs/training.md ("The `demo` preset on synthetic shapes")
    logs what was tried:
    * trainable BN (frozen BN only makes sense with pretrained statistics) and boxes from the query-selection
      proposals (`no`): mask2box on the empty masks of an untrained model gives degenerate corner boxes;
    * class loss weight 20 (official 4): from scratch, what the shapes are is learned last (their masks and
      boxes come early), and the class gradient is a small share of what shapes the backbone's features;
    * 10 denoising groups (official 100 at 300 queries): 50 queries here, and fewer groups make each step
      ~15 % cheaper with the same held-out results;
    * lr 1e-3 until 80 % of the run, then / 10 (most of the held-out AP appears after the drop);
    * 256 px LSJ crops at scale 0.8-1.2 and a test long side of at most 384 px, so that no encoder token
      lies on the image border in training or in testing (docs/official-differences.md).
    """
    cfg = _coco_instance_r50()
    res = cfg.model.backbone.resnet
    res.stem_out_channels, res.res2_out_channels, res.width_per_group = 16, 64, 16
    res.norm = "BN"
    pix = cfg.model.pixel_decoder
    pix.conv_dim, pix.mask_dim, pix.dim_feedforward, pix.num_encoder_layers, pix.num_heads = 64, 64, 128, 2, 4
    dec = cfg.model.decoder
    dec.hidden_dim, dec.dim_feedforward, dec.num_layers, dec.num_heads, dec.num_queries = 64, 128, 3, 4, 50
    dec.dn_num, dec.initialize_box_type = 10, "no"
    cfg.model.loss.num_points = 1024
    cfg.model.loss.class_weight = 20.0
    inp = cfg.input
    inp.image_size, inp.min_size_test, inp.max_size_test = 256, 256, 384
    inp.min_scale, inp.max_scale = 0.8, 1.2
    sol = cfg.solver
    sol.ims_per_batch, sol.max_iter, sol.steps = 2, 1000, (800,)
    sol.base_lr, sol.backbone_multiplier, sol.clip_value = 1e-3, 1.0, 1.0
    sol.amp, sol.warmup_iters = False, 20
    sol.checkpoint_period, sol.eval_period, sol.log_period = 500, 0, 10
    cfg.data.num_workers = 2
    return cfg


_COCO_INS = "coco/instance-segmentation/"
_MIMDET, _BENCH = "mimdet/", "benchmarking/"  # hustvl/MIMDet's configs/
PRESETS: dict[str, PresetInfo] = {
    info.name: info
    for info in [
        PresetInfo("r50_ins_4s", _COCO_INS + "maskdino_R50_bs16_50ep_3s_dowsample1_2048.yaml",
                   "COCO instance, R50 4-scale, mask2box (README 46.3 AP)", r50_ins_4s),
        PresetInfo("r50_ins_4s_bitmask", _COCO_INS + "maskdino_R50_bs16_50ep_3s_dowsample1_2048_bitmask.yaml",
                   "COCO instance, R50 4-scale, bitmask box init", r50_ins_4s_bitmask),
        PresetInfo("r50_ins_hid1024_3s", _COCO_INS + "maskdino_R50_bs16_50ep_3s.yaml",
                   "COCO instance, R50 3-scale, encoder FFN 1024 (README hid 1024)", r50_ins_hid1024_3s),
        PresetInfo("r50_ins_5s", _COCO_INS + "maskdino_R50_bs16_50ep_3s_dowsample2.yaml",
                   "COCO instance, R50 res3-5 + 2 extra levels, no mask-enhanced boxes", r50_ins_5s),
        PresetInfo("r50_ins_res2to5_enc", _COCO_INS + "maskdino_R50_bs16_50ep_4s_dowsample1_2048.yaml",
                   "COCO instance, R50 with res2-5 in the encoder, no mask-enhanced boxes", r50_ins_res2to5_enc),
        PresetInfo("swinl_ins_5s", _COCO_INS + "swin/maskdino_R50_bs16_50ep_4s_dowsample1_2048.yaml",
                   "COCO instance, Swin-L 5-scale, bitmask box init", swinl_ins_5s),
        PresetInfo("swinl_ins_5s_hid1024", _COCO_INS + "swin/maskdino_R50_bs16_50ep_4s_dowsample1_1024.yaml",
                   "COCO instance, Swin-L 5-scale, encoder FFN 1024", swinl_ins_5s_hid1024),
        PresetInfo("swinl_ins_5s_no_mask_enhance",
                   _COCO_INS + "swin/maskdino_R50_bs16_50ep_4s_dowsample1_2048_no_maskEnhance.yaml",
                   "COCO instance, Swin-L 5-scale, no mask-enhanced boxes", swinl_ins_5s_no_mask_enhance),
        PresetInfo("r50_pan", "coco/panoptic-segmentation/maskdino_R50_bs16_50ep_3s_dowsample1_2048.yaml",
                   "COCO panoptic, R50 4-scale", r50_pan),
        PresetInfo("swinl_pan_5s",
                   "coco/panoptic-segmentation/swin/maskdino_R50_bs16_50ep_4s_dowsample1_maskEnhance_2048.yaml",
                   "COCO panoptic, Swin-L 5-scale, bitmask box init", swinl_pan_5s),
        PresetInfo("swinl_pan_5s_large_eval",
                   "coco/panoptic-segmentation/swin/maskdino_R50_bs16_50ep_4s_dowsample1_large_eval.yaml",
                   "COCO panoptic, Swin-L 5-scale, no mask-enhanced boxes", swinl_pan_5s_large_eval),
        PresetInfo("r50_ade_sem", "ade20k/semantic-segmentation/maskdino_R50_bs16_160k_steplr.yaml",
                   "ADE20K semantic, R50 3-scale, 100 queries", r50_ade_sem),
        PresetInfo("r50_city_sem", "cityscapes/semantic-segmentation/maskdino_R50_bs16_90k_steplr.yaml",
                   "Cityscapes semantic, R50 3-scale, SyncBN", r50_city_sem),
        PresetInfo("dimaskdino_r50_4s_12ep", "coco/instance-segmentation/dimaskdino_r50_4scale_bs16_12ep.yaml",
                   "DI-MaskDINO R50 4-scale, 12 epochs", dimaskdino_r50_4s_12ep),
        PresetInfo("dimaskdino_r50_4s_24ep", "coco/instance-segmentation/dimaskdino_r50_4scale_bs16_24ep.yaml",
                   "DI-MaskDINO R50 4-scale, 24 epochs", dimaskdino_r50_4s_24ep),
        PresetInfo("dimaskdino_r50_4s_50ep", "coco/instance-segmentation/dimaskdino_r50_4scale_bs16_50ep.yaml",
                   "DI-MaskDINO R50 4-scale, 50 epochs", dimaskdino_r50_4s_50ep),
        PresetInfo("mimdet_vit_b_sr025", _MIMDET + "mimdet_vit_base_mask_rcnn_fpn_sr_0p25_800_1333_4xdec_coco_3x.py",
                   "MIMDet ViT-B Mask R-CNN FPN, ViT sees 25 % of tokens, 3x (README 49.9 box / 44.7 mask AP)",
                   mimdet_vit_b_sr025),
        PresetInfo("mimdet_vit_b_sr05", _MIMDET + "mimdet_vit_base_mask_rcnn_fpn_sr_0p5_800_1333_4xdec_coco_3x.py",
                   "MIMDet ViT-B Mask R-CNN FPN, ViT sees 50 % of tokens, 3x (README 51.5 box / 46.0 mask AP)",
                   mimdet_vit_b_sr05),
        PresetInfo("mimdet_vit_l_sr05", _MIMDET + "mimdet_vit_large_mask_rcnn_fpn_sr_0p5_800_1333_4xdec_coco_3x.py",
                   "MIMDet ViT-L Mask R-CNN FPN, ViT sees 50 % of tokens, 3x (README 53.3 box / 47.5 mask AP)",
                   mimdet_vit_l_sr05),
        PresetInfo("benchmarking_vit_b_25ep", _BENCH + "benchmarking_mask_rcnn_base_FPN_25ep_LSJ_mae.py",
                   "Benchmarking-ViT-B Mask R-CNN FPN baseline, LSJ 1024, 25 epochs (README 48.0 box AP)",
                   benchmarking_vit_b_25ep),
        PresetInfo("benchmarking_vit_b_50ep", _BENCH + "benchmarking_mask_rcnn_base_FPN_50ep_LSJ_mae.py",
                   "Benchmarking-ViT-B Mask R-CNN FPN baseline, LSJ 1024, 50 epochs (README 50.2 box AP)",
                   benchmarking_vit_b_50ep),
        PresetInfo("benchmarking_vit_b_100ep", _BENCH + "benchmarking_mask_rcnn_base_FPN_100ep_LSJ_mae.py",
                   "Benchmarking-ViT-B Mask R-CNN FPN baseline, LSJ 1024, 100 epochs (README 50.4 box AP)",
                   benchmarking_vit_b_100ep),
        PresetInfo("maskdino_mimdet_vit_b", None,
                   "Mask DINO R50 4-scale recipe on the MIMDet ViT-B backbone (MAE-pretrained ViT, token sampling)",
                   maskdino_mimdet_vit_b),
        PresetInfo("demo", None, "reduced Mask DINO (R50 at 1/4 width, 64-d transformer, 3 decoder layers) for CPU runs", demo),
    ]
}  # fmt: skip


def preset_names() -> list[str]:
    return list(PRESETS)


def resolve_preset(name: str) -> PresetInfo:
    """Find a preset by our name or by the official config path (with or without a leading `configs/`)."""
    key = name.strip()
    if key in PRESETS:
        return PRESETS[key]
    path = key.removeprefix("./").removeprefix("configs/")
    for info in PRESETS.values():
        if info.official_yaml == path:
            return info
    candidates = list(PRESETS) + [i.official_yaml for i in PRESETS.values() if i.official_yaml]
    close = difflib.get_close_matches(key, candidates, n=3, cutoff=0.4)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise KeyError(
        f"unknown preset {name!r}.{hint} Run `maskdino presets` to list them; a run's config.yaml "
        f"(an existing .yaml/.yml/.json file) is accepted too."
    )


def get_config(name: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """A preset's Config (by our name or official config path), or the config file a run wrote
    (`<run>/config.yaml`, or any YAML/JSON file of `Config.to_dict()`), with `key=value` overrides applied."""
    try:
        info = resolve_preset(str(name))
    except KeyError:
        if not _is_config_file(name):
            raise
        cfg = load_config_file(name)
    else:
        cfg = info.build()
        cfg.name = info.name
        cfg.official_yaml = info.official_yaml
    return cfg.apply_overrides(list(overrides)) if overrides else cfg


def load_config_file(path: str | Path) -> Config:
    """A Config from a YAML (or JSON) file such as the `config.yaml` of a training run."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not a readable YAML config file: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a config mapping (e.g. the config.yaml of a training run)")
    return Config.from_dict(data)


def _is_config_file(name: str | Path) -> bool:
    path = Path(name)
    return path.suffix.lower() in CONFIG_FILE_SUFFIXES and path.is_file()
