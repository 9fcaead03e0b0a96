"""What is measured: the photos, the training samples, our presets' inference and training steps,
and the per-stage split."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from maskdino.assets import demo_assets
from maskdino.config import Config

ASSETS = demo_assets()
FULL_PRESETS = ("r50_ins_4s", "r50_pan", "r50_ade_sem")
QUICK_PRESETS = ("r50_ins_4s",)
TRAIN_MAPPERS = ("coco_instance_lsj", "coco_panoptic_lsj")
STAGES = ("preprocess", "backbone", "pixel_decoder", "query_selection", "decoder", "postprocess")
# The "done when" for R50 4-scale instance inference on CPU: (peer, metric, largest ratio)
TARGETS = (("mask2former", "time", 1.0), ("maskrcnn", "time", 1.5), ("mask2former", "memory", 1.0))
TARGET_PRESET = "r50_ins_4s"
MB = 2**20


class SkipWorkload(Exception):
    """Raised by a builder when its workload cannot run here (e.g. an optional peer is not installed)."""


@dataclass(frozen=True)
class Peer:
    """A peer model: a short key (used in ratio columns), a label, and its builder as "module:function"."""

    key: str
    label: str
    builder: str


@dataclass
class Prepared:
    """A built model with its inputs: `step()` is one measured call of `items` images.

    `stages()`, when given, runs one call split into stages and returns their seconds.
    """

    step: Callable[[], Any]
    module: nn.Module
    items: int
    stages: Callable[[], dict[str, float]] | None = None
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- inputs


def demo_photos(count: int, height: int, width: int) -> tuple[list[torch.Tensor], list[str]]:
    """`count` bundled COCO photos (float RGB `[3, H, W]` in [0, 1]) resized to exactly `height` x `width`;
    those whose aspect ratio is closest to the target come first, so the resize barely distorts them."""
    from PIL import Image

    paths = sorted((ASSETS / "images").glob("*.jpg"))
    aspects = {}
    for path in paths:
        with Image.open(path) as image:
            aspects[path] = image.width / image.height
    paths.sort(key=lambda p: (abs(aspects[p] - width / height), p.name))
    chosen = [paths[i % len(paths)] for i in range(count)]
    images = []
    for path in chosen:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB").resize((width, height), Image.BILINEAR))
        images.append(torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255.0)
    return images, [p.name for p in chosen]


def mixed_photos(count: int, short: int, long: int) -> tuple[list[torch.Tensor], list[str]]:
    """`count` bundled COCO photos (float RGB `[3, H, W]` in [0, 1]) at their own sizes, landscape and
    portrait in turn, through the test resize (short side `short`, long side at most `long`)."""
    from PIL import Image

    from maskdino.data.augmentations import resize_shortest_edge

    arrays = {}
    for path in sorted((ASSETS / "images").glob("*.jpg")):
        with Image.open(path) as image:
            arrays[path] = np.asarray(image.convert("RGB"))
    landscape = [p for p, a in arrays.items() if a.shape[1] >= a.shape[0]]
    portrait = [p for p, a in arrays.items() if a.shape[1] < a.shape[0]]
    chosen = [
        (landscape, portrait)[i % 2][(i // 2) % len((landscape, portrait)[i % 2])] for i in range(count)
    ]
    images = []
    for path in chosen:
        array = arrays[path]
        resized = resize_shortest_edge(array.shape[0], array.shape[1], short, long).apply_image(array)
        images.append(torch.from_numpy(resized).permute(2, 0, 1).float() / 255.0)
    return images, [p.name for p in chosen]


def lsj_samples(
    cfg: Config, count: int, seed: int
) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """`count` training samples of the bundled COCO demo set through the preset's LSJ mapper (instance
    targets; deterministic per seed). Samples whose crop keeps no instance are drawn again."""
    from maskdino.data import DatasetMapper, load_coco_instances

    dataset = load_coco_instances(ASSETS / "instances_train.json", ASSETS, filter_empty=True)
    mapper = DatasetMapper(cfg.input, dataset.info, is_train=True)
    images, targets = [], []
    attempt = 0
    while len(images) < count:
        record = dataset.records[(len(images) + attempt) % len(dataset.records)]
        sample = mapper(record, np.random.default_rng([seed, len(images), attempt]))
        if len(sample["target"]["labels"]) == 0:
            attempt += 1
            continue
        images.append(sample["image"])
        targets.append(sample["target"])
    return images, targets


# ------------------------------------------------------------------------------------ our model's workloads


def synchronize(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def stage_times(model: nn.Module, images: list[torch.Tensor]) -> dict[str, float]:
    """Seconds of each stage of one eval call of a MaskDINO model (call under `torch.inference_mode`),
    through the model's own stage methods (`preprocess`, `backbone_features`, `pixel_decoder`,
    `predictor`, `postprocess`), so the timed work is what `model(images)` does; the images are one batch
    (give images that pad to one size: `model(images)` splits the others into batches of their own).

    `pixel_decoder` is the deformable encoder with its input projections and the mask-feature FPN.
    `query_selection` (the decoder's initial queries: two-stage top-k token selection and mask-enhanced
    boxes) is timed on its own, then `decoder` is the rest of the head's call, which selects again.
    """
    device = model.pixel_mean.device
    times: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        synchronize(device)
        start = time.perf_counter()
        out = fn()
        synchronize(device)
        times[name] = time.perf_counter() - start
        return out

    batch = timed("preprocess", lambda: model.preprocess(images))
    features = timed("backbone", lambda: model.backbone_features(batch.pixels))
    multi_scale = timed("pixel_decoder", lambda: model.pixel_decoder(features))
    timed("query_selection", lambda: model.predictor.initial_queries(multi_scale))
    outputs, _ = timed("decoder", lambda: model.predictor(multi_scale))
    times["decoder"] -= times["query_selection"]
    timed("postprocess", lambda: model.postprocess(outputs, batch))
    return times


def maskdino_inference(spec: dict, images: list[torch.Tensor]) -> Prepared:
    """The full `model(images)` call of a preset (pre- and post-processing included), batching as
    `spec["batching"]` says (default exact)."""
    from maskdino import build_model, get_config

    device = torch.device(spec["device"])
    torch.manual_seed(spec["seed"])
    model = build_model(get_config(spec["preset"])).eval().to(device)
    images = [image.to(device) for image in images]
    batching = spec.get("batching", "exact")
    notes = [f"random weights (torch.manual_seed({spec['seed']}))", f"batching {batching}"]
    return Prepared(
        lambda: model(images, batching=batching),
        model,
        len(images),
        lambda: stage_times(model, images),
        notes,
    )


def maskdino_training(spec: dict, images: list[torch.Tensor]) -> Prepared:
    """One optimiser step of a preset: forward with losses, backward, clipping, AdamW (the official recipe,
    mixed precision as the preset says where the device supports it) on LSJ crops with real targets."""
    from maskdino import build_model, get_config
    from maskdino.engine.optim import amp_settings, build_grad_scaler, build_optimizer, clip_and_step

    cfg = get_config(spec["preset"])
    if cfg.input.dataset_mapper not in TRAIN_MAPPERS:
        raise SkipWorkload(
            f"{spec['preset']} trains with the {cfg.input.dataset_mapper!r} mapper; the training benchmark "
            f"uses the bundled COCO instances with an LSJ mapper ({', '.join(TRAIN_MAPPERS)})"
        )
    notes = [f"random weights (torch.manual_seed({spec['seed']}))"]
    if cfg.input.dataset_mapper != "coco_instance_lsj":
        notes.append("panoptic preset trained on the bundled COCO instance targets (same LSJ geometry)")
    cfg.input.dataset_mapper = "coco_instance_lsj"
    cfg.input.image_size = spec["train_size"]
    device = torch.device(spec["device"])
    samples, targets = lsj_samples(cfg, spec["batch"], spec["seed"])
    samples = [image.to(device) for image in samples]
    targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
    torch.manual_seed(spec["seed"])
    model = build_model(cfg).train().to(device)
    optimizer = build_optimizer(model, cfg.solver)
    amp = amp_settings(cfg.solver, device)
    scaler = build_grad_scaler(amp)
    notes.append(f"mixed precision {amp.dtype}" if amp.enabled else "fp32")

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with amp.autocast():
            losses = model(samples, targets)
        scaler.scale(sum(losses.values())).backward()
        clip_and_step(optimizer, scaler, cfg.solver)

    return Prepared(step, model, len(samples), None, notes)


# ------------------------------------------------------------------------------------------ the worker
