"""Reading plain pickles (detectron2 `.pkl` weights) without running any code they contain.

`pickle.load` calls whatever function a file names, so an untrusted pickle can run arbitrary code. The
unpickler here resolves only an allow-list of names: plain containers, numpy arrays, dtypes and scalars,
and torch tensors pickled with `pickle.dump` (their storage bytes are read back with `torch.load(...,
weights_only=True)`). Any other name is refused before anything is called.
"""

from __future__ import annotations

import codecs
import collections
import importlib
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """The pickle names a function or class outside the allow-list; nothing it names was called."""


def _storage_from_bytes(data: bytes) -> Any:
    """`torch.storage._load_from_bytes`, but reading the bytes with `weights_only=True`."""
    try:
        storage = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:
        raise UnsafePickleError(
            f"a pickled torch storage does not read with weights_only=True ({err})"
        ) from None
    if not isinstance(storage, torch.storage.TypedStorage | torch.UntypedStorage):
        raise UnsafePickleError(f"a pickled torch storage holds a {type(storage).__name__}")
    return storage


def _numpy_names() -> dict[tuple[str, str], Any]:
    names: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    # numpy 1 pickles name numpy.core.*, numpy 2 numpy._core.*: both resolve to the installed module
    installed = "numpy._core" if int(np.__version__.split(".")[0]) >= 2 else "numpy.core"
    multiarray = importlib.import_module(f"{installed}.multiarray")
    numeric = importlib.import_module(f"{installed}.numeric")
    for package in ("numpy.core", "numpy._core"):
        names[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        names[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        names[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    return names


ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): codecs.encode,  # how protocol-2 pickles write bytes
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    **_numpy_names(),
}


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose `find_class` returns only names of `ALLOWED`."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"it names {module}.{name}, which is not a numpy array, torch tensor or plain container"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("it uses persistent ids (a torch.save file: read it with torch.load)")


def load_pickle(path: str | Path, encoding: str = "latin1") -> Any:
    """The object pickled in `path`, rebuilt from allowed names only.

    `encoding="latin1"` reads Python 2 pickles (detectron2's model zoo), whose numpy buffers are str.
    Raises `UnsafePickleError` (naming the file and the refused name) when the pickle names anything
    else, and `ValueError` when the file is not a complete pickle.
    """
    path = Path(path)
    with path.open("rb") as f:
        try:
            return RestrictedUnpickler(f, encoding=encoding).load()
        except UnsafePickleError as err:
            raise UnsafePickleError(
                f"refusing to unpickle {path}: {err}. Weights files hold only arrays; re-save the "
                "weights from a trusted session as a dict of numpy arrays or tensors"
            ) from None
        except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError) as err:
            raise ValueError(
                f"cannot read {path} as a pickle ({type(err).__name__}: {err}); the file is truncated or "
                "not a pickle: download it again"
            ) from err
