"""One device check for every command (`train`, `eval`, `predict`, `demo`) and for `train()`.

A device that is not there (`--device cuda` on a machine without a usable GPU, `cuda:3` on a two-GPU
machine) is reported before any work, in the same words whichever command asked for it.
"""

from __future__ import annotations

import torch


class DeviceUnavailableError(ValueError):
    """The requested device does not exist on this machine; the message says what to use instead."""


def resolve_device(spec: str | torch.device | None, local_rank: int = 0) -> torch.device:
    """The torch device `spec` names, checked to exist; None: this process's GPU if there is one, else CPU."""
    if spec is None:
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise DeviceUnavailableError(
            f"--device {spec!r} is not a device name; use cpu, cuda or cuda:N (N = GPU index)"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = (
                "this PyTorch build has no CUDA support"
                if torch.version.cuda is None
                else "no NVIDIA GPU or driver was found"
            )
            raise DeviceUnavailableError(
                f"--device {spec} requested but CUDA is not available on this machine ({why}); "
                f"use --device cpu, or install a CUDA build of PyTorch on a machine with a GPU"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DeviceUnavailableError(
                f"--device {spec}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceUnavailableError(f"--device {spec} requested but Apple MPS is not available; use cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise DeviceUnavailableError(f"--device {spec}: only cpu, cuda[:N] and mps are supported")
    return device
