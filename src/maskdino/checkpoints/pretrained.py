"""A model in one call and back: `from_pretrained(name_or_path)` and `save_pretrained(model, folder)`.

A `save_pretrained` folder holds
  model.safetensors   the state dict (config also in its metadata)
  config.json         the full Config
  classes.json        the classes in prediction order: dataset id, name, thing or stuff
  README.md           a short model card: what it is, where its weights come from, its last evaluation
and `from_pretrained(folder)`, `Predictor(folder)` and every `--weights folder` load it back exactly.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
from collections.abc import Mapping
from pathlib import Path

from torch import nn

from maskdino.build import build_model
from maskdino.checkpoints.download import resolve_weights
from maskdino.checkpoints.errors import CheckpointMismatchError
from maskdino.checkpoints.load import load_weights, model_entry, registry_entry, weights_config
from maskdino.checkpoints.native import FOLDER_CONFIG, FOLDER_WEIGHTS, save_weights
from maskdino.config import Config
from maskdino.config_validation import validate_config
from maskdino.presets import get_config, resolve_preset

logger = logging.getLogger(__name__)

CARD_METRICS = ("bbox/AP", "segm/AP", "panoptic/PQ", "sem_seg/mIoU")


def from_pretrained(name_or_path: str | Path, config: str | Config | None = None) -> nn.Module:
    """The model `name_or_path` holds, in eval mode, with its full Config at `model.config`.

    name_or_path: a registry name or release file name (`maskdino zoo`; downloaded once into
    $MASKDINO_HOME), a `save_pretrained` folder, our `.safetensors`, a training checkpoint, or an
    official `.pth` (which needs `config`, a preset name or official YAML path, unless its file name is a
    registry release name).
    """
    return load_model(config, name_or_path)[1]


def load_model(config: str | Config | None, weights: str | Path | None) -> tuple[Config, nn.Module]:
    """The eval model of `config` (preset name, official YAML path, a run's config.yaml or Config) with
    `weights` loaded.

    Without `config` the weights must say which model they hold (registry names, save_pretrained
    folders, our `.safetensors`, training checkpoints); a registry name or folder given as `config` with
    no `weights` is taken as the weights (`Predictor("maskdino-r50-coco-instance")`). No weights at all
    gives random weights (with a warning), for experiments only.
    """
    if weights is None and isinstance(config, str) and _names_weights(config):
        config, weights = None, config
    stored = None
    if weights is not None:
        model_entry(weights)  # backbone weights are not a model
        resolve_weights(weights)  # a missing file or failed download stops here, before the model is built
        stored = weights_config(weights)
    if config is None and weights is None:
        raise ValueError("no config given: pass a preset name, official YAML path, registry name or weights")
    if config is None:
        if stored is None:
            raise ValueError(
                f"{weights} does not say which model it holds: pass a preset name or official YAML path as "
                "the config (--config); registry names, save_pretrained folders, our .safetensors and "
                "training checkpoints carry their own"
            )
        cfg = stored
    else:
        cfg = copy.deepcopy(config) if isinstance(config, Config) else get_config(config)
    model = build_model(validate_config(cfg, training=False))
    if weights is None:
        logger.warning("no weights given: the model is randomly initialised and its predictions are noise")
        return cfg, model.eval()
    try:
        load_weights(model, weights)
    except CheckpointMismatchError as err:
        if stored is not None and stored.name != cfg.name:
            raise CheckpointMismatchError(
                f"{weights} holds weights of preset {stored.name!r} but the config is {cfg.name!r}: "
                f"give --config {stored.name} or leave the config out to use the stored one.\n{err}"
            ) from None
        raise
    model.weights_source = str(weights)
    return cfg, model.eval()


def _names_weights(spec: str) -> bool:
    """True if `spec` is not a preset but a registry name or an existing file or folder."""
    try:
        resolve_preset(spec)
    except KeyError:
        return registry_entry(spec) is not None or Path(spec).expanduser().exists()
    return False


def save_pretrained(
    model: nn.Module, directory: str | Path, metrics: Mapping[str, float] | None = None
) -> Path:
    """Write `model` (built by `build_model`, so it carries `model.config`) as a folder that
    `from_pretrained` loads back exactly. `metrics` default to those of its last `evaluate_model` run."""
    cfg = getattr(model, "config", None)
    if not isinstance(cfg, Config):
        raise ValueError(
            "the model has no .config: build it with maskdino.build_model(cfg) or from_pretrained"
        )
    folder = Path(directory)
    save_weights(folder / FOLDER_WEIGHTS, model, cfg)
    (folder / FOLDER_CONFIG).write_text(cfg.to_json() + "\n")
    classes = class_table(cfg)
    (folder / "classes.json").write_text(json.dumps(classes, indent=1) + "\n")
    if metrics is None:
        metrics = getattr(model, "last_evaluation", None)
    card = model_card(cfg, model, classes, metrics, getattr(model, "weights_source", None))
    (folder / "README.md").write_text(card)
    return folder


def class_table(cfg: Config) -> list[dict]:
    """The classes in the model's output order: `{"id", "name", "isthing"}` (ids as in the dataset),
    from the config's class fields, else its standard test dataset, else generic names."""
    from maskdino.data.catalog import standard_info

    count = cfg.model.num_classes
    names, ids = tuple(cfg.data.class_names), tuple(getattr(cfg.data, "class_ids", ()))
    if not names:
        with contextlib.suppress(KeyError):  # a custom dataset name
            info = standard_info(cfg.data.test)
            if info.num_classes == count:
                names, ids = info.class_names, info.dataset_ids
    if len(names) != count:
        names = tuple(f"class {i}" for i in range(count))
    if len(ids) != count:
        ids = tuple(range(count))
    things = set(cfg.model.thing_classes) or set(range(count))
    return [{"id": int(i), "name": n, "isthing": k in things} for k, (i, n) in enumerate(zip(ids, names))]


def model_card(
    cfg: Config,
    model: nn.Module,
    classes: list[dict],
    metrics: Mapping[str, float] | None,
    source: str | None,
) -> str:
    params = sum(p.numel() for p in model.parameters())
    shown = ", ".join(c["name"] for c in classes[:8]) + (", ..." if len(classes) > 8 else "")
    lines = [
        f"# {cfg.name}",
        "",
        f"A `{cfg.model.architecture}` model of preset `{cfg.name}`"
        + (f" (official config `{cfg.official_yaml}`)" if cfg.official_yaml else "")
        + f": {params:,} parameters, {len(classes)} classes ({shown}; all in classes.json).",
        "",
        "```python",
        "from maskdino import from_pretrained",
        'model = from_pretrained("path/to/this/folder")  # or: maskdino predict IMAGES --weights this/folder',
        "```",
        "",
    ]
    entry = registry_entry(source) if source else None
    if entry is not None:
        reported = entry.metrics.reported()
        lines += [
            f"Weights: `{entry.name}`, released as `{entry.file_name}` ({entry.url}); licence {entry.licence}.",
            "Reported by the authors: " + ", ".join(f"{k} {v}" for k, v in reported.items()) + ".",
            "",
        ]
    elif source:
        lines += [f"Weights loaded from `{source}`.", ""]
    if metrics:
        keys = [k for k in CARD_METRICS if k in metrics] or sorted(metrics)[:8]
        lines += ["Last evaluation with these weights:", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {float(metrics[k]):.2f} |" for k in keys]
    else:
        lines.append("No evaluation of these weights is recorded.")
    return "\n".join(lines) + "\n"


class PretrainedMixin:
    """`model.save_pretrained(folder)` for the models `build_model` makes."""

    def save_pretrained(self, directory: str | Path, metrics: Mapping[str, float] | None = None) -> Path:
        return save_pretrained(self, directory, metrics)
