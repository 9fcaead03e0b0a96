"""Training checkpoints: atomic writes, keep the last K, resume; and the RNG state that resuming needs.

A checkpoint is one `torch.save` file holding only tensors, numbers, strings, lists and dicts, so it
loads with `weights_only=True` (no pickled code runs). `last_checkpoint` is a one-line text file naming
the newest checkpoint (no symlinks, so the folder copies anywhere).
"""

from __future__ import annotations

import logging
import os
import random
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

POINTER = "last_checkpoint"
NAME = re.compile(r"^checkpoint_(\d+)\.pt$")


def checkpoint_name(iteration: int) -> str:
    return f"checkpoint_{iteration:07d}.pt"


class Checkpointer:
    """Writes `checkpoint_<iteration>.pt` files into `directory`, keeping the newest `keep_last` (<= 0: all)."""

    def __init__(self, directory: str | Path, keep_last: int) -> None:
        self.directory = Path(directory)
        self.keep_last = keep_last

    def save(self, iteration: int, state: dict[str, Any]) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / checkpoint_name(iteration)
        _atomic_write(path, lambda tmp: torch.save(state, tmp))
        _atomic_write(self.directory / POINTER, lambda tmp: Path(tmp).write_text(path.name + "\n"))
        self._prune(keep=path)
        logger.info("saved checkpoint %s", path)
        return path

    def last(self) -> Path | None:
        """The checkpoint `last_checkpoint` names, or None when there is none yet."""
        pointer = self.directory / POINTER
        if not pointer.is_file():
            return None
        path = self.directory / pointer.read_text().strip()
        if not path.is_file():
            raise FileNotFoundError(f"{pointer} names {path.name}, which does not exist in {self.directory}")
        return path

    @staticmethod
    def load(path: str | Path) -> dict[str, Any]:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise ValueError(f"cannot read training checkpoint {path} ({type(err).__name__}: {err})") from err

    def _prune(self, keep: Path) -> None:
        if self.keep_last <= 0:
            return
        found = sorted(
            (int(m.group(1)), p) for p in self.directory.iterdir() if (m := NAME.match(p.name)) is not None
        )
        for _, path in found[: max(len(found) - self.keep_last, 0)]:
            if path != keep:
                path.unlink()


def _atomic_write(path: Path, write) -> None:
    """`write(tmp)` into a temporary file beside `path`, then rename: readers never see a partial file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def seed_all(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's (CPU and every GPU) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng_state() -> dict[str, Any]:
    """This process's global RNG states, as tensors and lists (loadable with weights_only=True)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["kind"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    py_state = state["python"]
    random.setstate((py_state["version"], tuple(py_state["internal"]), py_state["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
