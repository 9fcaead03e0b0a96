"""One run per output folder: a fresh `train` refuses a folder holding another run's files.

Training into a folder that holds a previous run would overwrite its final weights and metrics and
leave its later checkpoints beside the new ones, so that a later `--resume` continues from a mix of
both runs. `--resume` continues the run in the folder; `--overwrite` deletes that run's files (and
only those: other files in the folder are left alone) and starts over.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from maskdino.engine.checkpointer import NAME, POINTER, TEMPORARY_PREFIXES, Checkpointer
from maskdino.engine.distributed import all_gather_object
from maskdino.utils.atomic import stale_temporary_files
from maskdino.utils.file_access import check_output_dir

logger = logging.getLogger(__name__)

RUN_FILE_NAMES = ("config.yaml", "metrics.jsonl", POINTER)
RUN_FILE_PATTERNS = (
    NAME,  # checkpoint_<iteration>.pt
    re.compile(r"^model_final(_ema)?\.safetensors$"),
    re.compile(r"^events\.out\.tfevents\..+$"),
    re.compile(r"^eval_\d{7}$"),  # periodic evaluation folders
)


class RunFolderError(ValueError):
    """The output folder holds another run and neither --resume nor --overwrite was given."""


def previous_run_files(directory: str | Path) -> list[Path]:
    """The files and folders a `train` run wrote into `directory` (none when it does not exist)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [
        p
        for p in directory.iterdir()
        if p.name in RUN_FILE_NAMES or any(pattern.match(p.name) for pattern in RUN_FILE_PATTERNS)
    ]
    return sorted(found + stale_temporary_files(directory, TEMPORARY_PREFIXES))


def run_folder_problem(directory: str | Path, resume: bool, overwrite: bool) -> str | None:
    """Why a run may not start in `directory`, or None."""
    if resume and overwrite:
        return "--resume continues the run in the folder and --overwrite deletes it: give only one"
    found = previous_run_files(directory)
    if not found or resume or overwrite:
        return None
    shown = ", ".join(p.name for p in found[:5]) + (f", ... ({len(found)} in all)" if len(found) > 5 else "")
    return (
        f"output folder {directory} holds a previous run ({shown}). Pass --resume to continue it, "
        f"--overwrite to delete its files and start over, or choose another --output "
        f"(from Python: train(cfg, resume=True) or train(cfg, overwrite=True))"
    )


def clear_previous_run(directory: str | Path) -> list[Path]:
    """Delete the previous run's files and folders in `directory` (for --overwrite); returns them."""
    found = previous_run_files(directory)
    for path in found:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    if found:
        logger.info("--overwrite: deleted %d file(s) of the previous run in %s", len(found), directory)
    return found


def claim_run_folder(checkpointer: Checkpointer, resume: bool, overwrite: bool, is_main: bool) -> None:
    """Before any work: the output folder is writable and holds no other run unless `resume` or `overwrite`
    is given (`resume` removes what killed writes left; with `overwrite` the trainer calls
    `clear_previous_run` once the new run is ready to write, so a run that fails to start deletes nothing).
    The main process decides; every process raises its error."""
    directory = checkpointer.directory
    error: Exception | None = None
    if is_main:
        try:
            check_output_dir(directory)
            problem = run_folder_problem(directory, resume, overwrite)
            if problem is not None:
                raise RunFolderError(problem)
            if resume:
                checkpointer.remove_stale_temporary_files()
        except (OSError, ValueError) as err:
            error = err
    error = all_gather_object(error)[0]
    if error is not None:
        raise error
