"""Training checkpoints: atomic writes, keep the last K, resume; and the RNG state that resuming needs.

A checkpoint is one `torch.save` file holding only tensors, numbers, strings, lists and dicts, so it
loads with `weights_only=True` (no pickled code runs). `last_checkpoint` is a one-line text file naming
the newest checkpoint (no symlinks, so the folder copies anywhere). Files are written with the umask's
permissions (see maskdino.utils.atomic); a write killed midway leaves a `*.tmp` file that the next run
removes. Resuming falls back to the newest checkpoint that loads when the latest one is damaged.
"""

from __future__ import annotations

import logging
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from maskdino.utils.atomic import atomic_write, stale_temporary_files
from maskdino.utils.file_access import check_readable

logger = logging.getLogger(__name__)

POINTER = "last_checkpoint"
NAME = re.compile(r"^checkpoint_(\d+)\.pt$")
# what a killed write of a checkpoint, the pointer or the final weights leaves behind
TEMPORARY_PREFIXES = ("checkpoint_", POINTER, "model_final")


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
        atomic_write(path, lambda tmp: torch.save(state, tmp))
        atomic_write(self.directory / POINTER, lambda tmp: Path(tmp).write_text(path.name + "\n"))
        self._prune(keep=path)
        logger.info("saved checkpoint %s", path)
        return path

    def checkpoints(self) -> list[Path]:
        """Every `checkpoint_<iteration>.pt` in the folder, newest (highest iteration) first."""
        if not self.directory.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.directory.iterdir() if (m := NAME.match(p.name))]
        return [p for _, p in sorted(found, reverse=True)]

    def load_latest(self) -> tuple[Path, dict[str, Any]] | None:
        """The newest checkpoint that loads and its state: the one `last_checkpoint` names, else the others
        newest first. Each one skipped is logged with the reason; None when the folder holds none."""
        candidates = self.checkpoints()
        pointer = self.directory / POINTER
        if pointer.is_file():
            named = self.directory / pointer.read_text().strip()
            candidates = [named] + [p for p in candidates if p != named]
        skipped = []
        for path in candidates:
            try:
                state = self.load(path)
            except (OSError, ValueError) as err:
                skipped.append(f"{path.name}: {err}")
                logger.warning("--resume: skipping %s: %s", path, err)
                continue
            if skipped:
                logger.warning(
                    "--resume: falling back to %s; skipped %d newer checkpoint(s):\n  %s",
                    path.name,
                    len(skipped),
                    "\n  ".join(skipped),
                )
            return path, state
        if skipped:
            raise ValueError(
                f"--resume: no checkpoint in {self.directory} can be loaded:\n  "
                + "\n  ".join(skipped)
                + "\nrestore a checkpoint from a backup, or start over with --overwrite"
            )
        return None

    @staticmethod
    def load(path: str | Path) -> dict[str, Any]:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"training checkpoint not found: {path}")
        check_readable(path, "training checkpoint")
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise ValueError(
                f"cannot read training checkpoint {path} ({type(err).__name__}: {err}); the file is damaged "
                f"(e.g. a full disk or a copy cut short) or was not written by maskdino train"
            ) from err

    def remove_stale_temporary_files(self) -> list[Path]:
        """Delete the `*.tmp` files killed writes left behind (a run's own writes are never in flight here:
        this runs before it starts)."""
        stale = stale_temporary_files(self.directory, TEMPORARY_PREFIXES)
        for path in stale:
            path.unlink()
        if stale:
            logger.info(
                "removed %d unfinished file(s) of an interrupted write: %s",
                len(stale),
                ", ".join(p.name for p in stale),
            )
        return stale

    def _prune(self, keep: Path) -> None:
        if self.keep_last <= 0:
            return
        for path in self.checkpoints()[self.keep_last :]:
            if path != keep:
                path.unlink()


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
