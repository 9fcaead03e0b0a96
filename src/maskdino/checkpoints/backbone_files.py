"""Reading a pretrained-backbone file into named tensors, whatever container it comes in.

Accepted containers: a detectron2 pickle (`{"model": {name: array}, "__author__": ...}`, read with the
restricted unpickler), a Caffe2 pickle (`{name: array}` or `{"blobs": ...}`), and a PyTorch file
(`torch.save` zip or legacy format, read with `weights_only=True`) holding a state dict, `{"model": ...}`
or `{"state_dict": ...}`. Nothing in the file is executed.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from maskdino.checkpoints.download import resolve_weights
from maskdino.checkpoints.safe_pickle import load_pickle
from maskdino.checkpoints.zoo import find_entry

ZIP_MAGIC = b"PK\x03\x04"


@dataclass
class WeightsFile:
    """The tensors of a file, keyed as stored (`module.` prefixes dropped), and who wrote it."""

    path: Path
    tensors: dict[str, torch.Tensor]
    author: str | None = None  # detectron2's "__author__" ("torchvision", "third_party", "Caffe2", ...)


def read_weights_file(path: str | Path) -> WeightsFile:
    """Read `path` (a file, or a registry name: `maskdino zoo`) without executing pickled code; errors name
    the file and say what to do."""
    if str(path).strip() == "":
        raise ValueError(
            "the backbone weights path is empty: give a file (model.backbone.weights=R-50.pkl, or "
            "maskdino train --backbone-weights R-50.pkl), or leave it unset (model.backbone.weights=none)"
        )
    if not Path(path).expanduser().exists() and find_entry(str(path)) is not None:
        path = resolve_weights(path)  # a registry name: downloaded once, then read from the cache
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"backbone weights file not found: {path} (model.backbone.weights; registry names are listed by "
            "`maskdino zoo`). docs/training.md lists where "
            "each preset's file is published; it is only needed to start training, so a config stored with "
            "trained weights may drop it (model.backbone.weights=none)"
        )
    with path.open("rb") as f:
        head = f.read(4)
    if head == ZIP_MAGIC:
        return _from_container(path, _torch_load(path))
    obj = load_pickle(path)  # a plain pickle, or the first record of torch's legacy format
    if isinstance(obj, int) and obj == torch.serialization.MAGIC_NUMBER:
        return _from_container(path, _torch_load(path))
    return _from_container(path, obj)


def _torch_load(path: Path) -> Any:
    # MAE's training checkpoints also pickle their argparse.Namespace of options, a plain attribute bag
    torch.serialization.add_safe_globals([argparse.Namespace])
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zips, foreign pickled objects, ...
        raise ValueError(
            f"cannot read {path} as a PyTorch file with weights_only=True ({type(err).__name__}: {err}). "
            "If the download was interrupted, download it again; if the file pickles other Python objects "
            "and comes from a source you trust, re-save only its weights: "
            "torch.save({'model': state_dict}, 'weights.pth')"
        ) from err


def _from_container(path: Path, obj: Any) -> WeightsFile:
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a dict of weights")
    author = obj.get("__author__") if isinstance(obj.get("__author__"), str) else None
    for key in ("model", "state_dict", "blobs"):
        if isinstance(obj.get(key), Mapping):
            if key == "blobs":
                author = "Caffe2"
            obj = obj[key]
            break
    tensors = {}
    for name, value in obj.items():
        if isinstance(value, np.ndarray) and value.dtype != object:
            value = torch.from_numpy(np.ascontiguousarray(value))
        if not isinstance(value, torch.Tensor):
            if str(name).endswith("_momentum"):  # Caffe2 solver state, dropped as detectron2 does
                continue
            raise ValueError(
                f"{path}: entry {name!r} is a {type(value).__name__}, not an array; expected a dict of "
                "tensors or numpy arrays (optionally under 'model')"
            )
        tensors[str(name).removeprefix("module.")] = value
    if not tensors:
        raise ValueError(f"{path} holds no weights (an empty dict)")
    return WeightsFile(path, tensors, author)
