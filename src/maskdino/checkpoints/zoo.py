"""Every officially released checkpoint our presets load, with where it is published and what its
authors report for it (COCO val2017 / ADE20K val / Cityscapes val, in percent).

Sources: the READMEs of IDEA-Research/MaskDINO (release `maskdino-v0.1.0` of IDEA-Research/detrex-storage),
CQU-ADHRI-Lab/DI-MaskDINO (Google Drive), hustvl/MIMDet (release `v1.0.0` of hustvl/storage, MAE from
facebookresearch/mae), microsoft/Swin-Transformer and detectron2's ImageNet backbones.
`maskdino zoo` prints the table; `from_pretrained(name)` downloads and loads an entry.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import PurePath

MASKDINO_RELEASE = "https://github.com/IDEA-Research/detrex-storage/releases/download/maskdino-v0.1.0/"
MIMDET_RELEASE = "https://github.com/hustvl/storage/releases/download/v1.0.0/"
MAE_RELEASE = "https://dl.fbaipublicfiles.com/mae/pretrain/"
SWIN_RELEASE = "https://github.com/SwinTransformer/storage/releases/download/v1.0.0/"
DETECTRON2_IMAGENET = "https://dl.fbaipublicfiles.com/detectron2/ImageNetPretrained/torchvision/"
GOOGLE_DRIVE = "https://drive.google.com/file/d/{}/view"

MASKDINO_LICENCE = "Apache-2.0 (IDEA-Research/MaskDINO)"
DIMASKDINO_LICENCE = "Apache-2.0 (CQU-ADHRI-Lab/DI-MaskDINO)"
MIMDET_LICENCE = "MIT (hustvl/MIMDet)"
MAE_LICENCE = "CC-BY-NC-4.0 (facebookresearch/mae)"


@dataclass(frozen=True)
class Metrics:
    """What the authors report; None where they report nothing."""

    box_ap: float | None = None
    mask_ap: float | None = None
    pq: float | None = None
    miou: float | None = None

    def reported(self) -> dict[str, float]:
        """{"box AP": 51.7, ...} for the metrics the authors report."""
        labels = {"box AP": self.box_ap, "mask AP": self.mask_ap, "PQ": self.pq, "mIoU": self.miou}
        return {label: value for label, value in labels.items() if value is not None}


@dataclass(frozen=True)
class ZooEntry:
    name: str  # our registry name, e.g. "maskdino-r50-coco-instance"
    kind: str  # "model": a whole detector; "backbone": ImageNet / MAE weights a recipe starts from
    preset: str  # the preset the weights load into (for a backbone: the preset whose backbone it starts)
    file_name: str  # the release file name: the name in the cache and under MASKDINO_MIRROR
    url: str  # where the authors publish it
    licence: str
    metrics: Metrics = field(default_factory=Metrics)
    # published where a scripted download is not reliable (Google Drive): fetched by hand, see `manual_step`
    manual_download: bool = False
    note: str = ""

    def manual_step(self, cache_path: PurePath) -> str:
        return (
            f"{self.name} is published on Google Drive, which does not serve large files to scripts reliably. "
            f"Open {self.url} in a browser, download the file, then either pass its path "
            f"(from_pretrained('/path/to/file.pth', config={self.preset!r}) or --weights /path/to/file.pth "
            f"--config {self.preset}) or save it as {cache_path}, where `{self.name}` finds it"
        )


def _maskdino(name: str, preset: str, file_name: str, metrics: Metrics, note: str = "") -> ZooEntry:
    return ZooEntry(
        name, "model", preset, file_name, MASKDINO_RELEASE + file_name, MASKDINO_LICENCE, metrics, note=note
    )


def _dimaskdino(epochs: int, drive_id: str, box_ap: float, mask_ap: float) -> ZooEntry:
    config = f"dimaskdino_r50_4scale_bs16_{epochs}ep"
    return ZooEntry(
        f"dimaskdino-r50-coco-instance-{epochs}ep",
        "model",
        f"dimaskdino_r50_4s_{epochs}ep",
        f"{config}.pth",
        GOOGLE_DRIVE.format(drive_id),
        DIMASKDINO_LICENCE,
        Metrics(box_ap=box_ap, mask_ap=mask_ap),
        manual_download=True,
        note=f"Google Drive file id {drive_id}; the Drive file's own name is not published, so the cache "
        f"and mirror name is the config's ({config}.pth)",
    )


def _mimdet(name: str, preset: str, stem: str, box_ap: float, mask_ap: float) -> ZooEntry:
    return ZooEntry(
        name,
        "model",
        preset,
        f"{stem}.pth",
        f"{MIMDET_RELEASE}{stem}.pth",
        MIMDET_LICENCE,
        Metrics(box_ap, mask_ap),
    )


def _backbone(name: str, preset: str, base: str, file_name: str, licence: str, note: str) -> ZooEntry:
    return ZooEntry(name, "backbone", preset, file_name, base + file_name, licence, note=note)


ZOO: tuple[ZooEntry, ...] = (
    # Mask DINO, COCO instance segmentation
    _maskdino("maskdino-r50-coco-instance-hid1024", "r50_ins_hid1024_3s",
              "maskdino_r50_50ep_300q_hid1024_3sd1_instance_maskenhanced_mask46.1ap_box51.5ap.pth",
              Metrics(box_ap=51.5, mask_ap=46.1)),
    _maskdino("maskdino-r50-coco-instance", "r50_ins_4s",
              "maskdino_r50_50ep_300q_hid2048_3sd1_instance_maskenhanced_mask46.3ap_box51.7ap.pth",
              Metrics(box_ap=51.7, mask_ap=46.3)),
    _maskdino("maskdino-swinl-coco-instance-no-mask-enhance", "swinl_ins_5s_no_mask_enhance",
              "maskdino_swinl_50ep_300q_hid2048_3sd1_instance_mask52.1ap_box58.3ap.pth",
              Metrics(box_ap=58.3, mask_ap=52.1),
              "the README links the mask-enhanced config for this row too; the file name says no mask enhance"),
    _maskdino("maskdino-swinl-coco-instance", "swinl_ins_5s",
              "maskdino_swinl_50ep_300q_hid2048_3sd1_instance_maskenhanced_mask52.3ap_box59.0ap.pth",
              Metrics(box_ap=59.0, mask_ap=52.3)),
    # Mask DINO, COCO panoptic segmentation
    _maskdino("maskdino-r50-coco-panoptic", "r50_pan",
              "maskdino_r50_50ep_300q_hid2048_3sd1_panoptic_pq53.0.pth",
              Metrics(box_ap=44.3, mask_ap=48.8, pq=53.0, miou=60.6)),
    _maskdino("maskdino-swinl-coco-panoptic", "swinl_pan_5s_large_eval",
              "maskdino_swinl_50ep_300q_hid2048_3sd1_panoptic_58.3pq.pth",
              Metrics(box_ap=56.2, mask_ap=50.6, pq=58.3, miou=67.5),
              "the README links a config that is not in the repository; like the R50 panoptic model this one "
              "has no mask-enhanced boxes (box init `no`), as in the Swin-L panoptic large_eval config"),
    # Mask DINO, semantic segmentation (hidden dimension 1024, 100 queries)
    _maskdino("maskdino-r50-ade20k-semantic", "r50_ade_sem",
              "maskdino_r50_50ep_100q_celoss_hid1024_3s_semantic_ade20k_48.7miou.pth", Metrics(miou=48.7)),
    _maskdino("maskdino-r50-cityscapes-semantic", "r50_city_sem",
              "maskdino_r50_50ep_100q_celoss_hid1024_3s_semantic_cityscapes_79.8miou.pth", Metrics(miou=79.8)),
    # DI-MaskDINO, COCO instance segmentation
    _dimaskdino(12, "1oQociMQSt_jmQtH3pm92i6zat8Gt83Oh", 46.9, 42.3),
    _dimaskdino(24, "1FjoYiwGnrk_bk0nUM7GPeIMGENVLdx7n", 49.6, 44.8),
    _dimaskdino(50, "17_SErWYBWWCdYfR6i7OJtcBIlCDES10z", 51.9, 46.7),
    # MIMDet and the Benchmarking-ViT baseline (Mask R-CNN FPN, COCO)
    _mimdet("mimdet-vit-b-sr025-coco", "mimdet_vit_b_sr025",
            "mimdet_vit_base_mask_rcnn_fpn_sr_0p25_800_1333_4xdec_coco_3x", 49.9, 44.7),
    _mimdet("mimdet-vit-b-sr05-coco", "mimdet_vit_b_sr05",
            "mimdet_vit_base_mask_rcnn_fpn_sr_0p5_800_1333_4xdec_coco_3x", 51.5, 46.0),
    _mimdet("mimdet-vit-l-sr05-coco", "mimdet_vit_l_sr05",
            "mimdet_vit_large_mask_rcnn_fpn_sr_0p5_800_1333_4xdec_coco_3x", 53.3, 47.5),
    _mimdet("benchmarking-vit-b-25ep-coco", "benchmarking_vit_b_25ep",
            "benchmarking_mask_rcnn_base_FPN_25ep_LSJ_mae", 48.0, 43.0),
    _mimdet("benchmarking-vit-b-50ep-coco", "benchmarking_vit_b_50ep",
            "benchmarking_mask_rcnn_base_FPN_50ep_LSJ_mae", 50.2, 44.9),
    _mimdet("benchmarking-vit-b-100ep-coco", "benchmarking_vit_b_100ep",
            "benchmarking_mask_rcnn_base_FPN_100ep_LSJ_mae", 50.4, 44.9),
    # backbones the training recipes start from
    _backbone("resnet50-imagenet", "r50_ins_4s", DETECTRON2_IMAGENET, "R-50.pkl",
              "BSD-3-Clause (torchvision ResNet-50 weights, converted by detectron2)",
              "MODEL.WEIGHTS of every official R50 config (detectron2://ImageNetPretrained/torchvision/R-50.pkl)"),
    _backbone("swin-large-in22k-384", "swinl_ins_5s", SWIN_RELEASE, "swin_large_patch4_window12_384_22k.pth",
              "MIT (microsoft/Swin-Transformer)",
              "Swin-L, ImageNet-22K, 384 px, window 12: the official Swin-L configs load it converted to a .pkl"),
    _backbone("mae-vit-base-full", "mimdet_vit_b_sr05", MAE_RELEASE, "mae_pretrain_vit_base_full.pth", MAE_LICENCE,
              "MAE ViT-B with its decoder: MIMDet ViT-B initialises its ViT and decoder from it"),
    _backbone("mae-vit-large-full", "mimdet_vit_l_sr05", MAE_RELEASE, "mae_pretrain_vit_large_full.pth",
              MAE_LICENCE, "MAE ViT-L with its decoder: MIMDet ViT-L initialises its ViT and decoder from it"),
    _backbone("mae-vit-base", "benchmarking_vit_b_25ep", MAE_RELEASE, "mae_pretrain_vit_base.pth", MAE_LICENCE,
              "MAE ViT-B encoder: the Benchmarking-ViT configs start from it"),
)  # fmt: skip

ENTRIES: dict[str, ZooEntry] = {entry.name: entry for entry in ZOO}


def find_entry(name: str) -> ZooEntry | None:
    """The entry called `name`: its registry name (`_` and `-` alike, any case) or its release file name."""
    key = str(name).strip()
    for entry in ZOO:
        if _normalise(key) == entry.name or key == entry.file_name:
            return entry
    return None


def close_names(name: str, n: int = 3) -> list[str]:
    """Registry names and release file names that look like `name`, closest first."""
    spelled = {_normalise(c): c for e in ZOO for c in (e.name, e.file_name)}
    close = difflib.get_close_matches(_normalise(PurePath(str(name)).name), list(spelled), n=n, cutoff=0.5)
    return [spelled[c] for c in close]


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-")
