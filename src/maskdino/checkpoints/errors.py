"""The errors of getting and loading weights. Each message names the file, name or URL and the fix."""

from __future__ import annotations


class WeightsError(RuntimeError):
    """Weights could not be fetched, read or loaded."""


class CheckpointMismatchError(WeightsError):
    """The checkpoint does not fit the model; the message lists every differing key."""


class UnreadableCheckpointError(WeightsError):
    """The file is not a readable checkpoint: truncated, corrupt, or it pickles more than tensors."""


class DownloadError(WeightsError):
    """A registry file could not be downloaded into the cache (offline, cut off, read-only cache...)."""
