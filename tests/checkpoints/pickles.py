"""Writing weight pickles as detectron2's Python 2 model zoo did, for tests that must not download them."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path


class Python2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 `str` (BINSTRING) and numpy's functions under numpy 1's module names
    (`numpy.core.multiarray`), as the model-zoo pickles written by Python 2 hold them."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_python2_str(self, obj: bytes) -> None:
        self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_python2_str

    def save_global(self, obj, name=None) -> None:
        module = getattr(obj, "__module__", "") or ""
        if not module.startswith("numpy._core."):
            return super().save_global(obj, name)
        module = module.replace("numpy._core.", "numpy.core.")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__name__}\n".encode())
        self.memoize(obj)


def write_python2_pickle(path: Path, obj: object) -> None:
    with path.open("wb") as f:
        Python2Pickler(f, protocol=2).dump(obj)
