"""Process-group set-up for `torchrun`, rank helpers, small collectives, and the global-batch layout.

`torchrun --nproc-per-node N ...` (or any launcher that sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT) starts N processes; `init_distributed` joins them into one group (NCCL on GPU, gloo on CPU).
Without those variables everything runs in one process and the collectives are no-ops.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from maskdino.checkpoints.download import resolve_weights

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    created_group: bool  # True when `init_distributed` created the group (and `cleanup` should end it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed() -> DistInfo:
    """Join the process group described by torchrun's environment variables (or none: one process)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), _local_rank(), created_group=False)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo(0, 1, 0, created_group=False)
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ValueError(
            f"WORLD_SIZE={world_size} but {', '.join(missing)} is not set; launch with torchrun "
            f"(e.g. torchrun --nproc-per-node {world_size} -m maskdino.cli.main train ...)"
        )
    local_rank = _local_rank()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    info = DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, created_group=True)
    logger.info("process group: rank %d of %d (%s)", info.rank, info.world_size, backend)
    return info


def cleanup(info: DistInfo) -> None:
    if info.created_group and dist.is_initialized():
        dist.destroy_process_group()


def _local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Mean of `tensor` over all processes (a new tensor; the input is left unchanged)."""
    tensor = tensor.detach().clone()
    if is_distributed():
        dist.all_reduce(tensor)
        tensor /= dist.get_world_size()
    return tensor


def all_gather_object(obj: Any) -> list[Any]:
    """`obj` of every rank, indexed by rank (picklable objects only)."""
    if not is_distributed():
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


@dataclass(frozen=True)
class BatchLayout:
    """How the global batch (solver.ims_per_batch) splits over devices and accumulation steps."""

    global_batch: int
    world_size: int
    per_device: int
    accum_steps: int

    def describe(self) -> str:
        """E.g. "global batch 16 = 2 GPUs x 4 images x 2 accumulation steps"."""
        device = "GPU" if torch.cuda.is_available() else "process"
        return (
            f"global batch {self.global_batch} = {_plural(self.world_size, device)} x "
            f"{_plural(self.per_device, 'image')} x {_plural(self.accum_steps, 'accumulation step')}"
        )


def _plural(count: int, noun: str) -> str:
    suffix = "" if count == 1 else ("es" if noun.endswith("s") else "s")
    return f"{count} {noun}{suffix}"


def batch_layout(
    ims_per_batch: int, world_size: int, per_device_batch: int, grad_accum_steps: int
) -> BatchLayout:
    """Derive the per-device batch or the accumulation steps so that world x per-device x accum = global.

    accum 0 means derive it from the per-device batch (per-device 0: ims_per_batch / world size, no
    accumulation); per-device 0 with accum > 0 means ims_per_batch / (world size x accum).
    """
    if ims_per_batch < 1 or world_size < 1 or per_device_batch < 0 or grad_accum_steps < 0:
        raise ValueError(
            f"invalid batch settings: ims_per_batch={ims_per_batch}, world size {world_size}, "
            f"per_device_batch={per_device_batch}, grad_accum_steps={grad_accum_steps}"
        )
    per_device, accum = per_device_batch, grad_accum_steps
    if per_device == 0:
        accum = accum or 1
        per_device, rest = divmod(ims_per_batch, world_size * accum)
        if rest or per_device == 0:
            raise ValueError(
                f"solver.ims_per_batch={ims_per_batch} cannot be split over {world_size} processes x "
                f"{accum} accumulation steps; set solver.per_device_batch and/or solver.grad_accum_steps "
                f"so that processes x per_device_batch x grad_accum_steps = ims_per_batch"
            )
    elif accum == 0:
        accum, rest = divmod(ims_per_batch, world_size * per_device)
        if rest or accum == 0:
            raise ValueError(
                f"solver.ims_per_batch={ims_per_batch} is not a multiple of {world_size} processes x "
                f"solver.per_device_batch={per_device}"
            )
    elif world_size * per_device * accum != ims_per_batch:
        raise ValueError(
            f"{world_size} processes x solver.per_device_batch={per_device} x solver.grad_accum_steps={accum} "
            f"= {world_size * per_device * accum} images per step, but solver.ims_per_batch={ims_per_batch}; "
            f"set one of them to 0 to derive it"
        )
    return BatchLayout(ims_per_batch, world_size, per_device, accum)


def fetch_on_main_first(source: str, info: DistInfo) -> None:
    """Under several processes, rank 0 downloads a registry file (`resolve_weights`; a local path is left
    as it is) while the others wait, so that every rank then reads the cached file."""
    if info.world_size > 1:
        if info.is_main:
            resolve_weights(source)
        dist.barrier()
