"""Inference on photos: decode, the preset's test resize, batching, and results at the original size.

Like detectron2's `DefaultPredictor`: the uint8 image is resized with the preset's shortest-edge test
resize (PIL bilinear, as in evaluation), the model predicts, and post-processing resizes masks and boxes
back to each original image. A batch's results equal each image's own (`MaskDINO.predict`'s batching).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from maskdino.checkpoints.pretrained import load_model
from maskdino.config import Config
from maskdino.data.augmentations import resize_shortest_edge
from maskdino.data.catalog import standard_info
from maskdino.data.coco import coco_info_from_categories, read_json
from maskdino.data.custom import dataset_files
from maskdino.data.image_io import ImageReadError, load_rgb_image
from maskdino.data.records import DatasetInfo
from maskdino.data.transforms import Resize
from maskdino.devices import resolve_device
from maskdino.image_batch import BATCHING_MODES, MIN_SIDE, Batching
from maskdino.model import MaskDINO

LOGGER = logging.getLogger("maskdino.predict")
HALF_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
INSTANCE_KEYS = ("boxes", "labels", "scores", "masks")


@dataclass
class ImagePrediction:
    """One input of `Predictor.predict_paths`: the decoded picture and its result, or why it failed."""

    source: str
    image: np.ndarray | None = None  # uint8 [H, W, 3], upright
    result: dict | None = None  # the model's eval dict at the original size
    notes: list[str] = field(default_factory=list)  # conversions applied while decoding
    error: str | None = None


def dataset_info(cfg: Config, dataset_json: str | Path | None = None) -> DatasetInfo:
    """Class names, dataset ids and thing flags for the results, from (first found):
    `dataset_json` (the categories of a COCO instances or panoptic json, as an override); the class
    identity stored in the config (`data.class_names`, `data.class_ids`, `model.thing_classes`, which
    training writes from its data, so weights carry them); the config's standard test dataset; else
    generic names "class <i>" with ids 0..C-1."""
    test = cfg.model.test
    task = "panoptic" if test.panoptic_on else "instance" if test.instance_on else "semantic"
    num_classes = cfg.model.num_classes
    if dataset_json is not None:
        categories = read_json(Path(dataset_json)).get("categories")
        if not categories:
            raise ValueError(f"{dataset_json} lists no categories (each with id and name); pass a COCO json")
        info = coco_info_from_categories(cfg.name, categories, task)
        if info.num_classes != num_classes:
            raise ValueError(
                f"{dataset_json} lists {info.num_classes} categories but the model predicts {num_classes} classes"
            )
        return info
    if len(cfg.data.class_names) == num_classes:
        things = set(cfg.model.thing_classes) or set(range(num_classes))
        return DatasetInfo(
            cfg.name,
            task,
            tuple(cfg.data.class_names),
            _stored_class_ids(cfg),
            tuple(task != "semantic" and i in things for i in range(num_classes)),
        )
    if not (dataset_files(cfg.data, "train").given or dataset_files(cfg.data, "test").given):
        with contextlib.suppress(KeyError):  # a custom dataset name
            info = standard_info(cfg.data.test)
            if info.num_classes == num_classes:
                return info
    LOGGER.warning("no class names for %d classes of config %s: using 'class <i>'", num_classes, cfg.name)
    things = set(cfg.model.thing_classes) or set(range(num_classes))
    return DatasetInfo(
        cfg.name,
        task,
        tuple(f"class {i}" for i in range(num_classes)),
        tuple(range(num_classes)),
        tuple(i in things for i in range(num_classes)),
    )


def _stored_class_ids(cfg: Config) -> tuple[int, ...]:
    """`data.class_ids`; configs written before they were stored give the ids of their json if it is on
    this machine, else contiguous ids (with a warning)."""
    num_classes = cfg.model.num_classes
    if len(cfg.data.class_ids) == num_classes:
        return tuple(cfg.data.class_ids)
    json_path = cfg.data.val_json or cfg.data.train_json
    if json_path and Path(json_path).is_file():
        categories = read_json(Path(json_path)).get("categories") or []
        if len(categories) == num_classes:
            return coco_info_from_categories(cfg.name, categories, "instance").dataset_ids
    LOGGER.warning(
        "config %s names its classes but stores no dataset ids (data.class_ids): results use ids 0..%d; "
        "pass --dataset-json for the original ids",
        cfg.name,
        num_classes - 1,
    )
    return tuple(range(num_classes))


def as_rgb_array(image: str | Path | np.ndarray | Image.Image) -> tuple[np.ndarray, list[str]]:
    """A path, PIL image or uint8 array ([H, W, 3] RGB, [H, W] gray, [H, W, 4] RGBA) -> uint8 [H, W, 3]."""
    if isinstance(image, str | Path):
        return load_rgb_image(image)
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB")).copy(), []
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"image array has dtype {array.dtype}; expected uint8 RGB [H, W, 3]")
    if array.ndim == 2:
        return np.repeat(array[..., None], 3, axis=2), ["grayscale replicated to RGB"]
    if array.ndim == 3 and array.shape[2] == 4:
        return array[..., :3].copy(), ["alpha channel dropped"]
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"image array has shape {array.shape}; expected [H, W, 3] RGB")
    return array, []


class Predictor:
    """`Predictor("maskdino-r50-coco-instance")(image)` -> the result dict at the image's size.

    The model: a registry name (`maskdino zoo`) or `save_pretrained` folder alone, or a config (preset
    name, official YAML path or Config) with `weights` (any source `load_weights` takes).

    Instance results keep the `top_k` best detections with score >= `score_threshold` (defaults keep
    the official 100); both are options of this predictor, not of the shared config. `half`
    ("fp16"/"bf16"/True = fp16) runs the network under autocast on a CUDA device; post-processing stays
    in float32. `batching` (Mask DINO models): "exact" (default) gives every image of a batch bitwise its
    own result; "grouped" lets images that pad to one size share a network pass (faster on a GPU, equal
    to float rounding; see `image_batch.network_batches`).
    """

    def __init__(
        self,
        config: str | Config | None = None,
        weights: str | Path | None = None,
        device: str | torch.device = "cpu",
        half: bool | str = False,
        score_threshold: float = 0.0,
        top_k: int | None = None,
        dataset_json: str | Path | None = None,
        batching: Batching = "exact",
    ):
        self.device = resolve_device(device)
        if half is True:
            half = "fp16"
        if half and half not in HALF_DTYPES:
            raise ValueError(f"half={half!r}; expected 'fp16' or 'bf16'")
        if half and self.device.type != "cuda":
            raise ValueError("half precision runs on a CUDA device only; on CPU run in float32 (no --half)")
        self.dtype = HALF_DTYPES[half] if half else None
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k={top_k}; expected at least 1")
        if batching not in BATCHING_MODES:
            raise ValueError(f"batching={batching!r}; expected one of {BATCHING_MODES}")
        cfg, model = load_model(config, weights)
        if batching != "exact" and not isinstance(model, MaskDINO):
            raise ValueError(
                f"batching={batching!r} is an option of Mask DINO models; {cfg.name} is a {type(model).__name__}"
            )
        self.cfg, self.model = cfg, model.to(self.device)
        self.top_k = top_k
        self.batching = batching
        self.score_threshold = score_threshold
        self.info = dataset_info(cfg, dataset_json)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.info.class_names

    def __call__(self, image: str | Path | np.ndarray | Image.Image) -> dict:
        """Predict one image (path, PIL image or uint8 array)."""
        array, _ = as_rgb_array(image)
        return self.predict_arrays([array])[0]

    def test_resize(self, height: int, width: int) -> Resize:
        """The preset's shortest-edge test resize of an image of this size; raises if a side ends < 32 px."""
        inp = self.cfg.input
        resize = resize_shortest_edge(height, width, inp.min_size_test, inp.max_size_test)
        if min(resize.new_height, resize.new_width) < MIN_SIDE:
            raise ValueError(
                f"a {width}x{height} image becomes {resize.new_width}x{resize.new_height} after the test resize "
                f"(short side {inp.min_size_test}, long side <= {inp.max_size_test}); the model needs "
                f">= {MIN_SIDE} px per side: crop the image to a less elongated shape"
            )
        return resize

    def resize(self, image: np.ndarray) -> torch.Tensor:
        """uint8 [H, W, 3] -> float [3, h, w] in [0, 1] after the test resize (PIL bilinear, as evaluation)."""
        resized = self.test_resize(*image.shape[:2]).apply_image(image)
        return torch.from_numpy(resized).permute(2, 0, 1).float().div_(255.0)

    @torch.inference_mode()
    def predict_arrays(self, images: list[np.ndarray]) -> list[dict]:
        """One batch of uint8 RGB arrays -> result dicts at their original sizes, on the CPU; each equals
        the image's result alone."""
        tensors = [self.resize(image).to(self.device) for image in images]
        output_sizes = [image.shape[:2] for image in images]
        autocast = torch.autocast(self.device.type, self.dtype) if self.dtype else contextlib.nullcontext()
        with autocast:  # Mask DINO leaves autocast for its post-processing (float32)
            if isinstance(self.model, MaskDINO):
                results = self.model(
                    tensors, output_sizes=output_sizes, top_k=self.top_k, batching=self.batching
                )
            else:  # MIMDet pads a batch to its largest image: one image per call keeps each result its own
                results = [
                    self.model([tensor], output_sizes=[size], top_k=self.top_k)[0]
                    for tensor, size in zip(tensors, output_sizes)
                ]
        return [self._select(_to_cpu(result)) for result in results]

    def predict_paths(self, paths: Iterable[str | Path], batch_size: int = 1) -> Iterator[ImagePrediction]:
        """Predict files in order, `batch_size` at a time; an undecodable file yields an ImagePrediction
        with `error` set and the others go on."""
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}; expected at least 1")
        chunk: list[ImagePrediction] = []
        for path in paths:
            chunk.append(self._load(path))
            if len(chunk) == batch_size:
                yield from self._run(chunk)
                chunk = []
        if chunk:
            yield from self._run(chunk)

    def _load(self, path: str | Path) -> ImagePrediction:
        item = ImagePrediction(str(path))
        try:
            item.image, item.notes = load_rgb_image(path)
            self.test_resize(*item.image.shape[:2])
        except ImageReadError as err:
            item.image, item.error = None, str(err)
        except ValueError as err:
            item.image, item.error = None, f"{path}: {err}"
        return item

    def _run(self, chunk: list[ImagePrediction]) -> list[ImagePrediction]:
        ready = [item for item in chunk if item.error is None]
        if ready:
            for item, result in zip(ready, self.predict_arrays([item.image for item in ready])):
                item.result = result
        return chunk

    def _select(self, result: dict) -> dict:
        if "scores" not in result:
            return result
        keep = result["scores"] >= self.score_threshold
        return {k: v[keep] if k in INSTANCE_KEYS else v for k, v in result.items()}


def _to_cpu(result: dict) -> dict:
    out = {}
    for key, value in result.items():
        if isinstance(value, torch.Tensor):
            out[key] = value.cpu()
        elif isinstance(value, dict):
            out[key] = _to_cpu(value)
        else:
            out[key] = value
    return out
